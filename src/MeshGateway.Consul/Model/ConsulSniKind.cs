namespace MeshGateway.Model;

/// <summary>
/// The kinds of name Consul puts in a TLS ClientHello's SNI or uses as a cluster name for mesh traffic
/// (docs/consul-behaviour.md §2; Consul <c>agent/connect/sni.go</c>, <c>tlsutil/config.go</c>, <c>agent/xds/clusters.go</c>).
/// </summary>
public enum ConsulSniKind
{
    /// <summary>Not a name (the default value).</summary>
    None = 0,

    /// <summary>
    /// A service, optionally a subset of it: forms 1–4, <c>[&lt;subset&gt;.]&lt;service&gt;.&lt;ns&gt;.&lt;dc&gt;.internal.&lt;TD&gt;</c>
    /// in the default partition, <c>[&lt;subset&gt;.]&lt;service&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c> otherwise.
    /// </summary>
    Service,

    /// <summary>A datacenter's (and partition's) gateway cluster: forms 5–6, <c>&lt;dc&gt;.internal.&lt;TD&gt;</c> or <c>&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c>.</summary>
    Gateway,

    /// <summary>A prepared query: form 7, <c>&lt;query&gt;.default.&lt;dc&gt;.query.&lt;TD&gt;</c>. Mesh gateways never route these.</summary>
    PreparedQuery,

    /// <summary>A service exported to a peer, as sent on the wire: form 8, <c>&lt;service&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;peer&gt;.external.&lt;exporter-TD&gt;</c>.</summary>
    PeeredService,

    /// <summary>An importer's cluster name for a peer's service (not sent on the wire): form 9, <c>&lt;service&gt;.&lt;ns&gt;.&lt;peer&gt;.external.&lt;peer-TD&gt;</c>.</summary>
    ImportedPeerCluster,

    /// <summary>All servers of a datacenter for WAN federation: form 10, <c>server.&lt;dc&gt;.&lt;domain&gt;</c>.</summary>
    WanFederationServers,

    /// <summary>One server for WAN federation: form 11, <c>&lt;node&gt;.server.&lt;dc&gt;.&lt;domain&gt;</c>.</summary>
    WanFederationServer,

    /// <summary>The peering control plane (local servers): form 12, <c>server.&lt;dc&gt;.peering.&lt;TD&gt;</c>.</summary>
    PeeringServers,
}
