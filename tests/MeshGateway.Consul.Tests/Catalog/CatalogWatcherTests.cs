using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Consul.Tests.Fixtures;
using Xunit.Abstractions;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Catalog;

[Collection("consul-dc1")]
public sealed class CatalogWatcherTests(SingleDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task View_ServiceRegisteredMadeCriticalWarnedAndDeregistered_FollowsTheAgent()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions());
        await watcher.StartAsync();
        ConsulCatalogView first = await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
        string name = "api-" + Guid.NewGuid().ToString("N")[..8];
        string id = name + "-1";

        long t0 = Stopwatch.GetTimestamp();
        await ViewWaiter.RegisterNativeAsync(client, name, id, 7001, weights: new ConsulWeights { Passing = 5, Warning = 2 }, meta: new Dictionary<string, string> { ["version"] = "v1" });
        var (added, addLatency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey(name), "the new service", since: t0);

        t0 = Stopwatch.GetTimestamp();
        await fixture.Agent.PutJsonAsync($"/v1/agent/check/warn/ttl-{id}", string.Empty);
        var (warned, warnLatency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.TryGetValue(name, out var s) && s.Instances[0].WorstStatus == CatalogHealthStatus.Warning, "the warning", since: t0);

        t0 = Stopwatch.GetTimestamp();
        await fixture.Agent.PutJsonAsync($"/v1/agent/check/fail/ttl-{id}", string.Empty);
        var (failed, failLatency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.TryGetValue(name, out var s) && !s.Instances[0].HealthAndWeight(onlyPassing: false).Healthy, "the critical instance", since: t0);

        t0 = Stopwatch.GetTimestamp();
        await client.DeregisterServiceAsync(id);
        var (removed, removeLatency) = await ViewWaiter.WaitForAsync(watcher, v => !v.Services.ContainsKey(name), "the removal", since: t0);

        output.WriteLine($"catalog change → published view (default options): register {addLatency.TotalMilliseconds:0} ms, warning {warnLatency.TotalMilliseconds:0} ms, critical {failLatency.TotalMilliseconds:0} ms, deregister {removeLatency.TotalMilliseconds:0} ms");
        Assert.Equal("dc1", first.Datacenter);
        Assert.Equal(["dc1"], first.Datacenters.ToArray());
        Assert.EndsWith(".consul", first.TrustDomain);
        CatalogServiceInstance instance = Assert.Single(added.Services[name].Instances);
        BestAddress lan = BestAddress.Select(instance, wan: false);
        (bool healthy, int weight) = instance.HealthAndWeight(onlyPassing: false);
        Assert.Equal(("127.0.0.1", 7001, true, 5, CatalogHealthStatus.Passing), (lan.Address, lan.Port, healthy, weight, instance.WorstStatus));
        Assert.Equal(id, instance.Service.Id);
        Assert.Equal(fixture.Agent.NodeName, instance.Node.Name);
        Assert.Equal("v1", instance.Service.Meta["version"]);
        Assert.Equal((true, 2), warned.Services[name].Instances[0].HealthAndWeight(onlyPassing: false));
        Assert.Equal(CatalogHealthStatus.Critical, failed.Services[name].Instances[0].WorstStatus);
        Assert.DoesNotContain(name, removed.Services.Keys);
    }

    [Fact]
    public async Task View_AtStartAndAfterAnOutage_BaselineReadsAreConsistentAndLaterRefetchesAreNot()
    {
        // docs/consul-behaviour.md §9: a server restarted on its data dir answers default reads while it replays its log.
        using var faults = new MeshGateway.Consul.Tests.Watch.FaultInjectingHandler();
        using ConsulClient client = fixture.Agent.CreateClient(handler: faults);
        using ConsulClient direct = fixture.Agent.CreateClient();
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());
        var unreachable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ErrorObserved = (_, ex) =>
        {
            if (ex is ConsulTransportException { IsTimeout: false })
            {
                unreachable.TrySetResult();
            }
        };
        // The catalog trigger's long-poll (the gateway polls read the same endpoint with a filter).
        static bool CatalogTrigger(string p) => p.StartsWith("/v1/catalog/services", StringComparison.Ordinal) && !p.Contains("filter=", StringComparison.Ordinal);
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
        string[] atStart = faults.RequestsFrom(0);
        Assert.Contains("consistent", atStart.First(CatalogTrigger));
        Assert.Contains("consistent", atStart.First(p => p.StartsWith("/v1/health/state/any", StringComparison.Ordinal)));

        // Once a consistent answer confirmed the agent's state, a change is refetched with a default read.
        string name = "cons-" + Guid.NewGuid().ToString("N")[..8];
        int mark = faults.RequestsFrom(0).Length;
        await ViewWaiter.RegisterNativeAsync(direct, name, name, 7301);
        await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey(name), "the new service");
        string[] refetches = [.. faults.RequestsFrom(mark).Where(p => p.StartsWith("/v1/health/connect/" + name, StringComparison.Ordinal))];
        Assert.NotEmpty(refetches);
        Assert.All(refetches, p => Assert.DoesNotContain("consistent", p));

        // The agent stops answering; a service is registered meanwhile; it answers again: the long-polls start over with
        // consistent reads.
        faults.Refusing = true;
        string during = "cons-" + Guid.NewGuid().ToString("N")[..8];
        await ViewWaiter.RegisterNativeAsync(direct, during, during, 7302);
        await unreachable.Task.WaitAsync(TimeSpan.FromSeconds(60));
        mark = faults.RequestsFrom(0).Length;
        Task<string> restarted = faults.WhenRequestAsync(mark, p => CatalogTrigger(p) && p.Contains("consistent", StringComparison.Ordinal));
        faults.Refusing = false;
        await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey(during), "the service registered while the agent was unreachable", timeout: TimeSpan.FromSeconds(60));
        // (A long-poll answered just before the refusal may still send its next blocking request first, rate-limited: its
        // answer then restarts every long-poll.) Fails after 30 s if the catalog long-poll never starts over consistently.
        await restarted.WaitAsync(TimeSpan.FromSeconds(30));
        await direct.DeregisterServiceAsync(name);
        await direct.DeregisterServiceAsync(during);
    }

    [Fact]
    public async Task View_ServiceWithoutConnect_IsLeftOut()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        string plain = "plain-" + Guid.NewGuid().ToString("N")[..8];
        string native = "native-" + Guid.NewGuid().ToString("N")[..8];
        await client.RegisterServiceAsync(new ConsulServiceRegistration { ID = plain, Name = plain, Port = 7100, Address = "127.0.0.1" });
        await ViewWaiter.RegisterNativeAsync(client, native, native, 7101);
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());
        await watcher.StartAsync();

        ConsulCatalogView view = await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));

        Assert.Contains(native, view.Services.Keys);
        Assert.DoesNotContain(plain, view.Services.Keys);
        Assert.DoesNotContain("consul", view.Services.Keys);
        await client.DeregisterServiceAsync(plain);
        await client.DeregisterServiceAsync(native);
    }

    [Fact]
    public async Task View_ServiceResolverWritten_CarriesSubsetsDefaultSubsetAndTimeout()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        string name = "res-" + Guid.NewGuid().ToString("N")[..8];
        await ViewWaiter.RegisterNativeAsync(client, name, name + "-1", 7201, meta: new Dictionary<string, string> { ["version"] = "v2" });
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));

        long t0 = Stopwatch.GetTimestamp();
        await fixture.Agent.PutJsonAsync("/v1/config", $$$"""
            {"Kind": "service-resolver", "Name": "{{{name}}}", "DefaultSubset": "v1", "ConnectTimeout": "3s",
             "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true} } }
            """);
        var (view, latency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.TryGetValue(name, out var s) && s.Resolver is not null, "the resolver", since: t0);
        output.WriteLine($"service-resolver write → published view: {latency.TotalMilliseconds:0} ms");

        ConsulResolverView resolver = view.Services[name].Resolver!;
        Assert.Equal("v1", resolver.DefaultSubset);
        Assert.Equal(TimeSpan.FromSeconds(3), resolver.ConnectTimeout);
        Assert.Equal(new ConsulSubsetView("Service.Meta.version == v2", true), resolver.Subsets["v2"]);
        Assert.Equal(new ConsulSubsetView("Service.Meta.version == v1", false), resolver.Subsets["v1"]);
        await client.DeregisterServiceAsync(name + "-1");
    }

    [Fact]
    public async Task WaitForFirstViewAsync_AgentUnreachable_TimesOutNamingWhatIsMissing()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri($"http://127.0.0.1:{port}") });
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions("dc1"));
        await watcher.StartAsync();

        TimeoutException error = await Assert.ThrowsAsync<TimeoutException>(() => watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(2)));

        Assert.Contains("trust domain", error.Message);
        Assert.Null(watcher.Current);
        Assert.True(watcher.ErrorCount > 0);
    }

    [Fact]
    public async Task View_SequentialRegistrations_EachAppearsWithEveryEarlierOne()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        await using var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions());
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(60));
        string prefix = "lat-" + Guid.NewGuid().ToString("N")[..6] + "-";
        var samples = new List<double>();

        for (int i = 0; i < 6; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await ViewWaiter.RegisterNativeAsync(client, prefix + i, prefix + i, 7500 + i);
            var (view, latency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey(prefix + i), "registration " + i, since: t0);
            samples.Add(latency.TotalMilliseconds);

            // Catching up under the rate limit never drops an earlier change: the view that has this one has them all.
            Assert.All(Enumerable.Range(0, i + 1), j => Assert.Contains(prefix + j, view.Services.Keys));
        }

        // Information only (timing on a shared machine is not asserted): how the rate limit paces back-to-back changes.
        output.WriteLine($"back-to-back registrations → view (ms, token bucket burst 2, refill 1/s): {string.Join(", ", samples.Select(s => s.ToString("0", System.Globalization.CultureInfo.InvariantCulture)))}");
        for (int i = 0; i < 6; i++)
        {
            await client.DeregisterServiceAsync(prefix + i);
        }
    }
}
