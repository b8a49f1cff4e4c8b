using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Model;
using static MeshGateway.Tests.Model.BestAddressTests;

namespace MeshGateway.Tests.Model;

/// <summary>docs/consul-behaviour.md §3 (<c>calculateEndpointHealthAndWeight</c>), structural equality and the compact collections.</summary>
public sealed class CatalogServiceInstanceTests
{
    private static CatalogServiceInstance With(CatalogWeights? weights, params CatalogHealthStatus[] checks) =>
        new() { Node = Node(), Service = Service() with { Weights = weights }, Checks = checks };

    [Theory]
    [InlineData(null, null, new CatalogHealthStatus[0], false, true, 1)]
    [InlineData(5, 2, new[] { CatalogHealthStatus.Passing }, false, true, 5)]
    [InlineData(5, 2, new[] { CatalogHealthStatus.Passing, CatalogHealthStatus.Warning }, false, true, 2)]
    [InlineData(null, null, new[] { CatalogHealthStatus.Warning }, false, true, 1)]
    [InlineData(5, 2, new[] { CatalogHealthStatus.Warning }, true, false, 2)]
    [InlineData(5, 2, new[] { CatalogHealthStatus.Critical }, false, false, 5)]
    [InlineData(5, 0, new[] { CatalogHealthStatus.Warning }, false, false, 1)]
    [InlineData(0, 1, new[] { CatalogHealthStatus.Passing }, false, false, 1)]
    [InlineData(500, 1, new[] { CatalogHealthStatus.Passing }, false, true, 128)]
    public void HealthAndWeight_SectionThreeRules_MatchConsul(int? passing, int? warning, CatalogHealthStatus[] statuses, bool onlyPassing, bool healthy, int weight)
    {
        CatalogWeights? weights = passing is null ? null : new CatalogWeights(passing.Value, warning!.Value);

        Assert.Equal((healthy, weight), With(weights, statuses).HealthAndWeight(onlyPassing));
        Assert.Equal(healthy, With(weights, statuses).IsHealthy(onlyPassing));
    }

    [Property]
    public Property HealthAndWeight_AnyInput_WeightWithinOneTo128AndCriticalNeverHealthy()
    {
        CatalogHealthStatus[] statuses = [CatalogHealthStatus.Passing, CatalogHealthStatus.Warning, CatalogHealthStatus.Critical];
        return Prop.ForAll(
            Arb.From(Gen.Choose(-200, 400)),
            Arb.From(Gen.Choose(-200, 400)),
            Arb.From(Gen.ArrayOf(Gen.Elements(statuses))),
            (passing, warning, checks) =>
            {
                var (healthy, weight) = With(new CatalogWeights(passing, warning), checks).HealthAndWeight(onlyPassing: false);
                bool anyCritical = checks.Contains(CatalogHealthStatus.Critical);
                return weight is >= 1 and <= CatalogServiceInstance.MaxWeight && !(anyCritical && healthy);
            });
    }

    [Fact]
    public void WorstStatus_IsTheMaximum()
    {
        Assert.Equal(CatalogHealthStatus.Passing, With(null).WorstStatus);
        Assert.Equal(CatalogHealthStatus.Warning, With(null, CatalogHealthStatus.Passing, CatalogHealthStatus.Warning).WorstStatus);
        Assert.Equal(CatalogHealthStatus.Critical, With(null, CatalogHealthStatus.Critical, CatalogHealthStatus.Warning).WorstStatus);
    }

    [Fact]
    public void Equality_IsStructuralOverCollections()
    {
        CatalogServiceInstance a = With(new CatalogWeights(1, 1), CatalogHealthStatus.Passing) with
        {
            Service = Service() with { Meta = new Dictionary<string, string> { ["v"] = "1" }, Tags = ["x"] },
        };
        CatalogServiceInstance b = With(new CatalogWeights(1, 1), CatalogHealthStatus.Passing) with
        {
            Service = Service() with { Meta = CatalogDictionaries.Create<string>([new("v", "1")]), Tags = new List<string> { "x" } },
        };

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, b with { Checks = [CatalogHealthStatus.Warning] });
        Assert.NotEqual(a, b with { Service = b.Service with { Meta = CatalogDictionaries.Create<string>([new("v", "2")]) } });
        Assert.NotEqual(a, b with { Node = b.Node with { TaggedAddresses = CatalogDictionaries.Create<string>([new("wan", "")]) } });
        Assert.NotEqual(a, b with { Service = b.Service with { ModifyIndex = 9 } });
    }

    [Fact]
    public void CatalogDictionary_SortedOrdinalLastWinsAndSharedEmpty()
    {
        CatalogDictionary<string> map = CatalogDictionaries.Create<string>([new("wan", "a"), new("Wan", "b"), new("lan", "c"), new("wan", "d")]);

        Assert.Equal(["Wan", "lan", "wan"], map.Keys);
        Assert.Equal("d", map["wan"]);
        Assert.False(map.ContainsKey("WAN"));
        Assert.False(map.TryGetValue("x", out _));
        Assert.Throws<KeyNotFoundException>(() => map["x"]);
        Assert.Same(CatalogDictionaries.Empty<string>(), CatalogDictionaries.Create<string>([]));
    }

    [Fact]
    public void CatalogHealthStatuses_SmallListsShared_LargeOnesCopied()
    {
        IReadOnlyList<CatalogHealthStatus> first = CatalogHealthStatuses.Create([CatalogHealthStatus.Passing, CatalogHealthStatus.Warning]);
        IReadOnlyList<CatalogHealthStatus> five = CatalogHealthStatuses.Create([CatalogHealthStatus.Passing, CatalogHealthStatus.Passing, CatalogHealthStatus.Passing, CatalogHealthStatus.Passing, CatalogHealthStatus.Critical]);

        Assert.Same(first, CatalogHealthStatuses.Create([CatalogHealthStatus.Passing, CatalogHealthStatus.Warning]));
        Assert.NotSame(first, CatalogHealthStatuses.Create([CatalogHealthStatus.Warning, CatalogHealthStatus.Passing]));
        Assert.Equal([CatalogHealthStatus.Passing, CatalogHealthStatus.Warning], first);
        Assert.Equal(CatalogHealthStatus.Critical, five[4]);
        Assert.Empty(CatalogHealthStatuses.Create([]));
    }
}
