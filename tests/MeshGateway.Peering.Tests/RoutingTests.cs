using System.Net;

namespace MeshGateway.Peering.Tests;

/// <summary>Service-router matches and service-splitter weights applied to terminated requests.</summary>
public sealed class RoutingTests
{
    private static readonly HttpRouteRule[] s_rules =
    [
        // service-router: PathPrefix /b/ with PrefixRewrite / → target B.
        new() { Match = new HttpRouteMatch { PathPrefix = "/b/" }, PrefixRewrite = "/", Splits = [new WeightedTarget(PeeringHarness.TargetB, 100)] },
        // service-router: header x-split = all-a → a splitter 100/0.
        new()
        {
            Match = new HttpRouteMatch { Headers = [new HttpHeaderMatch { Name = "x-split", Exact = "all-a" }] },
            Splits = [new WeightedTarget(PeeringHarness.TargetA, 100), new WeightedTarget(PeeringHarness.TargetB, 0)],
        },
        // Default route: a splitter 50/50.
        new() { Splits = [new WeightedTarget(PeeringHarness.TargetA, 50), new WeightedTarget(PeeringHarness.TargetB, 50)] },
    ];

    [Fact]
    public async Task RouterPathPrefix_WithPrefixRewrite_GoesToItsTargetWithTheRewrittenPath()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync(s_rules);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/b/hello", HttpVersion.Version20));

        Assert.Equal("web-b /hello", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, harness.SidecarA.Requests);
    }

    [Fact]
    public async Task RouterHeaderMatch_WithWeights100And0_AlwaysGoesToTheWeightedTarget()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync(s_rules);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < 30; i++)
        {
            using HttpRequestMessage request = PeeringHarness.Get("/x" + i, HttpVersion.Version20);
            request.Headers.Add("x-split", "all-a");
            using HttpResponseMessage response = await client.SendAsync(request);
            Assert.Equal("web-a /x" + i, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, harness.SidecarB.Requests);
    }

    [Fact]
    public async Task Splitter_50And50_SpreadsRequestsOverBothTargets()
    {
        const int Requests = 200;
        await using PeeringHarness harness = await PeeringHarness.StartAsync(s_rules);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < Requests; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/y", HttpVersion.Version20));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Binomial(200, 0.5): standard deviation ~7; [60, 140] is more than 5 deviations either side.
        Assert.Equal(Requests, harness.SidecarA.Requests + harness.SidecarB.Requests);
        Assert.InRange(harness.SidecarA.Requests, 60, 140);
        Assert.Equal(Requests, harness.Terminator.Counters.Requests);
    }

    [Fact]
    public async Task NoRuleMatches_Answers404WithoutForwarding()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync([s_rules[0]]);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/elsewhere", HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(1, harness.Terminator.Counters.Unrouted);
        Assert.Equal(0, harness.SidecarA.Requests + harness.SidecarB.Requests);
    }

    [Fact]
    public async Task TargetWithTwoSidecars_TakesThemInTurn()
    {
        const int Requests = 10;
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        ExportedHttpService web = harness.Snapshot(harness.GatewayLeaf).Services[0];
        harness.Terminator.Update(harness.Snapshot(harness.GatewayLeaf) with
        {
            Services = [web with { Targets = [web.Targets[0] with { Endpoints = [harness.SidecarA.EndPoint, harness.SidecarB.EndPoint] }, web.Targets[1]] }],
        });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < Requests; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/turn", HttpVersion.Version11));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Round robin (Envoy's default policy): each sidecar gets every other request.
        Assert.Equal(Requests / 2, harness.SidecarA.Requests);
        Assert.Equal(Requests / 2, harness.SidecarB.Requests);
        Assert.Equal(0, harness.Terminator.Counters.UpstreamFailures);
    }

    [Fact]
    public async Task RequestsOnOneConnection_ReachTheSidecarWithTheirOwnPathAndQuery()
    {
        // The terminator reuses a sidecar's request URI while the path and query repeat: each change must still be
        // forwarded as the client sent it (Kestrel gives the sidecar the decoded path).
        (string Sent, string Seen)[] requests =
        [
            ("/same?a=1", "/same?a=1"), ("/same?a=1", "/same?a=1"), ("/same?a=2", "/same?a=2"), ("/same", "/same"),
            ("/other?a=1", "/other?a=1"), ("/same?a=1", "/same?a=1"), ("/caf%C3%A9?q=%20", "/caf\u00e9?q=%20"), ("/same", "/same"),
        ];
        await using PeeringHarness harness = await PeeringHarness.StartAsync(s_rules);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        foreach ((string sent, string seen) in requests)
        {
            using HttpRequestMessage request = PeeringHarness.Get(sent, HttpVersion.Version11);
            request.Headers.Add("x-split", "all-a");
            using HttpResponseMessage response = await client.SendAsync(request);
            Assert.Equal("web-a " + seen, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(requests.Length, harness.SidecarA.Requests);
    }

    [Fact]
    public async Task EstablishedConnection_AfterTheServiceIsNoLongerExported_Answers403WithoutForwarding()
    {
        // Requests follow the snapshot in force, not the one of the handshake: an export withdrawn while a peer's
        // connection stays open stops reaching the sidecars on that connection too.
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        using HttpClient client = harness.CreateClient(harness.PeerClient);
        using (HttpResponseMessage before = await client.SendAsync(PeeringHarness.Get("/before", HttpVersion.Version11)))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        harness.Terminator.Update(harness.Snapshot(harness.GatewayLeaf) with { Services = [] });
        using HttpResponseMessage after = await client.SendAsync(PeeringHarness.Get("/after", HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.Forbidden, after.StatusCode);
        Assert.Equal(1, harness.Terminator.Counters.HandshakesAccepted);
        Assert.Equal(1, harness.SidecarA.Requests + harness.SidecarB.Requests);
    }

    [Fact]
    public async Task TargetWithoutSidecars_Answers503AndCountsIt()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        ExportedHttpService web = harness.Snapshot(harness.GatewayLeaf).Services[0];
        harness.Terminator.Update(harness.Snapshot(harness.GatewayLeaf) with
        {
            Services = [web with { Targets = [web.Targets[0] with { Endpoints = [] }, web.Targets[1]] }],
        });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/none", HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, harness.Terminator.Counters.UpstreamFailures);
        Assert.Equal(1, harness.Terminator.Counters.Requests);
        Assert.Equal(0, harness.SidecarA.Requests + harness.SidecarB.Requests);
    }
}
