using System.Collections.Immutable;

namespace MeshGateway.Consul;

/// <summary>Consul's address, health and weight rules for endpoints (reference sections 3 and 4).</summary>
public static class ConsulEndpointRules
{
    /// <summary>The largest weight Envoy accepts; Consul clamps to it.</summary>
    public const int MaxWeight = 128;

    /// <summary>
    /// The best address of an instance (section 4, <c>CheckServiceNode.BestAddress</c>): the service address and port;
    /// for <paramref name="wan"/> the service's <c>wan</c> tagged address (its port only when non-zero); when the address is
    /// still empty, the node's <c>wan</c> tagged address (if <paramref name="wan"/>) or the node address.
    /// Only the key <c>wan</c> is consulted; <c>lan</c>/<c>wan_ipv4</c>/… play no part.
    /// </summary>
    /// <param name="entry">The health entry.</param>
    /// <param name="wan">Whether the viewer is in another datacenter/partition.</param>
    /// <returns>The address (may be empty when Consul has none) and port.</returns>
    public static (string Address, int Port) BestAddress(ConsulHealthEntry entry, bool wan)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string address = entry.Service?.Address ?? string.Empty;
        int port = entry.Service?.Port ?? 0;
        if (wan && entry.Service?.TaggedAddresses is { } tagged && tagged.TryGetValue("wan", out ConsulServiceAddress? wanAddress) && wanAddress is not null)
        {
            address = wanAddress.Address ?? string.Empty;
            if (wanAddress.Port != 0)
            {
                port = wanAddress.Port;
            }
        }

        if (address.Length == 0)
        {
            address = wan && entry.Node?.TaggedAddresses is { } nodeTagged && nodeTagged.TryGetValue("wan", out string? nodeWan) && !string.IsNullOrEmpty(nodeWan)
                ? nodeWan
                : entry.Node?.Address ?? string.Empty;
        }

        return (address, port);
    }

    /// <summary>
    /// Health and weight per section 3 (<c>calculateEndpointHealthAndWeight</c>): start healthy with
    /// <c>Weights.Passing</c> (1 without weights); any critical check → unhealthy; with <paramref name="onlyPassing"/> any
    /// non-passing check → unhealthy; a warning with weights present → <c>Weights.Warning</c> (even when it also made the
    /// instance unhealthy); weight &lt; 1 → unhealthy and 1; weight &gt; 128 → 128. An unknown status string counts as critical.
    /// </summary>
    /// <param name="weights">The instance's weights, or null.</param>
    /// <param name="checks">The node and service checks.</param>
    /// <param name="onlyPassing">Whether the subset demands passing checks.</param>
    /// <returns>Whether healthy, and the weight in [1, 128].</returns>
    public static (bool Healthy, int Weight) HealthAndWeight(ConsulWeights? weights, IEnumerable<ConsulHealthCheck>? checks, bool onlyPassing)
    {
        bool healthy = true;
        int weight = weights?.Passing ?? 1;
        foreach (ConsulHealthCheck check in checks ?? [])
        {
            ConsulHealthStatus status = ParseStatus(check.Status);
            if (status == ConsulHealthStatus.Critical || (onlyPassing && status != ConsulHealthStatus.Passing))
            {
                healthy = false;
            }

            // Independent of the health decision, as in calculateEndpointHealthAndWeight.
            if (status == ConsulHealthStatus.Warning && weights is not null)
            {
                weight = weights.Warning;
            }
        }

        if (weight < 1)
        {
            healthy = false;
            weight = 1;
        }

        return (healthy, Math.Min(weight, MaxWeight));
    }

    /// <summary>The worst status of the checks; an unknown status string counts as critical.</summary>
    /// <param name="checks">The checks.</param>
    /// <returns>The aggregate.</returns>
    public static ConsulHealthStatus WorstStatus(IEnumerable<ConsulHealthCheck>? checks)
    {
        ConsulHealthStatus worst = ConsulHealthStatus.Passing;
        foreach (ConsulHealthCheck check in checks ?? [])
        {
            ConsulHealthStatus status = ParseStatus(check.Status);
            if (status > worst)
            {
                worst = status;
            }
        }

        return worst;
    }

    /// <summary>Builds the view of one endpoint.</summary>
    internal static ConsulEndpoint ToEndpoint(ConsulHealthEntry entry, bool wan, string fallbackDatacenter)
    {
        (string address, int port) = BestAddress(entry, wan);
        (bool healthy, int weight) = HealthAndWeight(entry.Service?.Weights, entry.Checks, onlyPassing: false);
        return new ConsulEndpoint
        {
            ServiceId = entry.Service?.ID ?? string.Empty,
            ServiceName = entry.Service?.Service ?? string.Empty,
            Kind = entry.Service?.Kind ?? string.Empty,
            Node = entry.Node?.Node ?? string.Empty,
            Datacenter = string.IsNullOrEmpty(entry.Node?.Datacenter) ? fallbackDatacenter : entry.Node.Datacenter,
            Address = address,
            Port = port,
            Healthy = healthy,
            Weight = weight,
            Status = WorstStatus(entry.Checks),
            Tags = entry.Service?.Tags is { } tags ? [.. tags] : [],
            Meta = entry.Service?.Meta is { } meta ? meta.ToImmutableSortedDictionary(StringComparer.Ordinal) : ImmutableSortedDictionary<string, string>.Empty,
        };
    }

    internal static ImmutableArray<ConsulEndpoint> ToEndpoints(IEnumerable<ConsulHealthEntry> entries, bool wan, string fallbackDatacenter, bool gatewaysOnly) =>
        [.. entries
            .Where(e => e.Service is not null && (!gatewaysOnly || e.Service.Kind == "mesh-gateway"))
            .Select(e => ToEndpoint(e, wan, fallbackDatacenter))
            .OrderBy(e => e.Node, StringComparer.Ordinal)
            .ThenBy(e => e.ServiceId, StringComparer.Ordinal)];

    private static ConsulHealthStatus ParseStatus(string? status) => status switch
    {
        "passing" => ConsulHealthStatus.Passing,
        "warning" => ConsulHealthStatus.Warning,
        _ => ConsulHealthStatus.Critical,
    };
}
