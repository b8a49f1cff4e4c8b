using System.Collections.Immutable;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// A complete, immutable picture of what a mesh gateway routes on, read from Consul (docs/consul-behaviour.md §8.3).
/// Instances are the catalog model itself (<see cref="CatalogServiceInstance"/>), exactly as Consul reported them; the address,
/// health and weight Consul would use are derived from them by one routine each (<see cref="BestAddress.Select(CatalogServiceInstance, bool)"/>,
/// <see cref="CatalogServiceInstance.HealthAndWeight"/>): LAN for <see cref="Services"/> and <see cref="LocalGateways"/>, WAN for
/// <see cref="RemoteGateways"/>. Conversion into routing snapshots is separate (<see cref="ConsulRouteTableBuilder"/>).
/// </summary>
/// <remarks>
/// <para>Equality is structural over every member, so an unchanged catalog yields an equal view.</para>
/// <para>Why no precomputed address/health per instance: a view slot is one reference (8 bytes) instead of a struct of ~32 bytes,
/// nothing derived can drift from the model, and the derivation is a few field reads plus one pass over the check statuses,
/// done once per view by the route builder. Which address applies is fixed by the collection an instance is in.</para>
/// </remarks>
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

    /// <summary>Mesh gateways of the local datacenter (addressed by their LAN best address), sorted by node then ID.</summary>
    public required ImmutableArray<CatalogServiceInstance> LocalGateways { get; init; }

    /// <summary>Mesh gateways per remote datacenter (addressed by their WAN best address), sorted by node then ID; only datacenters with ≥ 1 gateway.</summary>
    public required ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>> RemoteGateways { get; init; }

    /// <summary>
    /// WAN federation through mesh gateways: the local Consul servers (instances of the catalog service <c>consul</c>, whose
    /// <c>Port</c> is the server RPC port; addressed by their LAN best address), sorted by node then ID. Empty unless the
    /// watcher runs in WAN-federation mode (<see cref="ConsulCatalogWatcherOptions.WanFederation"/>).
    /// </summary>
    public ImmutableArray<CatalogServiceInstance> LocalServers { get; init; } = [];

    /// <summary>The agent's DNS domain (<c>consul</c> unless configured), the suffix of WAN-federation server names.</summary>
    public string DnsDomain { get; init; } = "consul";

    /// <summary>
    /// Enterprise: the mesh gateways of the other admin partitions of the local datacenter, by partition name (lower case;
    /// <c>default</c> for the default partition when the gateway serves another), addressed by their WAN best address (a
    /// different partition counts as remote, docs/consul-behaviour.md §4), sorted by node then ID; only partitions with ≥ 1 gateway.
    /// </summary>
    public ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>> PartitionGateways { get; init; } =
        ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>
    /// Cluster peering (Consul 1.13+), or null when the watcher does not read it (off, or the agent has no peering:
    /// <see cref="ConsulCatalogWatcherOptions.Peering"/>).
    /// </summary>
    public ConsulPeeringView? Peering { get; init; }

    /// <inheritdoc />
    public bool Equals(ConsulCatalogView? other) =>
        other is not null
        && TrustDomain == other.TrustDomain
        && Datacenter == other.Datacenter
        && Datacenters.SequenceEqual(other.Datacenters)
        && ViewEquality.DictionaryEquals(Services, other.Services, static (a, b) => a.Equals(b))
        && LocalGateways.SequenceEqual(other.LocalGateways)
        && ViewEquality.DictionaryEquals(RemoteGateways, other.RemoteGateways, static (a, b) => a.SequenceEqual(b))
        && LocalServers.SequenceEqual(other.LocalServers)
        && ViewEquality.DictionaryEquals(PartitionGateways, other.PartitionGateways, static (a, b) => a.SequenceEqual(b))
        && DnsDomain == other.DnsDomain
        && Equals(Peering, other.Peering);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(TrustDomain, Datacenter, Services.Count, RemoteGateways.Count, LocalGateways.Length);
}

/// <summary>
/// What a gateway routes for cluster peering (docs/consul-behaviour.md §11), as last read by <see cref="ConsulCatalogWatcher"/>:
/// the exported-services entry, the <c>mesh</c> entry's <c>Peering.PeerThroughMeshGateways</c>, the peerings, the local servers
/// (control plane through gateways) and the instances imported from every peer.
/// </summary>
/// <remarks>Equality: the raw answers (exported services, mesh entry, peerings) compare by the hash of their bodies
/// (<see cref="SourceHash"/>), the rest structurally.</remarks>
public sealed record ConsulPeeringView
{
    /// <summary>The partition's <c>exported-services</c> entry, or null when there is none.</summary>
    public ConsulExportedServices? ExportedServices { get; init; }

    /// <summary>The <c>mesh</c> config entry's <c>Peering.PeerThroughMeshGateways</c>: peers' control-plane traffic goes through the gateways.</summary>
    public bool PeerThroughMeshGateways { get; init; }

    /// <summary>The peerings (<c>/v1/peerings</c>), by name.</summary>
    public ImmutableArray<ConsulPeering> Peerings { get; init; } = [];

    /// <summary>
    /// The local Consul servers (<c>/v1/health/service/consul</c>), read when <see cref="PeerThroughMeshGateways"/>: their
    /// <c>Service.Meta.grpc_tls_port</c> is where peers' control-plane connections go. Sorted by node then ID.
    /// </summary>
    public ImmutableArray<CatalogServiceInstance> Servers { get; init; } = [];

    /// <summary>
    /// Instances imported from every peer (<c>/v1/health/connect/&lt;svc&gt;?peer=&lt;peer&gt;</c> for each name of
    /// <c>/v1/catalog/services?peer=&lt;peer&gt;</c>): the exporters' mesh gateways, each with <c>Connect.PeerMeta</c>.
    /// </summary>
    public ImmutableArray<CatalogServiceInstance> ImportedInstances { get; init; } = [];

    /// <summary>
    /// The protocol of each exported local service, as Consul's discovery chain takes it: the service's
    /// <c>service-defaults</c> <c>Protocol</c>, else <c>proxy-defaults</c> <c>Config.protocol</c>, else <c>tcp</c>.
    /// </summary>
    public ImmutableSortedDictionary<string, string> Protocols { get; init; } = ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal);

    /// <summary>A hash of the raw answers behind <see cref="ExportedServices"/>, <see cref="PeerThroughMeshGateways"/> and <see cref="Peerings"/>.</summary>
    public ulong SourceHash { get; init; }

    /// <inheritdoc />
    public bool Equals(ConsulPeeringView? other) =>
        other is not null
        && SourceHash == other.SourceHash
        && PeerThroughMeshGateways == other.PeerThroughMeshGateways
        && Servers.SequenceEqual(other.Servers)
        && ImportedInstances.SequenceEqual(other.ImportedInstances)
        && ViewEquality.DictionaryEquals(Protocols, other.Protocols, static (a, b) => a == b);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(SourceHash, Servers.Length, ImportedInstances.Length);
}

/// <summary>A local service and its Connect-capable instances.</summary>
public sealed record ConsulServiceView
{
    /// <summary>Service name.</summary>
    public required string Name { get; init; }

    /// <summary>Instances from <c>/v1/health/connect/&lt;name&gt;</c> (sidecars, native instances, linked terminating
    /// gateways), addressed by LAN best address, sorted by node then ID.</summary>
    public required ImmutableArray<CatalogServiceInstance> Instances { get; init; }

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

/// <summary>Orders and filters health entries for the view.</summary>
internal static class CatalogInstances
{
    /// <summary>The kind of mesh gateways.</summary>
    public const string MeshGatewayKind = "mesh-gateway";

    /// <summary>The instances sorted by node name then service ID (ordinal), optionally only mesh gateways.</summary>
    public static ImmutableArray<CatalogServiceInstance> Sorted(IEnumerable<CatalogServiceInstance> instances, bool gatewaysOnly) =>
        [.. instances
            .Where(i => !gatewaysOnly || i.Service.Kind == MeshGatewayKind)
            .OrderBy(i => i.Node.Name, StringComparer.Ordinal)
            .ThenBy(i => i.Service.Id, StringComparer.Ordinal)];
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
