using System.Net;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Testing;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Tls;

namespace MeshGateway.IntegrationTests;

/// <summary>Routing through a live gateway gives the answers Consul's Envoy configuration gives (docs/consul-behaviour.md §3, §13).</summary>
public sealed class RoutingTests
{
    private const string Td = "internal.11111111-2222-3333-4444-555555555555.consul";

    private static async Task<string?> AskAsync(TestGateway gateway, string? serverName)
    {
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(TestHello.Create(serverName));
        client.Shutdown(SocketShutdown.Send);
        byte[] answer = await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60));
        return answer.Length == 0 ? null : Encoding.ASCII.GetString(answer);
    }

    [Fact]
    public async Task Gateway_ConsulLikeTable_ExactBeatsWildcardAndLongestSuffixWins()
    {
        await using RawBackend web = RawBackend.Named("web");
        await using RawBackend dc2 = RawBackend.Named("dc2");
        await using RawBackend dc2Default = RawBackend.Named("dc2-default");
        await using RawBackend dc2Gateways = RawBackend.Named("dc2-gateways");
        await using RawBackend api = RawBackend.Named("api-exact");
        await using TestGateway gateway = TestGateway.Start(
        [
            TestGateway.Route($"web.default.dc1.{Td}", web.EndPoint),
            TestGateway.Route($"*.dc2.{Td}", dc2.EndPoint),
            TestGateway.Route($"*.default.dc2.{Td}", dc2Default.EndPoint),
            TestGateway.Route($"dc2.{Td}", dc2Gateways.EndPoint),
            TestGateway.Route($"api.default.dc2.{Td}", api.EndPoint),
        ]);

        Assert.Equal("web", await AskAsync(gateway, $"web.default.dc1.{Td}"));
        Assert.Equal("web", await AskAsync(gateway, $"WEB.Default.DC1.{Td.ToUpperInvariant()}"));
        Assert.Equal("dc2-default", await AskAsync(gateway, $"db.default.dc2.{Td}"));
        Assert.Equal("dc2-default", await AskAsync(gateway, $"v2.db.default.dc2.{Td}"));
        Assert.Equal("dc2", await AskAsync(gateway, $"db.team.dc2.{Td}"));
        Assert.Equal("dc2-gateways", await AskAsync(gateway, $"dc2.{Td}"));
        Assert.Equal("api-exact", await AskAsync(gateway, $"api.default.dc2.{Td}"));
        Assert.Equal(7, gateway.Listener.Counters.Routed);
        Assert.Equal(0, gateway.Listener.Counters.Rejected);
        Assert.Equal(4, gateway.Meters.Sum("meshgateway.connections.routed|meshgateway.route.kind=exact"));
        Assert.Equal(3, gateway.Meters.Sum("meshgateway.connections.routed|meshgateway.route.kind=wildcard"));
    }

    [Theory]
    [InlineData("web.default.dc1." + Td + ".", RejectionReason.NoRoute)]
    [InlineData("nope.default.dc1." + Td, RejectionReason.NoRoute)]
    [InlineData("db.default.dc3." + Td, RejectionReason.NoRoute)]
    [InlineData(null, RejectionReason.NoServerName)]
    public async Task Gateway_UnroutableName_ClosedCountedReportedOnceWithoutDial(string? serverName, RejectionReason reason)
    {
        await using RawBackend web = RawBackend.Named("web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route($"web.default.dc1.{Td}", web.EndPoint), TestGateway.Route($"*.dc2.{Td}", web.EndPoint)]);
        Assert.Null(await AskAsync(gateway, serverName));
        await gateway.Observer.WaitForEventsAsync(1);
        var rejection = Assert.Single(gateway.Observer.Rejections);
        Assert.Equal(reason, rejection.Reason);
        Assert.Equal(serverName ?? string.Empty, rejection.ServerName);
        Assert.IsType<IPEndPoint>(rejection.Client);
        Assert.Equal(1, gateway.Listener.Counters.GetRejected(reason));
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.connections.rejected|error.type=" + (reason == RejectionReason.NoRoute ? "no_route" : "no_sni")));
        Assert.Equal(0, web.Accepted);
    }

    /// <summary>
    /// The reader accepts any host_name bytes and reports how they depart from a DNS name; the gateway's policy rejects
    /// non-ASCII and control bytes with their own reason (a .NET client sends a Unicode IDN as UTF-8, see
    /// ClientHelloCaptureTests) and leaves other departures (here an underscore) to the route table.
    /// </summary>
    [Theory]
    [InlineData("w\u00E9b.default.dc1." + Td, RejectionReason.InvalidServerName, HostNameIssues.NonAscii)]
    [InlineData("web\n.default.dc1." + Td, RejectionReason.InvalidServerName, HostNameIssues.ControlOrSpace)]
    [InlineData("web_x.default.dc1." + Td, RejectionReason.NoRoute, HostNameIssues.NonLdhCharacter)]
    public async Task Gateway_NonDnsServerName_RejectedByPolicyWithItsReason(string serverName, RejectionReason reason, HostNameIssues issues)
    {
        await using RawBackend web = RawBackend.Named("web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route($"web.default.dc1.{Td}", web.EndPoint)]);
        byte[] name = Encoding.UTF8.GetBytes(serverName);
        using (Socket client = await gateway.ConnectAsync())
        {
            await client.SendAsync(TestHello.CreateRaw(name));
            client.Shutdown(SocketShutdown.Send);
            Assert.Empty(await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        }

        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(reason, Assert.Single(gateway.Observer.Rejections).Reason);
        (byte[] reportedName, HostNameIssues reportedIssues) = Assert.Single(gateway.Observer.RejectedServerNames);
        Assert.Equal(name, reportedName);
        Assert.Equal(issues, reportedIssues);
        Assert.Equal(1, gateway.Listener.Counters.GetRejected(reason));
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.connections.rejected|error.type=" + (reason == RejectionReason.NoRoute ? "no_route" : "invalid_server_name")));
        Assert.Equal(0, web.Accepted);
    }

    [Fact]
    public async Task Gateway_SnapshotSwappedUnderLoad_EstablishedConnectionsKeepFlowing()
    {
        string name = $"web.default.dc1.{Td}";
        byte[] hello = TestHello.Create(name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using RawBackend other = RawBackend.Named("other");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(name, backend.EndPoint)]);

        var established = new List<Socket>();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                Socket socket = await gateway.ConnectAsync();
                established.Add(socket);
                await socket.SendAsync(hello);

                // One round trip: the connection is routed and spliced before any swap.
                await socket.SendAsync("x"u8.ToArray());
                await RawBackend.ReadExactlyAsync(socket, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));
            }

            // Swap many times while the connections move data: a table without the route, then one pointing elsewhere.
            byte[] chunk = new byte[32 * 1024];
            Random.Shared.NextBytes(chunk);
            for (int round = 0; round < 20; round++)
            {
                gateway.Routes.Update(round % 2 == 0 ? RouteTable.Empty : RouteTable.Create([TestGateway.Route(name, other.EndPoint)]));
                foreach (Socket socket in established)
                {
                    await socket.SendAsync(chunk);
                    byte[] echo = new byte[chunk.Length];
                    await RawBackend.ReadExactlyAsync(socket, echo).WaitAsync(TimeSpan.FromSeconds(60));
                    Assert.Equal(chunk, echo);
                }
            }

            // New connections follow the current table (the last swap pointed the name at "other").
            Assert.Equal("other", await AskAsync(gateway, name));
            gateway.Routes.Update(RouteTable.Empty);
            Assert.Null(await AskAsync(gateway, name));
        }
        finally
        {
            foreach (Socket socket in established)
            {
                socket.Dispose();
            }
        }

        await gateway.WaitIdleAsync();
        Assert.Equal(9, gateway.Listener.Counters.Routed);
        Assert.Equal(1, gateway.Listener.Counters.GetRejected(RejectionReason.NoRoute));
    }

    [Fact]
    public async Task Gateway_Ipv6Listener_RoutesToIpv6Backend()
    {
        string name = $"web.default.dc1.{Td}";
        await using RawBackend backend = new(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, TestHello.Create(name));
            await socket.SendAsync("v6"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
        }, IPAddress.IPv6Loopback);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(name, backend.EndPoint)], bind: new IPEndPoint(IPAddress.IPv6Loopback, 0));
        Assert.Equal(AddressFamily.InterNetworkV6, gateway.EndPoint.AddressFamily);
        Assert.NotEqual(0, gateway.EndPoint.Port);
        Assert.Equal("v6", await AskAsync(gateway, name));
    }
}
