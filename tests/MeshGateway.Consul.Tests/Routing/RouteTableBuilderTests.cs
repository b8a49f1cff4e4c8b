using System.Collections.Immutable;
using System.Net;
using MeshGateway.Model;
using MeshGateway.Routing;
using static MeshGateway.Consul.Tests.Routing.SubsetFilterTests;

namespace MeshGateway.Consul.Tests.Routing;

public sealed class RouteTableBuilderTests
{
    internal const string Td = "11111111-2222-3333-4444-555555555555.consul";

    internal static ConsulCatalogView View(IEnumerable<ConsulServiceView>? services = null, IDictionary<string, CatalogServiceInstance[]>? remote = null, string dc = "dc1") => new()
    {
        TrustDomain = Td,
        Datacenter = dc,
        Datacenters = ["dc1", "dc2", "dc3"],
        Services = (services ?? []).ToImmutableSortedDictionary(s => s.Name, s => s, StringComparer.Ordinal),
        LocalGateways = [],
        RemoteGateways = (remote ?? new Dictionary<string, CatalogServiceInstance[]>()).ToImmutableSortedDictionary(p => p.Key, p => p.Value.ToImmutableArray(), StringComparer.Ordinal),
    };

    internal static ConsulServiceView Service(string name, ConsulResolverView? resolver = null, params CatalogServiceInstance[] instances) =>
        new() { Name = name, Instances = [.. instances], Resolver = resolver };

    private static Route Match(RouteTable table, string sni)
    {
        Assert.True(table.TryMatch(sni.AsSpan(), out Route? route), $"no route for {sni}; routes: {string.Join(", ", table.Routes)}");
        return route;
    }

    [Fact]
    public void Convert_LocalService_ExactForm1RouteWithLanEndpointsHealthAndWeight()
    {
        ConsulCatalogView view = View([Service("api", null,
            Instance("a1", address: "10.0.0.1", port: 21000, weight: 5),
            Instance("a2", address: "10.0.0.2", port: 21000, healthy: false, status: CatalogHealthStatus.Critical))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Assert.Empty(result.Warnings);
        Route route = Match(result.Table, $"api.default.dc1.internal.{Td}");
        Assert.Equal(RouteKind.Exact, route.Kind);
        Assert.Equal($"api.default.dc1.internal.{Td}", route.Cluster.Name);
        Assert.Equal(UpstreamCluster.DefaultConnectTimeout, route.Cluster.ConnectTimeout);
        Assert.Equal(
            [(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 21000), 5, true), (new IPEndPoint(IPAddress.Parse("10.0.0.2"), 21000), 1, false)],
            route.Cluster.Endpoints.Select(e => (e.EndPoint, e.Weight, e.IsHealthy)).ToArray());
        Assert.Equal(1, result.Table.ExactCount);
        Assert.Equal(0, result.Table.WildcardCount);
        Assert.False(result.Table.TryMatch($"web.default.dc1.internal.{Td}".AsSpan(), out _));
        Assert.False(result.Table.TryMatch($"x.api.default.dc1.internal.{Td}".AsSpan(), out _)); // no wildcard for the local DC
    }

    [Fact]
    public void Convert_ResolverSubsets_Form2RoutesFilteredOnlyPassingAndTimeout()
    {
        var resolver = new ConsulResolverView
        {
            ConnectTimeout = TimeSpan.FromSeconds(3),
            Subsets = new Dictionary<string, ConsulSubsetView>
            {
                ["v1"] = new("Service.Meta.version == v1", false),
                ["v2"] = new("Service.Meta.version == v2", true),
            }.ToImmutableSortedDictionary(StringComparer.Ordinal),
        };
        ConsulCatalogView view = View([Service("api", resolver,
            Instance("a1", new Dictionary<string, string> { ["version"] = "v1" }, address: "10.0.0.1", status: CatalogHealthStatus.Warning, weight: 2),
            Instance("a2", new Dictionary<string, string> { ["version"] = "v2" }, address: "10.0.0.2", status: CatalogHealthStatus.Warning, weight: 2),
            Instance("a3", new Dictionary<string, string> { ["version"] = "v2" }, address: "10.0.0.3"))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { ConnectTimeout = TimeSpan.FromSeconds(9) });

        Assert.True(result.Succeeded, result.Error);
        Route all = Match(result.Table, $"api.default.dc1.internal.{Td}");
        Route v1 = Match(result.Table, $"v1.api.default.dc1.internal.{Td}");
        Route v2 = Match(result.Table, $"V2.API.default.dc1.internal.{Td}");
        Assert.Equal(3, all.Cluster.Endpoints.Count);
        Assert.Equal([("10.0.0.1", true)], v1.Cluster.Endpoints.Select(e => (e.EndPoint!.Address.ToString(), e.IsHealthy)).ToArray());
        Assert.Equal([("10.0.0.2", false, 2), ("10.0.0.3", true, 1)], v2.Cluster.Endpoints.Select(e => (e.EndPoint!.Address.ToString(), e.IsHealthy, e.Weight)).ToArray());
        Assert.All([all, v1, v2], r => Assert.Equal(TimeSpan.FromSeconds(3), r.Cluster.ConnectTimeout));
        Assert.Equal($"v2.api.default.dc1.internal.{Td}", v2.Cluster.Name);
    }

    [Fact]
    public void Convert_DefaultSubset_UnnamedClusterUsesThatSubset()
    {
        var resolver = new ConsulResolverView
        {
            DefaultSubset = "v2",
            Subsets = new Dictionary<string, ConsulSubsetView> { ["v2"] = new("Service.Meta.version == v2", true) }.ToImmutableSortedDictionary(StringComparer.Ordinal),
        };
        ConsulCatalogView view = View([Service("api", resolver,
            Instance("a1", new Dictionary<string, string> { ["version"] = "v1" }, address: "10.0.0.1"),
            Instance("a2", new Dictionary<string, string> { ["version"] = "v2" }, address: "10.0.0.2", status: CatalogHealthStatus.Warning))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { ConnectTimeout = TimeSpan.FromMilliseconds(1234) });

        UpstreamEndpoint only = Assert.Single(Match(result.Table!, $"api.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Equal(("10.0.0.2", false), (only.EndPoint!.Address.ToString(), only.IsHealthy)); // OnlyPassing of the default subset applies
        Assert.Equal(TimeSpan.FromMilliseconds(1234), Match(result.Table!, $"api.default.dc1.internal.{Td}").Cluster.ConnectTimeout);
    }

    [Fact]
    public void Convert_BadSubsetFilter_ReportedAndOnlyThatSubsetLeftOut()
    {
        var resolver = new ConsulResolverView
        {
            DefaultSubset = "bad",
            Subsets = new Dictionary<string, ConsulSubsetView>
            {
                ["bad"] = new("Service.Meta.version matches \"v.*\"", false),
                ["ok"] = new("Service.Tags contains canary", false),
            }.ToImmutableSortedDictionary(StringComparer.Ordinal),
        };
        ConsulCatalogView view = View([Service("api", resolver, Instance("a1", tags: ["canary"]))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Assert.False(result.Table.TryMatch($"bad.api.default.dc1.internal.{Td}".AsSpan(), out _));
        Assert.Single(Match(result.Table, $"ok.api.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Empty(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.Endpoints); // fails closed: DefaultSubset unusable
        string warning = Assert.Single(result.Warnings);
        Assert.Contains("Subset 'bad' of service 'api'", warning, StringComparison.Ordinal);
        Assert.Contains("'matches'", warning, StringComparison.Ordinal);
        Assert.Contains("DefaultSubset", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Convert_DefaultSubsetNotDefined_UnnamedKeepsEveryInstanceAndWarns()
    {
        var resolver = new ConsulResolverView { DefaultSubset = "nope", Subsets = ImmutableSortedDictionary<string, ConsulSubsetView>.Empty };
        ConsulCatalogView view = View([Service("api", resolver, Instance("a1"), Instance("a2", address: "10.0.0.2"))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.Equal(2, Match(result.Table!, $"api.default.dc1.internal.{Td}").Cluster.Endpoints.Count);
        Assert.Contains("DefaultSubset 'nope'", Assert.Single(result.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Convert_RemoteGateways_WildcardAndExactGatewayRoutePerDatacenterWithWanAddresses()
    {
        ConsulCatalogView view = View(
            [Service("api", null, Instance("a1"))],
            new Dictionary<string, CatalogServiceInstance[]>
            {
                ["dc2"] = [Instance("gw-a", address: "198.51.100.5", port: 443, dc: "dc2"), Instance("gw-b", address: "198.51.100.6", port: 443, weight: 3, dc: "dc2")],
                ["dc3"] = [Instance("gw-c", address: "2001:db8::7", port: 8443, dc: "dc3")],
                ["dc1"] = [Instance("self", address: "10.9.9.9", port: 1)], // defensive: never a wildcard for the local DC
            });

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(2, result.Table.WildcardCount);
        Route viaWildcard = Match(result.Table, $"v2.web.default.dc2.internal.{Td}");
        Route exact = Match(result.Table, $"dc2.internal.{Td}");
        Assert.Equal(RouteKind.Wildcard, viaWildcard.Kind);
        Assert.Equal($"*.dc2.internal.{Td}", viaWildcard.Pattern);
        Assert.Equal(RouteKind.Exact, exact.Kind);
        Assert.Same(viaWildcard.Cluster, exact.Cluster);
        Assert.Equal($"dc2.internal.{Td}", exact.Cluster.Name);
        Assert.Equal(["198.51.100.5:443", "198.51.100.6:443"], exact.Cluster.Endpoints.Select(e => e.Key).ToArray());
        Assert.Equal("[2001:db8::7]:8443", Assert.Single(Match(result.Table, $"api.default.dc3.internal.{Td}").Cluster.Endpoints).Key);
        Assert.False(result.Table.TryMatch($"x.default.dc1.internal.{Td}".AsSpan(), out _));
        Assert.False(result.Table.TryMatch($"dc1.internal.{Td}".AsSpan(), out _));
        Assert.False(result.Table.TryMatch($"api.default.dc4.internal.{Td}".AsSpan(), out _)); // DC without gateways: no route
    }

    [Fact]
    public void Convert_HostNameGateway_BecomesHostNameEndpoint()
    {
        ConsulCatalogView view = View(
            [Service("api", null, Instance("a1", address: "API.internal.example", port: 80, weight: 3))],
            new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [Instance("gw", address: "gw.dc2.example.com", port: 443)] });

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Assert.Empty(result.Warnings);
        UpstreamEndpoint api = Assert.Single(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Equal(("api.internal.example", 80, 3, (IPEndPoint?)null), (api.HostName, api.Port, api.Weight, api.EndPoint));
        UpstreamEndpoint gateway = Assert.Single(Match(result.Table, $"dc2.internal.{Td}").Cluster.Endpoints);
        Assert.Equal("gw.dc2.example.com:443", gateway.Key);
        Assert.True(Match(result.Table, $"dc2.internal.{Td}").Cluster.HasHostNames);
    }

    [Fact]
    public void Convert_HostNamesMixedWithIPs_OnlyFirstHealthyHostNameUsedWithWarnings()
    {
        ConsulCatalogView view = View(
        [
            Service(
                "api",
                null,
                Instance("a0", address: "10.0.0.1"),
                Instance("a1", address: "down.example", healthy: false),
                Instance("a2", address: "up.example"),
                Instance("a3", address: "later.example"),
                Instance("a4", port: 0),
                Instance("a5", address: "bad_host!.example")),
            Service("web", null, Instance("w1", address: "first-down.example", healthy: false), Instance("w2", address: "last-down.example", healthy: false)),
        ]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        UpstreamEndpoint api = Assert.Single(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Equal(("up.example", true), (api.HostName, api.IsHealthy));
        UpstreamEndpoint web = Assert.Single(Match(result.Table, $"web.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Equal(("last-down.example", false), (web.HostName, web.IsHealthy)); // no healthy one: the last unhealthy one
        Assert.Contains(result.Warnings, w => w.Contains("mixes host names and IP addresses", StringComparison.Ordinal) && w.Contains("1 IP endpoints", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("only 'up.example:8080' is used", StringComparison.Ordinal) && w.Contains("2 others", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("port 0", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("'bad_host!.example' is not a DNS host name", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("only 'last-down.example:8080' is used", StringComparison.Ordinal));
        Assert.Equal(5, result.Warnings.Length);
    }

    [Fact]
    public void Convert_EmptyNodeWanTag_TakenAsIsForRemoteGatewaysLikeConsul()
    {
        // docs/consul-behaviour.md §4: Node.BestAddress(wan) returns the node's wan tag whenever the key exists, even when it is empty;
        // only the LAN view falls back to Node.Address. The same node serves a local service and a dc2 gateway here.
        CatalogServiceInstance local = Instance("a1", address: "", port: 21000, nodeAddress: "10.0.0.9", nodeWan: "");
        CatalogServiceInstance gateway = Instance("gw", address: "", port: 443, dc: "dc2", nodeAddress: "10.0.0.9", nodeWan: "");
        CatalogServiceInstance withWan = Instance("gw-2", address: "", port: 443, dc: "dc2", node: "n2", nodeAddress: "10.0.0.8", nodeWan: "198.51.100.8");
        ConsulCatalogView view = View([Service("api", null, local)], new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [gateway, withWan] });

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("10.0.0.9:21000", Assert.Single(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.Endpoints).EndPoint!.ToString());
        Assert.Equal("198.51.100.8:443", Assert.Single(Match(result.Table, $"dc2.internal.{Td}").Cluster.Endpoints).EndPoint!.ToString());
        string warning = Assert.Single(result.Warnings);
        Assert.Contains("Endpoint 'gw' on node 'n1'", warning, StringComparison.Ordinal);
        Assert.Contains("was left out", warning, StringComparison.Ordinal);
    }

    // One best-address routine: the gateway's route table (remote gateways) and the sidecar planner (mode remote) dial the
    // same address and port for a gateway with an empty service wan tag, as hashicorp/consul agent/structs/structs.go
    // CheckServiceNode.BestAddress does (empty service wan address falls to the node: its wan tag, else Node.Address; the
    // tag's non-zero port is kept).
    [Theory]
    [InlineData(null, "10.2.0.9:8443")]
    [InlineData("198.51.100.9", "198.51.100.9:8443")]
    public void Convert_EmptyServiceWanTag_SameEndpointAsTheUpstreamPlanner(string? nodeWan, string expected)
    {
        CatalogServiceInstance gateway = Instance("gw", address: "10.2.0.5", port: 443, dc: "dc2", nodeAddress: "10.2.0.9", nodeWan: nodeWan, serviceWan: new CatalogTaggedAddress("", 8443));
        ConsulCatalogView view = View(remote: new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [gateway] });

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);
        UpstreamTarget planned = UpstreamTargetPlanner.Plan(
            new UpstreamTargetRequest { CallerDatacenter = "dc1", TrustDomain = Td, Upstream = new MeshUpstream { Name = "api", Datacenter = "dc2" }, Mode = MeshGatewayMode.Remote },
            new MeshCatalogView
            {
                TargetInstances = [Instance("a1", dc: "dc2")],
                RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [new GatewayKey("dc2")] = [gateway] },
            });

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(expected, Assert.Single(Match(result.Table, $"dc2.internal.{Td}").Cluster.Endpoints).EndPoint!.ToString());
        UpstreamDialEndpoint dialled = Assert.Single(planned.Endpoints);
        Assert.Equal(expected, dialled.Address + ":" + dialled.Port);
    }

    [Fact]
    public void Convert_WeightAboveMaximum_ClampedToMaxWeight()
    {
        ConsulCatalogView view = View([Service("api", null, Instance("a1", address: "10.0.0.9", port: 20000, weight: 1000))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        UpstreamEndpoint only = Assert.Single(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.Endpoints);
        Assert.Equal(UpstreamEndpoint.MaxWeight, only.Weight);
    }

    [Fact]
    public void Convert_MaxConnectAttemptsOption_AppliedToLocalAndRemoteClusters()
    {
        ConsulCatalogView view = View(
            [Service("api", null, Instance("a1"))],
            new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [Instance("gw", address: "203.0.113.9", port: 443, dc: "dc2")] });

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { MaxConnectAttempts = 5, ConnectTimeout = TimeSpan.FromSeconds(2) });

        Assert.True(result.Succeeded, result.Error);
        Assert.All(result.Table.Routes, r => Assert.Equal((5, TimeSpan.FromSeconds(2)), (r.Cluster.MaxConnectAttempts, r.Cluster.ConnectTimeout)));
        Assert.Equal(3, result.Table.Routes.Count); // api exact, dc2 wildcard, dc2 exact gateway cluster
    }

    [Fact]
    public void Convert_OutlierDetectionAndRemoteKeepAlive_KeepAliveOnlyOnRemoteGatewayClusters()
    {
        ConsulCatalogView view = View(
            [Service("api", null, Instance("a1"))],
            new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [Instance("gw", address: "203.0.113.9", port: 443, dc: "dc2")] });
        var keepAlive = new TcpKeepAlive { Time = 120, Interval = 60, Probes = 7 };
        OutlierDetection detection = OutlierDetection.Default with { ConsecutiveFailures = 2 };

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { OutlierDetection = detection, RemoteGatewayTcpKeepAlive = keepAlive });

        Assert.True(result.Succeeded, result.Error);
        Assert.All(result.Table.Routes, r => Assert.Same(detection, r.Cluster.OutlierDetection));
        Assert.Null(Match(result.Table, $"api.default.dc1.internal.{Td}").Cluster.TcpKeepAlive);
        Assert.Equal(2, result.Table.Routes.Count(r => ReferenceEquals(r.Cluster.TcpKeepAlive, keepAlive)));
    }

    [Fact]
    public void Convert_SameView_EqualRoutes()
    {
        ConsulCatalogView view = View([Service("b", null, Instance("b1")), Service("a", null, Instance("a1"))],
            new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [Instance("gw", address: "192.0.2.1", port: 443)] });

        string[] first = [.. ConsulRouteTableBuilder.Convert(view).Table!.Routes.Select(r => r.ToString())];
        string[] second = [.. ConsulRouteTableBuilder.Convert(view).Table!.Routes.Select(r => r.ToString())];

        Assert.Equal(first, second);
        Assert.Equal(4, first.Length);
    }

    [Fact]
    public void Convert_EmptyTrustDomain_FailsWithReason()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(View() with { TrustDomain = string.Empty });

        Assert.False(result.Succeeded);
        Assert.Contains("trust domain", result.Error, StringComparison.Ordinal);
    }
}
