using System.Diagnostics;
using MeshGateway.Consul.Tests.Fixtures;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>Stops and restarts its own agent, so it shares no fixture.</summary>
public sealed class OutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task View_AgentStoppedAndRestarted_KeepsLastViewThenRecovers()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        await ConsulWait.TrustDomainAsync(agent);
        using ConsulClient client = agent.CreateClient();
        await ViewWaiter.RegisterNativeAsync(client, "before", "before-1", 7401);
        await using var watcher = new ConsulCatalogWatcher(client, ViewWaiter.FastOptions());
        await watcher.StartAsync();
        var (beforeView, _) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey("before"), "the first service");
        ViewWaiter.Drain(watcher);
        long published = watcher.PublishedCount;
        long errors = watcher.ErrorCount;

        await agent.StopAsync();
        await ConsulWait.SignalAsync(ct => watcher.WhenErrorCountAtLeastAsync(errors + 5, ct), "the watches to notice the outage");

        Assert.Same(beforeView, watcher.Current);
        Assert.Equal(published, watcher.PublishedCount);
        Assert.False(watcher.Views.TryRead(out _));

        long t0 = Stopwatch.GetTimestamp();
        await agent.RestartAsync(); // same data dir: Raft state and local registrations survive
        output.WriteLine($"restart until leader: {Stopwatch.GetElapsedTime(t0).TotalMilliseconds:0} ms");
        string trustDomainAfter = await ConsulWait.TrustDomainAsync(agent);
        output.WriteLine($"restart until CA roots: {Stopwatch.GetElapsedTime(t0).TotalMilliseconds:0} ms");
        await ViewWaiter.RegisterNativeAsync(client, "after", "after-1", 7402);
        var (afterView, latency) = await ViewWaiter.WaitForAsync(watcher, v => v.Services.ContainsKey("after"), "the service registered after the restart", since: t0);
        output.WriteLine($"agent restart (incl. leader election) → recovered view: {latency.TotalMilliseconds:0} ms; errors during outage: {watcher.ErrorCount - errors}");

        // The agent restores its own registrations from its data dir, but re-syncs them to the catalog on its first
        // anti-entropy run, which can come after the new registration: wait for the view that has both.
        var (bothView, _) = await ViewWaiter.WaitForAsync(
            watcher, v => v.Services.ContainsKey("before") && v.Services.ContainsKey("after"), "the restored registration", since: t0);
        Assert.Contains("before", bothView.Services.Keys);
        Assert.Contains("after", afterView.Services.Keys);
        // A dev agent keeps its Raft state in memory: it comes back with a new CA (new trust domain) and lower indexes.
        // The watches must follow both rather than block on their old index.
        var (recovered, _) = await ViewWaiter.WaitForAsync(watcher, v => v.TrustDomain == trustDomainAfter, "the new trust domain");
        Assert.Equal(trustDomainAfter, recovered.TrustDomain);
    }
}
