using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using MeshGateway.Consul;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.Benchmarks.Catalog;

/// <summary>
/// End-to-end catalog scenario (a custom harness: the measured unit is a whole watch, not a method): a simulated agent with
/// 10,000 services / 50,000 instances / 20 datacenters; the catalog watcher and <see cref="ConsulRouteTableSource"/> with
/// default options build the first table; then single changes one at a time, each timed from the write to the first
/// published table that shows it. Options: <c>--changes N</c> (default 100), <c>--remote-services N</c> (services per
/// remote datacenter, default 0), <c>--services N</c>, <c>--instances N</c>.
/// </summary>
public static class CatalogScale
{
    /// <summary>Runs the scenario and prints a table.</summary>
    public static async Task RunAsync(string[] args)
    {
        int changes = Arg(args, "--changes", 100);
        // --interval-ms N: at least N ms from one change's write to the next (0: back to back, the next change is written as
        // soon as the table shows the previous one). --only K: only changes of kind K (0 check flip, 1 register/deregister,
        // 2 weight change); -1 (default) rotates through the three.
        int intervalMs = Arg(args, "--interval-ms", 0);
        int only = Arg(args, "--only", -1);
        var shape = new CatalogShape
        {
            Services = Arg(args, "--services", 10_000),
            Instances = Arg(args, "--instances", 50_000),
            Nodes = 2_000,
            Datacenters = 20,
            GatewaysPerDatacenter = 2,
            RemoteServicesPerDatacenter = Arg(args, "--remote-services", 0),
        };
        var report = new StringBuilder();
        void Row(string what, string value)
        {
            string line = $"| {what,-52} | {value,-40} |";
            report.AppendLine(line);
            Console.WriteLine(line);
        }

        Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, Server GC {System.Runtime.GCSettings.IsServerGC}");
        SimulatedConsulAgent? agent = await SimulatedConsulAgent.StartAsync();
        var clock = Stopwatch.StartNew();
        IReadOnlyDictionary<string, string[]>? ids = agent.Build(shape);
        Row("catalog", $"{shape.Services:N0} services, {shape.Instances:N0} instances, {shape.Datacenters} DCs x {shape.GatewaysPerDatacenter} gateways, {shape.RemoteServicesPerDatacenter} services/remote DC");
        Row("simulator build", $"{clock.Elapsed.TotalMilliseconds:N0} ms");

        long before = GC.GetTotalMemory(forceFullCollection: true);
        ConsulClient? client = new(new ConsulClientOptions { Address = agent.Address });
        RouteTableSource? target = new();
        ConsulRouteTableSource? source = new(client, target, new ConsulRouteTableSourceOptions { StartupTimeout = TimeSpan.FromMinutes(5) });
        clock.Restart();
        RouteTable? first = await source.StartAsync();
        TimeSpan firstTime = clock.Elapsed;
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Row("first complete table (watcher + route source)", $"{firstTime.TotalMilliseconds:N0} ms, {first.Routes.Count:N0} routes");
        // Includes the in-process simulator's own growth (Kestrel's buffer pool, pooled 16 MB JSON buffers); the gateway's
        // own share is read with dotnet-gcdump (docs/benchmarks.md, "Catalog at scale").
        Row("managed heap growth during the build, per instance", $"{(after - before) / (double)shape.Instances:N0} B ({(after - before) / 1048576.0:N1} MiB; gateway + simulator buffers)");
        Row("route lookups/s on the built table (1 thread)", $"{LookupsPerSecond(first):N0}");
        string td = agent.TrustDomain;
        var latencies = new Dictionary<string, List<double>>(StringComparer.Ordinal) { ["check flip"] = [], ["register/deregister"] = [], ["weight change"] = [] };
        int timeouts = 0;
        var random = new Random(42);
        var deregistered = new List<SimInstance>();
        for (int c = 0; c < changes; c++)
        {
            string service = "svc-" + random.Next(shape.Services).ToString("D5", CultureInfo.InvariantCulture);
            string[] serviceIds = ids[service];
            string id = serviceIds[random.Next(serviceIds.Length)];
            SimInstance instance = agent.Find(id) ?? throw new InvalidOperationException("missing " + id);
            string sni = $"{service}.default.{agent.Datacenter}.internal.{td}";
            string endpoint = $"{instance.Address}:{instance.Port}";
            string kind;
            Func<RouteTable, bool> shows;
            long t0;
            long writeAt = Stopwatch.GetTimestamp();
            switch (only >= 0 ? only : c % 3)
            {
                case 0:
                    kind = "check flip";
                    t0 = Stopwatch.GetTimestamp();
                    agent.SetServiceCheck(id, "critical");
                    shows = t => Endpoint(t, sni, endpoint) is { IsHealthy: false };
                    break;
                case 1:
                    kind = "register/deregister";
                    if (deregistered.Count > 0 && c % 2 == 0)
                    {
                        SimInstance back = deregistered[^1];
                        deregistered.RemoveAt(deregistered.Count - 1);
                        string backSni = $"{back.ConnectTarget}.default.{agent.Datacenter}.internal.{td}";
                        string backEndpoint = $"{back.Address}:{back.Port}";
                        t0 = Stopwatch.GetTimestamp();
                        agent.Register(back with { CreateIndex = 0, ModifyIndex = 0 });
                        shows = t => Endpoint(t, backSni, backEndpoint) is not null;
                    }
                    else
                    {
                        t0 = Stopwatch.GetTimestamp();
                        agent.Deregister(id);
                        deregistered.Add(instance);
                        shows = t => Endpoint(t, sni, endpoint) is null;
                    }

                    break;
                default:
                    kind = "weight change";
                    int weight = 2 + random.Next(50);
                    t0 = Stopwatch.GetTimestamp();
                    agent.SetWeights(id, weight, 1);
                    shows = t => Endpoint(t, sni, endpoint) is { } e && e.Weight == weight;
                    break;
            }

            TimeSpan? took = await WaitAsync(source, shows, t0, TimeSpan.FromSeconds(30));
            if (took is null)
            {
                timeouts++;
                Console.WriteLine($"  change {c} ({kind} on {id}) not seen within 30 s");
            }
            else
            {
                latencies[kind].Add(took.Value.TotalMilliseconds);
            }

            TimeSpan rest = TimeSpan.FromMilliseconds(intervalMs) - Stopwatch.GetElapsedTime(writeAt);
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest);
            }
        }

        double[] all = [.. latencies.Values.SelectMany(l => l).Order()];
        Row($"change -> table, all {all.Length} (p50 / p99 / max)", $"{Percentile(all, 0.5):N0} / {Percentile(all, 0.99):N0} / {all.LastOrDefault():N0} ms");
        foreach ((string kind, List<double> list) in latencies)
        {
            double[] sorted = [.. list.Order()];
            Row($"  {kind} ({sorted.Length}) p50 / p99 / max", $"{Percentile(sorted, 0.5):N0} / {Percentile(sorted, 0.99):N0} / {sorted.LastOrDefault():N0} ms");
        }

        Row("changes not seen within 30 s", timeouts.ToString(CultureInfo.InvariantCulture));
        Row("route lookups/s after the changes (1 thread)", $"{LookupsPerSecond(target.Current):N0}");
        Row("max concurrent agent connections (bound)", $"{agent.MaxOpenConnections} ({client.Options.MaxConnections}); accepted {agent.AcceptedConnections}");
        Row("watcher sweeps / refetches / errors", $"{source.Watcher.SweepCount} / {source.Watcher.RefetchCount:N0} / {source.Watcher.ErrorCount}");
        Row("agent requests", string.Join(", ", agent.RequestsByEndpoint.OrderByDescending(p => p.Value).Take(6).Select(p => $"{p.Key}={p.Value:N0}")));

        await source.DisposeAsync();
        client.Dispose();
        await agent.DisposeAsync();
    }

    private static UpstreamEndpoint? Endpoint(RouteTable table, string sni, string endpoint) =>
        table.TryMatch(sni.AsSpan(), out Route? route) ? route.Cluster.Endpoints.FirstOrDefault(e => e.Key == endpoint) : null;

    private static async Task<TimeSpan?> WaitAsync(ConsulRouteTableSource source, Func<RouteTable, bool> shows, long t0, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Converted = c =>
        {
            if (c.Succeeded && shows(c.Table))
            {
                seen.TrySetResult(Stopwatch.GetElapsedTime(t0));
            }
        };
        try
        {
            if (shows(source.Target.Current))
            {
                return Stopwatch.GetElapsedTime(t0);
            }

            return await seen.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            return null;
        }
        finally
        {
            source.Converted = null;
        }
    }

    private static double LookupsPerSecond(RouteTable table)
    {
        byte[][] names = [.. table.Routes.Where(r => r.Kind == RouteKind.Exact).Select(r => Encoding.ASCII.GetBytes(r.Pattern))];
        if (names.Length == 0)
        {
            return 0;
        }

        long count = 0;
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 1000)
        {
            for (int i = 0; i < names.Length; i++)
            {
                if (table.TryMatch(names[i], out _))
                {
                    count++;
                }
            }
        }

        return count / clock.Elapsed.TotalSeconds;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static int Arg(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int value) ? value : fallback;
    }
}
