using System.Net;
using System.Text;

namespace MeshGateway.Peering.Tests;

/// <summary>Consul's compiled discovery chain (a real 1.8.7 response, see Fixtures/README.md) turned into route rules.</summary>
public sealed class CompiledChainFlattenerTests
{
    private static byte[] WebChain() => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-web.json"));

    [Fact]
    public void Flatten_RouterSplitterAndSubsets_GivesTheRulesInOrder()
    {
        FlattenedChain chain = CompiledChainFlattener.Flatten(WebChain(), "dc1");

        Assert.Equal("http", chain.Protocol);
        Assert.Empty(chain.Warnings);
        Assert.Equal(3, chain.Routes.Count);

        HttpRouteRule admin = chain.Routes[0];
        Assert.Equal("/admin", admin.Match!.PathPrefix);
        HttpHeaderMatch header = Assert.Single(admin.Match.Headers);
        Assert.Equal(("x-debug", "1"), (header.Name, header.Exact));
        Assert.Equal(["GET"], admin.Match.Methods);
        Assert.Equal("/", admin.PrefixRewrite);
        Assert.Equal([new WeightedTarget("web-canary.default.dc1", 100)], admin.Splits);

        HttpRouteRule v2 = chain.Routes[1];
        Assert.Equal("/v2", v2.Match!.PathExact);
        Assert.True(Assert.Single(v2.Match.QueryParameters) is { Name: "beta", Present: true });
        Assert.Equal([new WeightedTarget("v2.web.default.dc1", 100)], v2.Splits);

        // Consul's default route (PathPrefix "/") into the splitter: no match, weighted legs.
        HttpRouteRule fallback = chain.Routes[2];
        Assert.Null(fallback.Match);
        Assert.Equal([new WeightedTarget("v1.web.default.dc1", 90), new WeightedTarget("v2.web.default.dc1", 10)], fallback.Splits);

        ChainTargetReference subset = Assert.Single(chain.Targets, t => t.Id == "v2.web.default.dc1");
        Assert.Equal(("web", "v2", "Service.Meta.version == v2", true), (subset.Service, subset.ServiceSubset, subset.SubsetFilter, subset.OnlyPassing));
        Assert.Equal("web-canary", Assert.Single(chain.Targets, t => t.Id == "web-canary.default.dc1").Service);
        Assert.Equal(3, chain.Targets.Count);
    }

    [Fact]
    public void Flatten_RouterTimeoutAndRetries_GoOntoTheirRule()
    {
        FlattenedChain chain = CompiledChainFlattener.Flatten(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-api-timeouts.json")), "dc1");

        Assert.Equal(3, chain.Routes.Count);
        HttpRouteRule slow = chain.Routes[0];
        Assert.Equal("/slow", slow.Match!.PathPrefix);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), slow.RequestTimeout);
        Assert.Equal(3, slow.NumRetries);
        Assert.True(slow.RetryOnConnectFailure);
        Assert.Equal([503, 429], slow.RetryOnStatusCodes);

        // "0s" is "not set": the agent leaves it out, as it does for a route with nothing of the kind.
        foreach (HttpRouteRule plain in chain.Routes.Skip(1))
        {
            Assert.Null(plain.RequestTimeout);
            Assert.Equal(0, plain.NumRetries);
            Assert.False(plain.RetryOnConnectFailure);
            Assert.Empty(plain.RetryOnStatusCodes);
        }
    }

    [Fact]
    public void Flatten_ResolverFailover_LocalTargetsOnThePrimaryOthersLeftOutWithAWarning()
    {
        FlattenedChain chain = CompiledChainFlattener.Flatten(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-api-failover.json")), "dc1");

        HttpRouteRule only = Assert.Single(chain.Routes);
        Assert.Equal([new WeightedTarget("api.default.dc1", 100)], only.Splits);
        ChainTargetReference primary = Assert.Single(chain.Targets, t => t.Id == "api.default.dc1");
        Assert.Equal(["api-backup.default.dc1"], primary.FailoverTargetIds);
        ChainTargetReference backup = Assert.Single(chain.Targets, t => t.Id == "api-backup.default.dc1");
        Assert.Equal(("api-backup", "dc1"), (backup.Service, backup.Datacenter));
        Assert.Empty(backup.FailoverTargetIds);
        Assert.Equal(2, chain.Targets.Count);
        Assert.Single(chain.Warnings, w => w.StartsWith("Target api-backup.default.dc2 of api is ignored", StringComparison.Ordinal));
    }

    [Fact]
    public void Flatten_HeaderModifiersOfRouteAndSplitLegs_GoOntoTheirRuleAndLeg()
    {
        // The 1.8.7 fixture with the fields Consul 1.9+ adds: Destination.RequestHeaders/ResponseHeaders on a router route
        // (structs.ServiceRouteDestination, HTTPHeaderModifiers: Add, Set, Remove) and the compiled split's Definition
        // (structs.DiscoverySplit.Definition, a ServiceSplit with its own RequestHeaders/ResponseHeaders; Consul's
        // agent/structs/discovery_chain.go).
        string json = Encoding.UTF8.GetString(WebChain())
            .Replace("\"PrefixRewrite\": \"/\"", "\"PrefixRewrite\": \"/\", \"RequestHeaders\": { \"Add\": { \"x-a\": \"1\" }, \"Set\": { \"x-s\": \"2\" }, \"Remove\": [ \"x-r\" ] }, \"ResponseHeaders\": { \"Remove\": [ \"server\" ] }", StringComparison.Ordinal)
            .Replace("\"Weight\": 90,", "\"Definition\": { \"Weight\": 90, \"RequestHeaders\": { \"Set\": { \"x-leg\": \"v1\" } } }, \"Weight\": 90,", StringComparison.Ordinal);
        Assert.Contains("x-leg", json, StringComparison.Ordinal);

        FlattenedChain chain = CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(json), "dc1");

        HttpRouteRule admin = chain.Routes[0];
        Assert.Equal("1", admin.RequestHeaders!.Add["x-a"]);
        Assert.Equal("2", admin.RequestHeaders.Set["x-s"]);
        Assert.Equal(["x-r"], admin.RequestHeaders.Remove);
        Assert.Equal(["server"], admin.ResponseHeaders!.Remove);
        Assert.Null(chain.Routes[1].RequestHeaders);

        WeightedTarget v1 = chain.Routes[2].Splits[0];
        Assert.Equal("v1", v1.RequestHeaders!.Set["x-leg"]);
        Assert.Null(v1.ResponseHeaders);
        Assert.Null(chain.Routes[2].Splits[1].RequestHeaders);
    }

    [Fact]
    public void Flatten_Consul115RouteFields_RetryOnAndIdleTimeout_NegativeTimeoutsTurnLimitsOff()
    {
        // The real 1.8.7 chain with the fields Consul 1.15+ adds to a route's destination (agent/structs/config_entry_routes.go,
        // ServiceRouteDestination: RetryOn []string; IdleTimeout, which its MarshalJSON writes as a Go duration string like
        // RequestTimeout), and negative timeouts, which agent/xds/routes.go turns into "no timeout" (Envoy's 0).
        string json = Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-api-timeouts.json")))
            .Replace("\"NumRetries\": 3,", "\"NumRetries\": 3, \"RetryOn\": [ \"5xx\", \"unavailable\" ], \"IdleTimeout\": \"2.5s\",", StringComparison.Ordinal)
            .Replace("\"Destination\": {}", "\"Destination\": { \"RequestTimeout\": \"-1s\", \"IdleTimeout\": \"-1s\" }", StringComparison.Ordinal);
        Assert.Contains("unavailable", json, StringComparison.Ordinal);
        Assert.Contains("\"-1s\"", json, StringComparison.Ordinal);

        FlattenedChain chain = CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(json), "dc1");

        HttpRouteRule slow = chain.Routes[0];
        Assert.Equal(["5xx", "unavailable"], slow.RetryOn);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), slow.IdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), slow.RequestTimeout);
        HttpRouteRule off = chain.Routes[1];
        Assert.Null(off.RequestTimeout);
        Assert.Equal(Timeout.InfiniteTimeSpan, off.IdleTimeout);
        Assert.Empty(off.RetryOn);
        Assert.Null(chain.Routes[2].IdleTimeout);
    }

    [Theory]
    [InlineData("2500000000")]
    [InlineData("\"2.5s\"")]
    public void Flatten_ResolverStartNodeWithRequestTimeout_TheDefaultRouteGetsIt(string timeout)
    {
        // Consul 1.15+'s service-resolver RequestTimeout: DiscoveryResolver.MarshalJSON (agent/structs/discovery_chain.go)
        // converts only ConnectTimeout, so it arrives as time.Duration nanoseconds; agent/xds/routes.go puts it on the route
        // of a chain that starts at the resolver.
        string json = Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-api-failover.json")))
            .Replace("\"ConnectTimeout\": \"5s\",", "\"ConnectTimeout\": \"5s\", \"RequestTimeout\": " + timeout + ",", StringComparison.Ordinal);
        Assert.Contains("RequestTimeout", json, StringComparison.Ordinal);

        HttpRouteRule only = Assert.Single(CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(json), "dc1").Routes);

        Assert.Equal(TimeSpan.FromMilliseconds(2500), only.RequestTimeout);
    }

    [Theory]
    [InlineData("\"soon\"")]
    [InlineData("\"1.5\"")]
    public void Flatten_RequestTimeoutNotADuration_ThrowsFormatException(string timeout)
    {
        string json = Encoding.UTF8.GetString(WebChain()).Replace("\"PrefixRewrite\": \"/\"", "\"PrefixRewrite\": \"/\", \"RequestTimeout\": " + timeout, StringComparison.Ordinal);
        Assert.Contains("RequestTimeout", json, StringComparison.Ordinal);
        FormatException ex = Assert.Throws<FormatException>(() => CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(json), "dc1"));
        Assert.Contains("RequestTimeout", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Flatten_TargetsInAnotherDatacenter_AreLeftOutWithWarnings()
    {
        FlattenedChain chain = CompiledChainFlattener.Flatten(WebChain(), "dc2");

        Assert.Empty(chain.Routes);
        Assert.Empty(chain.Targets);
        Assert.Equal(3, chain.Warnings.Count(w => w.StartsWith("A route of web was left out", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("{")]
    [InlineData("{}")]
    [InlineData("{\"Chain\":{\"StartNode\":\"resolver:x\",\"Nodes\":{}}}")]
    [InlineData("{\"Chain\":{\"StartNode\":\"resolver:x\",\"Nodes\":{\"resolver:x\":{\"Type\":\"resolver\",\"Resolver\":{\"Target\":\"x\"}}}}}")]
    public void Flatten_NotACompiledChain_ThrowsFormatException(string json)
    {
        Assert.Throws<FormatException>(() => CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(json), "dc1"));
    }

    [Fact]
    public async Task FlattenedChain_DrivesTheTerminator()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        FlattenedChain chain = CompiledChainFlattener.Flatten(WebChain(), "dc1");
        string web = harness.Local.ServiceId("web", "dc1");

        // v1 instances behind sidecar A, v2 behind B; web-canary (a redirect to another service) stood in by B too,
        // which carries web's identity, so its expected SPIFFE ID says web here.
        PeeringSnapshot snapshot = harness.Snapshot(harness.GatewayLeaf);
        harness.Terminator.Update(snapshot with
        {
            Services =
            [
                snapshot.Services[0] with
                {
                    Routes = chain.Routes,
                    Targets =
                    [
                        new ChainTargetEndpoints { Id = "v1.web.default.dc1", SpiffeId = web, Endpoints = [harness.SidecarA.EndPoint] },
                        new ChainTargetEndpoints { Id = "v2.web.default.dc1", SpiffeId = web, Endpoints = [harness.SidecarB.EndPoint] },
                        new ChainTargetEndpoints { Id = "web-canary.default.dc1", SpiffeId = web, Endpoints = [harness.SidecarB.EndPoint] },
                    ],
                },
            ],
        });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpRequestMessage admin = PeeringHarness.Get("/admin/users", HttpVersion.Version20);
        admin.Headers.Add("x-debug", "1");
        // PrefixRewrite replaces the matched prefix literally, as Envoy's prefix_rewrite does: "/admin" → "/" keeps the
        // following slash ("/admin/users" → "//users"); Consul's docs advise matching "/admin/" for that reason.
        Assert.Equal("web-b //users", await (await client.SendAsync(admin)).Content.ReadAsStringAsync());
        Assert.Equal("web-b /v2?beta", await (await client.SendAsync(PeeringHarness.Get("/v2?beta", HttpVersion.Version20))).Content.ReadAsStringAsync());

        // Without the query parameter /v2 falls to the 90/10 split: of 100 requests, B (10 %) takes fewer than 40.
        int toB = 0;
        for (int i = 0; i < 100; i++)
        {
            string body = await (await client.SendAsync(PeeringHarness.Get("/v2", HttpVersion.Version20))).Content.ReadAsStringAsync();
            toB += body.StartsWith("web-b", StringComparison.Ordinal) ? 1 : 0;
        }

        // Binomial(100, 0.1): mean 10, standard deviation 3; 40 is 10 deviations away. None reaching B is possible
        // (0.9^100 ≈ 3e-5), so only the upper bound and A's share are asserted.
        Assert.InRange(toB, 0, 40);
        Assert.True(harness.SidecarA.Requests >= 60);
    }
}
