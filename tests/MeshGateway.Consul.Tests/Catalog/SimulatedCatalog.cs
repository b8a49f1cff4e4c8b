using MeshGateway.Model;
using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// Reference views built from scratch from a <see cref="SimulatedConsulAgent"/>'s state (not through HTTP or the watcher),
/// with Consul's rules written out independently here: connect instances per <c>/v1/health/connect</c>, LAN/WAN best
/// address (docs/consul-behaviour.md §4), health and weight (§3). Plus a route-table rendering for comparisons.
/// </summary>
internal static class SimulatedCatalog
{
    public static ConsulClient Client(SimulatedConsulAgent agent, int maxConnections = ConsulClientOptions.DefaultMaxConnections) =>
        new(new ConsulClientOptions { Address = agent.Address, MaxConnections = maxConnections, RequestTimeout = TimeSpan.FromSeconds(30) });

    public static ConsulCatalogWatcherOptions FastOptions() => new()
    {
        DatacenterPollInterval = TimeSpan.FromMilliseconds(500),
        GatewayPollInterval = TimeSpan.FromMilliseconds(200),
        BlockingQuery = new BlockingQueryOptions
        {
            Wait = TimeSpan.FromSeconds(5),
            RateLimitInterval = TimeSpan.FromMilliseconds(5),
            RateLimitBurst = 4,
            ErrorBackoffBase = TimeSpan.FromMilliseconds(100),
            ErrorBackoffMax = TimeSpan.FromSeconds(1),
        },
    };

    /// <summary>The view a watcher should converge to, built directly from the simulator's state.</summary>
    public static ConsulCatalogView ReferenceView(SimulatedConsulAgent agent)
    {
        SimSnapshot local = agent.Snapshot();
        var resolvers = agent.ConfigEntries("service-resolver").ToDictionary(e => e.Name, e => ToResolver(e.Body), StringComparer.Ordinal);
        var services = ImmutableSortedDictionary.CreateBuilder<string, ConsulServiceView>(StringComparer.Ordinal);
        foreach (IGrouping<string, SimInstance> group in local.Instances.Where(i => i.ConnectTarget is not null).GroupBy(i => i.ConnectTarget!, StringComparer.Ordinal))
        {
            services[group.Key] = new ConsulServiceView
            {
                Name = group.Key,
                Instances = [.. group.Select(i => ToInstance(local, i)).OrderBy(e => e.Node.Name, StringComparer.Ordinal).ThenBy(e => e.Service.Id, StringComparer.Ordinal)],
                Resolver = resolvers.GetValueOrDefault(group.Key),
            };
        }

        var remote = ImmutableSortedDictionary.CreateBuilder<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
        foreach (string dc in agent.Datacenters.Where(d => d != agent.Datacenter))
        {
            SimSnapshot snapshot = agent.Snapshot(dc);
            ImmutableArray<CatalogServiceInstance> gateways = [.. snapshot.Instances.Where(i => i.Kind == "mesh-gateway")
                .Select(i => ToInstance(snapshot, i)).OrderBy(e => e.Node.Name, StringComparer.Ordinal).ThenBy(e => e.Service.Id, StringComparer.Ordinal)];
            if (gateways.Length > 0)
            {
                remote[dc] = gateways;
            }
        }

        return new ConsulCatalogView
        {
            TrustDomain = agent.TrustDomain,
            Datacenter = agent.Datacenter,
            Datacenters = [.. agent.Datacenters.Order(StringComparer.Ordinal)],
            Services = services.ToImmutable(),
            LocalGateways = [],
            RemoteGateways = remote.ToImmutable(),
        };
    }

    /// <summary>Every route as one line (pattern, cluster, endpoints sorted with address, port, weight, health), sorted.</summary>
    public static string[] Render(RouteTable table) =>
        [.. table.Routes.Select(r => r.Pattern + " -> " + r.Cluster.Name + " [" + string.Join(", ", r.Cluster.Endpoints
            .Select(e => $"{e.EndPoint} w={e.Weight} {(e.IsHealthy ? "up" : "down")}").Order(StringComparer.Ordinal)) + "]")
            .Order(StringComparer.Ordinal)];

    /// <summary>Waits (bounded, event-driven) until the watcher publishes a view whose table renders as <paramref name="expected"/>.</summary>
    /// <exception cref="TimeoutException">Not within <paramref name="timeout"/>; the message holds the difference only.</exception>
    public static async Task<TimeSpan> WaitForTableAsync(ConsulCatalogWatcher watcher, string[] expected, TimeSpan timeout)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            if (watcher.Current is { } current && Render(current).SequenceEqual(expected))
            {
                return System.Diagnostics.Stopwatch.GetElapsedTime(start);
            }

            await foreach (ConsulCatalogView view in watcher.Views.ReadAllAsync(cts.Token))
            {
                if (Render(view).SequenceEqual(expected))
                {
                    return System.Diagnostics.Stopwatch.GetElapsedTime(start);
                }
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
        }

        throw new TimeoutException(Difference(watcher, expected, timeout));
    }

    public static string Difference(ConsulCatalogWatcher watcher, string[] expected, TimeSpan timeout)
    {
        string[] actual = watcher.Current is { } last ? Render(last) : ["(no view)"];
        return $"No table equal to the from-scratch one within {timeout.TotalSeconds:0.#} s (watcher errors {watcher.ErrorCount}, sweeps {watcher.SweepCount});\n" +
            $" expected only:\n   {string.Join("\n   ", expected.Except(actual).Take(10))}\n actual only:\n   {string.Join("\n   ", actual.Except(expected).Take(10))}";
    }

    public static string[] Render(ConsulCatalogView view)
    {
        ConsulRouteConversion conversion = ConsulRouteTableBuilder.Convert(view);
        return conversion.Succeeded ? Render(conversion.Table) : ["conversion failed: " + conversion.Error];
    }

    /// <summary>The simulator's instance as the model holds it (raw: the builder applies docs/consul-behaviour.md §3 and §4 itself).</summary>
    private static CatalogServiceInstance ToInstance(SimSnapshot snapshot, SimInstance instance)
    {
        SimNode node = snapshot.Nodes.Single(n => n.Name == instance.Node);
        CatalogHealthStatus[] statuses = [.. snapshot.Checks.Where(c => c.Node == instance.Node && (c.ServiceId is null || c.ServiceId == instance.Id))
            .Select(c => c.Status switch { "passing" => CatalogHealthStatus.Passing, "warning" => CatalogHealthStatus.Warning, _ => CatalogHealthStatus.Critical })];
        return new CatalogServiceInstance
        {
            Node = new CatalogNode
            {
                Name = node.Name,
                Address = node.Address,
                Datacenter = snapshot.Datacenter,
                TaggedAddresses = node.WanAddress is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["wan"] = node.WanAddress },
            },
            Service = new CatalogService
            {
                Id = instance.Id,
                Name = instance.Name,
                Kind = instance.Kind,
                Address = instance.Address,
                Port = instance.Port,
                TaggedAddresses = instance.WanAddress is null
                    ? new Dictionary<string, CatalogTaggedAddress>()
                    : new Dictionary<string, CatalogTaggedAddress> { ["wan"] = new CatalogTaggedAddress(instance.WanAddress, instance.WanPort) },
                Tags = [.. instance.Tags],
                Meta = new Dictionary<string, string>(instance.Meta),
                // The simulator always reports Weights, as an agent registration does.
                Weights = new CatalogWeights(instance.PassingWeight, instance.WarningWeight),
            },
            Checks = statuses,
        };
    }

    private static ConsulResolverView ToResolver(JsonElement body)
    {
        var subsets = ImmutableSortedDictionary.CreateBuilder<string, ConsulSubsetView>(StringComparer.Ordinal);
        if (body.TryGetProperty("Subsets", out JsonElement list) && list.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty subset in list.EnumerateObject())
            {
                subsets[subset.Name] = new ConsulSubsetView(
                    subset.Value.TryGetProperty("Filter", out JsonElement f) ? f.GetString() : null,
                    subset.Value.TryGetProperty("OnlyPassing", out JsonElement p) && p.GetBoolean());
            }
        }

        return new ConsulResolverView
        {
            DefaultSubset = body.TryGetProperty("DefaultSubset", out JsonElement d) && d.GetString() is { Length: > 0 } s ? s : null,
            ConnectTimeout = body.TryGetProperty("ConnectTimeout", out JsonElement t) && t.GetString() is { Length: > 0 } timeout
                ? TimeSpan.FromSeconds(double.Parse(timeout.TrimEnd('s'), CultureInfo.InvariantCulture))
                : null,
            Subsets = subsets.ToImmutable(),
        };
    }
}
