using System.Net;

namespace MeshGateway.Peering.Tests;

/// <summary>A service-resolver's failover: requests go to the first failover target with a sidecar while the primary has none.</summary>
public sealed class FailoverTests
{
    /// <summary>The harness's snapshot with target A on <paramref name="endpointsOfA"/>, failing over to B.</summary>
    private static PeeringSnapshot AFailingOverToB(PeeringHarness harness, params DnsEndPoint[] endpointsOfA)
    {
        PeeringSnapshot snapshot = harness.Snapshot(harness.GatewayLeaf);
        ExportedHttpService web = snapshot.Services[0];
        ChainTargetEndpoints a = web.Targets[0], b = web.Targets[1];
        return snapshot with { Services = [web with { Targets = [a with { Endpoints = endpointsOfA, FailoverTargetIds = [b.Id] }, b] }] };
    }

    [Fact]
    public async Task PrimaryWithoutSidecars_RequestsGoToTheFailoverTarget()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        harness.Terminator.Update(AFailingOverToB(harness));
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/f", HttpVersion.Version20));

        Assert.Equal("web-b /f", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, harness.Terminator.Counters.UpstreamFailures);
    }

    [Fact]
    public async Task PrimaryWithASidecar_FailoverTargetUnused()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        harness.Terminator.Update(AFailingOverToB(harness, harness.SidecarA.EndPoint));
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/f", HttpVersion.Version11));

        Assert.Equal("web-a /f", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, harness.SidecarB.Requests);
    }

    [Fact]
    public async Task NeitherHasASidecar_503()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        PeeringSnapshot snapshot = AFailingOverToB(harness);
        ExportedHttpService web = snapshot.Services[0];
        harness.Terminator.Update(snapshot with { Services = [web with { Targets = [web.Targets[0], web.Targets[1] with { Endpoints = [] }] }] });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/f", HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, harness.Terminator.Counters.UpstreamFailures);
    }

    [Theory]
    [InlineData("nowhere")]
    [InlineData(PeeringHarness.TargetA)]
    public async Task Update_FailoverToAnUnknownTargetOrItself_Refused(string failover)
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        PeeringSnapshot snapshot = harness.Snapshot(harness.GatewayLeaf);
        ExportedHttpService web = snapshot.Services[0];

        ArgumentException ex = Assert.Throws<ArgumentException>(() => harness.Terminator.Update(
            snapshot with { Services = [web with { Targets = [web.Targets[0] with { FailoverTargetIds = [failover] }, web.Targets[1]] }] }));

        Assert.Contains($"fails over to '{failover}'", ex.Message, StringComparison.Ordinal);
    }
}
