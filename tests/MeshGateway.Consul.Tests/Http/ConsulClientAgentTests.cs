using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Http;

[Collection("consul-dc1")]
public sealed class ConsulClientAgentTests(SingleDatacenterFixture fixture)
{
    [Fact]
    public async Task AgentEndpoints_RealAgent_ReturnDatacenterVersionLeaderAndDatacenters()
    {
        using ConsulClient client = fixture.Agent.CreateClient();

        ConsulAgentSelf self = (await client.GetAgentSelfAsync()).Value;
        string leader = (await client.GetLeaderAsync()).Value;
        IReadOnlyList<string> dcs = (await client.GetDatacentersAsync()).Value;
        ConsulResponse<ConsulCaRoots> roots = await client.GetCaRootsAsync();

        Assert.Equal("dc1", self.Config!.Datacenter);
        Assert.Equal("1.8.7", self.Config.Version);
        Assert.Equal(fixture.Agent.NodeName, self.Config.NodeName);
        Assert.Equal($"127.0.0.1:{fixture.Agent.ServerPort}", leader);
        Assert.Equal(["dc1"], dcs);
        Assert.EndsWith(".consul", roots.Value.TrustDomain);
        Assert.True(roots.Index > 0);
        Assert.True((await client.GetServicesAsync()).KnownLeader); // (1.8.7 reports false on connect/ca/roots)
    }

    [Fact]
    public async Task Errors_RealAgent_AreTyped()
    {
        using ConsulClient client = fixture.Agent.CreateClient();

        ConsulNotFoundException missing = await Assert.ThrowsAsync<ConsulNotFoundException>(() => client.GetServiceResolverAsync("no-such-" + Guid.NewGuid().ToString("N")));
        ConsulNoPathToDatacenterException noPath = await Assert.ThrowsAsync<ConsulNoPathToDatacenterException>(() => client.GetServicesAsync(new ConsulQuery { Datacenter = "dc-nowhere" }));
        await Assert.ThrowsAsync<ConsulNotFoundException>(() => client.GetAgentServiceAsync("no-such-" + Guid.NewGuid().ToString("N")));

        Assert.Contains("Config entry not found", missing.Body);
        Assert.Equal("dc-nowhere", noPath.Datacenter);
    }

    [Fact]
    public async Task RegisterGetDeregister_RealAgent_RoundTripsAndBlockingQueryWakesUp()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        string name = "rt-" + Guid.NewGuid().ToString("N")[..8];
        ConsulResponse<IReadOnlyDictionary<string, List<string>>> before = await client.GetServicesAsync();

        Task<ConsulResponse<IReadOnlyDictionary<string, List<string>>>> blocked = client.GetServicesAsync(new ConsulQuery { Index = before.Index, Wait = TimeSpan.FromSeconds(60) });
        await ViewWaiter.RegisterNativeAsync(client, name, name + "-1", 9999, meta: new Dictionary<string, string> { ["version"] = "v1" });
        ConsulResponse<IReadOnlyDictionary<string, List<string>>> after = await blocked.WaitAsync(TimeSpan.FromSeconds(50));
        ConsulResponse<ConsulAgentService> agentService = await client.GetAgentServiceAsync(name + "-1");
        IReadOnlyList<CatalogServiceInstance> connect = (await client.GetHealthConnectAsync(name)).Value;
        await client.DeregisterServiceAsync(name + "-1");

        Assert.True(after.Index > before.Index);
        Assert.Contains(name, after.Value.Keys);
        Assert.Equal(name, agentService.Value.Service);
        Assert.False(string.IsNullOrEmpty(agentService.ContentHash));
        Assert.Equal("v1", agentService.Value.Meta!["version"]);
        Assert.True(agentService.Value.Connect!.Native);
        Assert.Equal((name + "-1", name, string.Empty, 9999), (Assert.Single(connect).Service.Id, connect[0].Service.Name, connect[0].Service.Kind, connect[0].Service.Port)); // native: in /health/connect as itself
        await Assert.ThrowsAsync<ConsulNotFoundException>(() => client.GetAgentServiceAsync(name + "-1"));
    }
}
