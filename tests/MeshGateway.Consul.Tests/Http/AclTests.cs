using System.Net;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Http;

[Collection("consul-acl")]
public sealed class AclTests(AclAgentFixture fixture)
{
    private const string GatewayOnly = """service "mesh-gateway" { policy = "write" }""";

    // docs/consul-behaviour.md §7.1 for Consul 1.8 (no mesh/peering resources yet).
    private const string Enough = """
        service "mesh-gateway" { policy = "write" }
        service_prefix "" { policy = "read" }
        node_prefix "" { policy = "read" }
        agent_prefix "" { policy = "read" }
        """;

    [Fact]
    public async Task TokenLackingServiceRead_WritesAndAgentReadsDenied_ReadsFiltered()
    {
        string token = await fixture.CreateTokenAsync(GatewayOnly);
        string secretService = "secret-" + Guid.NewGuid().ToString("N")[..8];
        using ConsulClient master = fixture.Agent.CreateClient();
        await ViewWaiter.RegisterNativeAsync(master, secretService, secretService, 7301);
        using ConsulClient limited = fixture.Agent.CreateClient(token);

        ConsulPermissionDeniedException register = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(
            () => limited.RegisterServiceAsync(new ConsulServiceRegistration { Name = "web", Port = 1 }));
        ConsulPermissionDeniedException self = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => limited.GetAgentSelfAsync());
        IReadOnlyDictionary<string, List<string>> filtered = (await limited.GetServicesAsync()).Value;
        IReadOnlyList<CatalogServiceInstance> filteredHealth = (await limited.GetHealthConnectAsync(secretService)).Value;
        IReadOnlyDictionary<string, List<string>> all = (await master.GetServicesAsync()).Value;

        Assert.StartsWith("Permission denied", register.Body);
        Assert.Equal(HttpStatusCode.Forbidden, register.StatusCode);
        Assert.StartsWith("Permission denied", self.Body);
        Assert.DoesNotContain(token, register.Message);
        Assert.DoesNotContain(token, register.ToString());
        Assert.DoesNotContain(secretService, filtered.Keys);
        Assert.Empty(filteredHealth);
        Assert.Contains(secretService, all.Keys);
        await master.DeregisterServiceAsync(secretService);
    }

    [Fact]
    public async Task UnknownToken_IsAclNotFound()
    {
        string bogus = Guid.NewGuid().ToString();
        using ConsulClient client = fixture.Agent.CreateClient(bogus);

        ConsulAclNotFoundException error = await Assert.ThrowsAsync<ConsulAclNotFoundException>(() => client.GetServicesAsync());

        Assert.Contains("ACL not found", error.Body);
        Assert.DoesNotContain(bogus, error.ToString());
    }

    [Fact]
    public async Task TokenWithEnoughPermissions_RegistersAndWatches()
    {
        string token = await fixture.CreateTokenAsync(Enough);
        string service = "visible-" + Guid.NewGuid().ToString("N")[..8];
        using ConsulClient master = fixture.Agent.CreateClient();
        await ViewWaiter.RegisterNativeAsync(master, service, service, 7302);
        using ConsulClient client = fixture.Agent.CreateClient(token);
        using var port = ViewWaiter.Listen(IPAddress.Loopback);
        await using var registrar = new ConsulGatewayRegistrar(client, new ConsulGatewayRegistrationOptions { LanAddress = "127.0.0.1", LanPort = port.Port() });
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());

        await registrar.StartAsync();
        await watcher.StartAsync();
        var (view, _) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey(service) && v.LocalGateways.Any(g => g.Service.Id == "mesh-gateway"), "the service and the gateway");

        Assert.Equal("dc1", view.Datacenter);
        Assert.Equal(7302, Assert.Single(view.Services[service].Instances).Service.Port);
        await registrar.StopAsync();
        await master.DeregisterServiceAsync(service);
    }

    [Fact]
    public async Task WatcherWithoutAgentRead_AndNoDatacenterOption_FailsToStartWithTypedError()
    {
        string token = await fixture.CreateTokenAsync(GatewayOnly);
        using ConsulClient client = fixture.Agent.CreateClient(token);
        await using var watcher = new ConsulCatalogWatcher(client);

        await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => watcher.StartAsync());
    }
}
