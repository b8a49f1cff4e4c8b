namespace MeshGateway.Preflight;

/// <summary>
/// What is known about the Consul datacenters a gateway will join. Every fact is nullable: <see langword="null"/> means
/// "not gathered" and is reported as "could not determine", never assumed good. The Consul adapter fills it from
/// <c>/v1/agent/self</c>, <c>/v1/catalog/datacenters</c> and config entries.
/// </summary>
public sealed record ClusterFacts
{
    /// <summary>One entry per datacenter (WAN-federated DCs; a single entry for a lone DC or a peering-only cluster).</summary>
    public IReadOnlyList<DatacenterFacts> Datacenters { get; init; } = [];

    /// <summary>Every mesh-gateway mode value seen in configuration, as stored (unknown spellings included).</summary>
    public IReadOnlyList<GatewayModeSetting> ModeSettings { get; init; } = [];

    /// <summary>Cluster-peering facts, or <see langword="null"/> when peering is not used.</summary>
    public PeeringFacts? Peering { get; init; }

    /// <summary>Whether the gateway federates the datacenters' servers (WAN federation through mesh gateways): checks the
    /// servers' settings that mode needs (<see cref="PreflightCheck.WanFederation"/>).</summary>
    public bool WanFederationThroughGateways { get; init; }
}

/// <summary>Facts about one datacenter (from its agent's <c>/v1/agent/self</c> and <c>/v1/catalog/datacenters</c>).</summary>
public sealed record DatacenterFacts
{
    /// <summary>The datacenter's name (<c>Config.Datacenter</c>).</summary>
    public required string Name { get; init; }

    /// <summary>The Consul version (<c>Config.Version</c>, for example <c>1.15.2</c> or <c>1.16.0+ent</c>).</summary>
    public string? ConsulVersion { get; init; }

    /// <summary>Whether Connect is enabled (<c>connect { enabled = true }</c>).</summary>
    public bool? ConnectEnabled { get; init; }

    /// <summary>The primary datacenter this DC uses (<c>Config.PrimaryDatacenter</c>); empty counts as unknown.</summary>
    public string? PrimaryDatacenter { get; init; }

    /// <summary>The plaintext gRPC port (<c>ports.grpc</c>); 0 or negative means disabled.</summary>
    public int? GrpcPort { get; init; }

    /// <summary>The TLS gRPC port (<c>ports.grpc_tls</c>, Consul 1.14+); 0 or negative means disabled.</summary>
    public int? GrpcTlsPort { get; init; }

    /// <summary>Whether <c>enable_central_service_config</c> is on.</summary>
    public bool? CentralServiceConfigEnabled { get; init; }

    /// <summary>The datacenters this DC's servers know over the WAN (<c>/v1/catalog/datacenters</c>).</summary>
    public IReadOnlyList<string>? KnownDatacenters { get; init; }

    /// <summary>Whether cluster peering is enabled on the servers (<c>peering { enabled = true }</c>).</summary>
    public bool? PeeringEnabled { get; init; }

    /// <summary>Whether the facts' agent is a server (only a server's own settings say how servers federate).</summary>
    public bool? IsServer { get; init; }

    /// <summary><c>connect { enable_mesh_gateway_wan_federation }</c> on the agent.</summary>
    public bool? MeshGatewayWanFederationEnabled { get; init; }

    /// <summary><c>verify_incoming</c> on the agent.</summary>
    public bool? VerifyIncoming { get; init; }

    /// <summary><c>verify_outgoing</c> on the agent.</summary>
    public bool? VerifyOutgoing { get; init; }

    /// <summary><c>verify_server_hostname</c> on the agent.</summary>
    public bool? VerifyServerHostname { get; init; }

    /// <summary><c>primary_gateways</c> on the agent (empty: none).</summary>
    public IReadOnlyList<string>? PrimaryGateways { get; init; }
}

/// <summary>Where a mesh-gateway mode was set.</summary>
public enum GatewayModeSource
{
    /// <summary>The <c>proxy-defaults</c> config entry (central configuration).</summary>
    ProxyDefaults = 0,

    /// <summary>A <c>service-defaults</c> config entry, top level or <c>UpstreamConfig</c> (central configuration).</summary>
    ServiceDefaults,

    /// <summary>A proxy's registration (<c>Proxy.MeshGateway</c>).</summary>
    ProxyRegistration,

    /// <summary>An upstream in a proxy registration (<c>Proxy.Upstreams[].MeshGateway</c>).</summary>
    Upstream,
}

/// <summary>A mesh-gateway mode value as stored in Consul (the HTTP API keeps unknown spellings unchanged).</summary>
/// <param name="Source">Where it was set.</param>
/// <param name="Location">A human-readable locator, for example <c>proxy-defaults/global</c> or <c>service web, upstream api</c>.</param>
/// <param name="Value">The <c>MeshGateway.Mode</c> value exactly as stored.</param>
public sealed record GatewayModeSetting(GatewayModeSource Source, string Location, string? Value)
{
    /// <summary>Whether the value comes from a config entry, which Consul reads only with central service config enabled.</summary>
    public bool IsCentralConfig => Source is GatewayModeSource.ProxyDefaults or GatewayModeSource.ServiceDefaults;
}

/// <summary>Facts that matter for cluster peering through mesh gateways.</summary>
public sealed record PeeringFacts
{
    /// <summary>Whether this cluster has an <c>exported-services</c> config entry exporting at least one service.</summary>
    public bool? ExportedServicesPresent { get; init; }

    /// <summary>Whether a mesh gateway is registered in the exporting cluster (Enterprise: in the exporting partition).</summary>
    public bool? ExportingClusterHasMeshGateway { get; init; }

    /// <summary>Whether peered upstreams use mode <c>local</c>, which needs a mesh gateway in the importing cluster too.</summary>
    public bool? UsesLocalMode { get; init; }

    /// <summary>Whether a mesh gateway is registered in the importing cluster.</summary>
    public bool? ImportingClusterHasMeshGateway { get; init; }
}
