using System.Text.Json;

namespace MeshGateway.Consul;

/// <summary>
/// A local agent's service registration as <c>GET /v1/agent/service/&lt;id&gt;</c> returns it (the registrar's hash-blocking
/// watch, the Connect dialer's upstream definitions). Not a health entry: those are read straight into
/// <see cref="MeshGateway.Model.CatalogServiceInstance"/>.
/// </summary>
public sealed class ConsulAgentService
{
    /// <summary>Service kind: empty for a typical service, <c>connect-proxy</c>, <c>mesh-gateway</c>, … Kept as a string.</summary>
    public string? Kind { get; init; }

    /// <summary>Instance ID.</summary>
    public string? ID { get; init; }

    /// <summary>Service name.</summary>
    public string? Service { get; init; }

    /// <summary>Tags.</summary>
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>Service address (may be empty: then the node address applies).</summary>
    public string? Address { get; init; }

    /// <summary>Service port.</summary>
    public int Port { get; init; }

    /// <summary>Tagged addresses: name → {Address, Port} (objects, unlike the node's).</summary>
    public IReadOnlyDictionary<string, ConsulServiceAddress>? TaggedAddresses { get; init; }

    /// <summary>Service metadata.</summary>
    public IReadOnlyDictionary<string, string>? Meta { get; init; }

    /// <summary>Load-balancing weights; null when the instance has none.</summary>
    public ConsulWeights? Weights { get; init; }

    /// <summary>Proxy configuration of proxies and gateways.</summary>
    public ConsulProxy? Proxy { get; init; }

    /// <summary>Connect settings (native, peer metadata).</summary>
    public ConsulConnect? Connect { get; init; }

    /// <summary>Namespace (Enterprise).</summary>
    public string? Namespace { get; init; }

    /// <summary>Admin partition (Enterprise).</summary>
    public string? Partition { get; init; }

    /// <summary>Peer the instance was imported from.</summary>
    public string? PeerName { get; init; }

    /// <summary>Unix socket path, when the service listens on one.</summary>
    public string? SocketPath { get; init; }

    /// <summary>Whether tag changes by other sources are allowed.</summary>
    public bool EnableTagOverride { get; init; }

    /// <summary>Datacenter (returned by the agent endpoints).</summary>
    public string? Datacenter { get; init; }

    /// <summary>Content hash (returned by <c>/v1/agent/service/&lt;id&gt;</c>).</summary>
    public string? ContentHash { get; init; }

    /// <summary>Raft index of creation.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Raft index of the last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary>A service tagged address.</summary>
public sealed class ConsulServiceAddress
{
    /// <summary>Address (IP or host name; may be empty).</summary>
    public string? Address { get; init; }

    /// <summary>Port (0 = not set).</summary>
    public int Port { get; init; }
}

/// <summary>Service weights used by load balancing.</summary>
public sealed class ConsulWeights
{
    /// <summary>Weight while all checks pass.</summary>
    public int Passing { get; init; }

    /// <summary>Weight while a check warns.</summary>
    public int Warning { get; init; }
}

/// <summary>Proxy settings of a proxy or gateway registration.</summary>
public sealed class ConsulProxy
{
    /// <summary>Destination service name (sidecars).</summary>
    public string? DestinationServiceName { get; init; }

    /// <summary>Destination service ID (sidecars).</summary>
    public string? DestinationServiceID { get; init; }

    /// <summary>Local service address (sidecars).</summary>
    public string? LocalServiceAddress { get; init; }

    /// <summary>Local service port (sidecars).</summary>
    public int LocalServicePort { get; init; }

    /// <summary>Opaque proxy configuration (gateway keys in docs/consul-behaviour.md §6.1).</summary>
    public IReadOnlyDictionary<string, JsonElement>? Config { get; init; }

    /// <summary>Upstreams (sidecars).</summary>
    public IReadOnlyList<ConsulUpstream>? Upstreams { get; init; }

    /// <summary>The registration-level mesh gateway mode.</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }
}

/// <summary>A sidecar upstream definition.</summary>
public sealed class ConsulUpstream
{
    /// <summary><c>service</c> (default) or <c>prepared_query</c>.</summary>
    public string? DestinationType { get; init; }

    /// <summary>Upstream service name.</summary>
    public string? DestinationName { get; init; }

    /// <summary>Upstream namespace.</summary>
    public string? DestinationNamespace { get; init; }

    /// <summary>Upstream partition.</summary>
    public string? DestinationPartition { get; init; }

    /// <summary>Upstream peer.</summary>
    public string? DestinationPeer { get; init; }

    /// <summary>Upstream datacenter (empty = the caller's).</summary>
    public string? Datacenter { get; init; }

    /// <summary>Local bind address.</summary>
    public string? LocalBindAddress { get; init; }

    /// <summary>Local bind port.</summary>
    public int LocalBindPort { get; init; }

    /// <summary>Opaque upstream configuration.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Config { get; init; }

    /// <summary>The upstream's own mesh gateway mode (highest precedence).</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }
}

/// <summary><c>"MeshGateway": {"Mode": "…"}</c>.</summary>
/// <remarks>The mode stays a raw string: Consul's HTTP API stores unknown values unchanged, so reading never fails on them.</remarks>
public sealed class ConsulMeshGatewayConfig
{
    /// <summary><c>""</c>, <c>none</c>, <c>local</c>, <c>remote</c>, or any other string Consul stored.</summary>
    public string? Mode { get; init; }
}

/// <summary>Connect settings of a service instance.</summary>
public sealed class ConsulConnect
{
    /// <summary>Whether the instance is Connect-native.</summary>
    public bool Native { get; init; }
}

/// <summary>One check as <c>/v1/health/state/&lt;state&gt;</c> lists it (only what a change trigger needs).</summary>
public sealed class ConsulCheckState
{
    /// <summary>Node name.</summary>
    public string? Node { get; init; }

    /// <summary>Check ID (unique per node).</summary>
    public string? CheckID { get; init; }

    /// <summary><c>passing</c>, <c>warning</c> or <c>critical</c>.</summary>
    public string? Status { get; init; }

    /// <summary>Service instance ID; empty for node checks.</summary>
    public string? ServiceID { get; init; }

    /// <summary>Service name; empty for node checks.</summary>
    public string? ServiceName { get; init; }

    /// <summary>Raft index of the last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary>A node of <c>/v1/catalog/nodes</c> or the <c>Node</c> of <c>/v1/catalog/node-services/&lt;node&gt;</c> (what a sweep needs).</summary>
public sealed class ConsulCatalogNode
{
    /// <summary>Node name.</summary>
    public string? Node { get; init; }

    /// <summary>Node address.</summary>
    public string? Address { get; init; }

    /// <summary>Raft index of the node's last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary><c>/v1/catalog/node-services/&lt;node&gt;</c> (Consul 1.7+): a node and every service instance registered on it.</summary>
public sealed class ConsulNodeServices
{
    /// <summary>The node.</summary>
    public ConsulCatalogNode? Node { get; init; }

    /// <summary>The node's service instances, each with its <c>ModifyIndex</c>.</summary>
    public IReadOnlyList<ConsulAgentService>? Services { get; init; }
}
