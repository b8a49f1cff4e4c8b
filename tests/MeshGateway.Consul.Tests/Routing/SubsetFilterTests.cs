using System.Collections.Immutable;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Routing;

public sealed class SubsetFilterTests
{
    /// <summary>A sidecar instance whose LAN best address is <paramref name="address"/> (and WAN too, unless <paramref name="serviceWan"/> is set);
    /// <paramref name="healthy"/> false without a non-passing <paramref name="status"/> adds a critical check; <paramref name="weight"/>
    /// is both Weights.Passing and Weights.Warning.</summary>
    internal static CatalogServiceInstance Instance(string id, IReadOnlyDictionary<string, string>? meta = null, string[]? tags = null, string address = "10.0.0.1", int port = 8080,
        bool healthy = true, int weight = 1, CatalogHealthStatus status = CatalogHealthStatus.Passing, string node = "n1", string dc = "dc1",
        string nodeAddress = "192.0.2.250", string? nodeWan = null, CatalogTaggedAddress? serviceWan = null) => new()
        {
            Node = new CatalogNode
            {
                Name = node,
                Address = nodeAddress,
                Datacenter = dc,
                TaggedAddresses = nodeWan is null ? CatalogDictionaries.Empty<string>() : CatalogDictionaries.Create<string>([new("wan", nodeWan)]),
            },
            Service = new CatalogService
            {
                Id = id,
                Name = "api-sidecar-proxy",
                Kind = "connect-proxy",
                Address = address,
                Port = port,
                TaggedAddresses = serviceWan is null ? CatalogDictionaries.Empty<CatalogTaggedAddress>() : CatalogDictionaries.Create<CatalogTaggedAddress>([new("wan", serviceWan)]),
                Tags = tags ?? [],
                Meta = meta ?? CatalogDictionaries.Empty<string>(),
                Weights = new CatalogWeights(weight, weight),
                ProxyDestinationServiceName = "api",
            },
            Checks = [healthy || status != CatalogHealthStatus.Passing ? status : CatalogHealthStatus.Critical],
        };

    private static bool Eval(string filter, CatalogServiceInstance e)
    {
        Assert.True(ConsulSubsetFilter.TryParse(filter, out ConsulSubsetFilter? f, out string? error), error);
        return f.Matches(e);
    }

    [Theory]
    [InlineData("Service.Meta.version == v2", true)]
    [InlineData("Service.Meta.version == \"v2\"", true)]
    [InlineData("Service.Meta.version == `v2`", true)]
    [InlineData("Service.Meta.version != v2", false)]
    [InlineData("Service.Meta.version == v1", false)]
    [InlineData("Service.Meta.missing != v1", true)]
    [InlineData("Service.Meta.missing == v1", false)]
    [InlineData("Service.Meta.missing is empty", true)]
    [InlineData("Service.Meta.version is not empty", true)]
    [InlineData("Service.Tags contains canary", true)]
    [InlineData("Service.Tags not contains canary", false)]
    [InlineData("canary in Service.Tags", true)]
    [InlineData("\"blue\" not in Service.Tags", true)]
    [InlineData("Service.Meta contains version", true)]
    [InlineData("Service.Tags is empty", false)]
    [InlineData("Service.Meta.version == v2 and Service.Tags contains canary", true)]
    [InlineData("Service.Meta.version == v1 or Service.Tags contains canary", true)]
    [InlineData("not Service.Tags contains canary", false)]
    [InlineData("not (Service.Meta.version == v1 or Service.Meta.zone == a)", false)]
    [InlineData("Service.Meta.version == v1 or Service.Meta.zone == a and Service.Tags contains canary", true)] // and binds tighter
    [InlineData("(Service.Meta.version == v1 or Service.Meta.zone == a) and Service.Tags is empty", false)]
    [InlineData("Service.ID == api-1 and Node.Node == n1 and Node.Datacenter == dc1 and Service.Kind == connect-proxy", true)]
    [InlineData("", true)]
    public void Matches_SupportedExpressions_EvaluateLikeGoBexpr(string filter, bool expected)
    {
        CatalogServiceInstance e = Instance("api-1", new Dictionary<string, string> { ["version"] = "v2", ["zone"] = "a" }, ["canary", "http"]);

        Assert.Equal(expected, Eval(filter, e));
    }

    [Theory]
    [InlineData("Service.Meta.version matches \"v.*\"", "'matches'")]
    [InlineData("Service.Port > 8000", "numeric comparisons")]
    [InlineData("Checks.Status == passing", "selector 'Checks.Status'")]
    [InlineData("version == v2", "selector 'version'")]
    [InlineData("Service.Meta.version ==", "filter ended")]
    [InlineData("(Service.Meta.version == v2", "')'")]
    [InlineData("Service.Meta.version == v2 Service.Tags contains x", "'and', 'or' or the end")]
    [InlineData("Service.Tags == x", "collection")]
    [InlineData("Service.Meta.version == \"v2", "unterminated")]
    [InlineData("Service.Meta.version == and", "keyword 'and'")]
    public void TryParse_UnsupportedOrMalformed_ExplainsWhy(string filter, string expected)
    {
        bool ok = ConsulSubsetFilter.TryParse(filter, out ConsulSubsetFilter? f, out string? error);

        Assert.False(ok);
        Assert.Null(f);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Property]
    public Property TryParse_ArbitraryText_NeverThrows()
    {
        return Prop.ForAll(ArbMap.Default.ArbFor<string>(), (string text) =>
        {
            bool ok = ConsulSubsetFilter.TryParse(text, out ConsulSubsetFilter? f, out string? error);
            return ok ? f is not null && error is null && (f.Matches(Instance("x")) || true) : f is null && !string.IsNullOrEmpty(error);
        });
    }

    [Fact]
    public void TryParse_DeeplyNested_RejectedNotStackOverflow()
    {
        string filter = string.Concat(Enumerable.Repeat("not (", 200)) + "Service.ID == a" + new string(')', 200);

        Assert.False(ConsulSubsetFilter.TryParse(filter, out _, out string? error));
        Assert.Contains("nests deeper", error, StringComparison.Ordinal);
    }

    [Property]
    public Property Matches_MetaEqualsOrTagContains_AgreesWithDirectEvaluation()
    {
        Gen<(string Version, bool Canary, string Wanted)> gen =
            from v in Gen.Elements("v1", "v2", "v3")
            from c in ArbMap.Default.GeneratorFor<bool>()
            from w in Gen.Elements("v1", "v2", "v3")
            select (v, c, w);
        return Prop.ForAll(gen.ToArbitrary(), t =>
        {
            CatalogServiceInstance e = Instance("i", new Dictionary<string, string> { ["version"] = t.Version }, t.Canary ? ["canary"] : []);
            bool expected = t.Version == t.Wanted || !t.Canary;
            return Eval($"Service.Meta.version == {t.Wanted} or not Service.Tags contains canary", e) == expected;
        });
    }
}
