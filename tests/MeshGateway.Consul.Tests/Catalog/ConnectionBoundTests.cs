using System.Diagnostics;
using MeshGateway.Testing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>The watcher stays within <see cref="ConsulClientOptions.MaxConnections"/> agent connections whatever the catalog size.</summary>
public sealed class ConnectionBoundTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Watcher_TwoThousandServicesAndChanges_NeverOpensMoreThanMaxConnections()
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        IReadOnlyDictionary<string, string[]> ids = agent.Build(new CatalogShape
        {
            Services = 2_000,
            Instances = 6_000,
            Nodes = 200,
            Datacenters = 4,
            GatewaysPerDatacenter = 2,
            RemoteServicesPerDatacenter = 50,
        });
        using ConsulClient client = SimulatedCatalog.Client(agent);
        await using var watcher = new ConsulCatalogWatcher(client, SimulatedCatalog.FastOptions());
        var clock = Stopwatch.StartNew();
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
        TimeSpan first = clock.Elapsed;

        // Changes of every kind, one at a time, each awaited: a weight change is an unexplained index move (a sweep of all
        // 2,000 services through the lanes). Batched changes are covered by Watcher_ChangesInOneRound_HiddenRegistrationFoundByVerificationSweep.
        Action[] changes =
        [
            () => agent.SetServiceCheck(ids["svc-00007"][0], "critical"),
            () => agent.SetWeights(ids["svc-00011"][1], 9, 3),
            () => agent.Deregister(ids["svc-00013"][2]),
            () => agent.Register(new SimInstance { Id = "extra-1", Name = "svc-extra", Node = "node-00001", Address = "10.9.9.9", Port = 9999, Native = true }),
            () => agent.SetNodeCheck("node-00003", "critical"),
            () => agent.SetConfigEntry("service-resolver", "svc-00017", """{ "Subsets": { "v2": { "Filter": "Service.Meta.version == v2" } } }"""),
        ];
        TimeSpan converged = TimeSpan.Zero;
        foreach (Action change in changes)
        {
            change();
            converged += await SimulatedCatalog.WaitForTableAsync(watcher, SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent)), TimeSpan.FromSeconds(30));
        }

        output.WriteLine($"first view {first.TotalMilliseconds:0} ms, changes converged in {converged.TotalMilliseconds:0} ms; max open connections {agent.MaxOpenConnections} " +
            $"(accepted {agent.AcceptedConnections}); sweeps {watcher.SweepCount}, refetches {watcher.RefetchCount}; requests: " +
            string.Join(", ", agent.RequestsByEndpoint.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")));
        Assert.True(watcher.SweepCount >= 1, "the weight change should have caused a sweep");
        Assert.InRange(agent.MaxOpenConnections, ConsulCatalogWatcherOptions.LongPollCount, client.Options.MaxConnections);
    }

    [Fact]
    public async Task Watcher_ChangesInOneRound_HiddenRegistrationFoundByVerificationSweep()
    {
        await using Watched run = await Watched.StartAsync(new CatalogShape { Services = 200, Instances = 400, Nodes = 20, Datacenters = 1, GatewaysPerDatacenter = 1 }, TimeSpan.FromMilliseconds(300));
        (SimulatedConsulAgent agent, _, ConsulCatalogWatcher watcher, IReadOnlyDictionary<string, string[]> ids) = run;
        long sweeps = watcher.SweepCount;

        // Both in one long-poll round: a weight-only re-registration (visible in no name, tag or check) and a new service
        // name (which explains the round's catalog index). Before the verification sweep the weight change was never seen.
        agent.SetWeights(ids["svc-00011"][1], 9, 3);
        agent.Register(new SimInstance { Id = "extra-1", Name = "svc-extra", Node = "node-00001", Address = "10.9.9.9", Port = 9999, Native = true });

        TimeSpan converged = await SimulatedCatalog.WaitForTableAsync(watcher, SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent)), TimeSpan.FromSeconds(30));
        output.WriteLine($"converged after {converged.TotalMilliseconds:0} ms; sweeps {watcher.SweepCount - sweeps}");
        Assert.True(watcher.SweepCount > sweeps, "the round should have been verified by a sweep");
    }

    [Fact]
    public async Task Watcher_ReRegistrationThatAlsoFlipsItsCheck_Converges()
    {
        await using Watched run = await Watched.StartAsync(new CatalogShape { Services = 200, Instances = 400, Nodes = 20, Datacenters = 1, GatewaysPerDatacenter = 1 });
        (SimulatedConsulAgent agent, _, ConsulCatalogWatcher watcher, IReadOnlyDictionary<string, string[]> ids) = run;

        // A re-registration that changes the weight and writes a check in the same index: the checks trigger names it (a
        // sweep started for the index stops when it does).
        agent.Register(agent.Find(ids["svc-00012"][0])! with { PassingWeight = 7, CreateIndex = 0, ModifyIndex = 0 }, checkStatus: "critical");

        await SimulatedCatalog.WaitForTableAsync(watcher, SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent)), TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Watcher_SweepForOneChange_StopsAtTheNodeThatCarriesIt()
    {
        // No verification sweep (a full one) falls due during the test: the sweep below is the one for the change.
        await using Watched run = await Watched.StartAsync(new CatalogShape { Services = 2_000, Instances = 4_000, Nodes = 200, Datacenters = 1, GatewaysPerDatacenter = 1 }, TimeSpan.FromMinutes(5));
        (SimulatedConsulAgent agent, _, ConsulCatalogWatcher watcher, _) = run;
        SimSnapshot snapshot = agent.Snapshot();
        // The sweep reads nodes in the order /v1/catalog/nodes lists them (by name).
        string[] nodes = [.. snapshot.Nodes.Select(n => n.Name).Order(StringComparer.Ordinal)];
        string first = nodes.First(n => snapshot.Instances.Any(i => i.Node == n && i.ConnectTarget is not null));
        int position = Array.IndexOf(nodes, first);

        // One check-less change on the first node the sweep reads that has a Connect instance: the sweep stops there
        // instead of reading all 200 nodes. How many reads start before it stops depends on timing: reads complete out of
        // order, and while the carrying node's read is in flight the other lanes go on to further nodes (CI once counted
        // 10 for the change on node 2, past the earlier bound of position + MaxConnections, 9); nor need the earlier nodes'
        // reads reach the agent first: the lanes start together, and the carrying node's answer can stop the sweep before
        // the others are sent (a run counted 1 for the change on node 2, below the earlier lower bound, position + 1). So
        // the bounds asserted are "read the carrying node, and stopped early": at least one read, at most half the nodes,
        // where a sweep that did not stop reads all of them.
        long before = agent.RequestsByEndpoint.GetValueOrDefault("catalog/node-services");
        agent.SetWeights(snapshot.Instances.First(i => i.Node == first && i.ConnectTarget is not null).Id, 5, 1);
        await SimulatedCatalog.WaitForTableAsync(watcher, SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent)), TimeSpan.FromSeconds(30));
        long reads = agent.RequestsByEndpoint.GetValueOrDefault("catalog/node-services") - before;
        output.WriteLine($"node reads for a change on node {position + 1} of {nodes.Length}: {reads}");
        Assert.InRange(reads, 1, nodes.Length / 2);
    }

    [Fact]
    public async Task Watcher_TwoCheckLessChangesInOneRound_TheOneTheSweepStoppedBeforeIsFoundByVerification()
    {
        await using Watched run = await Watched.StartAsync(new CatalogShape { Services = 2_000, Instances = 4_000, Nodes = 200, Datacenters = 1, GatewaysPerDatacenter = 1 }, TimeSpan.FromMilliseconds(200));
        (SimulatedConsulAgent agent, _, ConsulCatalogWatcher watcher, _) = run;
        SimSnapshot snapshot = agent.Snapshot();
        SimInstance[] routable = [.. snapshot.Instances.Where(i => i.ConnectTarget is not null).OrderBy(i => i.Node, StringComparer.Ordinal)];

        // The later index is on an early node: a sweep looking for it stops before the last node, where the earlier change
        // is. The stopped sweep is followed by a verification sweep, which finds it.
        agent.SetWeights(routable[^1].Id, 6, 1);
        agent.SetWeights(routable[0].Id, 7, 1);
        await SimulatedCatalog.WaitForTableAsync(watcher, SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent)), TimeSpan.FromSeconds(30));
    }

    /// <summary>A simulated agent filled with a catalog, a client and a started watcher that has its first view.</summary>
    private sealed class Watched : IAsyncDisposable
    {
        private Watched(SimulatedConsulAgent agent, IReadOnlyDictionary<string, string[]> ids, ConsulClient client, ConsulCatalogWatcher watcher)
        {
            Agent = agent;
            Ids = ids;
            Client = client;
            Watcher = watcher;
        }

        public SimulatedConsulAgent Agent { get; }

        public IReadOnlyDictionary<string, string[]> Ids { get; }

        public ConsulClient Client { get; }

        public ConsulCatalogWatcher Watcher { get; }

        public static async Task<Watched> StartAsync(CatalogShape shape, TimeSpan? verificationSweepDelay = null)
        {
            SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
            IReadOnlyDictionary<string, string[]> ids = agent.Build(shape);
            ConsulClient client = SimulatedCatalog.Client(agent);
            ConsulCatalogWatcherOptions options = SimulatedCatalog.FastOptions();
            options.VerificationSweepDelay = verificationSweepDelay ?? options.VerificationSweepDelay;
            var watched = new Watched(agent, ids, client, new ConsulCatalogWatcher(client, options));
            try
            {
                await watched.Watcher.StartAsync();
                await watched.Watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
                return watched;
            }
            catch
            {
                await watched.DisposeAsync();
                throw;
            }
        }

        public void Deconstruct(out SimulatedConsulAgent agent, out ConsulClient client, out ConsulCatalogWatcher watcher, out IReadOnlyDictionary<string, string[]> ids) =>
            (agent, client, watcher, ids) = (Agent, Client, Watcher, Ids);

        public async ValueTask DisposeAsync()
        {
            await Watcher.DisposeAsync();
            Client.Dispose();
            await Agent.DisposeAsync();
        }
    }
}
