using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>TCP keepalive reaches the gateway's own sockets: the accepted client leg and the dialled upstream leg.</summary>
public sealed class KeepAliveTests
{
    private const string Remote = "dc2.internal.11111111-2222-3333-4444-555555555555.consul";
    private const string Local = "web.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul";

    private static int Option(Socket socket, SocketOptionLevel level, SocketOptionName name) => (int)socket.GetSocketOption(level, name)!;

    [Fact]
    public async Task Gateway_KeepAliveOnListenerAndCluster_BothLegsCarryTheirOwnSettings()
    {
        byte[] remoteHello = TestHello.Create(Remote);
        byte[] localHello = TestHello.Create(Local);
        await using RawBackend remote = RawBackend.Echo(remoteHello);
        await using RawBackend local = RawBackend.Echo(localHello);
        Route[] routes =
        [
            new Route(Remote, new UpstreamCluster(Remote, [new UpstreamEndpoint(remote.EndPoint)]) { TcpKeepAlive = new TcpKeepAlive { Time = 120, Interval = 60, Probes = 7 } }),
            TestGateway.Route(Local, local.EndPoint),
        ];
        await using TestGateway gateway = TestGateway.Start(routes, () => new GatewayListenerOptions { ClientTcpKeepAlive = new TcpKeepAlive { Time = 45, Interval = 9, Probes = 4 } });

        using Socket toRemote = await OpenAsync(gateway, remoteHello);
        using Socket toLocal = await OpenAsync(gateway, localHello);
        IReadOnlyList<(Socket Client, Socket? Upstream)> open = await gateway.Listener.OpenSocketsAsync();
        Assert.Equal(2, open.Count);
        foreach ((Socket client, Socket? upstreamSocket) in open)
        {
            Assert.NotEqual(0, Option(client, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
            Assert.Equal((45, 9, 4), (
                Option(client, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime),
                Option(client, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval),
                Option(client, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)));

            Socket upstream = upstreamSocket!;
            if (upstream.RemoteEndPoint!.Equals(remote.EndPoint))
            {
                Assert.NotEqual(0, Option(upstream, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
                Assert.Equal((120, 60, 7), (
                    Option(upstream, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime),
                    Option(upstream, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval),
                    Option(upstream, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)));
            }
            else
            {
                // A cluster without keepalive (Consul's local services) keeps the socket default: off.
                Assert.Equal(local.EndPoint, upstream.RemoteEndPoint);
                Assert.Equal(0, Option(upstream, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
            }
        }
    }

    [Fact]
    public async Task Gateway_NoKeepAliveConfigured_ClientLegLeftAlone()
    {
        byte[] hello = TestHello.Create(Local);
        await using RawBackend local = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Local, local.EndPoint)]);
        using Socket client = await OpenAsync(gateway, hello);
        (Socket accepted, _) = Assert.Single(await gateway.Listener.OpenSocketsAsync());
        Assert.Equal(0, Option(accepted, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
    }

    private static async Task<Socket> OpenAsync(TestGateway gateway, byte[] hello)
    {
        Socket socket = await gateway.ConnectAsync();
        await socket.SendAsync(hello);

        // One round trip: the connection is spliced, so both of its sockets exist, before the test reads them.
        await socket.SendAsync("x"u8.ToArray());
        await RawBackend.ReadExactlyAsync(socket, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));
        return socket;
    }
}
