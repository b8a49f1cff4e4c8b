using System.Globalization;

namespace MeshGateway.Preflight;

/// <summary>
/// Checks facts about a cluster against Consul's documented mesh-gateway prerequisites (docs/consul-behaviour.md §10: the WAN
/// federation and cluster peering pages). Pure: it only reads the facts it is given.
/// </summary>
public static class PreflightChecker
{
    private static readonly Version s_minimumMeshGateway = new(1, 6, 0);
    private static readonly Version s_minimumPeering = new(1, 13, 0);
    private static readonly Version s_peeringGeneralAvailability = new(1, 14, 0);

    /// <summary>Returns every unmet or undeterminable prerequisite; an empty list means all checked prerequisites hold.</summary>
    /// <param name="facts">The gathered facts.</param>
    /// <returns>The findings, errors and warnings, in check order.</returns>
    public static IReadOnlyList<PreflightFinding> Check(ClusterFacts facts)
    {
        ArgumentNullException.ThrowIfNull(facts);
        var findings = new List<PreflightFinding>();
        CheckNames(facts, findings);
        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            CheckVersion(dc, findings);
            CheckConnect(dc, findings);
            CheckGrpc(dc, findings);
        }

        CheckPrimary(facts, findings);
        CheckCentralConfig(facts, findings);
        CheckWanJoin(facts, findings);
        CheckModes(facts, findings);
        if (facts.Peering is { } peering)
        {
            CheckPeering(facts, peering, findings);
        }

        if (facts.WanFederationThroughGateways)
        {
            CheckWanFederation(facts, findings);
        }

        return findings;
    }

    /// <summary>Parses a Consul version string such as <c>1.15.2</c>, <c>v1.8.7</c>, <c>1.16.0+ent</c> or <c>1.14.0-rc1</c>.</summary>
    /// <param name="text">The version as Consul reports it.</param>
    /// <param name="version">Major, minor and patch.</param>
    /// <returns>Whether it parsed.</returns>
    public static bool TryParseConsulVersion(string? text, out Version version)
    {
        version = new Version(0, 0, 0);
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        ReadOnlySpan<char> span = text.AsSpan().Trim();
        if (span.Length > 0 && span[0] is 'v' or 'V')
        {
            span = span[1..];
        }

        int end = span.IndexOfAny('-', '+', ' ');
        if (end >= 0)
        {
            span = span[..end];
        }

        Span<Range> parts = stackalloc Range[4];
        int count = span.Split(parts, '.');
        if (count is < 2 or > 3)
        {
            return false;
        }

        int patch = 0;
        if (!int.TryParse(span[parts[0]], NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            || !int.TryParse(span[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out int minor)
            || (count == 3 && !int.TryParse(span[parts[2]], NumberStyles.None, CultureInfo.InvariantCulture, out patch)))
        {
            return false;
        }

        version = new Version(major, minor, patch);
        return true;
    }

    private static void CheckNames(ClusterFacts facts, List<PreflightFinding> findings)
    {
        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (string.IsNullOrWhiteSpace(dc.Name))
            {
                findings.Add(new(PreflightCheck.UniqueDatacenterNames, PreflightSeverity.Warning, null,
                    "A datacenter's name could not be determined.",
                    "Read Config.Datacenter from that datacenter's /v1/agent/self."));
                continue;
            }

            if (seen.TryGetValue(dc.Name, out string? first))
            {
                findings.Add(new(PreflightCheck.UniqueDatacenterNames, PreflightSeverity.Error, dc.Name,
                    "Two datacenters are named \"" + first + "\" and \"" + dc.Name + "\"; WAN-federated datacenter names must be unique (SNI names and gateway keys embed them).",
                    "Give each datacenter a unique 'datacenter' name in its agents' configuration."));
            }
            else
            {
                seen.Add(dc.Name, dc.Name);
            }
        }
    }

    private static void CheckVersion(DatacenterFacts dc, List<PreflightFinding> findings)
    {
        if (dc.ConsulVersion is null)
        {
            findings.Add(Unknown(PreflightCheck.ConsulVersion, dc.Name, "the Consul version", "Config.Version from /v1/agent/self"));
            return;
        }

        if (!TryParseConsulVersion(dc.ConsulVersion, out Version version))
        {
            findings.Add(new(PreflightCheck.ConsulVersion, PreflightSeverity.Warning, dc.Name,
                "Could not determine the Consul version: \"" + dc.ConsulVersion + "\" is not a version number.",
                "Check Config.Version in /v1/agent/self."));
            return;
        }

        if (version < s_minimumMeshGateway)
        {
            findings.Add(new(PreflightCheck.ConsulVersion, PreflightSeverity.Error, dc.Name,
                "Consul " + dc.ConsulVersion + " is older than 1.6, the first version with mesh gateways.",
                "Upgrade this datacenter's Consul servers and agents to 1.6 or later (1.14 or later for cluster peering)."));
        }
    }

    private static void CheckConnect(DatacenterFacts dc, List<PreflightFinding> findings)
    {
        if (dc.ConnectEnabled is null)
        {
            findings.Add(Unknown(PreflightCheck.ConnectEnabled, dc.Name, "whether Connect is enabled", "DebugConfig.ConnectEnabled from /v1/agent/self"));
        }
        else if (dc.ConnectEnabled == false)
        {
            findings.Add(new(PreflightCheck.ConnectEnabled, PreflightSeverity.Error, dc.Name,
                "Connect (the service mesh) is disabled, so there are no mesh certificates, intentions or gateway routes.",
                "Set connect { enabled = true } on this datacenter's servers and restart them."));
        }
    }

    private static void CheckGrpc(DatacenterFacts dc, List<PreflightFinding> findings)
    {
        if (dc.GrpcPort is null && dc.GrpcTlsPort is null)
        {
            findings.Add(Unknown(PreflightCheck.GrpcPort, dc.Name, "whether the gRPC port is enabled", "xDS.Ports (or DebugConfig.GRPCPort) from /v1/agent/self"));
        }
        else if (!(dc.GrpcPort > 0 || dc.GrpcTlsPort > 0))
        {
            findings.Add(new(PreflightCheck.GrpcPort, PreflightSeverity.Error, dc.Name,
                "The agent's gRPC port is disabled, so sidecar proxies cannot get their configuration (xDS).",
                "Set ports { grpc = 8502 } (or grpc_tls = 8503 on Consul 1.14+) on the agents."));
        }
    }

    private static void CheckPrimary(ClusterFacts facts, List<PreflightFinding> findings)
    {
        var primaries = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (string.IsNullOrEmpty(dc.PrimaryDatacenter))
            {
                findings.Add(Unknown(PreflightCheck.PrimaryDatacenter, dc.Name, "the primary datacenter", "Config.PrimaryDatacenter from /v1/agent/self"));
                continue;
            }

            if (!primaries.TryGetValue(dc.PrimaryDatacenter, out List<string>? list))
            {
                list = [];
                primaries.Add(dc.PrimaryDatacenter, list);
            }

            list.Add(dc.Name);
        }

        if (primaries.Count > 1)
        {
            string detail = string.Join("; ", primaries.Select(p => string.Join(", ", p.Value) + " use \"" + p.Key + "\""));
            findings.Add(new(PreflightCheck.PrimaryDatacenter, PreflightSeverity.Error, null,
                "The datacenters disagree on the primary datacenter (" + detail + "); the primary owns the mesh CA, so they do not share a trust domain.",
                "Set the same primary_datacenter on every agent of every datacenter."));
        }
        else if (primaries.Count == 1 && facts.Datacenters.Count > 0)
        {
            string primary = primaries.Keys.First();
            if (!facts.Datacenters.Any(d => string.Equals(d.Name, primary, StringComparison.Ordinal)))
            {
                findings.Add(new(PreflightCheck.PrimaryDatacenter, PreflightSeverity.Warning, null,
                    "The primary datacenter \"" + primary + "\" is not among the datacenters checked.",
                    "Include the primary datacenter's facts in the check, or correct primary_datacenter."));
            }
        }
    }

    private static void CheckCentralConfig(ClusterFacts facts, List<PreflightFinding> findings)
    {
        GatewayModeSetting? central = facts.ModeSettings.FirstOrDefault(s => s.IsCentralConfig && !string.IsNullOrEmpty(s.Value));
        if (central is null)
        {
            return;
        }

        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (dc.CentralServiceConfigEnabled is null)
            {
                findings.Add(Unknown(PreflightCheck.CentralServiceConfig, dc.Name, "whether central service config is enabled (needed because " + central.Location + " sets a gateway mode)",
                    "DebugConfig.EnableCentralServiceConfig from /v1/agent/self"));
            }
            else if (dc.CentralServiceConfigEnabled == false)
            {
                findings.Add(new(PreflightCheck.CentralServiceConfig, PreflightSeverity.Error, dc.Name,
                    central.Location + " sets a mesh-gateway mode, but central service config is disabled here, so the agents ignore config-entry modes.",
                    "Set enable_central_service_config = true on this datacenter's agents."));
            }
        }
    }

    private static void CheckWanJoin(ClusterFacts facts, List<PreflightFinding> findings)
    {
        if (facts.Datacenters.Count < 2)
        {
            return;
        }

        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (dc.KnownDatacenters is null)
            {
                findings.Add(Unknown(PreflightCheck.WanJoin, dc.Name, "which datacenters are WAN-joined", "/v1/catalog/datacenters"));
                continue;
            }

            string[] missing = facts.Datacenters
                .Where(other => !string.IsNullOrEmpty(other.Name) && !dc.KnownDatacenters.Contains(other.Name, StringComparer.Ordinal))
                .Select(other => other.Name)
                .ToArray();
            if (missing.Length > 0)
            {
                findings.Add(new(PreflightCheck.WanJoin, PreflightSeverity.Error, dc.Name,
                    "This datacenter does not see " + string.Join(", ", missing.Select(m => "\"" + m + "\"")) + " over the WAN, so it cannot route or forward requests there.",
                    "WAN-join the servers (retry_join_wan), or federate through mesh gateways: connect { enable_mesh_gateway_wan_federation = true } on servers and primary_gateways on secondaries."));
            }
        }
    }

    private static void CheckModes(ClusterFacts facts, List<PreflightFinding> findings)
    {
        foreach (GatewayModeSetting setting in facts.ModeSettings)
        {
            if (setting.Value is null or "" or "none" or "local" or "remote")
            {
                continue;
            }

            string hint = setting.Value.Trim().ToLowerInvariant() is "none" or "local" or "remote"
                ? " (values are case-sensitive and must not contain spaces: \"" + setting.Value.Trim().ToLowerInvariant() + "\")"
                : string.Empty;
            findings.Add(new(PreflightCheck.GatewayModeValue, PreflightSeverity.Error, null,
                setting.Location + " sets MeshGateway.Mode to \"" + setting.Value + "\", which is not a Consul mode" + hint
                + ". Consul's HTTP API stored it unchanged, but Consul's own configuration loading rejects it (Invalid Mesh Gateway Mode) and it selects no gateway.",
                "Set MeshGateway.Mode in " + setting.Location + " to \"none\", \"local\" or \"remote\", or remove it."));
        }
    }

    private static void CheckPeering(ClusterFacts facts, PeeringFacts peering, List<PreflightFinding> findings)
    {
        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (dc.ConsulVersion is not null && TryParseConsulVersion(dc.ConsulVersion, out Version version))
            {
                if (version < s_minimumPeering)
                {
                    findings.Add(new(PreflightCheck.PeeringVersion, PreflightSeverity.Error, dc.Name,
                        "Consul " + dc.ConsulVersion + " has no cluster peering (added in 1.13, generally available in 1.14).",
                        "Upgrade to Consul 1.14 or later."));
                }
                else if (version < s_peeringGeneralAvailability)
                {
                    findings.Add(new(PreflightCheck.PeeringVersion, PreflightSeverity.Warning, dc.Name,
                        "Consul " + dc.ConsulVersion + " has cluster peering as a beta feature; 1.13 does not support the local gateway mode for peers.",
                        "Upgrade to Consul 1.14 or later."));
                }
            }

            if (dc.PeeringEnabled is null)
            {
                findings.Add(Unknown(PreflightCheck.PeeringEnabled, dc.Name, "whether peering is enabled", "DebugConfig.PeeringEnabled from /v1/agent/self"));
            }
            else if (dc.PeeringEnabled == false)
            {
                findings.Add(new(PreflightCheck.PeeringEnabled, PreflightSeverity.Error, dc.Name,
                    "Cluster peering is disabled on this datacenter's servers.",
                    "Set peering { enabled = true } on the servers and restart them."));
            }
        }

        if (peering.ExportedServicesPresent is null)
        {
            findings.Add(Unknown(PreflightCheck.ExportedServices, null, "whether services are exported", "GET /v1/config/exported-services"));
        }
        else if (peering.ExportedServicesPresent == false)
        {
            findings.Add(new(PreflightCheck.ExportedServices, PreflightSeverity.Warning, null,
                "No exported-services config entry exports a service, so peers can import nothing from this cluster.",
                "Write an exported-services config entry listing the services and the peers that may consume them."));
        }

        if (peering.ExportingClusterHasMeshGateway is null)
        {
            findings.Add(Unknown(PreflightCheck.PeeringGateway, null, "whether the exporting cluster has a mesh gateway", "/v1/catalog/services?filter=ServiceKind == \"mesh-gateway\""));
        }
        else if (peering.ExportingClusterHasMeshGateway == false)
        {
            findings.Add(new(PreflightCheck.PeeringGateway, PreflightSeverity.Error, null,
                "The exporting cluster has no mesh gateway; peers reach exported services only through one (Enterprise: in the exporting partition).",
                "Register a mesh gateway in the exporting cluster (and partition)."));
        }

        if (peering.UsesLocalMode == true)
        {
            if (peering.ImportingClusterHasMeshGateway is null)
            {
                findings.Add(Unknown(PreflightCheck.PeeringGateway, null, "whether the importing cluster has a mesh gateway (needed by mode local)", "/v1/catalog/services?filter=ServiceKind == \"mesh-gateway\""));
            }
            else if (peering.ImportingClusterHasMeshGateway == false)
            {
                findings.Add(new(PreflightCheck.PeeringGateway, PreflightSeverity.Error, null,
                    "Peered upstreams use mode local, but the importing cluster has no mesh gateway to send them through.",
                    "Register a mesh gateway in the importing cluster, or use mode remote for peered upstreams."));
            }
        }
    }

    private static void CheckWanFederation(ClusterFacts facts, List<PreflightFinding> findings)
    {
        foreach (DatacenterFacts dc in facts.Datacenters)
        {
            if (dc.IsServer != true)
            {
                findings.Add(new(PreflightCheck.WanFederation, PreflightSeverity.Warning, dc.Name,
                    "Could not determine the servers' WAN-federation settings: the gateway's agent " + (dc.IsServer == false ? "is a client, and a client's configuration does not show the servers'." : "did not say whether it is a server."),
                    "Check on every server: connect { enable_mesh_gateway_wan_federation = true }, verify_incoming, verify_outgoing and verify_server_hostname = true, and primary_gateways on secondaries."));
                continue;
            }

            if (dc.MeshGatewayWanFederationEnabled == false)
            {
                findings.Add(new(PreflightCheck.WanFederation, PreflightSeverity.Error, dc.Name,
                    "connect.enable_mesh_gateway_wan_federation is off on this server, so its servers do not dial other datacenters through mesh gateways.",
                    "Set connect { enable_mesh_gateway_wan_federation = true } on every server of every datacenter and restart them."));
            }

            if (dc.VerifyOutgoing == false)
            {
                findings.Add(new(PreflightCheck.WanFederation, PreflightSeverity.Error, dc.Name,
                    "verify_outgoing is off on this server: Consul refuses to dial through a mesh gateway without outgoing TLS (\"wanfed: cannot dial via a mesh gateway when outgoing TLS is disabled\").",
                    "Give the servers certificates (consul tls cert create -server -dc <dc> -additional-dnsname='*.server.<dc>.<domain>') and set verify_outgoing = true."));
            }

            foreach ((bool? value, string key) in new[] { (dc.VerifyIncoming, "verify_incoming"), (dc.VerifyServerHostname, "verify_server_hostname") })
            {
                if (value == false)
                {
                    findings.Add(new(PreflightCheck.WanFederation, PreflightSeverity.Warning, dc.Name,
                        key + " is off on this server; Consul's WAN-federation guide requires it, so that only servers of this cluster can join through the gateways.",
                        "Set " + key + " = true on every server."));
                }
            }

            bool secondary = !string.IsNullOrEmpty(dc.PrimaryDatacenter) && !string.Equals(dc.PrimaryDatacenter, dc.Name, StringComparison.Ordinal);
            if (secondary && dc.PrimaryGateways is { Count: 0 })
            {
                findings.Add(new(PreflightCheck.WanFederation, PreflightSeverity.Error, dc.Name,
                    $"This secondary datacenter's server has no primary_gateways, so it cannot make its first join to \"{dc.PrimaryDatacenter}\" through the primary's mesh gateways.",
                    $"Set primary_gateways = [\"<address:port of a mesh gateway of {dc.PrimaryDatacenter}>\"] on every server of this datacenter (not retry_join_wan, which this mode rejects)."));
            }
        }
    }

    private static PreflightFinding Unknown(PreflightCheck check, string? datacenter, string what, string source)
        => new(check, PreflightSeverity.Warning, datacenter, "Could not determine " + what + ".", "Provide it (from " + source + ") and check again.");
}
