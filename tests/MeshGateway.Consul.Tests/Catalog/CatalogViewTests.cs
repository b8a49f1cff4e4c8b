using System.Collections.Immutable;
using MeshGateway.Model;
using static MeshGateway.Consul.Tests.Routing.SubsetFilterTests;

namespace MeshGateway.Consul.Tests.Catalog;

public sealed class CatalogViewTests
{
    private static ConsulCatalogView Make(int port, CatalogHealthStatus status = CatalogHealthStatus.Passing) => new()
    {
        TrustDomain = "td.consul",
        Datacenter = "dc1",
        Datacenters = ["dc1", "dc2"],
        Services = new Dictionary<string, ConsulServiceView>
        {
            ["api"] = new()
            {
                Name = "api",
                Instances = [Instance("a1", new Dictionary<string, string> { ["v"] = "1" }, ["t"], port: port, status: status)],
                Resolver = new ConsulResolverView { Subsets = new Dictionary<string, ConsulSubsetView> { ["v1"] = new("Service.Meta.v == 1", false) }.ToImmutableSortedDictionary() },
            },
        }.ToImmutableSortedDictionary(),
        LocalGateways = [],
        RemoteGateways = ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>>.Empty.Add("dc2", [Instance("gw", port: 443, dc: "dc2")]),
    };

    [Fact]
    public void ViewEquality_SameContentDifferentInstances_AreEqual()
    {
        Assert.Equal(Make(1), Make(1));
        Assert.NotEqual(Make(1), Make(2));
        Assert.NotEqual(Make(1), Make(1, CatalogHealthStatus.Warning)); // a check change is a view change
    }

    [Fact]
    public void Sorted_NodeThenId_GatewaysOnlyDropsOtherKinds()
    {
        CatalogServiceInstance gateway = Instance("gw", node: "n2") with { Service = Instance("gw").Service with { Kind = "mesh-gateway" } };
        CatalogServiceInstance[] input = [Instance("b", node: "n2"), Instance("z", node: "n1"), Instance("a", node: "n2"), gateway];

        Assert.Equal(["z", "a", "b", "gw"], CatalogInstances.Sorted(input, gatewaysOnly: false).Select(i => i.Service.Id));
        Assert.Equal(["gw"], CatalogInstances.Sorted(input, gatewaysOnly: true).Select(i => i.Service.Id));
    }
}
