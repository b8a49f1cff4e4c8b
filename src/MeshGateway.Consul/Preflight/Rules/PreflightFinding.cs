namespace MeshGateway.Preflight;

/// <summary>How serious a finding is.</summary>
public enum PreflightSeverity
{
    /// <summary>A fact could not be determined, or something deserves a look.</summary>
    Warning = 1,

    /// <summary>A documented prerequisite is not met: mesh-gateway traffic will not work as intended.</summary>
    Error,
}

/// <summary>Which prerequisite a finding is about (docs/consul-behaviour.md §10).</summary>
public enum PreflightCheck
{
    /// <summary>Consul 1.6 or later in every datacenter.</summary>
    ConsulVersion = 1,

    /// <summary><c>connect { enabled = true }</c> in every datacenter.</summary>
    ConnectEnabled,

    /// <summary>Datacenter names are unique.</summary>
    UniqueDatacenterNames,

    /// <summary>Every datacenter names the same primary datacenter.</summary>
    PrimaryDatacenter,

    /// <summary>The gRPC port is enabled.</summary>
    GrpcPort,

    /// <summary>Central service config is enabled where config entries set gateway modes.</summary>
    CentralServiceConfig,

    /// <summary>Datacenters are WAN-joined.</summary>
    WanJoin,

    /// <summary>Consul 1.13 or later (1.14 for general availability) for cluster peering.</summary>
    PeeringVersion,

    /// <summary>Peering enabled on the servers.</summary>
    PeeringEnabled,

    /// <summary>Services exported with an <c>exported-services</c> config entry.</summary>
    ExportedServices,

    /// <summary>A mesh gateway in the exporting cluster (and in the importing one for <c>local</c> mode).</summary>
    PeeringGateway,

    /// <summary>A mesh-gateway mode value Consul does not define.</summary>
    GatewayModeValue,

    /// <summary>
    /// The gateway's ACL token holds the permissions of <c>MeshGatewayAcl.Requirements</c>: error for a missing required
    /// permission, warning for a missing optional one or one that could not be determined. Filed by adapters that can
    /// probe or read the token (the model's <see cref="PreflightChecker"/> has no token facts).
    /// </summary>
    TokenPermissions,

    /// <summary>
    /// The Connect CA has a trust domain (<c>/v1/connect/ca/roots</c> names one): without it no SNI name can be formed.
    /// A secondary datacenter gets it only from a reachable primary. Filed by adapters.
    /// </summary>
    TrustDomain,

    /// <summary>
    /// The primary datacenter is reachable from this datacenter over the WAN (it is among the datacenters the agent knows):
    /// the primary owns the mesh CA and the ACL and config-entry replication. Filed by adapters; distinct from
    /// <see cref="PrimaryDatacenter"/>, which is about every datacenter naming the same primary.
    /// </summary>
    PrimaryReachable,

    /// <summary>
    /// WAN federation through mesh gateways: every server has <c>connect { enable_mesh_gateway_wan_federation = true }</c>
    /// and TLS (<c>verify_outgoing</c>, else "cannot dial via a mesh gateway when outgoing TLS is disabled";
    /// <c>verify_incoming</c> and <c>verify_server_hostname</c> as documented), and every secondary names the primary's
    /// gateways in <c>primary_gateways</c> (docs/consul-behaviour.md §14).
    /// </summary>
    WanFederation,
}

/// <summary>One unmet (or undeterminable) prerequisite, with the fix.</summary>
/// <param name="Check">The prerequisite.</param>
/// <param name="Severity">Error for an unmet prerequisite, warning for an unknown fact or a doubtful one.</param>
/// <param name="Datacenter">The datacenter concerned, or <see langword="null"/> for cluster-wide findings.</param>
/// <param name="Message">What is wrong, specifically.</param>
/// <param name="Fix">What to change.</param>
public sealed record PreflightFinding(PreflightCheck Check, PreflightSeverity Severity, string? Datacenter, string Message, string Fix)
{
    /// <inheritdoc/>
    public override string ToString()
        => (Severity == PreflightSeverity.Error ? "error" : "warning") + (Datacenter is null ? string.Empty : " [" + Datacenter + "]") + ": " + Message + " Fix: " + Fix;
}
