using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Tests.Routing;

/// <summary>Endpoint state (ejection, connection counts, counters) across <see cref="RouteTableSource.Update"/>.</summary>
public sealed class EndpointStateCarryOverTests
{
    private static UpstreamEndpoint Endpoint(int port, int weight = 1) => new(new IPEndPoint(IPAddress.Loopback, port), weight);

    private static RouteTable Table(string cluster, params int[] ports)
        => RouteTable.Create([new Route("web.default.dc1.internal.td.consul", new UpstreamCluster(cluster, ports.Select(p => Endpoint(p))))]);

    /// <summary>Fails the endpoint's connects until it is ejected (Envoy's default: 5 in a row).</summary>
    private static void FailUntilEjected(UpstreamCluster cluster, int index, TimeProvider time)
    {
        for (int i = 0; i < OutlierDetection.DefaultConsecutiveFailures; i++)
        {
            Assert.False(cluster.IsEjected(index, time));
            cluster.OnConnectFailed(index, time.GetTimestamp(), time.TimestampFrequency);
        }

        Assert.True(cluster.IsEjected(index, time));
    }

    private static UpstreamCluster Cluster(RouteTableSource source) => source.Current.Routes[0].Cluster;

    private static int IndexOf(UpstreamCluster cluster, int port)
    {
        for (int i = 0; i < cluster.Endpoints.Count; i++)
        {
            if (cluster.Endpoints[i].Port == port)
            {
                return i;
            }
        }

        return -1;
    }

    [Fact]
    public void Update_EjectedEndpoint_EjectionHoldsAcrossSwapsUntilItEnds()
    {
        var time = new FakeTimeProvider();
        var source = new RouteTableSource(Table("web", 1, 2));
        FailUntilEjected(Cluster(source), 0, time);

        // Two swaps, each a fresh table whose endpoint order differs.
        source.Update(Table("web", 3, 2, 1));
        time.Advance(TimeSpan.FromSeconds(10));
        source.Update(Table("web", 2, 1, 3));
        UpstreamCluster cluster = Cluster(source);
        int ejected = IndexOf(cluster, 1);
        Assert.True(cluster.IsEjected(ejected, time));
        Assert.Equal(5, cluster.GetState(ejected).ConnectFailures);
        Assert.Equal(1, cluster.GetState(ejected).Ejections);
        for (int i = 0; i < 300; i++)
        {
            Assert.NotEqual(ejected, cluster.Select([], time.GetTimestamp(), out bool panic));
            Assert.False(panic);
        }

        time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(cluster.IsEjected(ejected, time));
    }

    [Fact]
    public void Update_OpenConnections_CountCarriesOverAndReturnsToZero()
    {
        var source = new RouteTableSource(Table("web", 1, 2));
        UpstreamCluster old = Cluster(source);
        EndpointState[] held = [old.OnConnected(0), old.OnConnected(0), old.OnConnected(1)];

        source.Update(Table("web", 2, 1));
        UpstreamCluster current = Cluster(source);
        Assert.Equal(2, current.GetActiveConnections(IndexOf(current, 1)));
        Assert.Equal(1, current.GetActiveConnections(IndexOf(current, 2)));
        Assert.Equal(2, current.GetState(IndexOf(current, 1)).Connections);

        // New connections prefer the less loaded endpoint, counting the ones opened on the old table.
        Assert.Equal(IndexOf(current, 2), current.Select([], 0, out _));
        EndpointState fresh = current.OnConnected(IndexOf(current, 2));

        // Connections from the old table end after the swap: they release the shared state.
        foreach (EndpointState state in held)
        {
            state.OnDisconnected();
        }

        Assert.Equal(0, current.GetActiveConnections(IndexOf(current, 1)));
        Assert.Equal(1, current.GetActiveConnections(IndexOf(current, 2)));
        fresh.OnDisconnected();
        Assert.Equal(0, current.GetActiveConnections(IndexOf(current, 2)));
        Assert.Equal(0, old.GetActiveConnections(0));
    }

    [Fact]
    public void Update_RemovedEndpoint_StateNotAdoptedByAnyOtherEndpoint()
    {
        var time = new FakeTimeProvider();
        var source = new RouteTableSource(Table("web", 1));
        EndpointState removed = Cluster(source).OnConnected(0);
        FailUntilEjected(Cluster(source), 0, time);

        // Another port, and the same address under another cluster name: both start fresh.
        source.Update(RouteTable.Create([
            new Route("a.td.consul", new UpstreamCluster("web", [Endpoint(2)])),
            new Route("b.td.consul", new UpstreamCluster("api", [Endpoint(1)])),
        ]));
        foreach (Route route in source.Current.Routes)
        {
            Assert.NotSame(removed, route.Cluster.GetState(0));
            Assert.Equal(0, route.Cluster.GetActiveConnections(0));
            Assert.False(route.Cluster.IsEjected(0, time));
        }

        // The endpoint comes back after a table without it: it starts fresh too, and the old connection's end does not touch it.
        source.Update(Table("web", 1));
        Assert.NotSame(removed, Cluster(source).GetState(0));
        removed.OnDisconnected();
        Assert.Equal(0, removed.ActiveConnections);
        Assert.Equal(0, Cluster(source).GetActiveConnections(0));
        Assert.False(Cluster(source).IsEjected(0, time));
    }

    [Fact]
    public void Update_TwoClustersWithOneName_ShareEndpointStates()
    {
        var source = new RouteTableSource();
        source.Update(RouteTable.Create([
            new Route("a.td.consul", new UpstreamCluster("gateways.dc2", [Endpoint(1)])),
            new Route("*.dc2.td.consul", new UpstreamCluster("gateways.dc2", [Endpoint(1), Endpoint(2)])),
        ]));
        IReadOnlyList<Route> routes = source.Current.Routes;
        Assert.Same(routes[0].Cluster.GetState(0), routes[1].Cluster.GetState(0));
        Assert.NotSame(routes[1].Cluster.GetState(0), routes[1].Cluster.GetState(1));
    }

    [Fact]
    public void Update_SameTableAgain_KeepsItsStates()
    {
        RouteTable table = Table("web", 1);
        var source = new RouteTableSource(table);
        EndpointState state = Cluster(source).OnConnected(0);
        source.Update(table);
        source.Update(RouteTable.Create([new Route("other.td.consul", table.Routes[0].Cluster)]));
        Assert.Same(state, Cluster(source).GetState(0));
        Assert.Equal(1, Cluster(source).GetActiveConnections(0));
    }

    [Property]
    public Property Update_RandomSwapsConnectsAndDisconnects_CountsNeverNegativeAndEqualOpenConnections()
    {
        // Operations: 0 = swap to the endpoint subset given by the mask (of ports 1-4, under cluster names x and y),
        // 1 = connect to the n-th endpoint of the current table, 2 = close the n-th open connection.
        Gen<(int Kind, int Value)> op = Gen.Zip(Gen.Choose(0, 2), Gen.Choose(0, 255)).Select(t => (t.Item1, t.Item2));
        return Prop.ForAll(op.ArrayOf().ToArbitrary(), ops =>
        {
            var source = new RouteTableSource();
            var open = new List<(EndpointState State, string Key, int Generation)>();
            var generation = new Dictionary<string, int>();
            var present = new HashSet<string>();
            var counted = new HashSet<EndpointState>(ReferenceEqualityComparer.Instance);
            foreach ((int kind, int value) in ops)
            {
                if (kind == 0)
                {
                    var routes = new List<Route>();
                    var now = new HashSet<string>();
                    foreach (string name in new[] { "x", "y" })
                    {
                        int mask = name == "x" ? value & 15 : value >> 4;
                        var endpoints = Enumerable.Range(1, 4).Where(p => (mask & (1 << (p - 1))) != 0).Select(p => Endpoint(p)).ToArray();
                        routes.Add(new Route(name + ".td.consul", new UpstreamCluster(name, endpoints)));
                        now.UnionWith(endpoints.Select(e => name + "/" + e.Key));
                    }

                    foreach (string gone in present.Except(now))
                    {
                        generation[gone] = generation.GetValueOrDefault(gone) + 1;
                    }

                    present = now;
                    source.Update(RouteTable.Create(routes));
                }
                else if (kind == 1)
                {
                    var all = source.Current.Routes.SelectMany(r => Enumerable.Range(0, r.Cluster.Endpoints.Count).Select(i => (r.Cluster, i))).ToArray();
                    if (all.Length > 0)
                    {
                        (UpstreamCluster cluster, int index) = all[value % all.Length];
                        string key = cluster.Name + "/" + cluster.Endpoints[index].Key;
                        EndpointState state = cluster.OnConnected(index);
                        counted.Add(state);
                        open.Add((state, key, generation.GetValueOrDefault(key)));
                    }
                }
                else if (open.Count > 0)
                {
                    int n = value % open.Count;
                    open[n].State.OnDisconnected();
                    open.RemoveAt(n);
                }

                // Every state ever counted on is never negative and equals the connections holding it.
                foreach (EndpointState state in counted)
                {
                    if (state.ActiveConnections < 0 || state.ActiveConnections != open.Count(o => ReferenceEquals(o.State, state)))
                    {
                        return false;
                    }
                }

                // Each endpoint of the current table counts exactly the open connections made while it was continuously present.
                foreach (Route route in source.Current.Routes)
                {
                    for (int i = 0; i < route.Cluster.Endpoints.Count; i++)
                    {
                        string key = route.Cluster.Name + "/" + route.Cluster.Endpoints[i].Key;
                        int expected = open.Count(o => o.Key == key && o.Generation == generation.GetValueOrDefault(key));
                        if (route.Cluster.GetActiveConnections(i) != expected)
                        {
                            return false;
                        }
                    }
                }
            }

            return true;
        });
    }
}
