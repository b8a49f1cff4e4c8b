using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>PROXY protocol v2 from a front load balancer in, and toward upstreams out, over real sockets.</summary>
public sealed class ProxyProtocolTests
{
    private const string Name = "web.default.dc1.internal.td.consul";
    private static readonly IPEndPoint s_client = new(IPAddress.Parse("203.0.113.7"), 40123);
    private static readonly IPEndPoint s_frontend = new(IPAddress.Parse("198.51.100.1"), 443);

    private static TestGateway Start(IPEndPoint backend, bool send)
    {
        var bind = new IPEndPoint(IPAddress.Loopback, 0);
        return TestGateway.Start([TestGateway.Route(Name, backend)], () =>
        {
            var options = new GatewayListenerOptions { SendProxyProtocol = send };
            options.ProxyProtocolEndPoints.Add(bind);
            return options;
        }, bind: bind);
    }

    private static byte[] Header(IPEndPoint source, IPEndPoint destination)
    {
        byte[] header = new byte[ProxyProtocol.GetLength(source, destination)];
        ProxyProtocol.Write(header, source, destination);
        return header;
    }

    [Fact]
    public async Task RoundTrip_ClientAddressFromTheBalancerReachesTheUpstreamAndTheAccessLog()
    {
        byte[] hello = TestHello.Create(Name);
        var seen = new TaskCompletionSource<(IPEndPoint? Source, IPEndPoint? Destination)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new RawBackend(async socket =>
        {
            // The upstream reads the gateway's PROXY header, then exactly the client's bytes.
            byte[] header = new byte[ProxyProtocol.Ipv4HeaderLength];
            await RawBackend.ReadExactlyAsync(socket, header);
            Assert.Equal(ProxyHeaderStatus.Done, ProxyProtocol.TryRead(header, out int length, out IPEndPoint? source, out IPEndPoint? destination));
            Assert.Equal(header.Length, length);
            seen.TrySetResult((source, destination));
            await RawBackend.ExpectHelloAsync(socket, hello);
            await socket.SendAsync("ok"u8.ToArray(), SocketFlags.None);
            socket.Shutdown(SocketShutdown.Send);
            await RawBackend.ReadToEndAsync(socket);
        });
        await using TestGateway gateway = Start(backend.EndPoint, send: true);

        using Socket client = await gateway.ConnectAsync();
        byte[] header = Header(s_client, s_frontend);

        // The header and the hello in one write, as a balancer sends them when the client's first bytes are there.
        await client.SendAsync(header.Concat(hello).ToArray());
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("ok"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(30)));

        (IPEndPoint? upstreamSource, IPEndPoint? upstreamDestination) = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(s_client, upstreamSource);
        Assert.Equal(s_frontend, upstreamDestination);
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(s_client, Assert.Single(gateway.Observer.ClosedClients));

        // The access log counts the client's bytes only (its hello), not either PROXY header.
        Assert.Equal(hello.Length, Assert.Single(gateway.Observer.Closed).Up);
    }

    [Fact]
    public async Task HeaderByteByByte_ThenHello_RoutedWithoutForwardingTheHeader()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("web", hello);
        await using TestGateway gateway = Start(backend.EndPoint, send: false);
        using Socket client = await gateway.ConnectAsync();
        byte[] header = Header(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 5555), new IPEndPoint(IPAddress.Parse("2001:db8::1"), 443));
        foreach (byte b in header)
        {
            await client.SendAsync(new[] { b });
        }

        await client.SendAsync(hello);
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("web"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(30)));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 5555), Assert.Single(gateway.Observer.ClosedClients));
    }

    [Fact]
    public async Task MissingOrMalformedHeader_CountedRejectionsWithoutDial()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("web");
        await using TestGateway gateway = Start(backend.EndPoint, send: false);

        byte[] badVersion = Header(s_client, s_frontend);
        badVersion[12] = 0x11; // version 1 in the binary form
        byte[] overlong = Header(s_client, s_frontend);
        overlong[14] = 0x10; // 4 KiB of addresses and TLVs announced
        byte[][] inputs = [hello, "PROXY TCP4 203.0.113.7 198.51.100.1 40123 443\r\n"u8.ToArray(), badVersion, overlong];
        foreach (byte[] input in inputs)
        {
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(input);
            try
            {
                Assert.Empty(await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(30)));
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
            }
        }

        await gateway.Observer.WaitForEventsAsync(inputs.Length);
        Assert.Equal(2, gateway.Listener.Counters.GetRejected(RejectionReason.ProxyHeaderMissing));
        Assert.Equal(2, gateway.Listener.Counters.GetRejected(RejectionReason.ProxyHeaderInvalid));
        Assert.Equal(2, gateway.Meters.Sum("meshgateway.connections.rejected|error.type=proxy_header_missing"));
        Assert.Equal(0, backend.Accepted);
    }
}
