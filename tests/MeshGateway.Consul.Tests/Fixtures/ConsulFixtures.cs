using System.Diagnostics;
using System.Text.Json.Nodes;

namespace MeshGateway.Consul.Tests.Fixtures;

/// <summary>One dev agent (datacenter <c>dc1</c>), shared by the tests of the "consul-dc1" collection.</summary>
public sealed class SingleDatacenterFixture : IAsyncLifetime
{
    internal ConsulAgent Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Agent = await ConsulWait.StartWithCaAsync(new ConsulAgentSettings("dc1")).ConfigureAwait(false);
    }

    public async Task DisposeAsync() => await Agent.DisposeAsync().ConfigureAwait(false);
}

/// <summary>Two WAN-joined dev agents: <c>dc1</c> (primary) and <c>dc2</c> (<c>primary_datacenter = "dc1"</c>), one trust domain.</summary>
public sealed class TwoDatacenterFixture : IAsyncLifetime
{
    internal ConsulAgent Dc1 { get; private set; } = null!;

    internal ConsulAgent Dc2 { get; private set; } = null!;

    public string TrustDomain { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        Dc1 = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1")).ConfigureAwait(false);
        try
        {
            Dc2 = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc2") { PrimaryDatacenter = "dc1", JoinWanSerfPort = Dc1.SerfWanPort }).ConfigureAwait(false);
            using ConsulClient c1 = Dc1.CreateClient();
            using ConsulClient c2 = Dc2.CreateClient();
            // Polled: /v1/catalog/datacenters has no blocking query, and the WAN join happens in the agents (external processes).
            await ConsulWait.UntilAsync(async () => (await c1.GetDatacentersAsync().ConfigureAwait(false)).Value.Count == 2
                && (await c2.GetDatacentersAsync().ConfigureAwait(false)).Value.Count == 2, "dc1 and dc2 WAN-joined", Dc2).ConfigureAwait(false);
            TrustDomain = await ConsulWait.TrustDomainAsync(Dc1).ConfigureAwait(false);

            // A secondary first serves the CA roots it bootstrapped itself and takes the primary's (its trust domain)
            // once its CA replication has caught up: wait for that on a blocking query instead of comparing once (a
            // single read right after the WAN join failed the whole fixture in one CI run, 2026-12-07).
            string trustDomain = TrustDomain;
            await ConsulWait.UntilChangedAsync(
                q => c2.GetCaRootsAsync(q),
                r => r.TrustDomain == trustDomain && r.Roots is { Count: > 0 },
                $"dc2's CA roots replicated from dc1 (trust domain {trustDomain})",
                Dc2).ConfigureAwait(false);
        }
        catch
        {
            await DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (Dc2 is not null)
        {
            await Dc2.DisposeAsync().ConfigureAwait(false);
        }

        if (Dc1 is not null)
        {
            await Dc1.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>A dev agent with ACLs enabled (<c>default_policy = "deny"</c>, a generated master token), plus token helpers.</summary>
public sealed class AclAgentFixture : IAsyncLifetime
{
    internal ConsulAgent Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Agent = await ConsulWait.StartWithCaAsync(new ConsulAgentSettings("dc1") { Acl = true }).ConfigureAwait(false);
    }

    public async Task DisposeAsync() => await Agent.DisposeAsync().ConfigureAwait(false);

    /// <summary>Creates a policy with the given HCL rules and a token holding it; returns the token's secret.</summary>
    public async Task<string> CreateTokenAsync(string rules)
    {
        string name = "p-" + Guid.NewGuid().ToString("N")[..10];
        await Agent.PutJsonAsync("/v1/acl/policy", new JsonObject { ["Name"] = name, ["Rules"] = rules }.ToJsonString()).ConfigureAwait(false);
        JsonNode? token = await Agent.PutJsonAsync("/v1/acl/token", new JsonObject
        {
            ["Description"] = "test token " + name,
            ["Policies"] = new JsonArray(new JsonObject { ["Name"] = name }),
        }.ToJsonString()).ConfigureAwait(false);
        return token!["SecretID"]!.GetValue<string>();
    }
}

[CollectionDefinition("consul-dc1")]
public sealed class SingleDatacenterGroup : ICollectionFixture<SingleDatacenterFixture>;

[CollectionDefinition("consul-dc1-dc2")]
public sealed class TwoDatacenterGroup : ICollectionFixture<TwoDatacenterFixture>;

[CollectionDefinition("consul-acl")]
public sealed class AclAgentGroup : ICollectionFixture<AclAgentFixture>;

/// <summary>
/// Waits for state: the code under test's change signals (<see cref="SignalAsync"/>), Consul's blocking queries
/// (<see cref="UntilChangedAsync{T}"/>), and bounded polling only for external processes with no signal (<see cref="UntilAsync"/>).
/// </summary>
internal static class ConsulWait
{
    /// <summary>
    /// Waits for Consul state through a blocking query (<c>?index=&amp;wait=</c>): each call returns as soon as the
    /// watched result changes, so there is no polling interval. Follows Consul's index rules: a smaller index than the
    /// last one resets the wait to 0 (https://developer.hashicorp.com/consul/api-docs/features/blocking).
    /// </summary>
    public static async Task<T> UntilChangedAsync<T>(Func<ConsulQuery, Task<ConsulResponse<T>>> query, Func<T, bool> done, string what, ConsulAgent? agent = null, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(60);
        ulong index = 0;
        Exception? last = null;
        while (clock.Elapsed < limit)
        {
            try
            {
                ConsulResponse<T> response = await query(new ConsulQuery { Index = index, Wait = TimeSpan.FromSeconds(5) }).ConfigureAwait(false);
                if (done(response.Value))
                {
                    return response.Value;
                }

                index = response.Index < index ? 0 : response.Index;
            }
            catch (Exception ex) when (ex is ConsulException or HttpRequestException or InvalidOperationException)
            {
                // The endpoint is not serving yet (e.g. the CA is still bootstrapping): nothing to block on, retry shortly.
                last = ex;
                index = 0;
                await Task.Delay(100).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"Timed out waiting for {what}. Last error: {last?.Message}. {(agent is null ? string.Empty : "Log " + agent.LogPath + ":\n" + agent.LogTail())}");
    }

    /// <summary>
    /// Awaits a change signal of the code under test (for example <c>watcher.WhenErrorCountAtLeastAsync</c>,
    /// <c>listener.WhenActiveConnectionsAtMostAsync</c>, <c>RouteTableSource.WaitForAsync</c>) within a generous bound,
    /// failing with a message that names what did not happen (and the agent's log tail when given).
    /// </summary>
    public static async Task SignalAsync(Func<CancellationToken, Task> signal, string what, ConsulAgent? agent = null, TimeSpan? timeout = null)
    {
        using var bound = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await signal(bound.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (bound.IsCancellationRequested)
        {
            throw new TimeoutException($"Timed out waiting for {what}. {(agent is null ? string.Empty : "Log " + agent.LogPath + ":\n" + agent.LogTail())}", ex);
        }
    }

    /// <summary>
    /// Bounded polling of a condition. Only for external processes that raise no signal a test can await: a Consul
    /// endpoint with no blocking query (<c>/v1/catalog/datacenters</c>, <c>/v1/agent/connect/authorize</c>) or the log of
    /// a child process; each caller says which. For Consul state with a blocking query use <see cref="UntilChangedAsync{T}"/>,
    /// for the code under test its change signals through <see cref="SignalAsync"/>.
    /// </summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, ConsulAgent? agent = null, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < (timeout ?? TimeSpan.FromSeconds(60)))
        {
            try
            {
                if (await condition().ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is ConsulException or HttpRequestException or InvalidOperationException)
            {
                last = ex;
            }

            await Task.Delay(100).ConfigureAwait(false);
        }

        throw new TimeoutException($"Timed out waiting for {what}. Last error: {last?.Message}. {(agent is null ? string.Empty : "Log " + agent.LogPath + ":\n" + agent.LogTail())}");
    }

    /// <summary>
    /// Waits until <paramref name="watcher"/> has read config entries satisfying <paramref name="done"/> (its
    /// <see cref="ConsulCatalogWatcher.ConfigEntriesUpdated"/> event, no polling): what a dialer reading from it sees next.
    /// </summary>
    public static async Task ConfigReadAsync(ConsulCatalogWatcher watcher, Func<ConsulConfigSnapshot, bool> done, string what, TimeSpan? timeout = null)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnUpdate(ConsulConfigSnapshot snapshot)
        {
            if (done(snapshot))
            {
                seen.TrySetResult();
            }
        }

        watcher.ConfigEntriesUpdated += OnUpdate;
        try
        {
            if (watcher.ConfigEntries is { } current && done(current))
            {
                return;
            }

            await seen.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"Timed out waiting for the catalog watcher to read {what}.", ex);
        }
        finally
        {
            watcher.ConfigEntriesUpdated -= OnUpdate;
        }
    }

    /// <summary>Starts a dev agent and waits until its Connect CA has a trust domain; stops it again if that fails.</summary>
    public static async Task<ConsulAgent> StartWithCaAsync(ConsulAgentSettings settings)
    {
        ConsulAgent agent = await ConsulAgent.StartAsync(settings).ConfigureAwait(false);
        try
        {
            await TrustDomainAsync(agent).ConfigureAwait(false);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public static async Task<string> TrustDomainAsync(ConsulAgent agent)
    {
        using ConsulClient client = agent.CreateClient();
        ConsulCaRoots roots = await UntilChangedAsync(
            q => client.GetCaRootsAsync(q),
            r => !string.IsNullOrEmpty(r.TrustDomain) && r.Roots is { Count: > 0 },
            $"the Connect CA of {agent.Datacenter}",
            agent).ConfigureAwait(false);
        return roots.TrustDomain!;
    }
}
