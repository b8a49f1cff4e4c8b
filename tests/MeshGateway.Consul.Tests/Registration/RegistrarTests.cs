using System.Net;
using MeshGateway.Consul.Tests.Fixtures;
using Xunit.Abstractions;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Registration;

[Collection("consul-dc1")]
public sealed class RegistrarTests(SingleDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task StartAsync_RealAgent_GatewayInCatalogWithKindTaggedAddressesAndPassingTcpCheck()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        using var port = ViewWaiter.Listen(IPAddress.Loopback);
        string name = "mgw-" + Guid.NewGuid().ToString("N")[..8];
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
        var registrar = new ConsulGatewayRegistrar(client, new ConsulGatewayRegistrationOptions
        {
            ServiceId = name,
            ServiceName = name,
            LanAddress = "127.0.0.1",
            LanPort = port.Port(),
            WanAddress = "127.0.0.2",
            WanPort = 18443,
            CheckInterval = TimeSpan.FromSeconds(1),
        });

        await registrar.StartAsync();
        await ConsulWait.UntilChangedAsync(q => client.GetHealthServiceAsync(name, passingOnly: true, q), e => e.Count == 1, "a passing TCP check", fixture.Agent);
        CatalogServiceInstance entry = Assert.Single((await client.GetHealthServiceAsync(name)).Value);
        var (view, _) = await ViewWaiter.WaitForAsync(watcher, v => v.LocalGateways.Any(g => g.Service.Id == name && g.HealthAndWeight(onlyPassing: false).Healthy), "the local gateway");
        await registrar.StopAsync();
        IReadOnlyList<CatalogServiceInstance> afterStop = (await client.GetHealthServiceAsync(name)).Value;

        Assert.Equal("mesh-gateway", entry.Service.Kind);
        Assert.Equal(("127.0.0.1", port.Port()), (entry.Service.Address, entry.Service.Port));
        Assert.Equal(("127.0.0.1", port.Port()), (entry.Service.TaggedAddresses["lan"].Address, entry.Service.TaggedAddresses["lan"].Port));
        Assert.Equal(("127.0.0.2", 18443), (entry.Service.TaggedAddresses["wan"].Address, entry.Service.TaggedAddresses["wan"].Port));
        Assert.Equal([CatalogHealthStatus.Passing, CatalogHealthStatus.Passing], entry.Checks); // serfHealth and the registrar's TCP check
        CatalogServiceInstance local = Assert.Single(view.LocalGateways, g => g.Service.Id == name);
        BestAddress lan = BestAddress.Select(local, wan: false);
        Assert.Equal(("127.0.0.1", port.Port()), (lan.Address, lan.Port)); // LAN best address for the local DC
        Assert.Empty(afterStop);
        Assert.Equal(1, registrar.RegistrationCount);
        await registrar.DisposeAsync();
    }

    [Fact]
    public async Task KeepAlive_AgentLosesRegistration_RegistersAgain()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        using var port = ViewWaiter.Listen(IPAddress.Loopback);
        string name = "mgw-" + Guid.NewGuid().ToString("N")[..8];
        var reregistered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registrar = new ConsulGatewayRegistrar(
            client,
            new ConsulGatewayRegistrationOptions { ServiceId = name, ServiceName = name, LanAddress = "127.0.0.1", LanPort = port.Port() },
            new BlockingQueryOptions { Wait = TimeSpan.FromSeconds(30), ErrorBackoffBase = TimeSpan.FromMilliseconds(200) })
        {
            Reregistered = () => reregistered.TrySetResult(),
        };
        await registrar.StartAsync();
        // StartAsync completes once the agent accepted the registration, and the agent's local state has it from then on.
        Assert.Equal(name, (await client.GetAgentServiceAsync(name)).Value.Service);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await client.DeregisterServiceAsync(name); // behind the registrar's back
        await reregistered.Task.WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"deregistered behind its back → registered again: {clock.Elapsed.TotalMilliseconds:0} ms");

        ConsulAgentService again = (await client.GetAgentServiceAsync(name)).Value;
        Assert.Equal("mesh-gateway", again.Kind);
        Assert.Equal(2, registrar.RegistrationCount);
    }
}
