namespace MeshGateway.Model;

/// <summary>The configuration levels that can set a mesh gateway mode for an upstream, lowest precedence first.</summary>
public enum MeshGatewayModeLevel
{
    /// <summary>No level set a mode: Consul's built-in default applies (direct for other datacenters, <c>remote</c> for peers).</summary>
    BuiltInDefault = 0,

    /// <summary>1. <c>proxy-defaults/global</c> <c>MeshGateway</c>.</summary>
    ProxyDefaults,

    /// <summary>2. The dialing service's <c>service-defaults</c> top-level <c>MeshGateway</c>.</summary>
    ServiceDefaults,

    /// <summary>3. The dialing service's <c>service-defaults</c> <c>UpstreamConfig.Defaults.MeshGateway</c>.</summary>
    UpstreamDefaults,

    /// <summary>4. The proxy registration's <c>Proxy.MeshGateway</c> (the "service instance" level of the documentation).</summary>
    ProxyRegistration,

    /// <summary>5. The dialing service's <c>service-defaults</c> <c>UpstreamConfig.Overrides[&lt;upstream&gt;].MeshGateway</c>.</summary>
    UpstreamOverride,

    /// <summary>6. The upstream definition's own <c>Proxy.Upstreams[].MeshGateway</c>.</summary>
    Upstream,

    /// <summary>
    /// The destination service's own <c>service-defaults</c> <c>MeshGateway</c>, which the discovery-chain compiler uses only
    /// when all six dialing-side levels are unset, and never for peered upstreams.
    /// </summary>
    DestinationServiceDefaults,
}

/// <summary>What an upstream's <c>DestinationName</c> names (<c>Proxy.Upstreams[].DestinationType</c>).</summary>
public enum UpstreamDestinationType
{
    /// <summary><c>service</c> (also an empty <c>DestinationType</c>): a service, resolved through its discovery chain.</summary>
    Service = 0,

    /// <summary><c>prepared_query</c>: a prepared query, executed by the agent; it has no discovery chain and no gateway mode
    /// (Consul <c>agent/xds/endpoints.go</c> dials the query's result nodes directly; <c>agent/connect/sni.go</c> <c>UpstreamSNI</c>
    /// names it with <c>QuerySNI</c>, form 7).</summary>
    PreparedQuery,
}

/// <summary>Consul's spelling of <see cref="UpstreamDestinationType"/>.</summary>
public static class UpstreamDestinationTypes
{
    /// <summary>Parses <c>DestinationType</c> as Consul's <c>structs.UpstreamDestType*</c> constants spell it.</summary>
    /// <param name="value"><c>service</c>, <c>prepared_query</c>, or null/empty (service).</param>
    /// <param name="type">The type.</param>
    /// <returns>Whether the value is one Consul accepts (<c>agent/structs/connect_proxy_config.go</c> <c>Upstream.Validate</c>).</returns>
    public static bool TryParse(string? value, out UpstreamDestinationType type)
    {
        switch (value)
        {
            case null or "" or "service":
                type = UpstreamDestinationType.Service;
                return true;
            case "prepared_query":
                type = UpstreamDestinationType.PreparedQuery;
                return true;
            default:
                type = UpstreamDestinationType.Service;
                return false;
        }
    }
}

/// <summary>An upstream as a proxy registration defines it (<c>Proxy.Upstreams[]</c>). Immutable.</summary>
public sealed record MeshUpstream
{
    /// <summary><c>DestinationName</c>: the service dialled, or the prepared query's name when <see cref="DestinationType"/> is
    /// <see cref="UpstreamDestinationType.PreparedQuery"/>.</summary>
    public required string Name { get; init; }

    /// <summary><c>DestinationType</c>: a service (default) or a prepared query.</summary>
    public UpstreamDestinationType DestinationType { get; init; }

    /// <summary><c>DestinationNamespace</c>; null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary><c>DestinationPartition</c>; null or empty means the caller's partition. Ignored for peers (Consul uses the caller's).</summary>
    public string? Partition { get; init; }

    /// <summary><c>Datacenter</c>; null or empty means the caller's datacenter.</summary>
    public string? Datacenter { get; init; }

    /// <summary><c>DestinationPeer</c>; set for a service imported from a cluster peer.</summary>
    public string? Peer { get; init; }

    /// <summary>The service-resolver subset the upstream resolves to (from the discovery chain), or null.</summary>
    public string? Subset { get; init; }

    /// <summary>The upstream's own <c>MeshGateway</c> (level 6).</summary>
    public MeshGatewayMode MeshGateway { get; init; }

    /// <summary>Whether the upstream is a peered service.</summary>
    public bool IsPeered => !string.IsNullOrEmpty(Peer);
}

/// <summary>One <c>UpstreamConfig.Overrides</c> entry of the dialing service's <c>service-defaults</c>. Immutable.</summary>
public sealed record UpstreamModeOverride
{
    /// <summary><c>Name</c>; entries with an empty name are skipped, as Consul does (with a warning).</summary>
    public required string Name { get; init; }

    /// <summary><c>Namespace</c>; null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary><c>Partition</c>; null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>Peer</c> (Consul 1.15+); null or empty for a local service.</summary>
    public string? Peer { get; init; }

    /// <summary><c>MeshGateway</c>.</summary>
    public MeshGatewayMode MeshGateway { get; init; }
}

/// <summary>Every dialing-side setting that can decide an upstream's mode, plus the destination's own service-defaults. Immutable.</summary>
public sealed record MeshGatewayModeInputs
{
    /// <summary>Level 1: <c>proxy-defaults/global</c> <c>MeshGateway</c>.</summary>
    public MeshGatewayMode ProxyDefaults { get; init; }

    /// <summary>Level 2: the dialing service's <c>service-defaults</c> <c>MeshGateway</c>.</summary>
    public MeshGatewayMode ServiceDefaults { get; init; }

    /// <summary>Level 3: the dialing service's <c>service-defaults</c> <c>UpstreamConfig.Defaults.MeshGateway</c>.</summary>
    public MeshGatewayMode UpstreamDefaults { get; init; }

    /// <summary>Level 4: the proxy registration's <c>Proxy.MeshGateway</c>.</summary>
    public MeshGatewayMode ProxyRegistration { get; init; }

    /// <summary>Level 5 candidates: the dialing service's <c>UpstreamConfig.Overrides</c>, in their order.</summary>
    public IReadOnlyList<UpstreamModeOverride> UpstreamOverrides { get; init; } = [];

    /// <summary>The destination service's own <c>service-defaults</c> <c>MeshGateway</c>.</summary>
    public MeshGatewayMode DestinationServiceDefaults { get; init; }

    /// <summary>The dialing proxy's partition; null or empty means <c>default</c>. Used to match overrides.</summary>
    public string? CallerPartition { get; init; }
}

/// <summary>The mode that applies to one upstream, which level decided it and why. Immutable.</summary>
public sealed record MeshGatewayModeResolution
{
    /// <summary>The winning value exactly as stored (unset when no level set one).</summary>
    public required MeshGatewayMode Mode { get; init; }

    /// <summary>The level whose value won.</summary>
    public required MeshGatewayModeLevel DecidedBy { get; init; }

    /// <summary>The index in <see cref="MeshGatewayModeInputs.UpstreamOverrides"/> of the override that matched the upstream, or null.</summary>
    public int? MatchedOverrideIndex { get; init; }

    /// <summary>Whether the upstream is peered (its modes then mean something slightly different; see <see cref="EffectiveMode"/>).</summary>
    public bool IsPeered { get; init; }

    /// <summary>
    /// What the sidecar does for a target outside its datacenter/partition: unset or unknown means <c>none</c> (direct) for
    /// other datacenters and <c>remote</c> for peers; <c>none</c> means <c>remote</c> for peers. Never unset or unknown.
    /// Targets in the caller's own datacenter and partition ignore the mode (see <see cref="UpstreamTargetPlanner"/>).
    /// </summary>
    public required MeshGatewayModeKind EffectiveMode { get; init; }

    /// <summary>Whether the winning value is a string Consul's HTTP API accepted but is not a valid mode.</summary>
    public bool DecidedByUnknownValue => !Mode.IsKnown;

    /// <summary>Every considered level holding an unknown value (reported even when it did not win).</summary>
    public IReadOnlyList<MeshGatewayModeLevel> LevelsWithUnknownValues { get; init; } = [];

    /// <summary>A sentence saying which level decided and what that means.</summary>
    public required string Explanation { get; init; }
}
