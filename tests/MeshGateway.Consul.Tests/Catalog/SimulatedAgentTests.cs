using System.Diagnostics;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>The simulated agent reproduces the index facts measured on Consul 1.8.7 that the watcher relies on.</summary>
public sealed class SimulatedAgentTests
{
    [Fact]
    public async Task Indexes_WeightChange_MovesServicesIndexWithSameBodyButNotChecksIndex()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        agent.Register(new SimInstance { Id = "web-1", Name = "web", Node = "n1", Address = "10.0.0.1", Port = 80, Native = true, Tags = ["a"] });
        agent.Register(new SimInstance { Id = "api-1", Name = "api", Node = "n1", Address = "10.0.0.1", Port = 81, Native = true });
        using ConsulClient client = SimulatedCatalog.Client(agent);
        var services = await client.GetServicesAsync();
        var checks = await client.GetHealthStateAsync("any");
        var api = await client.GetHealthConnectAsync("api");

        agent.SetWeights("web-1", 5, 2, withChecks: false);
        var services2 = await client.GetServicesAsync();
        var checks2 = await client.GetHealthStateAsync("any");
        var api2 = await client.GetHealthConnectAsync("api");
        var web2 = await client.GetHealthConnectAsync("web");

        Assert.True(services2.Index > services.Index);
        Assert.Equal(services.BodyHash, services2.BodyHash);
        Assert.Equal(checks.Index, checks2.Index);
        Assert.Equal(api.Index, api2.Index);
        Assert.Equal(services2.Index, web2.Index);
        Assert.Equal(5, web2.Value.Single().Service.Weights!.Value.Passing);

        // Carrying its unchanged checks (as a client agent's sync does), the checks index moves too, but no check's own.
        agent.SetWeights("web-1", 6, 2);
        var services3 = await client.GetServicesAsync();
        var checks3 = await client.GetHealthStateAsync("any");
        Assert.Equal(services3.Index, checks3.Index);
        Assert.Equal(
            checks2.Value.Select(c => (c.CheckID, c.ModifyIndex)).Order(),
            checks3.Value.Select(c => (c.CheckID, c.ModifyIndex)).Order());
    }

    [Fact]
    public async Task Indexes_ConfigWriteOfAnyKind_MovesEveryKindsIndex()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        using ConsulClient client = SimulatedCatalog.Client(agent);
        var before = await client.ListProxyDefaultsAsync();
        agent.SetConfigEntry("service-defaults", "web", """{ "Protocol": "tcp" }""");
        var after = await client.ListProxyDefaultsAsync();
        var resolvers = await client.ListServiceResolversAsync();
        var defaults = await client.ListServiceDefaultsAsync();

        Assert.True(after.Index > before.Index);
        Assert.Empty(after.Value);
        Assert.Equal(after.Index, resolvers.Index);
        Assert.Equal("web", Assert.Single(defaults.Value).Name);
    }

    [Fact]
    public async Task Blocking_ChangeWhileWaiting_AnswersAtOnceAndTimesOutOtherwise()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        agent.Register(new SimInstance { Id = "web-1", Name = "web", Node = "n1", Address = "10.0.0.1", Port = 80, Native = true });
        using ConsulClient client = SimulatedCatalog.Client(agent);
        var first = await client.GetHealthStateAsync("any");

        var timer = Stopwatch.StartNew();
        var idle = await client.GetHealthStateAsync("any", new ConsulQuery { Index = first.Index, Wait = TimeSpan.FromSeconds(1) });
        TimeSpan idleTime = timer.Elapsed;

        Task<ConsulResponse<IReadOnlyList<ConsulCheckState>>> waiting = client.GetHealthStateAsync("any", new ConsulQuery { Index = first.Index, Wait = TimeSpan.FromSeconds(30) });
        timer.Restart();
        agent.SetServiceCheck("web-1", "critical");
        var woken = await waiting.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(first.Index, idle.Index);
        Assert.InRange(idleTime, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(10));
        Assert.True(woken.Index > first.Index);
        Assert.Contains(woken.Value, c => c.CheckID == "service:web-1" && c.Status == "critical");
        Assert.True(timer.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Requests_UnknownDatacenterOrFilter_AnswerLikeConsul()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        agent.AddDatacenter("dc2", gateways: 1);
        using ConsulClient client = SimulatedCatalog.Client(agent);

        await Assert.ThrowsAsync<ConsulNoPathToDatacenterException>(() => client.GetServicesAsync(new ConsulQuery { Datacenter = "nowhere" }));
        var gateways = await client.GetHealthServiceAsync("mesh-gateway", query: new ConsulQuery { Datacenter = "dc2", Filter = "Service.Kind == \"mesh-gateway\"" });
        var names = await client.GetServicesAsync(new ConsulQuery { Datacenter = "dc2", Filter = "ServiceKind == \"mesh-gateway\"" });

        Assert.Equal("198.51.2.1", Assert.Single(gateways.Value).Service!.TaggedAddresses!["wan"]!.Address);
        Assert.Equal(["consul", "mesh-gateway"], names.Value.Keys.Order(StringComparer.Ordinal).ToArray());
    }
}
