namespace MeshGateway.Consul;

/// <summary>
/// One cluster peering as <c>GET /v1/peerings</c> and <c>GET /v1/peering/&lt;name&gt;</c> report it (Consul 1.13+; shape of
/// <c>api/peering.go</c>, <c>Peering</c>). Only what a gateway and a dialer use is typed.
/// </summary>
public sealed class ConsulPeering
{
    /// <summary>The peering's datacenter-scoped UUID.</summary>
    public string? ID { get; init; }

    /// <summary>The local name of the peer (the <c>&lt;peer&gt;</c> label of the SNI names this side computes).</summary>
    public string? Name { get; init; }

    /// <summary>Enterprise: the local partition of the peering.</summary>
    public string? Partition { get; init; }

    /// <summary><c>PENDING</c>, <c>ESTABLISHING</c>, <c>ACTIVE</c>, <c>FAILING</c>, <c>DELETING</c>, <c>TERMINATED</c> (or <c>UNDEFINED</c>).</summary>
    public string? State { get; init; }

    /// <summary>The peer's CA certificates (PEM): the roots its leaf certificates chain to.</summary>
    public IReadOnlyList<string>? PeerCAPems { get; init; }

    /// <summary>The TLS server name of the peer's servers, <c>server.&lt;dc&gt;.peering.&lt;peer TD&gt;</c> (set on the dialing side).</summary>
    public string? PeerServerName { get; init; }

    /// <summary>The peer's server addresses, <c>host:port</c> (only on the side that dials: the one that established the peering with a token).</summary>
    public IReadOnlyList<string>? PeerServerAddresses { get; init; }

    /// <summary>Consul 1.17+: addresses an operator set to override <see cref="PeerServerAddresses"/> (they take precedence when set).</summary>
    public IReadOnlyList<string>? ManualServerAddresses { get; init; }

    /// <summary>Raft index of the peering's last change.</summary>
    public ulong ModifyIndex { get; init; }

    /// <summary>Whether this side dials the peer's servers (Consul's <c>Peering.ShouldDial</c>: it has addresses to dial, and the peering is not terminated).</summary>
    public bool ShouldDial => (PeerServerAddresses is { Count: > 0 } || ManualServerAddresses is { Count: > 0 }) && State != "TERMINATED";

    /// <summary>The addresses to dial (Consul's <c>GetAddressesToDial</c>: manual addresses first).</summary>
    public IReadOnlyList<string> AddressesToDial => ManualServerAddresses is { Count: > 0 } manual ? manual : PeerServerAddresses ?? [];
}
