using System.Diagnostics;
using System.Net;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Routing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Routing;

[Collection("consul-dc1-dc2")]
public sealed class RouteTableTwoDatacenterTests(TwoDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Table_GatewayRegisteredInDc2_WildcardAndExactRoutesToItsWanAddress()
    {
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        using ConsulClient dc2 = fixture.Dc2.CreateClient();
        using var lan = ViewWaiter.Listen(IPAddress.Loopback);
        string name = "mgw-rt-" + Guid.NewGuid().ToString("N")[..8];
        string td = fixture.TrustDomain;
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(dc1, target, TableWaiter.Fast());
        RouteTable first = await source.StartAsync();
        Assert.Null(TableWaiter.Find(first, $"api.default.dc1.internal.{td}"));

        long t0 = Stopwatch.GetTimestamp();
        await using var registrar = new ConsulGatewayRegistrar(dc2, new ConsulGatewayRegistrationOptions
        {
            ServiceId = name,
            ServiceName = name,
            LanAddress = "127.0.0.1",
            LanPort = lan.Port(),
            WanAddress = "127.0.0.3",
            WanPort = 29443,
        });
        await registrar.StartAsync();
        var (table, latency) = await TableWaiter.WaitForAsync(source,
            t => TableWaiter.Find(t, $"dc2.internal.{td}") is { } r && r.Cluster.Endpoints.Any(e => e.Port == 29443), "the dc2 gateway", t0);
        output.WriteLine($"gateway registered in dc2 → dc1 route table: {latency.TotalMilliseconds:0} ms");

        Route wildcard = TableWaiter.Find(table, $"web.default.dc2.internal.{td}")!;
        Assert.Equal(RouteKind.Wildcard, wildcard.Kind);
        Assert.Equal($"*.dc2.internal.{td}", wildcard.Pattern);
        Assert.Contains(new IPEndPoint(IPAddress.Parse("127.0.0.3"), 29443), wildcard.Cluster.Endpoints.Select(e => e.EndPoint));
        Assert.Same(wildcard.Cluster, TableWaiter.Find(table, $"dc2.internal.{td}")!.Cluster);
        Assert.Null(TableWaiter.Find(table, $"web.default.dc1.internal.{td}")); // no wildcard for the local DC

        t0 = Stopwatch.GetTimestamp();
        await registrar.StopAsync();
        var (_, goneLatency) = await TableWaiter.WaitForAsync(source,
            t => TableWaiter.Find(t, $"dc2.internal.{td}") is not { } r || r.Cluster.Endpoints.All(e => e.Port != 29443), "the dc2 gateway gone", t0);
        output.WriteLine($"gateway deregistered in dc2 → dc1 route table: {goneLatency.TotalMilliseconds:0} ms");
    }
}
