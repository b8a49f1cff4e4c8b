using System.Collections.Immutable;
using System.Text.Json;
using MeshGateway.Acl;
using MeshGateway.Preflight;

namespace MeshGateway.Consul;

/// <summary>What a read-only probe found out about one permission.</summary>
public enum ConsulPermissionProbe
{
    /// <summary>The probe could not tell (transport or server error; see <see cref="ConsulPreflightFacts.Errors"/>).</summary>
    Unknown = 0,

    /// <summary>The request was answered in full.</summary>
    Allowed = 1,

    /// <summary>The request was answered with items removed by ACLs (Consul filters reads instead of failing them).</summary>
    Filtered = 2,

    /// <summary>HTTP 403 <c>Permission denied</c>; the body is in <see cref="ConsulPreflightFacts.Errors"/>.</summary>
    Denied = 3,

    /// <summary>HTTP 403 <c>ACL not found</c>: the token itself is unknown.</summary>
    TokenNotFound = 4,
}

/// <summary>
/// Raw facts about the agent, the cluster and the token, gathered with read-only calls before the gateway starts
/// routing (docs/consul-behaviour.md §10). Judging them (missing primary datacenter, missing WAN join, missing permissions)
/// is left to the model; every failed call is kept in <see cref="Errors"/> with its typed exception (403 bodies
/// name the missing permission).
/// </summary>
public sealed record ConsulPreflightFacts
{
    /// <summary>The agent's datacenter (<c>/v1/agent/self</c>).</summary>
    public string? Datacenter { get; init; }

    /// <summary>The configured primary datacenter (<c>Config</c>, else <c>DebugConfig</c> on Consul 1.8).</summary>
    public string? PrimaryDatacenter { get; init; }

    /// <summary>Node name.</summary>
    public string? NodeName { get; init; }

    /// <summary>Consul version, e.g. <c>1.8.7</c>.</summary>
    public string? Version { get; init; }

    /// <summary>Whether the agent is a server.</summary>
    public bool? Server { get; init; }

    /// <summary><c>connect { enabled }</c> (from <c>DebugConfig.ConnectEnabled</c>; null when unreadable).</summary>
    public bool? ConnectEnabled { get; init; }

    /// <summary>gRPC port (from <c>DebugConfig.GRPCPort</c>; -1 = disabled).</summary>
    public int? GrpcPort { get; init; }

    /// <summary><c>enable_central_service_config</c> (from <c>DebugConfig.EnableCentralServiceConfig</c>).</summary>
    public bool? CentralServiceConfig { get; init; }

    /// <summary><c>connect { enable_mesh_gateway_wan_federation }</c> (from <c>DebugConfig.ConnectMeshGatewayWANFederationEnabled</c>).</summary>
    public bool? MeshGatewayWanFederation { get; init; }

    /// <summary><c>verify_incoming</c> (from <c>DebugConfig.VerifyIncoming</c>).</summary>
    public bool? VerifyIncoming { get; init; }

    /// <summary><c>verify_outgoing</c> (from <c>DebugConfig.VerifyOutgoing</c>).</summary>
    public bool? VerifyOutgoing { get; init; }

    /// <summary><c>verify_server_hostname</c> (from <c>DebugConfig.VerifyServerHostname</c>).</summary>
    public bool? VerifyServerHostname { get; init; }

    /// <summary><c>primary_gateways</c> (from <c>DebugConfig.PrimaryGateways</c>); null when unreadable.</summary>
    public ImmutableArray<string>? PrimaryGateways { get; init; }

    /// <summary>Whether ACLs are enabled (from <c>DebugConfig.ACLsEnabled</c>).</summary>
    public bool? AclsEnabled { get; init; }

    /// <summary><c>acl.default_policy</c> (from <c>DebugConfig.ACLDefaultPolicy</c>): <c>allow</c> or <c>deny</c>.</summary>
    public string? AclDefaultPolicy { get; init; }

    /// <summary>Known datacenters (<c>/v1/catalog/datacenters</c>); one entry means no WAN join.</summary>
    public ImmutableArray<string> Datacenters { get; init; } = [];

    /// <summary>The trust domain (<c>/v1/connect/ca/roots</c>).</summary>
    public string? TrustDomain { get; init; }

    /// <summary>The <c>proxy-defaults/global</c> entry, null when absent or unreadable.</summary>
    public ConsulProxyDefaults? ProxyDefaults { get; init; }

    /// <summary><c>agent:read</c>, probed with <c>/v1/agent/self</c>.</summary>
    public ConsulPermissionProbe AgentRead { get; init; }

    /// <summary><c>service:read</c> on all services, probed with <c>/v1/catalog/services</c> (the <c>consul</c> service
    /// missing, or <c>X-Consul-Results-Filtered-By-ACLs</c>, means filtered).</summary>
    public ConsulPermissionProbe ServiceRead { get; init; }

    /// <summary>Failed calls by what was asked (e.g. <c>agent/self</c>).</summary>
    public ImmutableSortedDictionary<string, ConsulException> Errors { get; init; } = ImmutableSortedDictionary<string, ConsulException>.Empty;
}

/// <summary>Gathers <see cref="ConsulPreflightFacts"/> with read-only calls; never throws on Consul errors.</summary>
public static class ConsulPreflight
{
    /// <summary>Reads the agent, the datacenters, the CA roots, <c>proxy-defaults</c> and probes the token's read permissions.</summary>
    /// <param name="client">The client of the gateway's local agent.</param>
    /// <param name="cancellationToken">Cancels the calls.</param>
    /// <returns>The facts; failed calls are in <see cref="ConsulPreflightFacts.Errors"/>.</returns>
    public static async Task<ConsulPreflightFacts> GatherAsync(ConsulClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var errors = ImmutableSortedDictionary.CreateBuilder<string, ConsulException>(StringComparer.Ordinal);
        var facts = new ConsulPreflightFacts();

        try
        {
            ConsulAgentSelf self = (await client.GetAgentSelfAsync(cancellationToken).ConfigureAwait(false)).Value;
            JsonElement? debug = self.DebugConfig;
            facts = facts with
            {
                Datacenter = self.Config?.Datacenter,
                PrimaryDatacenter = NullIfEmpty(self.Config?.PrimaryDatacenter) ?? String(debug, "PrimaryDatacenter"),
                NodeName = self.Config?.NodeName,
                Version = self.Config?.Version,
                Server = self.Config?.Server,
                ConnectEnabled = Bool(debug, "ConnectEnabled"),
                GrpcPort = Int(debug, "GRPCPort"),
                CentralServiceConfig = Bool(debug, "EnableCentralServiceConfig"),
                AclsEnabled = Bool(debug, "ACLsEnabled"),
                AclDefaultPolicy = String(debug, "ACLDefaultPolicy"),
                MeshGatewayWanFederation = Bool(debug, "ConnectMeshGatewayWANFederationEnabled"),
                VerifyIncoming = Bool(debug, "VerifyIncoming"),
                VerifyOutgoing = Bool(debug, "VerifyOutgoing"),
                VerifyServerHostname = Bool(debug, "VerifyServerHostname"),
                PrimaryGateways = Strings(debug, "PrimaryGateways"),
                AgentRead = ConsulPermissionProbe.Allowed,
            };
        }
        catch (ConsulException ex)
        {
            errors["agent/self"] = ex;
            facts = facts with { AgentRead = Probe(ex), Datacenter = NullIfEmpty(client.Options.Datacenter) }; // the configured DC, if any
        }

        try
        {
            facts = facts with { Datacenters = [.. (await client.GetDatacentersAsync(cancellationToken).ConfigureAwait(false)).Value] };
        }
        catch (ConsulException ex)
        {
            errors["catalog/datacenters"] = ex;
        }

        try
        {
            facts = facts with { TrustDomain = NullIfEmpty((await client.GetCaRootsAsync(default, cancellationToken).ConfigureAwait(false)).Value.TrustDomain) };
        }
        catch (ConsulException ex)
        {
            errors["connect/ca/roots"] = ex;
        }

        try
        {
            facts = facts with { ProxyDefaults = (await client.GetProxyDefaultsAsync(default, cancellationToken).ConfigureAwait(false)).Value };
        }
        catch (ConsulNotFoundException)
        {
            // Absent: nothing to report.
        }
        catch (ConsulException ex)
        {
            errors["config/proxy-defaults/global"] = ex;
        }

        try
        {
            ConsulResponse<IReadOnlyDictionary<string, List<string>>> services = await client.GetServicesAsync(default, cancellationToken).ConfigureAwait(false);
            bool filtered = services.ResultsFilteredByAcls || !services.Value.ContainsKey("consul");
            facts = facts with { ServiceRead = filtered ? ConsulPermissionProbe.Filtered : ConsulPermissionProbe.Allowed };
        }
        catch (ConsulException ex)
        {
            errors["catalog/services"] = ex;
            facts = facts with { ServiceRead = Probe(ex) };
        }

        return facts with { Errors = errors.ToImmutable() };
    }

    /// <summary>
    /// Gathers the facts of the gateway's agent (and of <see cref="ConsulPreflightOptions.OtherDatacenters"/>), checks them
    /// against the documented prerequisites with the model's <see cref="PreflightChecker"/>, and determines what it can
    /// about the token's permissions against <see cref="MeshGatewayAcl.Requirements"/>. Never throws on Consul errors.
    /// </summary>
    /// <remarks>
    /// Token permissions come first from side-effect-free probes: <c>service:read</c> from <c>/v1/catalog/services</c>
    /// (403 or filtered means missing), <c>agent:read</c> from <c>/v1/agent/self</c>, <c>service:write</c> on the gateway's
    /// name from <c>/v1/agent/connect/ca/leaf/&lt;name&gt;</c> (which requires it). What no probe settles is evaluated
    /// from the token's own policies (<c>/v1/acl/token/self</c>, which any valid token may read, then its policies and
    /// roles, which need <c>acl:read</c>; service and node identities and <c>global-management</c> need no read) with the
    /// model's <see cref="AclEvaluator"/>; if they cannot be read, the permission is reported as unknown, never assumed.
    /// With ACLs disabled every permission counts as granted.
    /// </remarks>
    /// <param name="client">The client of the gateway's local agent.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the calls.</param>
    /// <returns>The report.</returns>
    public static async Task<ConsulPreflightReport> RunAsync(ConsulClient client, ConsulPreflightOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        options ??= new ConsulPreflightOptions();
        ConsulPreflightFacts local = await GatherAsync(client, cancellationToken).ConfigureAwait(false);
        var others = new List<ConsulPreflightFacts>();
        foreach (ConsulClient other in options.OtherDatacenters)
        {
            others.Add(await GatherAsync(other, cancellationToken).ConfigureAwait(false));
        }

        ClusterFacts cluster = ToClusterFacts(local, others) with { WanFederationThroughGateways = options.WanFederation };
        var findings = new List<PreflightFinding>(PreflightChecker.Check(cluster));
        foreach (ConsulPreflightFacts facts in others.Prepend(local))
        {
            if (facts.PrimaryDatacenter is { } primary && !facts.Errors.ContainsKey("catalog/datacenters") && !facts.Datacenters.Contains(primary, StringComparer.Ordinal))
            {
                findings.Add(new PreflightFinding(PreflightCheck.PrimaryReachable, PreflightSeverity.Error, facts.Datacenter,
                    $"The primary datacenter \"{primary}\" is not among the datacenters this agent knows over the WAN ({string.Join(", ", facts.Datacenters)}): "
                    + "the primary owns the mesh CA and the ACL and config-entry replication, so this datacenter cannot federate with it.",
                    $"WAN-join this datacenter's servers to \"{primary}\" (retry_join_wan or primary_gateways), or correct primary_datacenter if \"{primary}\" is misspelled."));
            }

            if (facts.TrustDomain is null && facts.ConnectEnabled != false)
            {
                findings.Add(new PreflightFinding(PreflightCheck.TrustDomain, PreflightSeverity.Error, facts.Datacenter,
                    "The Connect CA has no trust domain yet (/v1/connect/ca/roots" + (facts.Errors.TryGetValue("connect/ca/roots", out ConsulException? e) ? " failed: " + e.Message : " is empty")
                    + "), so no SNI names can be formed; a secondary datacenter gets its roots only from a reachable primary.",
                    "Make sure the primary datacenter is up and WAN-joined, and that primary_datacenter names it on every agent."));
            }
        }

        IReadOnlyList<ConsulTokenPermissionCheck> permissions = await CheckTokenAsync(client, local, options.Acl, cancellationToken).ConfigureAwait(false);
        findings.AddRange(TokenFindings(permissions, local.Datacenter));
        return new ConsulPreflightReport { Facts = local, OtherFacts = others, ClusterFacts = cluster, Findings = findings, TokenPermissions = permissions };
    }

    /// <summary>
    /// One <see cref="PreflightCheck.TokenPermissions"/> finding per permission that is not shown to be held: error for a
    /// missing required one, warning for a missing optional one or an undeterminable one.
    /// </summary>
    private static IEnumerable<PreflightFinding> TokenFindings(IReadOnlyList<ConsulTokenPermissionCheck> permissions, string? datacenter)
    {
        foreach (ConsulTokenPermissionCheck permission in permissions)
        {
            if (permission.Fix is not { } fix)
            {
                continue;
            }

            string what = permission.Status == ConsulTokenPermissionStatus.Missing
                ? $"The gateway's token lacks {permission.Requirement.Permission}{(permission.Requirement.IsOptional ? " (optional)" : string.Empty)}: {permission.Evidence}"
                : $"Could not determine whether the gateway's token holds {permission.Requirement.Permission}: {permission.Evidence}";
            yield return new PreflightFinding(PreflightCheck.TokenPermissions, permission.IsError ? PreflightSeverity.Error : PreflightSeverity.Warning, datacenter, what, fix);
        }
    }

    /// <summary>Converts gathered facts into the model's <see cref="ClusterFacts"/> (one entry per agent's datacenter).</summary>
    /// <param name="local">The gateway's agent.</param>
    /// <param name="others">Agents of other datacenters.</param>
    /// <returns>The model facts; anything not gathered stays null ("could not determine").</returns>
    public static ClusterFacts ToClusterFacts(ConsulPreflightFacts local, IEnumerable<ConsulPreflightFacts>? others = null)
    {
        ArgumentNullException.ThrowIfNull(local);
        var gatewayModes = new List<GatewayModeSetting>();
        if (local.ProxyDefaults?.MeshGateway?.Mode is { } mode)
        {
            gatewayModes.Add(new GatewayModeSetting(GatewayModeSource.ProxyDefaults, "proxy-defaults/global", mode));
        }

        return new ClusterFacts
        {
            Datacenters = [.. (others ?? []).Prepend(local).Select(ToDatacenterFacts)],
            ModeSettings = gatewayModes,
        };
    }

    private static DatacenterFacts ToDatacenterFacts(ConsulPreflightFacts facts) => new()
    {
        Name = facts.Datacenter ?? string.Empty,
        ConsulVersion = facts.Version,
        ConnectEnabled = facts.ConnectEnabled,
        PrimaryDatacenter = facts.PrimaryDatacenter,
        GrpcPort = facts.GrpcPort,
        CentralServiceConfigEnabled = facts.CentralServiceConfig,
        KnownDatacenters = facts.Errors.ContainsKey("catalog/datacenters") ? null : facts.Datacenters,
        IsServer = facts.Server,
        MeshGatewayWanFederationEnabled = facts.MeshGatewayWanFederation,
        VerifyIncoming = facts.VerifyIncoming,
        VerifyOutgoing = facts.VerifyOutgoing,
        VerifyServerHostname = facts.VerifyServerHostname,
        PrimaryGateways = facts.PrimaryGateways is { } gateways ? gateways : null,
    };

    private static async Task<IReadOnlyList<ConsulTokenPermissionCheck>> CheckTokenAsync(ConsulClient client, ConsulPreflightFacts facts, MeshGatewayAclOptions acl, CancellationToken cancellationToken)
    {
        IReadOnlyList<AclRequirement> requirements = MeshGatewayAcl.Requirements(acl);
        bool aclsOff = facts.AclsEnabled == false;
        Version? version = PreflightChecker.TryParseConsulVersion(facts.Version, out Version v) ? v : null;
        (ConsulTokenPermissionStatus Status, string Evidence)? leaf = null;
        (AclEvaluationReport? Report, string Note)? policies = null;
        var results = new List<ConsulTokenPermissionCheck>();
        foreach (AclRequirement requirement in requirements)
        {
            (ConsulTokenPermissionStatus status, string evidence) = requirement switch
            {
                _ when aclsOff => (ConsulTokenPermissionStatus.Granted, "ACLs are disabled on this agent (DebugConfig.ACLsEnabled = false)."),

                // Derived from Consul's changelogs: the mesh resource arrived in 1.11, peering in 1.13.
                { Resource: AclResource.Mesh } when version is not null && version < new Version(1, 11, 0) =>
                    (ConsulTokenPermissionStatus.NotApplicable, $"Consul {facts.Version} has no mesh ACL resource."),
                { Resource: AclResource.Peering } when version is not null && version < new Version(1, 13, 0) =>
                    (ConsulTokenPermissionStatus.NotApplicable, $"Consul {facts.Version} has no cluster peering."),
                { Resource: AclResource.Service, Access: AclAccessLevel.Read, Target: AclTargetKind.All } => FromProbe(facts.ServiceRead, "GET /v1/catalog/services", facts, "catalog/services"),
                { Resource: AclResource.Agent, Access: AclAccessLevel.Read } => FromProbe(facts.AgentRead, "GET /v1/agent/self", facts, "agent/self"),
                { Resource: AclResource.Service, Access: AclAccessLevel.Write, Target: AclTargetKind.Named, Name: { } name } =>
                    leaf ??= await ProbeLeafAsync(client, name, cancellationToken).ConfigureAwait(false),
                _ => (ConsulTokenPermissionStatus.Unknown, "no side-effect-free probe exists"),
            };

            if (status == ConsulTokenPermissionStatus.Unknown)
            {
                // Probes could not tell: evaluate the token's own policies, if they can be read.
                policies ??= await EvaluatePoliciesAsync(client, facts, requirements, acl, cancellationToken).ConfigureAwait(false);
                AclRequirementResult? result = policies.Value.Report?.Results.FirstOrDefault(r => r.Requirement == requirement);
                (status, evidence) = result is null
                    ? (status, evidence + "; " + policies.Value.Note)
                    : (result.Satisfied ? ConsulTokenPermissionStatus.Granted : ConsulTokenPermissionStatus.Missing, "from the token's policies: " + result.Explanation);
            }

            results.Add(new ConsulTokenPermissionCheck(requirement, status, evidence));
        }

        return results;
    }

    /// <summary>The built-in <c>global-management</c> policy's ID.</summary>
    private const string GlobalManagementPolicyId = "00000000-0000-0000-0000-000000000001";

    private static async Task<(AclEvaluationReport? Report, string Note)> EvaluatePoliciesAsync(
        ConsulClient client, ConsulPreflightFacts facts, IReadOnlyList<AclRequirement> requirements, MeshGatewayAclOptions acl, CancellationToken cancellationToken)
    {
        ConsulAclToken token;
        try
        {
            token = (await client.GetAclTokenSelfAsync(cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (ConsulException ex)
        {
            return (null, "the token could not read itself (GET /v1/acl/token/self: " + ex.Message + ")");
        }

        string dc = facts.Datacenter ?? string.Empty;
        var policies = new List<AclPolicy>();
        var links = new List<ConsulAclLink>(token.Policies ?? []);
        var serviceIdentities = new List<ConsulAclServiceIdentity>(token.ServiceIdentities ?? []);
        var nodeIdentities = new List<ConsulAclNodeIdentity>(token.NodeIdentities ?? []);
        try
        {
            foreach (ConsulAclLink roleLink in token.Roles ?? [])
            {
                ConsulAclRole role = (await client.GetAclRoleAsync(roleLink.ID ?? string.Empty, cancellationToken).ConfigureAwait(false)).Value;
                links.AddRange(role.Policies ?? []);
                serviceIdentities.AddRange(role.ServiceIdentities ?? []);
                nodeIdentities.AddRange(role.NodeIdentities ?? []);
            }

            foreach (ConsulAclLink link in links)
            {
                if (link.ID == GlobalManagementPolicyId)
                {
                    policies.Add(AclPolicy.Parse(ManagementRules, link.Name ?? "global-management"));
                    continue;
                }

                ConsulAclPolicy policy = (await client.GetAclPolicyAsync(link.ID ?? string.Empty, cancellationToken).ConfigureAwait(false)).Value;
                if (policy.Datacenters is { Count: > 0 } only && !only.Contains(dc, StringComparer.Ordinal))
                {
                    continue;
                }

                policies.Add(AclPolicy.Parse(policy.Rules ?? string.Empty, policy.Name ?? link.Name ?? "policy"));
            }
        }
        catch (ConsulException ex) when (ex is ConsulPermissionDeniedException or ConsulNotFoundException or ConsulAclNotFoundException)
        {
            return (null, $"the token's {links.Count} policies and {token.Roles?.Count ?? 0} roles cannot be read without acl:read ({ex.GetType().Name})");
        }
        catch (ConsulException ex)
        {
            return (null, "reading the token's policies failed: " + ex.Message);
        }
        catch (ArgumentException ex)
        {
            return (null, "a policy link had no ID: " + ex.Message);
        }
        catch (FormatException ex)
        {
            return (null, "a policy of the token could not be parsed: " + ex.Message);
        }

        // Synthetic policies of identities (Consul's ServiceIdentity/NodeIdentity SyntheticPolicy).
        foreach (ConsulAclServiceIdentity identity in serviceIdentities)
        {
            if (!string.IsNullOrEmpty(identity.ServiceName) && (identity.Datacenters is not { Count: > 0 } only || only.Contains(dc, StringComparer.Ordinal)))
            {
                policies.Add(AclPolicy.Parse(
                    $$"""
                    service "{{identity.ServiceName}}" { policy = "write" }
                    service "{{identity.ServiceName}}-sidecar-proxy" { policy = "write" }
                    service_prefix "" { policy = "read" }
                    node_prefix "" { policy = "read" }
                    """, "service-identity:" + identity.ServiceName));
            }
        }

        foreach (ConsulAclNodeIdentity identity in nodeIdentities)
        {
            if (!string.IsNullOrEmpty(identity.NodeName) && (string.IsNullOrEmpty(identity.Datacenter) || identity.Datacenter == dc))
            {
                policies.Add(AclPolicy.Parse(
                    $$"""
                    node "{{identity.NodeName}}" { policy = "write" }
                    service_prefix "" { policy = "read" }
                    """, "node-identity:" + identity.NodeName));
            }
        }

        AclDefaultPolicy defaultPolicy = facts.AclDefaultPolicy == "allow" ? AclDefaultPolicy.Allow : AclDefaultPolicy.Deny;
        AclEvaluationReport report = AclEvaluator.Evaluate(policies, requirements, defaultPolicy, new AclEvaluationOptions { Edition = acl.Edition });
        return (report, "evaluated " + policies.Count + " policies");
    }

    private const string ManagementRules = """
        acl = "write"
        operator = "write"
        mesh = "write"
        peering = "write"
        agent_prefix "" { policy = "write" }
        node_prefix "" { policy = "write" }
        service_prefix "" { policy = "write" }
        key_prefix "" { policy = "write" }
        """;

    private static (ConsulTokenPermissionStatus, string) FromProbe(ConsulPermissionProbe probe, string request, ConsulPreflightFacts facts, string key) => probe switch
    {
        ConsulPermissionProbe.Allowed => (ConsulTokenPermissionStatus.Granted, request + " answered in full."),
        ConsulPermissionProbe.Filtered => (ConsulTokenPermissionStatus.Missing, request + " answered with entries removed by ACLs (the token cannot read every service)."),
        ConsulPermissionProbe.Denied => (ConsulTokenPermissionStatus.Missing, request + " was denied: " + (facts.Errors.TryGetValue(key, out ConsulException? e) ? e.Message : "403")),
        ConsulPermissionProbe.TokenNotFound => (ConsulTokenPermissionStatus.Missing, request + ": Consul does not know the token (ACL not found)."),
        _ => (ConsulTokenPermissionStatus.Unknown, request + " failed: " + (facts.Errors.TryGetValue(key, out ConsulException? f) ? f.Message : "no answer")),
    };

    private static async Task<(ConsulTokenPermissionStatus, string)> ProbeLeafAsync(ConsulClient client, string service, CancellationToken cancellationToken)
    {
        string request = "GET /v1/agent/connect/ca/leaf/" + service;
        try
        {
            _ = await client.GetLeafCertificateAsync(service, default, cancellationToken).ConfigureAwait(false);
            return (ConsulTokenPermissionStatus.Granted, request + " (requires service:write) succeeded.");
        }
        catch (ConsulPermissionDeniedException ex)
        {
            return (ConsulTokenPermissionStatus.Missing, request + " was denied: " + ex.Message);
        }
        catch (ConsulAclNotFoundException ex)
        {
            return (ConsulTokenPermissionStatus.Missing, request + ": " + ex.Message);
        }
        catch (ConsulException ex)
        {
            return (ConsulTokenPermissionStatus.Unknown, request + " failed: " + ex.Message);
        }
    }

    private static ConsulPermissionProbe Probe(ConsulException error) => error switch
    {
        ConsulPermissionDeniedException => ConsulPermissionProbe.Denied,
        ConsulAclNotFoundException => ConsulPermissionProbe.TokenNotFound,
        _ => ConsulPermissionProbe.Unknown,
    };

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static bool TryGet(JsonElement? element, string name, out JsonElement value)
    {
        value = default;
        return element is { ValueKind: JsonValueKind.Object } e && e.TryGetProperty(name, out value);
    }

    private static string? String(JsonElement? element, string name) =>
        TryGet(element, name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? NullIfEmpty(v.GetString()) : null;

    private static bool? Bool(JsonElement? element, string name) =>
        TryGet(element, name, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static int? Int(JsonElement? element, string name) =>
        TryGet(element, name, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    private static ImmutableArray<string>? Strings(JsonElement? element, string name) =>
        TryGet(element, name, out JsonElement v) && v.ValueKind is JsonValueKind.Array or JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.Null ? [] : [.. v.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!)]
            : null;
}
