namespace MeshGateway.Model;

/// <summary>A check's status in Consul's health API (<c>passing</c>, <c>warning</c>, <c>critical</c>; maintenance shows as critical).</summary>
public enum CatalogHealthStatus
{
    /// <summary><c>passing</c>.</summary>
    Passing = 0,

    /// <summary><c>warning</c>.</summary>
    Warning,

    /// <summary><c>critical</c>.</summary>
    Critical,
}

/// <summary>A value of <c>Service.TaggedAddresses</c>: an object with <c>Address</c> and <c>Port</c> (unlike the node's, which are strings).</summary>
/// <param name="Address">The address; may be empty (a <c>wan</c> entry with an empty address still supplies its port).</param>
/// <param name="Port">The port; 0 means "use the service port".</param>
public sealed record CatalogTaggedAddress(string Address, int Port);

/// <summary>The <c>Node</c> of a Consul health entry, reduced to what routing needs. Immutable.</summary>
/// <remarks>Equality of the dictionary member is by reference, as for any record; compare the values you care about.</remarks>
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
    public IReadOnlyDictionary<string, string> TaggedAddresses { get; init; } = EmptyNodeTags;

    internal static IReadOnlyDictionary<string, string> EmptyNodeTags { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>The <c>Service</c> of a Consul health entry, reduced to what routing needs. Immutable.</summary>
/// <remarks>Equality of the collection members is by reference, as for any record.</remarks>
public sealed record CatalogService
{
    /// <summary><c>Service.ID</c>.</summary>
    public required string Id { get; init; }

    /// <summary><c>Service.Service</c>: the service name.</summary>
    public required string Name { get; init; }

    /// <summary><c>Service.Address</c>; may be empty (then the node's address is used).</summary>
    public string Address { get; init; } = string.Empty;

    /// <summary><c>Service.Port</c>.</summary>
    public int Port { get; init; }

    /// <summary><c>Service.TaggedAddresses</c> (keys such as <c>lan</c>, <c>wan</c>; compared ordinally, as in Go).</summary>
    public IReadOnlyDictionary<string, CatalogTaggedAddress> TaggedAddresses { get; init; } = EmptyServiceTags;

    /// <summary><c>Service.Namespace</c>; null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary><c>Service.Partition</c>; null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>Service.PeerName</c>: set on instances imported from a peer.</summary>
    public string? PeerName { get; init; }

    /// <summary><c>Service.Connect.PeerMeta.SNI</c>: the form-8 names the exporter computed; a sidecar sends the first.</summary>
    public IReadOnlyList<string> PeerSni { get; init; } = [];

    internal static IReadOnlyDictionary<string, CatalogTaggedAddress> EmptyServiceTags { get; } = new Dictionary<string, CatalogTaggedAddress>(StringComparer.Ordinal);
}

/// <summary>One health entry (<c>/v1/health/service</c>, <c>/v1/health/connect</c>): node, service and the statuses of its checks. Immutable.</summary>
public sealed record CatalogServiceInstance
{
    /// <summary>The node.</summary>
    public required CatalogNode Node { get; init; }

    /// <summary>The service instance.</summary>
    public required CatalogService Service { get; init; }

    /// <summary>The status of each check (node and service checks).</summary>
    public IReadOnlyList<CatalogHealthStatus> Checks { get; init; } = [];

    /// <summary>
    /// Whether Consul would mark the instance healthy (<c>calculateEndpointHealthAndWeight</c> in <c>agent/xds/endpoints.go</c>):
    /// unhealthy when any check is critical, or, with <paramref name="onlyPassing"/>, when any check is not passing.
    /// </summary>
    /// <param name="onlyPassing">The service-resolver subset's <c>OnlyPassing</c>.</param>
    /// <returns>Whether the instance is healthy.</returns>
    public bool IsHealthy(bool onlyPassing)
    {
        foreach (CatalogHealthStatus status in Checks)
        {
            if (status == CatalogHealthStatus.Critical || (onlyPassing && status != CatalogHealthStatus.Passing))
            {
                return false;
            }
        }

        return true;
    }
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
    /// <summary>The upstream target's mesh-capable instances (for a peer: the imported instances, which are the exporter's gateways).</summary>
    public IReadOnlyList<CatalogServiceInstance> TargetInstances { get; init; } = [];

    /// <summary>Mesh gateways of the caller's own datacenter and partition.</summary>
    public IReadOnlyList<CatalogServiceInstance> LocalGateways { get; init; } = [];

    /// <summary>Mesh gateways registered in other datacenters/partitions, by gateway key.</summary>
    public IReadOnlyDictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> RemoteGateways { get; init; } =
        new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>();
}
