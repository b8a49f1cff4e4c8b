namespace MeshGateway.Model;

/// <summary>A check's status in Consul's health API (<c>passing</c>, <c>warning</c>, <c>critical</c>; maintenance shows as critical).</summary>
public enum CatalogHealthStatus
{
    /// <summary><c>passing</c>.</summary>
    Passing = 0,

    /// <summary><c>warning</c>.</summary>
    Warning,

    /// <summary><c>critical</c> (also any status string Consul does not define).</summary>
    Critical,
}

/// <summary>A value of <c>Service.TaggedAddresses</c>: an object with <c>Address</c> and <c>Port</c> (unlike the node's, which are strings).</summary>
/// <param name="Address">The address; may be empty (a <c>wan</c> entry with an empty address still supplies its port).</param>
/// <param name="Port">The port; 0 means "use the service port".</param>
public sealed record CatalogTaggedAddress(string Address, int Port);

/// <summary><c>Service.Weights</c>: the load-balancing weight while every check passes and while one warns.</summary>
/// <param name="Passing"><c>Weights.Passing</c>.</param>
/// <param name="Warning"><c>Weights.Warning</c>.</param>
public readonly record struct CatalogWeights(int Passing, int Warning);

/// <summary>The <c>Node</c> of a Consul health entry, reduced to what routing needs. Immutable.</summary>
/// <remarks>Equality is structural: the tagged addresses compare by content (ordinal keys).</remarks>
public sealed record CatalogNode
{
    /// <summary><c>Node.Node</c>: the node name.</summary>
    public required string Name { get; init; }

    /// <summary><c>Node.Address</c>: the node's LAN address.</summary>
    public string Address { get; init; } = string.Empty;

    /// <summary><c>Node.Datacenter</c>.</summary>
    public string Datacenter { get; init; } = string.Empty;

    /// <summary><c>Node.Partition</c>; null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>Node.TaggedAddresses</c> (string to string; keys such as <c>lan</c>, <c>wan</c>, <c>wan_ipv4</c>). Keys compare ordinally, as in Go.</summary>
    public IReadOnlyDictionary<string, string> TaggedAddresses { get; init; } = CatalogDictionaries.Empty<string>();

    /// <summary><c>Node.ModifyIndex</c>: the Raft index of the node's last change (0 when unknown).</summary>
    public ulong ModifyIndex { get; init; }

    /// <inheritdoc />
    public bool Equals(CatalogNode? other) =>
        ReferenceEquals(this, other)
        || (other is not null && Name == other.Name && Address == other.Address && Datacenter == other.Datacenter && Partition == other.Partition
            && ModifyIndex == other.ModifyIndex && CatalogEquality.MapEquals(TaggedAddresses, other.TaggedAddresses));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Name, Address, Datacenter, ModifyIndex);
}

/// <summary>The <c>Service</c> of a Consul health entry, reduced to what routing, subsets and the dialer need. Immutable.</summary>
/// <remarks>Equality is structural: collections compare by content (ordinal keys and values).</remarks>
public sealed record CatalogService
{
    /// <summary><c>Service.ID</c>.</summary>
    public required string Id { get; init; }

    /// <summary><c>Service.Service</c>: the service name (for a sidecar, the proxy's own name).</summary>
    public required string Name { get; init; }

    /// <summary><c>Service.Kind</c> as Consul reports it: empty for a typical service, <c>connect-proxy</c>, <c>mesh-gateway</c>, … (unknown kinds are kept).</summary>
    public string Kind { get; init; } = string.Empty;

    /// <summary><c>Service.Address</c>; may be empty (then the node's address is used).</summary>
    public string Address { get; init; } = string.Empty;

    /// <summary><c>Service.Port</c>.</summary>
    public int Port { get; init; }

    /// <summary><c>Service.TaggedAddresses</c> (keys such as <c>lan</c>, <c>wan</c>; compared ordinally, as in Go).</summary>
    public IReadOnlyDictionary<string, CatalogTaggedAddress> TaggedAddresses { get; init; } = CatalogDictionaries.Empty<CatalogTaggedAddress>();

    /// <summary><c>Service.Tags</c> (subset filters: <c>Service.Tags contains …</c>).</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary><c>Service.Meta</c> (subset filters: <c>Service.Meta.&lt;key&gt;</c>). Keys compare ordinally.</summary>
    public IReadOnlyDictionary<string, string> Meta { get; init; } = CatalogDictionaries.Empty<string>();

    /// <summary><c>Service.Weights</c>, or null when the entry has none (then the weight is 1).</summary>
    public CatalogWeights? Weights { get; init; }

    /// <summary><c>Service.Proxy.DestinationServiceName</c>: for a sidecar (<c>connect-proxy</c>), the service it fronts; otherwise null.</summary>
    public string? ProxyDestinationServiceName { get; init; }

    /// <summary><c>Service.Namespace</c>; null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary><c>Service.Partition</c>; null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>Service.PeerName</c>: set on instances imported from a peer.</summary>
    public string? PeerName { get; init; }

    /// <summary><c>Service.Connect.PeerMeta.SNI</c>: the form-8 names the exporter computed; a sidecar sends the first.</summary>
    public IReadOnlyList<string> PeerSni { get; init; } = [];

    /// <summary><c>Service.Connect.PeerMeta.SpiffeID</c>: the identities the exporter's instances present (what a dialer verifies).</summary>
    public IReadOnlyList<string> PeerSpiffeIds { get; init; } = [];

    /// <summary><c>Service.ModifyIndex</c>: the Raft index of the registration's last change (0 when unknown).</summary>
    public ulong ModifyIndex { get; init; }

    /// <inheritdoc />
    public bool Equals(CatalogService? other) =>
        ReferenceEquals(this, other)
        || (other is not null && Id == other.Id && Name == other.Name && Kind == other.Kind && Address == other.Address && Port == other.Port
            && Weights == other.Weights && ProxyDestinationServiceName == other.ProxyDestinationServiceName && Namespace == other.Namespace
            && Partition == other.Partition && PeerName == other.PeerName && ModifyIndex == other.ModifyIndex
            && CatalogEquality.MapEquals(TaggedAddresses, other.TaggedAddresses) && CatalogEquality.MapEquals(Meta, other.Meta)
            && CatalogEquality.ListEquals(Tags, other.Tags) && CatalogEquality.ListEquals(PeerSni, other.PeerSni)
            && CatalogEquality.ListEquals(PeerSpiffeIds, other.PeerSpiffeIds));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Id, Name, Kind, Address, Port, ModifyIndex);
}

/// <summary>
/// One health entry (<c>/v1/health/service</c>, <c>/v1/health/connect</c>): node, service and the statuses of its checks. Immutable.
/// The one model of a catalog instance: the Consul client parses health responses straight into it, and the route builder, subset
/// filters and the Connect dialer all read it.
/// </summary>
/// <remarks>Equality is structural (node, service and check statuses in order), so an unchanged catalog gives equal instances.</remarks>
public sealed record CatalogServiceInstance
{
    /// <summary>The largest weight Envoy accepts; Consul clamps to it (<c>calculateEndpointHealthAndWeight</c>).</summary>
    public const int MaxWeight = 128;

    /// <summary>The node.</summary>
    public required CatalogNode Node { get; init; }

    /// <summary>The service instance.</summary>
    public required CatalogService Service { get; init; }

    /// <summary>The status of each check (node and service checks).</summary>
    public IReadOnlyList<CatalogHealthStatus> Checks { get; init; } = [];

    /// <summary>The worst check status (<see cref="CatalogHealthStatus.Passing"/> without checks).</summary>
    public CatalogHealthStatus WorstStatus
    {
        get
        {
            CatalogHealthStatus worst = CatalogHealthStatus.Passing;
            foreach (CatalogHealthStatus status in Checks)
            {
                if (status > worst)
                {
                    worst = status;
                }
            }

            return worst;
        }
    }

    /// <summary>
    /// Health and load-balancing weight exactly as Consul computes them for an endpoint (<c>calculateEndpointHealthAndWeight</c> in
    /// <c>agent/xds/endpoints.go</c>, docs/consul-behaviour.md §3): start healthy with <c>Weights.Passing</c> (1 without weights); any critical
    /// check → unhealthy; with <paramref name="onlyPassing"/> any non-passing check → unhealthy; a warning with weights present →
    /// <c>Weights.Warning</c> (even when it also made the instance unhealthy); weight &lt; 1 → unhealthy and 1; weight &gt; 128 → 128.
    /// </summary>
    /// <param name="onlyPassing">The service-resolver subset's <c>OnlyPassing</c>.</param>
    /// <returns>Whether the instance is healthy, and its weight in [1, <see cref="MaxWeight"/>].</returns>
    public (bool Healthy, int Weight) HealthAndWeight(bool onlyPassing)
    {
        bool healthy = true;
        CatalogWeights? weights = Service.Weights;
        int weight = weights?.Passing ?? 1;
        foreach (CatalogHealthStatus status in Checks)
        {
            if (status == CatalogHealthStatus.Critical || (onlyPassing && status != CatalogHealthStatus.Passing))
            {
                healthy = false;
            }

            // Independent of the health decision, as in calculateEndpointHealthAndWeight.
            if (status == CatalogHealthStatus.Warning && weights is { } w)
            {
                weight = w.Warning;
            }
        }

        if (weight < 1)
        {
            healthy = false;
            weight = 1;
        }

        return (healthy, Math.Min(weight, MaxWeight));
    }

    /// <summary>Whether Consul would mark the instance healthy: <see cref="HealthAndWeight"/>'s first value.</summary>
    /// <param name="onlyPassing">The service-resolver subset's <c>OnlyPassing</c>.</param>
    /// <returns>Whether the instance is healthy.</returns>
    public bool IsHealthy(bool onlyPassing) => HealthAndWeight(onlyPassing).Healthy;

    /// <inheritdoc />
    public bool Equals(CatalogServiceInstance? other) =>
        ReferenceEquals(this, other)
        || (other is not null && Node.Equals(other.Node) && Service.Equals(other.Service) && CatalogEquality.ListEquals(Checks, other.Checks));

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Node, Service, Checks.Count);
}

/// <summary>
/// A datacenter and admin partition, Consul's gateway key (<c>agent/proxycfg/snapshot.go</c> <c>GatewayKey</c>). The partition is
/// normalised (empty becomes <c>default</c>), so keys compare the way Consul's <c>Matches</c>/<c>EqualPartitions</c> do.
/// </summary>
public readonly record struct GatewayKey
{
    /// <summary>Creates a key.</summary>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="partition">The partition; null or empty means <c>default</c>.</param>
    public GatewayKey(string datacenter, string? partition = null)
    {
        ArgumentNullException.ThrowIfNull(datacenter);
        _datacenter = datacenter;
        _partition = string.IsNullOrEmpty(partition) ? ConsulSniName.DefaultName : partition;
    }

    private readonly string? _datacenter;
    private readonly string? _partition;

    /// <summary>The datacenter (empty for the default value).</summary>
    public string Datacenter => _datacenter ?? string.Empty;

    /// <summary>The partition (never empty).</summary>
    public string Partition => _partition ?? ConsulSniName.DefaultName;

    /// <summary>Consul's rendering: <c>dc</c> in the default partition, <c>partition.dc</c> otherwise.</summary>
    /// <returns>The key text.</returns>
    public override string ToString() =>
        Partition == ConsulSniName.DefaultName ? Datacenter : Partition + "." + Datacenter;
}

/// <summary>What a sidecar knows about the catalog when it sets up one upstream. Immutable; the Consul adapter fills it.</summary>
public sealed record MeshCatalogView
{
    /// <summary>The upstream target's mesh-capable instances (for a peer: the imported instances, which are the exporter's
    /// gateways; for a prepared query: the nodes its execution returned, from any datacenter).</summary>
    public IReadOnlyList<CatalogServiceInstance> TargetInstances { get; init; } = [];

    /// <summary>Mesh gateways of the caller's own datacenter and partition.</summary>
    public IReadOnlyList<CatalogServiceInstance> LocalGateways { get; init; } = [];

    /// <summary>Mesh gateways registered in other datacenters/partitions, by gateway key.</summary>
    public IReadOnlyDictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> RemoteGateways { get; init; } =
        new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>();
}
