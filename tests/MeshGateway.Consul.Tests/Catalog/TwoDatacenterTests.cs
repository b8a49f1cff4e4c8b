using System.Diagnostics;
using System.Net;
using MeshGateway.Consul.Tests.Fixtures;
using Xunit.Abstractions;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Catalog;

[Collection("consul-dc1-dc2")]
public sealed class TwoDatacenterTests(TwoDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task View_GatewayRegisteredInDc2_AppearsInDc1ViewWithWanAddress()
    {
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        using ConsulClient dc2 = fixture.Dc2.CreateClient();
        using var lan = ViewWaiter.Listen(IPAddress.Loopback);
        string name = "mgw-" + Guid.NewGuid().ToString("N")[..8];
        await using var watcher = new ConsulCatalogWatcher(dc1, ViewWaiter.FastOptions());
        await watcher.StartAsync();
        ConsulCatalogView first = await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));

        long t0 = Stopwatch.GetTimestamp();
        await using var registrar = new ConsulGatewayRegistrar(dc2, new ConsulGatewayRegistrationOptions
        {
            ServiceId = name,
            ServiceName = name,
            LanAddress = "127.0.0.1",
            LanPort = lan.Port(),
            WanAddress = "127.0.0.2",
            WanPort = 28443,
        });
        await registrar.StartAsync();
        var (view, latency) = await ViewWaiter.WaitForAsync(watcher, v => v.RemoteGateways.TryGetValue("dc2", out var g) && g.Any(e => e.Service.Id == name), "the dc2 gateway", since: t0);
        output.WriteLine($"gateway registered in dc2 → dc1 view: {latency.TotalMilliseconds:0} ms (new name: catalog watch + probe + health watch)");

        Assert.Equal(fixture.TrustDomain, first.TrustDomain);
        Assert.Equal(["dc1", "dc2"], first.Datacenters.ToArray());
        CatalogServiceInstance gateway = Assert.Single(view.RemoteGateways["dc2"], e => e.Service.Id == name);
        BestAddress wan = BestAddress.Select(gateway, wan: true);
        Assert.Equal(("127.0.0.2", 28443, "dc2", "mesh-gateway"), (wan.Address, wan.Port, gateway.Node.Datacenter, gateway.Service.Kind));
        Assert.DoesNotContain(view.LocalGateways, e => e.Service.Id == name);

        t0 = Stopwatch.GetTimestamp();
        await registrar.StopAsync();
        var (_, goneLatency) = await ViewWaiter.WaitForAsync(watcher, v => !v.RemoteGateways.TryGetValue("dc2", out var g) || g.All(e => e.Service.Id != name), "the dc2 gateway gone", since: t0);
        output.WriteLine($"gateway deregistered in dc2 → dc1 view: {goneLatency.TotalMilliseconds:0} ms");
    }

    [Fact]
    public async Task View_RemoteGatewayWithoutWanTag_FallsBackToServiceAddress()
    {
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        using ConsulClient dc2 = fixture.Dc2.CreateClient();
        string name = "mgw-" + Guid.NewGuid().ToString("N")[..8];
        await dc2.RegisterServiceAsync(new ConsulServiceRegistration
        {
            Kind = "mesh-gateway",
            ID = name,
            Name = name,
            Address = "127.0.0.3",
            Port = 29443,
            Check = new ConsulCheckRegistration { TTL = "10m", Status = "passing" },
        });
        try
        {
            await using var watcher = new ConsulCatalogWatcher(dc1, ViewWaiter.FastOptions());
            await watcher.StartAsync();

            var (view, _) = await ViewWaiter.WaitForAsync(watcher, v => v.RemoteGateways.TryGetValue("dc2", out var g) && g.Any(e => e.Service.Id == name), "the dc2 gateway");

            CatalogServiceInstance gateway = Assert.Single(view.RemoteGateways["dc2"], e => e.Service.Id == name);
            BestAddress wan = BestAddress.Select(gateway, wan: true);
            Assert.Equal(("127.0.0.3", 29443, true), (wan.Address, wan.Port, gateway.HealthAndWeight(onlyPassing: false).Healthy));
        }
        finally
        {
            await dc2.DeregisterServiceAsync(name);
        }
    }

    [Fact]
    public async Task Client_Dc2ViaDc1_ForwardsAndUnknownDcIsTyped()
    {
        using ConsulClient dc1 = fixture.Dc1.CreateClient(datacenter: "dc2");

        ConsulResponse<ConsulCaRoots> roots = await dc1.GetCaRootsAsync();
        ConsulResponse<IReadOnlyDictionary<string, List<string>>> services = await dc1.GetServicesAsync();
        await Assert.ThrowsAsync<ConsulNoPathToDatacenterException>(() => dc1.GetServicesAsync(new ConsulQuery { Datacenter = "dc3" }));

        Assert.Equal(fixture.TrustDomain, roots.Value.TrustDomain);
        Assert.Contains("consul", services.Value.Keys);
    }
}
