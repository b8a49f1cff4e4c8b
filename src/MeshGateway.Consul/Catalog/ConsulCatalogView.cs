using System.Collections.Immutable;

namespace MeshGateway.Consul;

/// <summary>
/// A complete, immutable picture of what a mesh gateway routes on, read from Consul (reference section 8.3).
/// Model-neutral: names and addresses as Consul reports them, health and weights already computed (section 3),
/// remote gateways addressed by their WAN best address (section 4). Conversion into routing snapshots is separate.
/// </summary>
/// <remarks>Equality is structural over every member, so an unchanged catalog yields an equal view.</remarks>
public sealed record ConsulCatalogView
{
    /// <summary>The trust domain from <c>/v1/connect/ca/roots</c>, e.g. <c>7f42f496-….consul</c>.</summary>
    public required string TrustDomain { get; init; }

    /// <summary>The gateway's own datacenter.</summary>
    public required string Datacenter { get; init; }

    /// <summary>Every known datacenter (from <c>/v1/catalog/datacenters</c>), sorted ordinally.</summary>
    public required ImmutableArray<string> Datacenters { get; init; }

    /// <summary>Local services with at least one Connect-capable instance, by name.</summary>
    public required ImmutableSortedDictionary<string, ConsulServiceView> Services { get; init; }

    /// <summary>Mesh gateways of the local datacenter, addressed by their LAN best address.</summary>
    public required ImmutableArray<ConsulEndpoint> LocalGateways { get; init; }

    /// <summary>Mesh gateways per remote datacenter, addressed by their WAN best address; only datacenters with ≥ 1 gateway.</summary>
    public required ImmutableSortedDictionary<string, ImmutableArray<ConsulEndpoint>> RemoteGateways { get; init; }

    /// <inheritdoc />
    public bool Equals(ConsulCatalogView? other) =>
        other is not null
        && TrustDomain == other.TrustDomain
        && Datacenter == other.Datacenter
        && Datacenters.SequenceEqual(other.Datacenters)
        && ViewEquality.DictionaryEquals(Services, other.Services, static (a, b) => a.Equals(b))
        && LocalGateways.SequenceEqual(other.LocalGateways)
        && ViewEquality.DictionaryEquals(RemoteGateways, other.RemoteGateways, static (a, b) => a.SequenceEqual(b));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(TrustDomain, Datacenter, Services.Count, RemoteGateways.Count, LocalGateways.Length);
}

/// <summary>A local service and its Connect-capable instances.</summary>
public sealed record ConsulServiceView
{
    /// <summary>Service name.</summary>
    public required string Name { get; init; }

    /// <summary>Instances from <c>/v1/health/connect/&lt;name&gt;</c> (sidecars, native instances, linked terminating
    /// gateways), addressed by LAN best address, sorted by node then ID.</summary>
    public required ImmutableArray<ConsulEndpoint> Instances { get; init; }

    /// <summary>The service's <c>service-resolver</c>, if any.</summary>
    public ConsulResolverView? Resolver { get; init; }

    /// <inheritdoc />
    public bool Equals(ConsulServiceView? other) =>
        other is not null && Name == other.Name && Instances.SequenceEqual(other.Instances) && Equals(Resolver, other.Resolver);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Name, Instances.Length);
}

/// <summary>The parts of a <c>service-resolver</c> a gateway uses (raw: subset filters are not evaluated here).</summary>
public sealed record ConsulResolverView
{
    /// <summary>The subset the unnamed cluster uses, if set.</summary>
    public string? DefaultSubset { get; init; }

    /// <summary><c>ConnectTimeout</c>, if set.</summary>
    public TimeSpan? ConnectTimeout { get; init; }

    /// <summary>Subsets by name.</summary>
    public required ImmutableSortedDictionary<string, ConsulSubsetView> Subsets { get; init; }

    /// <inheritdoc />
    public bool Equals(ConsulResolverView? other) =>
        other is not null && DefaultSubset == other.DefaultSubset && ConnectTimeout == other.ConnectTimeout
        && ViewEquality.DictionaryEquals(Subsets, other.Subsets, static (a, b) => a == b);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(DefaultSubset, ConnectTimeout, Subsets.Count);
}

/// <summary>A <c>service-resolver</c> subset.</summary>
/// <param name="Filter">The go-bexpr filter, e.g. <c>Service.Meta.version == v2</c>.</param>
/// <param name="OnlyPassing">Whether any non-passing check makes an instance unhealthy.</param>
public sealed record ConsulSubsetView(string? Filter, bool OnlyPassing);

/// <summary>One routable instance or gateway with the address chosen for this gateway, its health and weight.</summary>
public sealed record ConsulEndpoint
{
    /// <summary>Instance ID.</summary>
    public required string ServiceId { get; init; }

    /// <summary>Service name of the instance (for sidecars, the proxy's own name).</summary>
    public required string ServiceName { get; init; }

    /// <summary>Service kind as Consul reports it (<c>""</c>, <c>connect-proxy</c>, <c>mesh-gateway</c>, …).</summary>
    public required string Kind { get; init; }

    /// <summary>Node name.</summary>
    public required string Node { get; init; }

    /// <summary>The instance's datacenter.</summary>
    public required string Datacenter { get; init; }

    /// <summary>The best address (section 4): LAN for local instances and gateways, WAN for remote gateways. May be a host name.</summary>
    public required string Address { get; init; }

    /// <summary>The port that goes with <see cref="Address"/>.</summary>
    public required int Port { get; init; }

    /// <summary>Health per section 3 (any critical check, or a weight below 1, makes it unhealthy).</summary>
    public required bool Healthy { get; init; }

    /// <summary>Load-balancing weight per section 3, in [1, 128].</summary>
    public required int Weight { get; init; }

    /// <summary>The worst check status; for <c>OnlyPassing</c> subsets anything but <see cref="ConsulHealthStatus.Passing"/> is unhealthy.</summary>
    public required ConsulHealthStatus Status { get; init; }

    /// <summary>Service tags (for subset filters).</summary>
    public ImmutableArray<string> Tags { get; init; } = [];

    /// <summary>Service metadata (for subset filters).</summary>
    public ImmutableSortedDictionary<string, string> Meta { get; init; } = ImmutableSortedDictionary<string, string>.Empty;

    /// <inheritdoc />
    public bool Equals(ConsulEndpoint? other) =>
        other is not null && ServiceId == other.ServiceId && ServiceName == other.ServiceName && Kind == other.Kind && Node == other.Node
        && Datacenter == other.Datacenter && Address == other.Address && Port == other.Port && Healthy == other.Healthy
        && Weight == other.Weight && Status == other.Status && Tags.SequenceEqual(other.Tags)
        && ViewEquality.DictionaryEquals(Meta, other.Meta, static (a, b) => a == b);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(ServiceId, Node, Address, Port, Healthy, Weight);
}

/// <summary>Aggregated check status of an instance.</summary>
public enum ConsulHealthStatus
{
    /// <summary>All checks pass (or there are none).</summary>
    Passing = 0,

    /// <summary>At least one check warns, none is critical.</summary>
    Warning = 1,

    /// <summary>At least one check is critical (maintenance counts as critical), or a status is unknown.</summary>
    Critical = 2,
}

internal static class ViewEquality
{
    public static bool DictionaryEquals<TValue>(ImmutableSortedDictionary<string, TValue> a, ImmutableSortedDictionary<string, TValue> b, Func<TValue, TValue, bool> equals)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        foreach (KeyValuePair<string, TValue> pair in a)
        {
            if (!b.TryGetValue(pair.Key, out TValue? other) || !equals(pair.Value, other))
            {
                return false;
            }
        }

        return true;
    }
}
