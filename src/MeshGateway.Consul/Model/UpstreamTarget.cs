namespace MeshGateway.Model;

/// <summary>What a sidecar dials for an upstream (docs/consul-behaviour.md §5.2).</summary>
public enum UpstreamDialKind
{
    /// <summary>Nothing: see <see cref="UpstreamTarget.Error"/>.</summary>
    Unroutable = 0,

    /// <summary>The target's own instances: LAN addresses in the caller's datacenter/partition, WAN addresses otherwise (mode <c>none</c>).</summary>
    TargetInstances,

    /// <summary>The mesh gateways of the caller's datacenter/partition, LAN addresses (mode <c>local</c>).</summary>
    LocalGateways,

    /// <summary>The mesh gateways of the target's datacenter/partition, WAN addresses (mode <c>remote</c>).</summary>
    TargetGateways,

    /// <summary>A peer's imported instances, which are the exporter's mesh gateways, WAN addresses (peer, mode <c>remote</c>).</summary>
    PeerGateways,
}

/// <summary>Why an upstream has nothing to dial.</summary>
public enum UpstreamTargetError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>Mode <c>local</c> but no mesh gateway is registered in the caller's datacenter/partition. Consul does not fall back to dialling directly.</summary>
    NoLocalGateways,

    /// <summary>Mode <c>remote</c> but no mesh gateway is known for the target's datacenter/partition. Consul does not fall back.</summary>
    NoTargetGateways,

    /// <summary>Dialling instances directly, but the target has no instances.</summary>
    NoTargetInstances,

    /// <summary>A peered upstream whose imported instances carry no <c>Connect.PeerMeta.SNI</c> (or there are none), so there is no name to send.</summary>
    NoPeerSni,
}

/// <summary>One address a sidecar dials for an upstream (the dial endpoint of an <see cref="UpstreamTarget"/>; not the data plane's <see cref="Routing.UpstreamEndpoint"/>).</summary>
/// <param name="Address">The chosen address (see <see cref="BestAddress"/>).</param>
/// <param name="Port">The chosen port.</param>
/// <param name="Healthy">Whether Consul would mark the endpoint healthy; through gateways: whether any real target instance is healthy.</param>
/// <param name="AddressSource">Where the address came from.</param>
/// <param name="Node">The node name of the instance or gateway.</param>
/// <param name="ServiceId">The service ID of the instance or gateway.</param>
public sealed record UpstreamDialEndpoint(string Address, int Port, bool Healthy, BestAddressSource AddressSource, string Node, string ServiceId);

/// <summary>The input of <see cref="UpstreamTargetPlanner.Plan"/>. Immutable.</summary>
public sealed record UpstreamTargetRequest
{
    /// <summary>The caller's (sidecar's) datacenter.</summary>
    public required string CallerDatacenter { get; init; }

    /// <summary>The caller's partition; null or empty means <c>default</c>.</summary>
    public string? CallerPartition { get; init; }

    /// <summary>The trust domain for the service SNI (the caller's; WAN-federated datacenters share it).</summary>
    public required string TrustDomain { get; init; }

    /// <summary>The upstream.</summary>
    public required MeshUpstream Upstream { get; init; }

    /// <summary>The resolved mode (<see cref="MeshGatewayModeResolution.Mode"/>).</summary>
    public MeshGatewayMode Mode { get; init; }

    /// <summary>The service-resolver subset's <c>OnlyPassing</c>: any non-passing check makes an instance unhealthy.</summary>
    public bool OnlyPassing { get; init; }
}

/// <summary>Where a sidecar dials for one upstream, the SNI it sends, and why. Immutable.</summary>
public sealed record UpstreamTarget
{
    /// <summary>What is dialled; <see cref="UpstreamDialKind.Unroutable"/> with an <see cref="Error"/>.</summary>
    public required UpstreamDialKind DialKind { get; init; }

    /// <summary>Why nothing can be dialled; <see cref="UpstreamTargetError.None"/> otherwise.</summary>
    public UpstreamTargetError Error { get; init; }

    /// <summary>The addresses to dial, in catalog order.</summary>
    public IReadOnlyList<UpstreamDialEndpoint> Endpoints { get; init; } = [];

    /// <summary>Whether <see cref="Endpoints"/> hold WAN best addresses.</summary>
    public bool UsesWanAddresses { get; init; }

    /// <summary>The SNI the sidecar sends (forms 1–4 with the target datacenter, form 7 for a prepared query, or the peer's form 8); null when unroutable for lack of one.</summary>
    public string? Sni { get; init; }

    /// <summary>The mode as applied: <see cref="MeshGatewayModeKind.None"/>, <see cref="MeshGatewayModeKind.Local"/> or <see cref="MeshGatewayModeKind.Remote"/>.</summary>
    public MeshGatewayModeKind AppliedMode { get; init; }

    /// <summary>Whether the mode was ignored: the target is in the caller's datacenter and partition, or the upstream is a prepared query.</summary>
    public bool ModeIgnored { get; init; }

    /// <summary>Whether mode <c>none</c> was given for a peer and treated as <c>remote</c> (Consul logs a warning).</summary>
    public bool NoneTreatedAsRemote { get; init; }

    /// <summary>Whether the given mode was an unknown string (Consul stored it unvalidated).</summary>
    public bool UnknownMode { get; init; }

    /// <summary>A sentence saying what is dialled and why.</summary>
    public required string Explanation { get; init; }

    /// <summary>Whether there is something to dial.</summary>
    public bool IsRoutable => Error == UpstreamTargetError.None;
}
