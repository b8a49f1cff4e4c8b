using System.Diagnostics;
using System.Globalization;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Routing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// The catalog watch at mesh size against a real Consul 1.8.7 agent: a bounded number of agent connections (counted at
/// the client's connect step), another local client answered within 1 s throughout, every change reflected, outages survived.
/// Counts come from the environment so the same harness runs bigger: <c>MG_SCALE_SERVICES</c> (default 2000),
/// <c>MG_CHURN_SECONDS</c> (default 100).
/// </summary>
public sealed class ScaleTests(ITestOutputHelper output)
{
    private static int Services => EnvInt("MG_SCALE_SERVICES", 2000);

    private static int ChurnSeconds => EnvInt("MG_CHURN_SECONDS", 100);

    [Fact]
    public async Task Watch_ThousandsOfServices_BuildsCompleteTableWithinConnectionBoundAndAgentStaysAvailable()
    {
        int n = Services;
        await using ConsulAgent agent = await ConsulWait.StartWithCaAsync(new ConsulAgentSettings("dc1"));
        string td = await ConsulWait.TrustDomainAsync(agent);
        long t0 = Stopwatch.GetTimestamp();
        using (var writer = new CatalogWriter(agent))
        {
            await writer.RegisterServicesAsync("svc", 0, n);
        }

        output.WriteLine($"registered {n} services + {n} sidecars through the catalog API in {Stopwatch.GetElapsedTime(t0).TotalSeconds:0.0} s");

        using var sockets = new ClientSockets(agent);
        ConsulClient client = sockets.Client;
        int bound = client.Options.MaxConnections;
        await using var prober = new AgentProber(agent.HttpAddress, TimeSpan.FromMilliseconds(100));
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, new ConsulRouteTableSourceOptions { StartupTimeout = TimeSpan.FromSeconds(120) });

        long start = Stopwatch.GetTimestamp();
        RouteTable table = await source.StartAsync();
        TimeSpan firstTable = Stopwatch.GetElapsedTime(start);

        for (int i = 0; i < n; i++)
        {
            string sni = $"svc{i}.default.dc1.internal.{td}";
            Route? route = TableWaiter.Find(table, sni);
            Assert.True(route is not null, $"no route for {sni}");
            UpstreamEndpoint endpoint = Assert.Single(route.Cluster.Endpoints);
            Assert.Equal(CatalogWriter.SidecarPortOf(i), endpoint.Port);
            Assert.True(endpoint.IsHealthy);
        }

        // A little while longer with the watch idle on its long-polls: the bound holds and the agent stays available.
        await prober.ProbedAsync(20).WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"first complete table ({table.ExactCount} exact routes) after {firstTable.TotalSeconds:0.00} s; " +
            $"agent connections: at most {sockets.MaxOpen} open at once, {sockets.Opened} opened in all (bound {bound}); refetches {source.Watcher.RefetchCount}, sweeps {source.Watcher.SweepCount}, errors {source.Watcher.ErrorCount}; " +
            $"other client: {prober.Probes} probes, {prober.Failures.Count} failed, slowest {prober.Slowest.TotalMilliseconds:0} ms");
        Assert.InRange(sockets.MaxOpen, 1, bound);
        Assert.Empty(prober.Failures);
        Assert.True(prober.Slowest < TimeSpan.FromSeconds(1), $"the other client waited {prober.Slowest.TotalMilliseconds:0} ms");
        Assert.Equal(0, source.Watcher.ErrorCount);
    }

    [Fact]
    public async Task Watch_OneChangePerSecond_ReflectsEveryChange()
    {
        const int Catalog = 300;
        await using ConsulAgent agent = await ConsulWait.StartWithCaAsync(new ConsulAgentSettings("dc1"));
        string td = await ConsulWait.TrustDomainAsync(agent);
        using var writer = new CatalogWriter(agent);
        await writer.RegisterServicesAsync("svc", 0, Catalog);
        using var sockets = new ClientSockets(agent);
        ConsulClient client = sockets.Client;
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target);
        await source.StartAsync();

        string Sni(string name) => $"{name}.default.dc1.internal.{td}";
        UpstreamEndpoint? Endpoint(RouteTable t, string name) => TableWaiter.Find(t, Sni(name)) is { } r && r.Cluster.Endpoints.Count == 1 ? r.Cluster.Endpoints[0] : null;

        var latencies = new List<double>();
        var slow = new List<(int K, string Kind, double Ms)>();
        var kinds = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var writes = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        var registered = new Queue<(string Name, int I)>();
        int changes = ChurnSeconds;
        using var pace = new PeriodicTimer(TimeSpan.FromSeconds(1));
        for (int k = 0; k < changes; k++)
        {
            await pace.WaitForNextTickAsync();
            int i = (k * 7) % Catalog;
            string name = "svc" + i.ToString(CultureInfo.InvariantCulture);
            string kind;
            Func<RouteTable, bool> reflected;
            long since = Stopwatch.GetTimestamp();
            switch (k % 5)
            {
                case 0:
                    kind = "register";
                    int j = Catalog + k;
                    string added = "new" + j.ToString(CultureInfo.InvariantCulture);
                    registered.Enqueue((added, j));
                    since = Stopwatch.GetTimestamp();
                    await writer.RegisterServiceAsync(added, j);
                    reflected = t => Endpoint(t, added) is { IsHealthy: true } e && e.Port == CatalogWriter.SidecarPortOf(j);
                    break;
                case 1:
                    kind = "critical";
                    await writer.SetSidecarCheckAsync(name, i, "critical");
                    reflected = t => Endpoint(t, name) is { IsHealthy: false };
                    break;
                case 2:
                    kind = "passing";
                    int prev = ((k - 1) * 7) % Catalog;
                    name = "svc" + prev.ToString(CultureInfo.InvariantCulture);
                    await writer.SetSidecarCheckAsync(name, prev, "passing");
                    reflected = t => Endpoint(t, name) is { IsHealthy: true };
                    break;
                case 3:
                    kind = "weight";
                    int weight = 2 + (k % 50);
                    // A re-registration without its check: only the service index moves (the unexplained-change path).
                    await writer.RegisterSidecarAsync(name, i, weight, withCheck: false);
                    reflected = t => Endpoint(t, name) is { } e && e.Weight == weight;
                    break;
                default:
                    kind = "deregister";
                    (string gone, int gi) = registered.Dequeue();
                    await writer.DeregisterServiceAsync(gone, gi);
                    name = gone;
                    reflected = t => TableWaiter.Find(t, Sni(gone)) is null;
                    break;
            }

            // How long the agent took to acknowledge the write itself (part of the change → table time, not the watch's).
            double written = Stopwatch.GetElapsedTime(since).TotalMilliseconds;
            (_, TimeSpan elapsed) = await TableWaiter.WaitForAsync(source, reflected, $"change {k} ({kind} {name})", since, TimeSpan.FromSeconds(20));
            latencies.Add(elapsed.TotalMilliseconds);
            slow.Add((k, kind, elapsed.TotalMilliseconds));
            (kinds.TryGetValue(kind, out List<double>? list) ? list : kinds[kind] = []).Add(elapsed.TotalMilliseconds);
            (writes.TryGetValue(kind, out List<double>? w) ? w : writes[kind] = []).Add(written);
        }

        latencies.Sort();
        output.WriteLine($"{changes} changes at 1/s on {Catalog} services: change → table p50 {Percentile(latencies, 0.5):0} ms, p99 {Percentile(latencies, 0.99):0} ms, max {latencies[^1]:0} ms; " +
            string.Join("; ", kinds.Select(p => $"{p.Key} p50 {Percentile([.. p.Value.Order()], 0.5):0} ms (agent write p50 {Percentile([.. writes[p.Key].Order()], 0.5):0} ms)")) +
            $"; refetches {source.Watcher.RefetchCount}, sweeps {source.Watcher.SweepCount}, agent connections at most {sockets.MaxOpen} open at once ({sockets.Opened} opened); {source.Watcher.Diagnostics()}");
        Assert.InRange(sockets.MaxOpen, 1, client.Options.MaxConnections);
        Assert.Equal(0, source.Watcher.ErrorCount);
        // The design (docs/consul-watch.md): one blocking round trip plus the refetch or a node sweep, and at most one
        // rate-limit token wait (check flips wait for the checks long-poll's rate limit: ~0.7-0.9 s p50 here), so nine
        // changes in ten within 1.5 s; a change that another change in the same
        // round explained is found by the verification sweep (VerificationSweepDelay, 10 s) at the latest. A CI run saw
        // one change of 100 at 4.0 s (p99 0.73 s), so the slowest is bounded by that worst case, not by the typical one.
        string slowest = string.Join(", ", slow.OrderByDescending(x => x.Ms).Take(3).Select(x => $"change {x.K} ({x.Kind}) {x.Ms:0} ms"));
        output.WriteLine("slowest: " + slowest);
        Assert.True(Percentile(latencies, 0.9) < 1500, $"p90 {Percentile(latencies, 0.9):0} ms; slowest: {slowest}");
        TimeSpan worst = new ConsulCatalogWatcherOptions().VerificationSweepDelay + TimeSpan.FromSeconds(3);
        Assert.True(latencies[^1] < worst.TotalMilliseconds, $"slowest: {slowest}");
    }

    [Fact]
    public async Task Watch_AgentStoppedAndRestartedOnSameAndNewDataDir_KeepsTableBoundsErrorsAndRecovers()
    {
        const int Catalog = 300;
        await using ConsulAgent agent = await ConsulWait.StartWithCaAsync(new ConsulAgentSettings("dc1") { Persistent = true });
        string td = await ConsulWait.TrustDomainAsync(agent);
        using (var writer = new CatalogWriter(agent))
        {
            await writer.RegisterServicesAsync("svc", 0, Catalog);
        }

        using ConsulClient client = agent.CreateClient();
        var options = new ConsulRouteTableSourceOptions
        {
            Watcher = new ConsulCatalogWatcherOptions
            {
                BlockingQuery = new BlockingQueryOptions { ErrorBackoffBase = TimeSpan.FromMilliseconds(500), ErrorBackoffMax = TimeSpan.FromSeconds(4) },
                GatewayPollInterval = TimeSpan.FromSeconds(1),
            },
        };
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, options);
        var reported = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var recovered = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var outageSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int stopped = 0;
        source.Watcher.ErrorObserved = (what, ex) =>
        {
            reported.Enqueue(what + ": " + WatchErrorLedger.CauseOf(ex));
            if (Volatile.Read(ref stopped) == 1)
            {
                outageSeen.TrySetResult();
            }
        };
        source.Watcher.Recovered = (what, _) => recovered.Enqueue(what);
        RouteTable before = await source.StartAsync();
        Assert.Equal(Catalog, before.Routes.Count(r => r.Pattern.StartsWith("svc", StringComparison.Ordinal)));

        // Outage: the table stays; errors are counted, reported once per cause, and their rate does not grow with the catalog.
        Volatile.Write(ref stopped, 1);
        await agent.StopAsync();
        await outageSeen.Task.WaitAsync(TimeSpan.FromSeconds(60)); // the first failure is always reported (a new cause)
        long windowStart = source.Watcher.ErrorCount;
        using (var window = new PeriodicTimer(TimeSpan.FromSeconds(5)))
        {
            await window.WaitForNextTickAsync(); // a measurement window, not a wait for a condition
        }

        long inWindow = source.Watcher.ErrorCount - windowStart;
        output.WriteLine($"outage: {inWindow} failed requests in 5 s with {Catalog} services; reported: {string.Join(" | ", reported)}");
        Assert.InRange(inWindow, 1, 40);
        // One report per source (9: five long-polls, roots, gateways, datacenters, refetches) and cause (reset at the kill, then refused).
        Assert.InRange(reported.Count, 1, 18);
        Assert.Same(before, target.Current);

        // Same data dir: Raft state survives; the watch resumes and sees a change made after the restart.
        await agent.RestartAsync();
        using (var writer = new CatalogWriter(agent))
        {
            await writer.RegisterServiceAsync("after", Catalog + 1);
        }

        (RouteTable same, _) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"after.default.dc1.internal.{td}") is not null, "a service registered after the restart", timeout: TimeSpan.FromSeconds(60));
        int kept = same.Routes.Count(r => r.Pattern.StartsWith("svc", StringComparison.Ordinal) || r.Pattern.StartsWith("after", StringComparison.Ordinal));
        if (kept != Catalog + 1)
        {
            var names = same.Routes.Select(r => r.Pattern).ToHashSet(StringComparer.Ordinal);
            string missing = string.Join(", ", Enumerable.Range(0, Catalog).Select(i => $"svc{i}.default.dc1.internal.{td}").Where(n => !names.Contains(n)).Take(5));
            output.WriteLine($"after the restart: {kept} routes, missing {missing}; reported: {string.Join(" | ", reported)}; recovered: {string.Join(" | ", recovered)}; {source.Watcher.Diagnostics()}");
        }

        Assert.Equal(Catalog + 1, kept);
        Assert.NotEmpty(recovered);

        // New data dir: a rebuilt server (empty catalog, new CA, lower indexes); the watch follows instead of blocking on old indexes.
        await agent.StopAsync();
        await agent.RestartWithNewDataDirAsync();
        string td2 = await ConsulWait.TrustDomainAsync(agent);
        using (var writer = new CatalogWriter(agent))
        {
            await writer.RegisterServiceAsync("fresh", 7);
        }

        RouteTable rebuilt;
        try
        {
            (rebuilt, _) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"fresh.default.dc1.internal.{td2}") is not null
                && !t.Routes.Any(r => r.Pattern.StartsWith("svc", StringComparison.Ordinal)), "the rebuilt agent's catalog", timeout: TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            output.WriteLine($"reported: {string.Join(" | ", reported)}; view: {ViewWaiter.Describe(source.Watcher.Current)}; {source.Watcher.Diagnostics()}");
            output.WriteLine((await agent.GetJsonAsync("v1/catalog/services"))!.ToJsonString());
            throw;
        }

        Assert.DoesNotContain(rebuilt.Routes, r => r.Pattern.EndsWith(td, StringComparison.Ordinal) && td != td2);
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0 ? value : fallback;
}
