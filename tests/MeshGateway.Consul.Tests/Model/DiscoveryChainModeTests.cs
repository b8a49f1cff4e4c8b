using MeshGateway.Model;
using static MeshGateway.Tests.Model.ConsulSniNameTests;

namespace MeshGateway.Tests.Model;

/// <summary>
/// The mode of every target of a compiled discovery chain. Expectations from hashicorp/consul
/// agent/consul/discoverychain/compile.go (getResolverNode: redirects and default subsets first, then per target
/// service-defaults of the target, proxy-defaults, the OverrideMeshGateway, ExternalSNI; failover per datacenter or
/// service) and agent/consul/discoverychain/compile_test.go (the testcase_* named on each test).
/// </summary>
public sealed class DiscoveryChainModeTests
{
    private static readonly MeshUpstream s_main = new() { Name = "main" };

    private static DiscoveryChainModes Compile(DiscoveryChainEntries entries, MeshGatewayModeInputs? inputs = null, MeshUpstream? upstream = null) =>
        MeshGatewayModeResolver.ResolveChain(inputs ?? new MeshGatewayModeInputs(), upstream ?? s_main, "dc1", entries);

    private static (string Id, string Mode, ChainTargetModeSource Source, ChainTargetRole Role)[] Summary(DiscoveryChainModes chain)
    {
        Assert.True(chain.IsValid, chain.Error);
        return [.. chain.Targets.Select(t => (t.Id, t.Mode.RawValue, t.DecidedBy, t.Role))];
    }

    // compile_test.go testcase_DatacenterFailover_WithMeshGateways: proxy-defaults remote, failover to dc2 and dc4; every
    // target is remote. (At run time proxy-defaults reaches the compiler inside OverrideMeshGateway too.)
    [Fact]
    public void ResolveChain_DatacenterFailoverWithProxyDefaultsRemote_EveryTargetRemote()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Datacenters = ["dc2", "dc4"] } } }],
        };
        Assert.Equal(
            [
                ("main.default.default.dc1", "remote", ChainTargetModeSource.Override, ChainTargetRole.Primary),
                ("main.default.default.dc2", "remote", ChainTargetModeSource.Override, ChainTargetRole.Failover),
                ("main.default.default.dc4", "remote", ChainTargetModeSource.Override, ChainTargetRole.Failover),
            ],
            Summary(Compile(entries, new MeshGatewayModeInputs { ProxyDefaults = MeshGatewayMode.Remote })));
    }

    // The same case as the compiler alone sees it (compile_test.go passes proxy-defaults as an entry and no override):
    // the fallback to proxy-defaults of the target's partition gives remote.
    [Fact]
    public void ResolveChain_DatacenterFailoverWithProxyDefaultsEntryOnly_ProxyDefaultsFallback()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Datacenters = ["dc2", "dc4"] } } }],
            ProxyDefaultsByPartition = new Dictionary<string, MeshGatewayMode> { ["default"] = MeshGatewayMode.Remote },
        };
        Assert.All(Compile(entries).Targets, t => Assert.Equal((MeshGatewayMode.Remote, ChainTargetModeSource.ProxyDefaults), (t.Mode, t.DecidedBy)));
        Assert.Equal(3, Compile(entries).Targets.Count);
    }

    // compile.go: after a redirect the target is another service, and *its* service-defaults give the mode (GetService of
    // the redirected target), not the upstream's own (compile_test.go testcase_ServiceMetaProjectionWithRedirect shows the
    // redirect to "other").
    [Fact]
    public void ResolveChain_RedirectToAnotherService_UsesThatServicesDefaults()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Redirect = new ServiceResolverRedirect { Service = "other", Datacenter = "dc2" } }],
            ServiceDefaults =
            [
                new ChainServiceDefaults { Name = "main", MeshGateway = MeshGatewayMode.Remote },
                new ChainServiceDefaults { Name = "other", MeshGateway = MeshGatewayMode.Local },
            ],
        };
        DiscoveryChainModes chain = Compile(entries);
        Assert.Equal([("other.default.default.dc2", "local", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Primary)], Summary(chain));
        Assert.Equal(["main.default.default.dc1"], chain.Targets[0].RedirectedFrom);
        Assert.Contains("service-defaults of 'other'", chain.Targets[0].Explanation, StringComparison.Ordinal);
    }

    // compile.go: failover targets are rewritten (Service + Datacenters) and resolved like any target, so each gets its own
    // service-defaults; the primary keeps its own (here none).
    [Fact]
    public void ResolveChain_FailoverToAnotherServiceInOtherDatacenters_EachTargetItsOwnMode()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Service = "backup", Datacenters = ["dc2", "dc3"] } } }],
            ServiceDefaults = [new ChainServiceDefaults { Name = "backup", MeshGateway = MeshGatewayMode.Remote }],
        };
        Assert.Equal(
            [
                ("main.default.default.dc1", "", ChainTargetModeSource.None, ChainTargetRole.Primary),
                ("backup.default.default.dc2", "remote", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Failover),
                ("backup.default.default.dc3", "remote", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Failover),
            ],
            Summary(Compile(entries)));
    }

    // compile.go: a non-empty OverrideMeshGateway replaces the target's mode (c.customizedBy.MeshGateway).
    [Fact]
    public void ResolveChain_DialingSideModeSet_OverridesEveryTargetsServiceDefaults()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Service = "backup", Datacenters = ["dc2"] } } }],
            ServiceDefaults = [new ChainServiceDefaults { Name = "backup", MeshGateway = MeshGatewayMode.Remote }, new ChainServiceDefaults { Name = "main", MeshGateway = MeshGatewayMode.None }],
        };
        DiscoveryChainModes chain = Compile(entries, upstream: s_main with { MeshGateway = MeshGatewayMode.Local });
        Assert.Equal(MeshGatewayModeLevel.Upstream, chain.Override.DecidedBy);
        Assert.All(chain.Targets, t => Assert.Equal((MeshGatewayMode.Local, ChainTargetModeSource.Override), (t.Mode, t.DecidedBy)));
        Assert.Contains("replaces what the target had (service-defaults of 'backup' gives mode \"remote\")", chain.Targets[1].Explanation, StringComparison.Ordinal);
    }

    // MeshGatewayModeInputs.DestinationServiceDefaults is the upstream's own service's entry: it decides the primary target
    // (as Resolve's destination level does) but not a redirected one.
    [Fact]
    public void ResolveChain_DestinationServiceDefaultsInput_AppliesToTheUpstreamsOwnServiceOnly()
    {
        var inputs = new MeshGatewayModeInputs { DestinationServiceDefaults = MeshGatewayMode.Remote };
        var failover = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Service = "backup", Datacenters = ["dc2"] } } }],
        };
        Assert.Equal(
            [
                ("main.default.default.dc1", "remote", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Primary),
                ("backup.default.default.dc2", "", ChainTargetModeSource.None, ChainTargetRole.Failover),
            ],
            Summary(Compile(failover, inputs)));
        Assert.Equal(MeshGatewayModeResolver.Resolve(inputs, s_main).Mode, Compile(new DiscoveryChainEntries(), inputs).Targets[0].Mode);
    }

    // compile.go: the default subset is applied like a redirect; failover sections are chosen by the target's subset, else "*".
    [Fact]
    public void ResolveChain_DefaultSubsetAndSubsetFailover()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers =
            [
                new ServiceResolverEntry
                {
                    Name = "main", DefaultSubset = "v2", Subsets = ["v1", "v2"],
                    Failover = new Dictionary<string, ServiceResolverFailover>
                    {
                        ["v2"] = new() { Datacenters = ["dc2"] },
                        ["*"] = new() { Datacenters = ["dc9"] },
                    },
                },
            ],
            ServiceDefaults = [new ChainServiceDefaults { Name = "main", MeshGateway = MeshGatewayMode.Local }],
        };
        Assert.Equal(
            [
                ("v2.main.default.default.dc1", "local", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Primary),
                ("v2.main.default.default.dc2", "local", ChainTargetModeSource.TargetServiceDefaults, ChainTargetRole.Failover),
            ],
            Summary(Compile(entries)));
    }

    // compile.go rewriteTarget: a failover to the target itself is dropped ("don't failover to yourself").
    [Fact]
    public void ResolveChain_FailoverToItself_Dropped()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Datacenters = ["dc1", "dc2"] } } }],
        };
        Assert.Equal(["main.default.default.dc1", "main.default.default.dc2"], Compile(entries).Targets.Select(t => t.Id));
    }

    // compile_test.go testcase_DefaultResolver_ExternalSNI: an ExternalSNI target bypasses mesh gateways (mode empty), even
    // when the dialing side sets one.
    [Fact]
    public void ResolveChain_ExternalSni_ModeAlwaysEmpty()
    {
        var entries = new DiscoveryChainEntries { ServiceDefaults = [new ChainServiceDefaults { Name = "main", ExternalSni = "main.some.other.service.mesh", MeshGateway = MeshGatewayMode.Remote }] };
        ChainTarget target = Assert.Single(Compile(entries, new MeshGatewayModeInputs { ProxyDefaults = MeshGatewayMode.Local }).Targets);
        Assert.True(target.External);
        Assert.False(target.Mode.IsSet);
        Assert.Equal(ChainTargetModeSource.External, target.DecidedBy);
    }

    // compile_test.go testcase_Resolver_ExternalSNI_{Redirect,Subsets,Failover}NotAllowed, testcase_CircularRedirect-style
    // loops (compile.go "detected circular resolver redirect"), and the missing-subset error.
    public static TheoryData<string, DiscoveryChainEntries> CompileErrors => new()
    {
        {
            "service \"main\" has an external SNI set; cannot define failover for external services",
            new DiscoveryChainEntries
            {
                ServiceDefaults = [new ChainServiceDefaults { Name = "main", ExternalSni = "main.some.other.service.mesh" }],
                Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Service = "backup" } } }],
            }
        },
        {
            "service \"main\" has an external SNI set; cannot define subsets for external services",
            new DiscoveryChainEntries
            {
                ServiceDefaults = [new ChainServiceDefaults { Name = "main", ExternalSni = "main.some.other.service.mesh" }],
                Resolvers = [new ServiceResolverEntry { Name = "main", Subsets = ["canary"] }],
            }
        },
        {
            "detected circular resolver redirect: [main.default.default.dc1 -> other.default.default.dc1 -> main.default.default.dc1]",
            new DiscoveryChainEntries
            {
                Resolvers =
                [
                    new ServiceResolverEntry { Name = "main", Redirect = new ServiceResolverRedirect { Service = "other" } },
                    new ServiceResolverEntry { Name = "other", Redirect = new ServiceResolverRedirect { Service = "main" } },
                ],
            }
        },
        {
            "service \"main\" does not have a subset named \"v9\"",
            new DiscoveryChainEntries { Resolvers = [new ServiceResolverEntry { Name = "main", DefaultSubset = "v9", Subsets = ["v1"] }] }
        },
    };

    [Theory]
    [MemberData(nameof(CompileErrors))]
    public void ResolveChain_InvalidEntries_ConsulsCompileError(string error, DiscoveryChainEntries entries)
    {
        DiscoveryChainModes chain = Compile(entries);
        Assert.False(chain.IsValid);
        Assert.Equal(error, chain.Error);
        Assert.Empty(chain.Targets);
    }

    [Fact]
    public void ResolveChain_PeeredOrPreparedQuery_NoChainButNoThrow()
    {
        Assert.False(Compile(new DiscoveryChainEntries(), upstream: s_main with { Peer = "p" }).IsValid);
        Assert.False(Compile(new DiscoveryChainEntries(), upstream: s_main with { DestinationType = UpstreamDestinationType.PreparedQuery }).IsValid);
    }

    // agent/xds/endpoints.go: one load assignment per chain target, each with its own MeshGateway mode; the primary in the
    // caller's datacenter is dialled directly, the failover targets through dc2's gateways (remote) or dc3's instances.
    [Fact]
    public void PlanChain_EachTargetPlannedWithItsOwnMode()
    {
        var entries = new DiscoveryChainEntries
        {
            Resolvers = [new ServiceResolverEntry { Name = "main", Failover = new Dictionary<string, ServiceResolverFailover> { ["*"] = new() { Service = "backup", Datacenters = ["dc2", "dc3"] } } }],
            ServiceDefaults = [new ChainServiceDefaults { Name = "backup", MeshGateway = MeshGatewayMode.Remote }],
        };
        DiscoveryChainModes chain = Compile(entries);
        static CatalogServiceInstance Instance(string id, string dc, string lan, string wan) => new()
        {
            Node = new CatalogNode { Name = "n-" + id, Address = lan, Datacenter = dc },
            Service = new CatalogService
            {
                Id = id, Name = id, Address = lan, Port = 20000,
                TaggedAddresses = new Dictionary<string, CatalogTaggedAddress>(StringComparer.Ordinal) { ["wan"] = new(wan, 443) },
            },
        };
        var gateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [new GatewayKey("dc2")] = [Instance("mgw-dc2", "dc2", "10.2.0.100", "203.0.113.2")] };
        MeshCatalogView CatalogFor(ChainTarget t) => new()
        {
            TargetInstances = [Instance(t.Service + "-" + t.Datacenter, t.Datacenter, "10.0.0.1", "198.51.100.1")],
            RemoteGateways = gateways,
        };

        IReadOnlyList<UpstreamTarget> plans = UpstreamTargetPlanner.PlanChain(
            new UpstreamTargetRequest { CallerDatacenter = "dc1", TrustDomain = TD, Upstream = s_main }, chain, CatalogFor);

        Assert.Equal(
            [
                (UpstreamDialKind.TargetInstances, $"main.default.dc1.internal.{TD}"),
                (UpstreamDialKind.TargetGateways, $"backup.default.dc2.internal.{TD}"),
                (UpstreamDialKind.Unroutable, $"backup.default.dc3.internal.{TD}"),
            ],
            plans.Select(p => (p.DialKind, p.Sni)));
        Assert.Equal(UpstreamTargetError.NoTargetGateways, plans[2].Error); // remote, and dc3 has no known gateway: no fallback
        Assert.Equal("203.0.113.2", plans[1].Endpoints[0].Address);
    }
}
