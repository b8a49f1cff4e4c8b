using System.Diagnostics;
using System.Globalization;
using System.Net;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Routing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Routing;

[Collection("consul-dc1")]
public sealed class RouteTableSourceAgentTests(SingleDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Table_ServiceRegisteredCriticalPassingDeregistered_RouteAndHealthFollowTheAgent()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, new ConsulRouteTableSourceOptions());
        RouteTable first = await source.StartAsync();
        string td = source.Watcher.Current!.TrustDomain;
        string name = "rt-" + Guid.NewGuid().ToString("N")[..8];
        string id = name + "-1";
        string sni = $"{name}.default.dc1.internal.{td}";
        var samples = new List<string>();

        Assert.Null(TableWaiter.Find(first, sni));
        long t0 = Stopwatch.GetTimestamp();
        await ViewWaiter.RegisterNativeAsync(client, name, id, 7601, weights: new ConsulWeights { Passing = 4, Warning = 1 });
        var (added, addLatency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, sni) is not null, "the new service", t0);
        samples.Add($"register {addLatency.TotalMilliseconds:0} ms");

        t0 = Stopwatch.GetTimestamp();
        await fixture.Agent.PutJsonAsync($"/v1/agent/check/fail/ttl-{id}", string.Empty);
        var (failed, failLatency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, sni) is { } r && !r.Cluster.Endpoints[0].IsHealthy, "the critical endpoint", t0);
        samples.Add($"critical {failLatency.TotalMilliseconds:0} ms");

        t0 = Stopwatch.GetTimestamp();
        await fixture.Agent.PutJsonAsync($"/v1/agent/check/pass/ttl-{id}", string.Empty);
        var (_, passLatency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, sni) is { } r && r.Cluster.Endpoints[0].IsHealthy, "the endpoint healthy again", t0);
        samples.Add($"passing {passLatency.TotalMilliseconds:0} ms");

        t0 = Stopwatch.GetTimestamp();
        await client.DeregisterServiceAsync(id);
        var (removed, removeLatency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, sni) is null, "the route gone", t0);
        samples.Add($"deregister {removeLatency.TotalMilliseconds:0} ms");
        output.WriteLine("catalog change → published route table (default watcher options): " + string.Join(", ", samples));

        UpstreamEndpoint endpoint = Assert.Single(TableWaiter.Find(added, sni)!.Cluster.Endpoints);
        Assert.Equal((new IPEndPoint(IPAddress.Loopback, 7601), 4, true), (endpoint.EndPoint, endpoint.Weight, endpoint.IsHealthy));
        Assert.Equal(RouteKind.Exact, TableWaiter.Find(added, sni)!.Kind);
        Assert.False(TableWaiter.Find(failed, sni)!.Cluster.Endpoints[0].IsHealthy);
        Assert.Null(TableWaiter.Find(removed, sni));
        Assert.Same(removed, target.Current);
        Assert.Null(source.LastError);
        Assert.True(source.PublishedCount >= 5);
    }

    [Fact]
    public async Task Table_ResolverWithSubsets_SubsetRoutesSelectInstancesByMeta()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        string name = "sub-" + Guid.NewGuid().ToString("N")[..8];
        await ViewWaiter.RegisterNativeAsync(client, name, name + "-1", 7611, meta: new Dictionary<string, string> { ["version"] = "v1" });
        await ViewWaiter.RegisterNativeAsync(client, name, name + "-2", 7612, ttlStatus: "warning", meta: new Dictionary<string, string> { ["version"] = "v2" });
        await fixture.Agent.PutJsonAsync("/v1/config", $$$"""
            {"Kind": "service-resolver", "Name": "{{{name}}}", "DefaultSubset": "v1", "ConnectTimeout": "2s",
             "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true} } }
            """);
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, TableWaiter.Fast());
        await source.StartAsync();
        string td = source.Watcher.Current!.TrustDomain;

        var (table, _) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"v2.{name}.default.dc1.internal.{td}") is not null, "the subset routes");

        Route unnamed = TableWaiter.Find(table, $"{name}.default.dc1.internal.{td}")!;
        Route v2 = TableWaiter.Find(table, $"v2.{name}.default.dc1.internal.{td}")!;
        Assert.Equal([7611], unnamed.Cluster.Endpoints.Select(e => e.Port).ToArray()); // DefaultSubset v1
        Assert.Equal([(7612, false)], v2.Cluster.Endpoints.Select(e => (e.Port, e.IsHealthy)).ToArray()); // warning + OnlyPassing
        Assert.Equal(TimeSpan.FromSeconds(2), v2.Cluster.ConnectTimeout);
        await client.DeregisterServiceAsync(name + "-1");
        await client.DeregisterServiceAsync(name + "-2");
    }

    [Fact]
    public async Task Table_SequentialRegistrations_EachRoutedWithEveryEarlierOne()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        await using var source = new ConsulRouteTableSource(client, new RouteTableSource());
        await source.StartAsync();
        string td = source.Watcher.Current!.TrustDomain;
        string prefix = "rtl-" + Guid.NewGuid().ToString("N")[..6] + "-";
        var samples = new List<double>();

        for (int i = 0; i < 5; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await ViewWaiter.RegisterNativeAsync(client, prefix + i, prefix + i, 7700 + i);
            var (table, latency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"{prefix}{i}.default.dc1.internal.{td}") is not null, "registration " + i, t0);
            samples.Add(latency.TotalMilliseconds);

            // The table that routes this one routes every earlier one too (no change lost while the watch catches up).
            Assert.All(Enumerable.Range(0, i + 1), j => Assert.NotNull(TableWaiter.Find(table, $"{prefix}{j}.default.dc1.internal.{td}")));
        }

        // Information only (timing on a shared machine is not asserted): how quickly back-to-back changes are routed.
        output.WriteLine("back-to-back registrations → route table (ms, default options): " + string.Join(", ", samples.Select(s => s.ToString("0", CultureInfo.InvariantCulture))));
        for (int i = 0; i < 5; i++)
        {
            await client.DeregisterServiceAsync(prefix + i);
        }
    }
}

/// <summary>Stops and restarts its own agent, so it shares no fixture.</summary>
public sealed class RouteTableOutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Table_AgentStoppedAndRestarted_LastTableKeptThenWatchRecovers()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        string td = await ConsulWait.TrustDomainAsync(agent);
        using ConsulClient client = agent.CreateClient();
        await ViewWaiter.RegisterNativeAsync(client, "before", "before-1", 7801);
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, TableWaiter.Fast());
        await source.StartAsync();
        var (before, _) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"before.default.dc1.internal.{td}") is not null, "the first service");
        long version = target.Version;
        long errors = source.Watcher.ErrorCount;

        await agent.StopAsync();
        await ConsulWait.SignalAsync(ct => source.Watcher.WhenErrorCountAtLeastAsync(errors + 5, ct), "the watches to notice the outage");

        Assert.Same(before, target.Current);
        Assert.Equal(version, target.Version);
        Assert.NotNull(TableWaiter.Find(target.Current, $"before.default.dc1.internal.{td}"));

        long t0 = Stopwatch.GetTimestamp();
        await agent.RestartAsync();
        string newTd = await ConsulWait.TrustDomainAsync(agent); // a dev agent comes back with a new CA
        await ViewWaiter.RegisterNativeAsync(client, "after", "after-1", 7802);
        var (after, latency) = await TableWaiter.WaitForAsync(source, t => TableWaiter.Find(t, $"after.default.dc1.internal.{newTd}") is not null, "the service registered after the restart", t0);
        output.WriteLine($"agent restart → recovered route table: {latency.TotalMilliseconds:0} ms; watcher errors during outage: {source.Watcher.ErrorCount - errors}");

        Assert.NotNull(TableWaiter.Find(after, $"before.default.dc1.internal.{newTd}"));
        Assert.Null(TableWaiter.Find(after, $"before.default.dc1.internal.{td}"));
    }

    [Fact]
    public async Task StartAsync_AgentUnreachable_TimesOutNamingWhatIsMissing()
    {
        int port;
        using (var listener = ViewWaiter.Listen(IPAddress.Loopback))
        {
            port = listener.Port();
        }

        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri($"http://127.0.0.1:{port}") });
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target, new ConsulRouteTableSourceOptions { Watcher = ViewWaiter.FastOptions("dc1"), StartupTimeout = TimeSpan.FromSeconds(2) });

        TimeoutException error = await Assert.ThrowsAsync<TimeoutException>(() => source.StartAsync());

        Assert.Contains("No complete routing table", error.Message, StringComparison.Ordinal);
        Assert.Contains("trust domain", error.Message, StringComparison.Ordinal);
        Assert.Same(RouteTable.Empty, target.Current);
        Assert.Equal(0, target.Version);
    }
}
