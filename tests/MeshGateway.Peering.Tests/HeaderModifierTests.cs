using System.Net;

namespace MeshGateway.Peering.Tests;

/// <summary>
/// Consul's header modifiers (service-router <c>Destination.RequestHeaders</c>/<c>ResponseHeaders</c> and
/// service-splitter legs' own, 1.9+) applied as Consul's Envoy routes apply them: removals, then additions, then
/// replacements; the leg's first and the route's last, so the route wins.
/// </summary>
public sealed class HeaderModifierTests
{
    private static HttpHeaderModifiers Modifiers(string[]? remove = null, (string, string)[]? add = null, (string, string)[]? set = null) => new()
    {
        Remove = remove ?? [],
        Add = (add ?? []).ToDictionary(h => h.Item1, h => h.Item2),
        Set = (set ?? []).ToDictionary(h => h.Item1, h => h.Item2),
    };

    [Fact]
    public async Task RouteAndLegModifiers_ReachTheSidecarAndTheClient_TheRouteWinning()
    {
        HttpRouteRule rule = new()
        {
            Splits =
            [
                new WeightedTarget(PeeringHarness.TargetA, 100)
                {
                    RequestHeaders = Modifiers(set: [("x-test-owner", "leg"), ("x-test-leg", "a")]),
                    ResponseHeaders = Modifiers(add: [("x-test-served-by", "leg-a")]),
                },
            ],
            RequestHeaders = Modifiers(remove: ["x-test-secret"], add: [("x-test-tag", "gateway")], set: [("x-test-owner", "route")]),
            ResponseHeaders = Modifiers(remove: ["x-test-sidecar"], set: [("x-test-route", "1")]),
        };
        await using PeeringHarness harness = await PeeringHarness.StartAsync([rule]);
        using HttpClient client = harness.CreateClient(harness.PeerClient);
        using HttpRequestMessage request = PeeringHarness.Get("/h", HttpVersion.Version20);
        request.Headers.Add("x-test-secret", "from-the-peer");
        request.Headers.Add("x-test-tag", "client");

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal("web-a /h", await response.Content.ReadAsStringAsync());
        SeenRequest seen = Assert.Single(harness.SidecarA.Seen);
        Assert.False(seen.TestHeaders.ContainsKey("x-test-secret"));
        Assert.Equal("client,gateway", seen.TestHeaders["x-test-tag"].Replace(" ", "", StringComparison.Ordinal));
        Assert.Equal("route", seen.TestHeaders["x-test-owner"]);
        Assert.Equal("a", seen.TestHeaders["x-test-leg"]);

        Assert.False(response.Headers.Contains("x-test-sidecar"));
        Assert.Equal(["leg-a"], response.Headers.GetValues("x-test-served-by"));
        Assert.Equal(["1"], response.Headers.GetValues("x-test-route"));
    }

    [Fact]
    public async Task NoModifiers_HeadersPassedAsSent()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        using HttpClient client = harness.CreateClient(harness.PeerClient);
        using HttpRequestMessage request = PeeringHarness.Get("/h", HttpVersion.Version11);
        request.Headers.Add("x-test-secret", "from-the-peer");

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal("from-the-peer", Assert.Single(harness.SidecarA.Seen).TestHeaders["x-test-secret"]);
        Assert.Equal(["web-a"], response.Headers.GetValues("x-test-sidecar"));
    }

    [Theory]
    [InlineData("bad name", "v")]
    [InlineData("", "v")]
    [InlineData("x-ok", "line\r\nbreak")]
    public async Task Update_ModifierNotAHeader_RefusedWithTheRouteNamed(string name, string value)
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        HttpRouteRule rule = new() { Splits = [new WeightedTarget(PeeringHarness.TargetA, 100)], RequestHeaders = Modifiers(set: [(name, value)]) };

        ArgumentException ex = Assert.Throws<ArgumentException>(() => harness.Terminator.Update(harness.Snapshot(harness.GatewayLeaf, [rule])));

        Assert.Contains("Route 0 of exported service 'web'", ex.Message, StringComparison.Ordinal);
    }
}
