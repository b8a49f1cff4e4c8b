using System.Collections.Immutable;
using System.Text.Json;

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
/// routing (reference section 10). Judging them (missing primary datacenter, missing WAN join, missing permissions)
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

    /// <summary>Whether ACLs are enabled (from <c>DebugConfig.ACLsEnabled</c>).</summary>
    public bool? AclsEnabled { get; init; }

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
                AgentRead = ConsulPermissionProbe.Allowed,
            };
        }
        catch (ConsulException ex)
        {
            errors["agent/self"] = ex;
            facts = facts with { AgentRead = Probe(ex) };
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
}
