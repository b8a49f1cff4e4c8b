using System.Collections.Immutable;
using System.Net;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Connect;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// What the watcher reads in WAN-federation mode (docs/consul-watch.md, "WAN federation"): the local servers, the DNS domain,
/// and other datacenters' gateways from the catalog or the federation states, whichever is newer per datacenter (Consul's
/// <c>GetMeshGatewayEndpoints</c>). The agent is a fake serving the HTTP shapes 1.8.7 answered in the two-datacenter test.
/// </summary>
public sealed class WanFederationWatchTests
{
    private static string Gateway(string dc, string wan, ulong modifyIndex, bool federating)
    {
        JsonNode entry = JsonNode.Parse(FakeAgent.Instance("mesh-gateway", dc, 8443, kind: "mesh-gateway", wanAddress: wan, wanPort: 443))!;
        entry["Service"]!["ModifyIndex"] = modifyIndex;
        entry["Node"]!["Node"] = "gw-" + wan;
        if (federating)
        {
            entry["Service"]!["Meta"] = new JsonObject { ["consul-wan-federation"] = "1" };
        }

        return entry.ToJsonString();
    }

    private static FakeAgent Agent(ulong catalogIndex, ulong stateIndex)
    {
        var agent = new FakeAgent();
        agent.Set("/v1/agent/self", """{"Config": {"Datacenter": "dc1", "PrimaryDatacenter": "dc1", "NodeName": "n1"}, "DebugConfig": {"DNSDomain": "Mesh.Example.", "HTTPMaxConnsPerClient": 200}}""");
        agent.Set("/v1/connect/ca/roots", """{"ActiveRootID": "r1", "TrustDomain": "11111111-2222-3333-4444-555555555555.consul", "Roots": [{"ID": "r1", "Active": true}]}""");
        agent.Set("/v1/health/state/any", "[]");
        agent.Set("/v1/catalog/datacenters", """["dc1", "dc2"]""");
        agent.Set("/v1/catalog/services", request => (HttpStatusCode.OK, request.RequestUri!.Query.Contains("dc=dc2", StringComparison.Ordinal) ? """{"mesh-gateway": []}""" : "{}"));
        agent.Set("/v1/health/service/mesh-gateway", request => (HttpStatusCode.OK,
            request.RequestUri!.Query.Contains("dc=dc2", StringComparison.Ordinal) ? "[" + Gateway("dc2", "198.51.100.1", catalogIndex, federating: true) + "]" : "[]"));
        agent.Set("/v1/health/service/consul", "[" + FakeAgent.Instance("consul", "dc1", 8300) + "]");
        agent.Set("/v1/internal/federation-states/mesh-gateways", $$"""
            {
              "dc2": [{{Gateway("dc2", "198.51.100.2", stateIndex, federating: true)}}],
              "dc3": [{{Gateway("dc3", "198.51.100.3", 1, federating: true)}}, {{Gateway("dc3", "198.51.100.33", 1, federating: false)}}],
              "dc4": [{{Gateway("dc4", "198.51.100.4", 1, federating: false)}}]
            }
            """);
        return agent;
    }

    private static async Task<ConsulCatalogView> ViewWithServersAsync(FakeAgent agent)
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:8500"), Handler = agent });
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { WanFederation = true });
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(30));
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            ConsulCatalogView view = await watcher.Views.ReadAsync(deadline.Token);
            if (view.LocalServers.Length > 0 && view.RemoteGateways.ContainsKey("dc3"))
            {
                return view;
            }
        }
    }

    private static IEnumerable<string> WanAddresses(ImmutableArray<CatalogServiceInstance> gateways) => gateways.Select(g => BestAddress.Select(g, wan: true).Address);

    [Fact]
    public async Task Watch_FederationStateNewerThanCatalog_TakesTheStateOnlyFederatingGatewaysServersAndDomain()
    {
        ConsulCatalogView view = await ViewWithServersAsync(Agent(catalogIndex: 10, stateIndex: 20));

        Assert.Equal(["198.51.100.2"], WanAddresses(view.RemoteGateways["dc2"]));
        Assert.Equal(["198.51.100.3"], WanAddresses(view.RemoteGateways["dc3"])); // the one without the meta is left out
        Assert.False(view.RemoteGateways.ContainsKey("dc4"));
        CatalogServiceInstance server = Assert.Single(view.LocalServers);
        Assert.Equal(8300, server.Service.Port);
        Assert.Equal("mesh.example", view.DnsDomain);
    }

    [Fact]
    public async Task Watch_CatalogNewerThanFederationState_KeepsTheCatalogsGateways()
    {
        ConsulCatalogView view = await ViewWithServersAsync(Agent(catalogIndex: 30, stateIndex: 20));

        Assert.Equal(["198.51.100.1"], WanAddresses(view.RemoteGateways["dc2"]));
        Assert.Equal(["198.51.100.3"], WanAddresses(view.RemoteGateways["dc3"]));
    }
}
