using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;

namespace MeshGateway.Consul.Tests.Catalog;

public sealed class EndpointRulesTests
{
    private static ConsulHealthEntry Entry(string? serviceAddress, int port, Dictionary<string, ConsulServiceAddress>? tagged = null, string nodeAddress = "10.0.0.9", string? nodeWan = null) => new()
    {
        Node = new ConsulNode { Node = "n1", Address = nodeAddress, TaggedAddresses = nodeWan is null ? null : new Dictionary<string, string> { ["wan"] = nodeWan } },
        Service = new ConsulService { ID = "gw", Service = "gw", Kind = "mesh-gateway", Address = serviceAddress, Port = port, TaggedAddresses = tagged },
    };

    [Fact]
    public void BestAddress_SectionFourCases_MatchConsul()
    {
        var wanTag = new Dictionary<string, ConsulServiceAddress> { ["wan"] = new() { Address = "198.51.100.5", Port = 443 }, ["lan"] = new() { Address = "10.0.0.5", Port = 8443 } };
        var wanPortOnly = new Dictionary<string, ConsulServiceAddress> { ["wan"] = new() { Address = "", Port = 9443 } };
        var wanAddressOnly = new Dictionary<string, ConsulServiceAddress> { ["wan"] = new() { Address = "198.51.100.6", Port = 0 } };
        var onlyWanIpv4 = new Dictionary<string, ConsulServiceAddress> { ["wan_ipv4"] = new() { Address = "198.51.100.7", Port = 1 } };

        Assert.Equal(("198.51.100.5", 443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, wanTag), wan: true));
        Assert.Equal(("10.0.0.5", 8443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, wanTag), wan: false)); // LAN never reads the lan tag
        Assert.Equal(("198.51.100.6", 8443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, wanAddressOnly), wan: true)); // port 0 keeps the service port
        Assert.Equal(("10.0.0.9", 9443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, wanPortOnly), wan: true)); // empty wan address: node address, wan port
        Assert.Equal(("10.0.0.5", 8443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, onlyWanIpv4), wan: true)); // wan_ipv4 plays no part
        Assert.Equal(("203.0.113.1", 8443), ConsulEndpointRules.BestAddress(Entry("", 8443, null, nodeWan: "203.0.113.1"), wan: true));
        Assert.Equal(("10.0.0.9", 8443), ConsulEndpointRules.BestAddress(Entry("", 8443, null, nodeWan: "203.0.113.1"), wan: false));
        Assert.Equal(("10.0.0.5", 8443), ConsulEndpointRules.BestAddress(Entry("10.0.0.5", 8443, null, nodeWan: "203.0.113.1"), wan: true)); // service Address beats node wan
    }

    [Theory]
    [InlineData(null, null, new string[0], false, true, 1)]
    [InlineData(5, 2, new[] { "passing" }, false, true, 5)]
    [InlineData(5, 2, new[] { "passing", "warning" }, false, true, 2)]
    [InlineData(null, null, new[] { "warning" }, false, true, 1)]
    [InlineData(5, 2, new[] { "warning" }, true, false, 2)]
    [InlineData(5, 2, new[] { "critical" }, false, false, 5)]
    [InlineData(5, 0, new[] { "warning" }, false, false, 1)]
    [InlineData(0, 1, new[] { "passing" }, false, false, 1)]
    [InlineData(500, 1, new[] { "passing" }, false, true, 128)]
    [InlineData(5, 2, new[] { "maintenance?" }, false, false, 5)]
    public void HealthAndWeight_SectionThreeRules_MatchConsul(int? passing, int? warning, string[] statuses, bool onlyPassing, bool healthy, int weight)
    {
        ConsulWeights? weights = passing is null ? null : new ConsulWeights { Passing = passing.Value, Warning = warning!.Value };
        var checks = statuses.Select(s => new ConsulHealthCheck { Status = s }).ToList();

        Assert.Equal((healthy, weight), ConsulEndpointRules.HealthAndWeight(weights, checks, onlyPassing));
    }

    [Fact]
    public void HealthAndWeight_AnyInput_WeightWithinOneTo128AndCriticalNeverHealthy()
    {
        string[] statuses = ["passing", "warning", "critical", "bogus"];
        Prop.ForAll(
            Arb.From(Gen.Choose(-200, 400)),
            Arb.From(Gen.Choose(-200, 400)),
            Arb.From(Gen.ArrayOf(Gen.Elements(statuses))),
            (passing, warning, checks) =>
            {
                var (healthy, weight) = ConsulEndpointRules.HealthAndWeight(new ConsulWeights { Passing = passing, Warning = warning }, checks.Select(s => new ConsulHealthCheck { Status = s }), onlyPassing: false);
                bool anyCritical = checks.Any(s => s is "critical" or "bogus");
                return weight is >= 1 and <= 128 && !(anyCritical && healthy);
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void ViewEquality_SameContentDifferentInstances_AreEqual()
    {
        static ConsulCatalogView Make(int port) => new()
        {
            TrustDomain = "td.consul",
            Datacenter = "dc1",
            Datacenters = ["dc1", "dc2"],
            Services = new Dictionary<string, ConsulServiceView>
            {
                ["api"] = new()
                {
                    Name = "api",
                    Instances = [ConsulEndpointRules.ToEndpoint(Entry("10.0.0.5", port), wan: false, "dc1")],
                    Resolver = new ConsulResolverView { Subsets = new Dictionary<string, ConsulSubsetView> { ["v1"] = new("Service.Meta.v == 1", false) }.ToImmutableSortedDictionary() },
                },
            }.ToImmutableSortedDictionary(),
            LocalGateways = [],
            RemoteGateways = System.Collections.Immutable.ImmutableSortedDictionary<string, System.Collections.Immutable.ImmutableArray<ConsulEndpoint>>.Empty,
        };

        Assert.Equal(Make(1), Make(1));
        Assert.NotEqual(Make(1), Make(2));
    }
}
