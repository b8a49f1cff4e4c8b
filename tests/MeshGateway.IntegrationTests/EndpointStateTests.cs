using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>Endpoint state across table swaps and host-name endpoints, through a live gateway.</summary>
public sealed class EndpointStateTests
{
    private const string Name = "web.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul";

    private static async Task<Socket> OpenAsync(TestGateway gateway, byte[] hello)
    {
        Socket socket = await gateway.ConnectAsync();
        await socket.SendAsync(hello);

        // One round trip: the connection is spliced (and counted) before the test goes on.
        await socket.SendAsync("x"u8.ToArray());
        await RawBackend.ReadExactlyAsync(socket, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));
        return socket;
    }

    [Fact]
    public async Task Gateway_ConnectionsSpanningSwaps_CountCarriesOverAndReturnsToZero()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        UpstreamCluster first = gateway.Routes.Current.Routes[0].Cluster;
        var sockets = new List<Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                sockets.Add(await OpenAsync(gateway, hello));
            }

            // Every catalog change builds a new cluster: the count of the connections opened before it carries over.
            gateway.Routes.Update(RouteTable.Create([TestGateway.Route(Name, backend.EndPoint)]));
            UpstreamCluster second = gateway.Routes.Current.Routes[0].Cluster;
            Assert.NotSame(first, second);
            Assert.Equal(4, second.GetActiveConnections(0));
            sockets.Add(await OpenAsync(gateway, hello));
            Assert.Equal(5, second.GetActiveConnections(0));

            for (int i = 0; i < 3; i++)
            {
                sockets[i].Dispose();
            }

            gateway.Routes.Update(RouteTable.Create([TestGateway.Route(Name, backend.EndPoint)]));
        }
        finally
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }
        }

        await gateway.WaitIdleAsync();
        UpstreamCluster third = gateway.Routes.Current.Routes[0].Cluster;
        Assert.Equal(0, third.GetActiveConnections(0));
        Assert.Equal(0, first.GetActiveConnections(0));
        Assert.Equal(5, third.GetState(0).Connections);
        Assert.Equal(5, gateway.Listener.Counters.Routed);
    }

    [Fact]
    public async Task Gateway_LocalhostHostName_RejectedUntilResolvedThenRouted()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        var route = new Route(Name, new UpstreamCluster(Name, [new UpstreamEndpoint("localhost", backend.EndPoint.Port)]));
        await using TestGateway gateway = TestGateway.Start([route]);

        // Not resolved yet: refused at once with its own reason, nothing dialled.
        using (Socket early = await gateway.ConnectAsync())
        {
            await early.SendAsync(hello);
            early.Shutdown(SocketShutdown.Send);
            Assert.Empty(await RawBackend.ReadToEndAsync(early).WaitAsync(TimeSpan.FromSeconds(60)));
        }

        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.EndpointUnresolved, Assert.Single(gateway.Observer.Rejections).Reason);
        Assert.Equal(1, gateway.Listener.Counters.GetRejected(RejectionReason.EndpointUnresolved));
        Assert.Equal(0, backend.Accepted);

        // The system resolver (IPv4 only) resolves localhost to 127.0.0.1.
        await using var refresher = new HostNameRefresher(gateway.Routes);
        await refresher.RefreshAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var expected = new IPEndPoint(IPAddress.Loopback, backend.EndPoint.Port);
        Assert.Equal(expected, route.Cluster.GetState(0).Address);

        using (Socket socket = await OpenAsync(gateway, hello))
        {
            socket.Shutdown(SocketShutdown.Send);
            await RawBackend.ReadToEndAsync(socket).WaitAsync(TimeSpan.FromSeconds(60));
        }

        await gateway.Observer.WaitForEventsAsync(2);
        Assert.Equal(expected, Assert.Single(gateway.Observer.Closed).Upstream);
    }
}
