using MeshGateway.Model;
using static MeshGateway.Tests.Model.ConsulSniNameTests;

namespace MeshGateway.Tests.Model;

/// <summary>Every row of the table of docs/consul-behaviour.md §5.2, plus the error cases.</summary>
public sealed class UpstreamTargetPlannerTests
{
    private const string PeerSni = "api.default.default.cluster-02.external." + TD2;

    private static CatalogServiceInstance Instance(string id, string dc, string lan, string? wan, int port = 20000, string? partition = null, string? peer = null, string[]? peerSni = null, params CatalogHealthStatus[] checks)
    {
        var tags = new Dictionary<string, CatalogTaggedAddress>(StringComparer.Ordinal);
        if (wan is not null)
        {
            tags["wan"] = new CatalogTaggedAddress(wan, 443);
        }

        return new CatalogServiceInstance
        {
            Node = new CatalogNode { Name = "node-" + id, Address = lan, Datacenter = dc, Partition = partition },
            Service = new CatalogService
            {
                Id = id, Name = "svc", Address = lan, Port = port, TaggedAddresses = tags, Partition = partition,
                PeerName = peer, PeerSni = peerSni ?? [],
            },
            Checks = checks,
        };
    }

    private static readonly CatalogServiceInstance[] s_dc2Instances =
    [
        Instance("api-1", "dc2", "10.2.0.1", "198.51.100.1"),
        Instance("api-2", "dc2", "10.2.0.2", null, checks: CatalogHealthStatus.Critical),
    ];

    private static readonly CatalogServiceInstance[] s_dc1Instances = [Instance("api-1", "dc1", "10.1.0.1", "198.51.100.11")];

    private static readonly CatalogServiceInstance[] s_localGateways =
    [
        Instance("mgw-a", "dc1", "10.1.0.100", "203.0.113.1", 8443),
        Instance("mgw-b", "dc1", "10.1.0.101", "203.0.113.2", 8443, checks: CatalogHealthStatus.Critical),
    ];

    private static readonly CatalogServiceInstance[] s_dc2Gateways = [Instance("mgw-dc2", "dc2", "10.2.0.100", "203.0.113.20", 8443)];

    private static readonly CatalogServiceInstance[] s_peerInstances =
    [
        Instance("mgw-exp-1", "dc-exp", "10.9.0.1", "192.0.2.1", 8443, peer: "cluster-02", peerSni: [PeerSni]),
        Instance("mgw-exp-2", "dc-exp", "10.9.0.2", null, 8443, peer: "cluster-02", peerSni: [PeerSni]),
    ];

    private static MeshCatalogView Catalog(IReadOnlyList<CatalogServiceInstance> targets, bool localGateways = true, bool dc2Gateways = true) => new()
    {
        TargetInstances = targets,
        LocalGateways = localGateways ? s_localGateways : [],
        RemoteGateways = dc2Gateways
            ? new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [new GatewayKey("dc2")] = s_dc2Gateways, [new GatewayKey("dc3")] = [Instance("mgw-dc3", "dc3", "10.3.0.1", "203.0.113.30")] }
            : new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [new GatewayKey("dc3")] = [Instance("mgw-dc3", "dc3", "10.3.0.1", "203.0.113.30")] },
    };

    private static UpstreamTarget Plan(string mode, MeshUpstream upstream, MeshCatalogView catalog, string? callerPartition = null, bool onlyPassing = false) =>
        UpstreamTargetPlanner.Plan(
            new UpstreamTargetRequest
            {
                CallerDatacenter = "dc1",
                CallerPartition = callerPartition,
                TrustDomain = TD,
                Upstream = upstream,
                Mode = MeshGatewayMode.FromConsul(mode),
                OnlyPassing = onlyPassing,
            },
            catalog);

    private static MeshUpstream Api(string? dc = null, string? peer = null, string? partition = null, string? subset = null) =>
        new() { Name = "api", Datacenter = dc, Peer = peer, Partition = partition, Subset = subset };

    private static string[] Addresses(UpstreamTarget target) => [.. target.Endpoints.Select(e => $"{e.Address}:{e.Port}")];

    [Theory]
    [InlineData("")]
    [InlineData("none")]
    [InlineData("local")]
    [InlineData("remote")]
    [InlineData("bogus")]
    public void Plan_SameDatacenterAndPartition_AnyMode_InstancesAtLan(string mode)
    {
        foreach (string? dc in new[] { null, "dc1" })
        {
            UpstreamTarget target = Plan(mode, Api(dc), Catalog(s_dc1Instances));
            Assert.Equal(UpstreamDialKind.TargetInstances, target.DialKind);
            Assert.True(target.ModeIgnored);
            Assert.False(target.UsesWanAddresses);
            Assert.Equal(["10.1.0.1:20000"], Addresses(target));
            Assert.Equal($"api.default.dc1.internal.{TD}", target.Sni);
            Assert.Contains("ignored", target.Explanation, StringComparison.Ordinal);
            Assert.Equal(mode == "bogus", target.UnknownMode);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("none")]
    public void Plan_OtherDatacenter_UnsetOrNone_InstancesDirectAtWan(string mode)
    {
        UpstreamTarget target = Plan(mode, Api("dc2"), Catalog(s_dc2Instances));
        Assert.Equal(UpstreamDialKind.TargetInstances, target.DialKind);
        Assert.Equal(MeshGatewayModeKind.None, target.AppliedMode);
        Assert.False(target.ModeIgnored);
        Assert.True(target.UsesWanAddresses);
        // api-2 has no wan tag: its service address is used (docs/consul-behaviour.md §4).
        Assert.Equal(["198.51.100.1:443", "10.2.0.2:20000"], Addresses(target));
        Assert.Equal([true, false], target.Endpoints.Select(e => e.Healthy));
        Assert.Equal($"api.default.dc2.internal.{TD}", target.Sni);
    }

    [Fact]
    public void Plan_OtherDatacenter_Local_LocalGatewaysAtLanWithAggregateHealth()
    {
        UpstreamTarget target = Plan("local", Api("dc2"), Catalog(s_dc2Instances));
        Assert.Equal(UpstreamDialKind.LocalGateways, target.DialKind);
        Assert.Equal(MeshGatewayModeKind.Local, target.AppliedMode);
        Assert.False(target.UsesWanAddresses);
        Assert.Equal(["10.1.0.100:8443", "10.1.0.101:8443"], Addresses(target));
        // The critical gateway is still healthy: gateway endpoints take the aggregate health of the real targets.
        Assert.All(target.Endpoints, e => Assert.True(e.Healthy));
        Assert.Equal($"api.default.dc2.internal.{TD}", target.Sni);
    }

    [Fact]
    public void Plan_OtherDatacenter_Remote_TargetGatewaysAtWan()
    {
        UpstreamTarget target = Plan("remote", Api("dc2"), Catalog(s_dc2Instances));
        Assert.Equal(UpstreamDialKind.TargetGateways, target.DialKind);
        Assert.Equal(MeshGatewayModeKind.Remote, target.AppliedMode);
        Assert.True(target.UsesWanAddresses);
        Assert.Equal(["203.0.113.20:443"], Addresses(target));
        Assert.Equal($"api.default.dc2.internal.{TD}", target.Sni);
        Assert.Equal("mgw-dc2", target.Endpoints[0].ServiceId);
        Assert.Equal(BestAddressSource.ServiceWanTaggedAddress, target.Endpoints[0].AddressSource);
    }

    [Theory]
    [InlineData("local")]
    [InlineData("remote")]
    public void Plan_ThroughGateways_NoHealthyTarget_EveryGatewayUnhealthy(string mode)
    {
        CatalogServiceInstance[] allCritical = [Instance("api-1", "dc2", "10.2.0.1", null, checks: CatalogHealthStatus.Critical)];
        UpstreamTarget target = Plan(mode, Api("dc2"), Catalog(allCritical));
        Assert.True(target.IsRoutable);
        Assert.All(target.Endpoints, e => Assert.False(e.Healthy));
        Assert.Contains("unhealthy", target.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_ThroughGateways_OnlyPassing_WarningTargetsCountAsUnhealthy()
    {
        CatalogServiceInstance[] warning = [Instance("api-1", "dc2", "10.2.0.1", null, checks: CatalogHealthStatus.Warning)];
        Assert.All(Plan("remote", Api("dc2"), Catalog(warning), onlyPassing: false).Endpoints, e => Assert.True(e.Healthy));
        Assert.All(Plan("remote", Api("dc2"), Catalog(warning), onlyPassing: true).Endpoints, e => Assert.False(e.Healthy));
    }

    [Fact]
    public void Plan_OtherPartitionSameDatacenter_IsRemoteWithPartitionSni()
    {
        var catalog = Catalog(s_dc1Instances) with
        {
            RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>
            {
                [new GatewayKey("dc1", "part1")] = [Instance("mgw-p1", "dc1", "10.1.5.1", "203.0.113.51", partition: "part1")],
            },
        };
        UpstreamTarget target = Plan("remote", Api(partition: "part1", subset: "v2"), catalog);
        Assert.Equal(UpstreamDialKind.TargetGateways, target.DialKind);
        Assert.False(target.ModeIgnored);
        Assert.Equal(["203.0.113.51:443"], Addresses(target));
        Assert.Equal($"v2.api.default.part1.dc1.internal-v1.{TD}", target.Sni);

        UpstreamTarget sameNamedPartition = Plan("remote", Api(partition: "part1"), catalog, callerPartition: "part1");
        Assert.True(sameNamedPartition.ModeIgnored);
        Assert.Equal(UpstreamDialKind.TargetInstances, sameNamedPartition.DialKind);
    }

    [Fact]
    public void Plan_OtherDatacenter_Subset_SniForm2()
    {
        Assert.Equal($"v2.api.default.dc2.internal.{TD}", Plan("", Api("dc2", subset: "v2"), Catalog(s_dc2Instances)).Sni);
    }

    [Fact]
    public void Plan_OtherDatacenter_UnknownMode_ActsAsNoneAndIsFlagged()
    {
        UpstreamTarget target = Plan("LOCAL", Api("dc2"), Catalog(s_dc2Instances));
        Assert.Equal(UpstreamDialKind.TargetInstances, target.DialKind);
        Assert.True(target.UnknownMode);
        Assert.Contains("\"LOCAL\" acts as none", target.Explanation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("remote")]
    public void Plan_Peer_UnsetOrRemote_ImportedInstancesAtWanWithPeerSni(string mode)
    {
        UpstreamTarget target = Plan(mode, Api(peer: "cluster-02"), Catalog(s_peerInstances));
        Assert.Equal(UpstreamDialKind.PeerGateways, target.DialKind);
        Assert.Equal(MeshGatewayModeKind.Remote, target.AppliedMode);
        Assert.True(target.UsesWanAddresses);
        Assert.Equal(["192.0.2.1:443", "10.9.0.2:8443"], Addresses(target));
        Assert.Equal(PeerSni, target.Sni);
        Assert.False(target.NoneTreatedAsRemote);
    }

    [Fact]
    public void Plan_Peer_None_TreatedAsRemoteWithWarningFlag()
    {
        UpstreamTarget target = Plan("none", Api(peer: "cluster-02"), Catalog(s_peerInstances));
        Assert.Equal(UpstreamDialKind.PeerGateways, target.DialKind);
        Assert.Equal(MeshGatewayModeKind.Remote, target.AppliedMode);
        Assert.True(target.NoneTreatedAsRemote);
        Assert.Equal(PeerSni, target.Sni);
    }

    [Fact]
    public void Plan_Peer_Unknown_TreatedAsRemoteAndFlagged()
    {
        UpstreamTarget target = Plan("Local", Api(peer: "cluster-02"), Catalog(s_peerInstances));
        Assert.Equal(UpstreamDialKind.PeerGateways, target.DialKind);
        Assert.True(target.UnknownMode);
    }

    [Fact]
    public void Plan_Peer_Local_LocalGatewaysAtLanWithPeerSni()
    {
        UpstreamTarget target = Plan("local", Api(peer: "cluster-02"), Catalog(s_peerInstances));
        Assert.Equal(UpstreamDialKind.LocalGateways, target.DialKind);
        Assert.False(target.UsesWanAddresses);
        Assert.Equal(["10.1.0.100:8443", "10.1.0.101:8443"], Addresses(target));
        Assert.Equal([true, false], target.Endpoints.Select(e => e.Healthy));
        Assert.Equal(PeerSni, target.Sni);
    }

    [Fact]
    public void Plan_Local_NoLocalGateways_ErrorNotFallback()
    {
        UpstreamTarget target = Plan("local", Api("dc2"), Catalog(s_dc2Instances, localGateways: false));
        Assert.False(target.IsRoutable);
        Assert.Equal(UpstreamTargetError.NoLocalGateways, target.Error);
        Assert.Equal(UpstreamDialKind.Unroutable, target.DialKind);
        Assert.Empty(target.Endpoints);
        Assert.Contains("does not fall back", target.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_Remote_NoGatewaysInTargetDatacenter_ErrorNotFallback()
    {
        UpstreamTarget target = Plan("remote", Api("dc2"), Catalog(s_dc2Instances, dc2Gateways: false));
        Assert.Equal(UpstreamTargetError.NoTargetGateways, target.Error);
        Assert.Empty(target.Endpoints);
        Assert.Equal($"api.default.dc2.internal.{TD}", target.Sni);

        var emptyList = Catalog(s_dc2Instances) with
        {
            RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [new GatewayKey("dc2")] = [] },
        };
        Assert.Equal(UpstreamTargetError.NoTargetGateways, Plan("remote", Api("dc2"), emptyList).Error);
    }

    [Fact]
    public void Plan_Peer_Local_NoLocalGateways_Error()
    {
        Assert.Equal(UpstreamTargetError.NoLocalGateways, Plan("local", Api(peer: "cluster-02"), Catalog(s_peerInstances, localGateways: false)).Error);
    }

    [Theory]
    [InlineData("")]
    [InlineData("none")]
    public void Plan_Direct_NoInstances_Error(string mode)
    {
        Assert.Equal(UpstreamTargetError.NoTargetInstances, Plan(mode, Api("dc2"), Catalog([])).Error);
        UpstreamTarget local = Plan(mode, Api(), Catalog([]));
        Assert.Equal(UpstreamTargetError.NoTargetInstances, local.Error);
        Assert.True(local.ModeIgnored);
    }

    [Fact]
    public void Plan_Peer_NoPeerMeta_Error()
    {
        CatalogServiceInstance[] noMeta = [Instance("x", "dc-exp", "10.9.0.1", "192.0.2.1", peer: "cluster-02")];
        UpstreamTarget target = Plan("", Api(peer: "cluster-02"), Catalog(noMeta));
        Assert.Equal(UpstreamTargetError.NoPeerSni, target.Error);
        Assert.Null(target.Sni);
        Assert.Equal(UpstreamTargetError.NoPeerSni, Plan("none", Api(peer: "cluster-02"), Catalog([])).Error);
    }

    [Fact]
    public void Plan_PeerSni_FirstInstanceWithMetaWins()
    {
        CatalogServiceInstance[] mixed = [Instance("x", "dc-exp", "10.9.0.1", null, peer: "p", peerSni: [""]), .. s_peerInstances];
        Assert.Equal(PeerSni, Plan("", Api(peer: "p"), Catalog(mixed)).Sni);
    }

    // hashicorp/consul agent/connect/sni.go UpstreamSNI: DestinationType prepared_query gives QuerySNI(DestinationName,
    // upstream Datacenter or the caller's, trust domain); agent/xds/endpoints.go: prepared-query upstreams (no discovery
    // chain) get the query's result nodes directly, best address by node datacenter, whatever the mesh gateway mode.
    [Theory]
    [InlineData("")]
    [InlineData("local")]
    [InlineData("remote")]
    public void Plan_PreparedQuery_QuerySniAndResultInstancesDirectWhateverTheMode(string mode)
    {
        var query = new MeshUpstream { Name = "geo-api", DestinationType = UpstreamDestinationType.PreparedQuery };
        CatalogServiceInstance[] results = [.. s_dc1Instances, .. s_dc2Instances]; // a query can fail over to other datacenters
        UpstreamTarget target = Plan(mode, query, Catalog(results));
        Assert.Equal(UpstreamDialKind.TargetInstances, target.DialKind);
        Assert.Equal($"geo-api.default.dc1.query.{TD}", target.Sni);
        Assert.True(target.ModeIgnored);
        Assert.Equal(MeshGatewayModeKind.None, target.AppliedMode);
        Assert.Equal(["10.1.0.1:20000", "198.51.100.1:443", "10.2.0.2:20000"], Addresses(target));
        Assert.True(target.UsesWanAddresses);
        Assert.Equal(ConsulSniKind.PreparedQuery, ConsulSniName.Parse(target.Sni!, TD).Kind);
    }

    [Fact]
    public void Plan_PreparedQuery_UpstreamDatacenterNamesTheQuery()
    {
        var query = new MeshUpstream { Name = "geo-api", Datacenter = "dc2", DestinationType = UpstreamDestinationType.PreparedQuery };
        Assert.Equal($"geo-api.default.dc2.query.{TD}", Plan("remote", query, Catalog(s_dc2Instances)).Sni);
        UpstreamTarget empty = Plan("", query, Catalog([]));
        Assert.Equal(UpstreamTargetError.NoTargetInstances, empty.Error);
        Assert.Equal($"geo-api.default.dc2.query.{TD}", empty.Sni);
    }

    // hashicorp/consul agent/structs/connect_proxy_config.go: UpstreamDestTypeService = "service",
    // UpstreamDestTypePreparedQuery = "prepared_query"; an empty DestinationType is a service.
    [Theory]
    [InlineData(null, true, UpstreamDestinationType.Service)]
    [InlineData("", true, UpstreamDestinationType.Service)]
    [InlineData("service", true, UpstreamDestinationType.Service)]
    [InlineData("prepared_query", true, UpstreamDestinationType.PreparedQuery)]
    [InlineData("PreparedQuery", false, UpstreamDestinationType.Service)]
    public void UpstreamDestinationTypes_TryParse_ConsulSpelling(string? value, bool ok, UpstreamDestinationType expected)
    {
        Assert.Equal(ok, UpstreamDestinationTypes.TryParse(value, out UpstreamDestinationType type));
        Assert.Equal(expected, type);
    }
}
