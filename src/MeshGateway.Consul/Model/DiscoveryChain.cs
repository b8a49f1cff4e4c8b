namespace MeshGateway.Model;

/// <summary>
/// The parts of a <c>service-resolver</c> config entry that decide a discovery chain's targets: redirect, default subset,
/// subsets and failover (Consul <c>agent/structs/config_entry_discoverychain.go</c>). Immutable.
/// </summary>
public sealed record ServiceResolverEntry
{
    /// <summary><c>Name</c>: the service the resolver is for.</summary>
    public required string Name { get; init; }

    /// <summary>The entry's namespace (Enterprise); null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary>The entry's partition (Enterprise); null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>DefaultSubset</c>: the subset used when the target names none.</summary>
    public string? DefaultSubset { get; init; }

    /// <summary>The names of <c>Subsets</c> (their filters do not matter for modes).</summary>
    public IReadOnlyList<string> Subsets { get; init; } = [];

    /// <summary><c>Redirect</c>, or null.</summary>
    public ServiceResolverRedirect? Redirect { get; init; }

    /// <summary><c>Failover</c>, keyed by subset name or <c>*</c>.</summary>
    public IReadOnlyDictionary<string, ServiceResolverFailover> Failover { get; init; } = new Dictionary<string, ServiceResolverFailover>();
}

/// <summary>A <c>service-resolver</c> <c>Redirect</c>: every empty field keeps the target's value. Immutable.</summary>
public sealed record ServiceResolverRedirect
{
    /// <summary><c>Service</c>; a different service also clears the subset.</summary>
    public string? Service { get; init; }

    /// <summary><c>ServiceSubset</c>.</summary>
    public string? ServiceSubset { get; init; }

    /// <summary><c>Namespace</c> (Enterprise).</summary>
    public string? Namespace { get; init; }

    /// <summary><c>Partition</c> (Enterprise, Consul 1.11+).</summary>
    public string? Partition { get; init; }

    /// <summary><c>Datacenter</c>.</summary>
    public string? Datacenter { get; init; }
}

/// <summary>A <c>service-resolver</c> <c>Failover</c> entry: one target per datacenter in <see cref="Datacenters"/>, or one
/// target from the other fields when the list is empty. Immutable.</summary>
public sealed record ServiceResolverFailover
{
    /// <summary><c>Service</c>; a different service also clears the subset.</summary>
    public string? Service { get; init; }

    /// <summary><c>ServiceSubset</c>.</summary>
    public string? ServiceSubset { get; init; }

    /// <summary><c>Namespace</c> (Enterprise).</summary>
    public string? Namespace { get; init; }

    /// <summary><c>Datacenters</c>, in failover order.</summary>
    public IReadOnlyList<string> Datacenters { get; init; } = [];
}

/// <summary>The parts of a <c>service-defaults</c> entry the chain compiler reads for a target. Immutable.</summary>
public sealed record ChainServiceDefaults
{
    /// <summary><c>Name</c>: the service.</summary>
    public required string Name { get; init; }

    /// <summary>The entry's namespace (Enterprise); null or empty means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary>The entry's partition (Enterprise); null or empty means <c>default</c>.</summary>
    public string? Partition { get; init; }

    /// <summary><c>MeshGateway</c>: the service's own mode, the base of every target that resolves to it.</summary>
    public MeshGatewayMode MeshGateway { get; init; }

    /// <summary><c>ExternalSNI</c>: when set the service is external (a terminating gateway's), and its targets bypass mesh gateways.</summary>
    public string? ExternalSni { get; init; }
}

/// <summary>The config entries the chain compiler reads for modes. Immutable.</summary>
public sealed record DiscoveryChainEntries
{
    /// <summary>Every <c>service-resolver</c>; a service without one gets Consul's default resolver (no redirect, no failover).</summary>
    public IReadOnlyList<ServiceResolverEntry> Resolvers { get; init; } = [];

    /// <summary>Every <c>service-defaults</c> the targets may resolve to.</summary>
    public IReadOnlyList<ChainServiceDefaults> ServiceDefaults { get; init; } = [];

    /// <summary><c>proxy-defaults</c> <c>MeshGateway</c> by partition, as the compiler reads it for a target's partition. For the
    /// caller's partition <see cref="MeshGatewayModeInputs.ProxyDefaults"/> is used when set (and then, being a dialing-side
    /// level, it also overrides every target).</summary>
    public IReadOnlyDictionary<string, MeshGatewayMode> ProxyDefaultsByPartition { get; init; } = new Dictionary<string, MeshGatewayMode>();
}

/// <summary>Why a chain target is in the chain.</summary>
public enum ChainTargetRole
{
    /// <summary>The target the chain resolves to (after redirects and the default subset).</summary>
    Primary = 0,

    /// <summary>A failover target of the primary, in failover order.</summary>
    Failover,
}

/// <summary>Which setting gave a chain target its mode (Consul <c>agent/consul/discoverychain/compile.go</c>).</summary>
public enum ChainTargetModeSource
{
    /// <summary>Nothing set a mode: the built-in default applies.</summary>
    None = 0,

    /// <summary>The target service's own <c>service-defaults</c> <c>MeshGateway</c>.</summary>
    TargetServiceDefaults,

    /// <summary><c>proxy-defaults</c> of the target's partition (only when the target's service-defaults set nothing).</summary>
    ProxyDefaults,

    /// <summary>The dialing side's winning value (the six levels of <see cref="MeshGatewayModeResolver.Resolve"/>), passed to
    /// the compiler as <c>OverrideMeshGateway</c>; it replaces whatever the target had.</summary>
    Override,

    /// <summary>The target service has <c>ExternalSNI</c>: its mode is always empty (mesh gateways are bypassed).</summary>
    External,
}

/// <summary>One target of a compiled discovery chain and its mesh gateway mode. Immutable.</summary>
public sealed record ChainTarget
{
    /// <summary>Consul's target ID, <c>[&lt;subset&gt;.]&lt;service&gt;.&lt;namespace&gt;.&lt;partition&gt;.&lt;datacenter&gt;</c> (Consul 1.11+
    /// spelling; 1.8 omits the partition).</summary>
    public required string Id { get; init; }

    /// <summary>The service.</summary>
    public required string Service { get; init; }

    /// <summary>The subset, or null.</summary>
    public string? Subset { get; init; }

    /// <summary>The namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The partition.</summary>
    public required string Partition { get; init; }

    /// <summary>The datacenter.</summary>
    public required string Datacenter { get; init; }

    /// <summary>Primary or failover.</summary>
    public required ChainTargetRole Role { get; init; }

    /// <summary>The IDs the target was reached through by redirects (and the default subset), first the one asked for; empty when none.</summary>
    public IReadOnlyList<string> RedirectedFrom { get; init; } = [];

    /// <summary>Whether the target's service has <c>ExternalSNI</c> (reached through a terminating gateway, which
    /// <see cref="UpstreamTargetPlanner"/> does not model).</summary>
    public bool External { get; init; }

    /// <summary>The target's mode as the compiler sets it (unset when nothing set one, or for external targets).</summary>
    public MeshGatewayMode Mode { get; init; }

    /// <summary>Which setting gave <see cref="Mode"/>.</summary>
    public ChainTargetModeSource DecidedBy { get; init; }

    /// <summary>A sentence saying how the target was reached and which setting gave its mode.</summary>
    public required string Explanation { get; init; }

    /// <summary>The upstream to plan this target with <see cref="UpstreamTargetPlanner.Plan"/> (pass <see cref="Mode"/> as the request's mode).</summary>
    /// <returns>The upstream naming exactly this target.</returns>
    public MeshUpstream ToUpstream() => new()
    {
        Name = Service,
        Namespace = Namespace,
        Partition = Partition,
        Datacenter = Datacenter,
        Subset = Subset,
        MeshGateway = Mode,
    };
}

/// <summary>The modes of every target of one upstream's discovery chain. Immutable.</summary>
public sealed record DiscoveryChainModes
{
    /// <summary>The dialing side's resolution (six levels), which Consul passes to the compiler as <c>OverrideMeshGateway</c>.</summary>
    public required MeshGatewayModeResolution Override { get; init; }

    /// <summary>The primary target first, then its failover targets in order; empty when <see cref="Error"/> is set.</summary>
    public IReadOnlyList<ChainTarget> Targets { get; init; } = [];

    /// <summary>Consul's compile error (for example <c>detected circular resolver redirect: [...]</c>), or null.</summary>
    public string? Error { get; init; }

    /// <summary>Whether the chain compiled.</summary>
    public bool IsValid => Error is null;
}
