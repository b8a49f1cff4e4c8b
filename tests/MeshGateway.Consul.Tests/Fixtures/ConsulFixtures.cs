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
            await ConsulWait.UntilAsync(async () => (await c1.GetDatacentersAsync().ConfigureAwait(false)).Value.Count == 2
                && (await c2.GetDatacentersAsync().ConfigureAwait(false)).Value.Count == 2, "dc1 and dc2 WAN-joined", Dc2).ConfigureAwait(false);
            TrustDomain = await ConsulWait.TrustDomainAsync(Dc1).ConfigureAwait(false);
            string td2 = await ConsulWait.TrustDomainAsync(Dc2).ConfigureAwait(false);
            if (td2 != TrustDomain)
            {
                throw new InvalidOperationException($"dc2 trust domain {td2} differs from dc1's {TrustDomain}.");
            }
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

/// <summary>Bounded polling of a condition against a real agent (safety-net timeouts, no fixed sleeps).</summary>
internal static class ConsulWait
{
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
        string trustDomain = string.Empty;
        await UntilAsync(async () =>
        {
            ConsulCaRoots roots = (await client.GetCaRootsAsync().ConfigureAwait(false)).Value;
            trustDomain = roots.TrustDomain ?? string.Empty;
            return trustDomain.Length > 0 && roots.Roots is { Count: > 0 };
        }, $"the Connect CA of {agent.Datacenter}", agent).ConfigureAwait(false);
        return trustDomain;
    }
}
