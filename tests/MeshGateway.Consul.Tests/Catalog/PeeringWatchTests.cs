using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// What the watcher reads for cluster peering (docs/consul-watch.md, "Cluster peering"), against the simulated agent in both of
/// its shapes: Consul 1.8.7 without peering (measured answers: an empty 404 from <c>/v1/peerings</c>, 500 <c>invalid config
/// entry kind</c>) and 1.13+ (<see cref="SimulatedConsulAgent.PeeringSupported"/>).
/// </summary>
public sealed class PeeringWatchTests
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AutoDetect_AgentWithoutPeering_ToldOnceNoErrorNoPeeringView()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        using var client = new ConsulClient(new ConsulClientOptions { Address = agent.Address });
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { GatewayPollInterval = TimeSpan.FromMilliseconds(20) });
        var told = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int times = 0;
        var errors = new List<string>();
        watcher.PeeringUnavailable = reason =>
        {
            Interlocked.Increment(ref times);
            told.TrySetResult(reason);
        };
        watcher.ErrorObserved = (source, _) =>
        {
            lock (errors)
            {
                errors.Add(source);
            }
        };

        await watcher.StartAsync();
        string reason = await told.Task.WaitAsync(s_bound);
        ConsulCatalogView view = await watcher.WaitForFirstViewAsync(s_bound);
        long before = agent.RequestsByEndpoint.GetValueOrDefault("/v1/peerings");

        // Five more gateway polls (20 ms apart; each reads the CA roots) pass without asking again.
        using (var deadline = new CancellationTokenSource(s_bound))
        {
            await agent.WaitForRequestsAsync("connect/ca", agent.RequestsByEndpoint.GetValueOrDefault("connect/ca") + 5, deadline.Token);
        }

        Assert.Contains("404", reason, StringComparison.Ordinal);
        Assert.Equal(1, Volatile.Read(ref times));
        Assert.Null(view.Peering);
        Assert.Equal(1, before);
        Assert.Equal(before, agent.RequestsByEndpoint.GetValueOrDefault("/v1/peerings"));
        lock (errors)
        {
            Assert.Empty(errors);
        }
    }

    [Fact]
    public async Task Required_AgentWithoutPeering_ReportsAnError()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        using var client = new ConsulClient(new ConsulClientOptions { Address = agent.Address });
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { Peering = true, GatewayPollInterval = TimeSpan.FromMilliseconds(20) });
        var failed = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ErrorObserved = (source, error) =>
        {
            if (source == "peering")
            {
                failed.TrySetResult(error);
            }
        };
        watcher.PeeringUnavailable = _ => failed.TrySetException(new InvalidOperationException("Peering = true must not be silenced."));

        await watcher.StartAsync();

        Assert.IsType<ConsulNotFoundException>(await failed.Task.WaitAsync(s_bound));
    }

    [Fact]
    public async Task AgentWithPeering_ViewCarriesExportsProtocolsPeeringsServersAndImports()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        agent.PeeringSupported = true;
        agent.Register(new SimInstance { Id = "db-1", Name = "db", Node = "n1", Address = "127.0.0.1", Port = 5432, Native = true });
        agent.Register(new SimInstance { Id = "web-1", Name = "web", Node = "n1", Address = "127.0.0.1", Port = 8080, Native = true });
        agent.SetConfigEntry("proxy-defaults", "global", """{"Config": {"protocol": "http"}}""");
        agent.SetConfigEntry("service-defaults", "db", """{"Protocol": "tcp"}""");
        agent.SetConfigEntry("exported-services", "default", """{"Services": [{"Name": "*", "Consumers": [{"Peer": "p1"}]}]}""");
        agent.SetConfigEntry("mesh", "mesh", """{"Peering": {"PeerThroughMeshGateways": true}}""");
        agent.AddPeering(new SimPeering { Name = "p1" });
        agent.Import("p1", new SimInstance
        {
            Id = "api-sidecar-proxy", Name = "api-sidecar-proxy", Kind = "connect-proxy", DestinationService = "api", Node = "gw", Address = "10.9.9.9", Port = 8443,
            PeerSni = ["api.default.default.us.external.x.consul"], PeerSpiffeIds = ["spiffe://x.consul/ns/default/dc/dc2/svc/api"],
        });
        agent.Import("p1", new SimInstance { Id = "api-1", Name = "api", Node = "peer-node", Address = "10.9.9.10", Port = 80 });
        using var client = new ConsulClient(new ConsulClientOptions { Address = agent.Address });
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { GatewayPollInterval = TimeSpan.FromMilliseconds(20) });

        await watcher.StartAsync();
        ConsulPeeringView peering;
        using (var deadline = new CancellationTokenSource(s_bound))
        {
            while (true)
            {
                ConsulCatalogView view = await watcher.Views.ReadAsync(deadline.Token);
                if (view.Peering is { ImportedInstances.Length: > 0, Protocols.Count: 2 } p)
                {
                    peering = p;
                    break;
                }
            }
        }

        Assert.Equal("*", Assert.Single(peering.ExportedServices!.Services!).Name);
        Assert.Equal(("tcp", "http"), (peering.Protocols["db"], peering.Protocols["web"])); // service-defaults, else proxy-defaults
        Assert.True(peering.PeerThroughMeshGateways);
        Assert.Equal("p1", Assert.Single(peering.Peerings).Name);
        Assert.Equal("consul", Assert.Single(peering.Servers).Service.Name);
        CatalogServiceInstanceAssert(Assert.Single(peering.ImportedInstances));
    }

    private static void CatalogServiceInstanceAssert(MeshGateway.Model.CatalogServiceInstance imported)
    {
        Assert.Equal(("p1", "api.default.default.us.external.x.consul", "spiffe://x.consul/ns/default/dc/dc2/svc/api"),
            (imported.Service.PeerName, imported.Service.PeerSni[0], imported.Service.PeerSpiffeIds[0]));
    }
}
