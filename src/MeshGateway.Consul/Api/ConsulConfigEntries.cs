using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshGateway.Consul;

/// <summary>Fields every config entry carries.</summary>
public abstract class ConsulConfigEntry
{
    /// <summary>The kind, e.g. <c>service-defaults</c>.</summary>
    public string? Kind { get; init; }

    /// <summary>The entry name.</summary>
    public string? Name { get; init; }

    /// <summary>Namespace (Enterprise).</summary>
    public string? Namespace { get; init; }

    /// <summary>Partition (Enterprise).</summary>
    public string? Partition { get; init; }

    /// <summary>Metadata.</summary>
    public IReadOnlyDictionary<string, string>? Meta { get; init; }

    /// <summary>Raft index of creation.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Raft index of the last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary><c>proxy-defaults</c> (name always <c>global</c>).</summary>
public sealed class ConsulProxyDefaults : ConsulConfigEntry
{
    /// <summary>Opaque proxy configuration.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Config { get; init; }

    /// <summary>The global mesh gateway mode (lowest precedence).</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }
}

/// <summary><c>service-defaults</c>.</summary>
public sealed class ConsulServiceDefaults : ConsulConfigEntry
{
    /// <summary>Protocol (<c>tcp</c>, <c>http</c>, …).</summary>
    public string? Protocol { get; init; }

    /// <summary>The service's mesh gateway mode.</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }

    /// <summary>Defaults and per-upstream overrides for this service's upstreams.</summary>
    public ConsulUpstreamConfiguration? UpstreamConfig { get; init; }
}

/// <summary><c>UpstreamConfig</c> of <c>service-defaults</c>.</summary>
public sealed class ConsulUpstreamConfiguration
{
    /// <summary>Applies to every upstream.</summary>
    public ConsulUpstreamConfig? Defaults { get; init; }

    /// <summary>Per-upstream overrides.</summary>
    public IReadOnlyList<ConsulUpstreamConfig>? Overrides { get; init; }
}

/// <summary>One upstream default or override.</summary>
public sealed class ConsulUpstreamConfig
{
    /// <summary>Upstream name (overrides only).</summary>
    public string? Name { get; init; }

    /// <summary>Upstream namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>Upstream partition.</summary>
    public string? Partition { get; init; }

    /// <summary>Upstream peer (1.13 spelled it <see cref="PeerName"/>).</summary>
    public string? Peer { get; init; }

    /// <summary>1.13 spelling of <see cref="Peer"/>.</summary>
    public string? PeerName { get; init; }

    /// <summary>Protocol.</summary>
    public string? Protocol { get; init; }

    /// <summary>Connect timeout in milliseconds.</summary>
    public int ConnectTimeoutMs { get; init; }

    /// <summary>Mesh gateway mode for the upstream(s).</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }
}

/// <summary><c>service-resolver</c> (only what a gateway uses; other fields stay raw).</summary>
public sealed class ConsulServiceResolver : ConsulConfigEntry
{
    /// <summary>The subset the unnamed service cluster uses.</summary>
    public string? DefaultSubset { get; init; }

    /// <summary>Subsets by name.</summary>
    public IReadOnlyDictionary<string, ConsulServiceResolverSubset>? Subsets { get; init; }

    /// <summary>Connect timeout (Go duration string or nanoseconds on the wire).</summary>
    [JsonConverter(typeof(GoDurationJsonConverter))]
    public TimeSpan? ConnectTimeout { get; init; }

    /// <summary>Load balancer settings (raw).</summary>
    public JsonElement? LoadBalancer { get; init; }

    /// <summary>Redirect (raw).</summary>
    public JsonElement? Redirect { get; init; }

    /// <summary>Failover (raw).</summary>
    public JsonElement? Failover { get; init; }
}

/// <summary>A <c>service-resolver</c> subset.</summary>
public sealed class ConsulServiceResolverSubset
{
    /// <summary>go-bexpr filter over health entries, e.g. <c>Service.Meta.version == v2</c>.</summary>
    public string? Filter { get; init; }

    /// <summary>Whether only instances with all checks passing count as healthy.</summary>
    public bool OnlyPassing { get; init; }
}

/// <summary><c>mesh</c> (name always <c>mesh</c>; Consul ≥ 1.10).</summary>
public sealed class ConsulMeshConfigEntry : ConsulConfigEntry
{
    /// <summary>Peering settings.</summary>
    public ConsulMeshPeering? Peering { get; init; }
}

/// <summary><c>Peering</c> of the <c>mesh</c> entry.</summary>
public sealed class ConsulMeshPeering
{
    /// <summary>Whether peering control-plane traffic goes through mesh gateways.</summary>
    public bool PeerThroughMeshGateways { get; init; }
}

/// <summary><c>exported-services</c> (name = partition; Consul ≥ 1.13 in CE).</summary>
public sealed class ConsulExportedServices : ConsulConfigEntry
{
    /// <summary>Exported services.</summary>
    public IReadOnlyList<ConsulExportedService>? Services { get; init; }
}

/// <summary>One exported service.</summary>
public sealed class ConsulExportedService
{
    /// <summary>Service name.</summary>
    public string? Name { get; init; }

    /// <summary>Namespace.</summary>
    public string? Namespace { get; init; }

    /// <summary>Consumers.</summary>
    public IReadOnlyList<ConsulExportedServiceConsumer>? Consumers { get; init; }
}

/// <summary>A consumer: exactly one of <see cref="Peer"/>, <see cref="Partition"/>, <see cref="SamenessGroup"/>.</summary>
public sealed class ConsulExportedServiceConsumer
{
    /// <summary>Peer name.</summary>
    public string? Peer { get; init; }

    /// <summary>1.13 spelling of <see cref="Peer"/>.</summary>
    public string? PeerName { get; init; }

    /// <summary>Partition.</summary>
    public string? Partition { get; init; }

    /// <summary>Sameness group.</summary>
    public string? SamenessGroup { get; init; }
}
