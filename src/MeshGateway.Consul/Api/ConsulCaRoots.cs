namespace MeshGateway.Consul;

/// <summary><c>/v1/connect/ca/roots</c> and <c>/v1/agent/connect/ca/roots</c>.</summary>
public sealed class ConsulCaRoots
{
    /// <summary>ID of the active root.</summary>
    public string? ActiveRootID { get; init; }

    /// <summary>The trust domain, e.g. <c>7f42f496-….consul</c>.</summary>
    public string? TrustDomain { get; init; }

    /// <summary>The roots.</summary>
    public IReadOnlyList<ConsulCaRoot>? Roots { get; init; }
}

/// <summary>A Connect CA root.</summary>
public sealed class ConsulCaRoot
{
    /// <summary>Root ID.</summary>
    public string? ID { get; init; }

    /// <summary>Name.</summary>
    public string? Name { get; init; }

    /// <summary>Serial number.</summary>
    public ulong SerialNumber { get; init; }

    /// <summary>Signing key ID.</summary>
    public string? SigningKeyID { get; init; }

    /// <summary>External trust domain.</summary>
    public string? ExternalTrustDomain { get; init; }

    /// <summary>Validity start.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>Validity end.</summary>
    public DateTimeOffset? NotAfter { get; init; }

    /// <summary>PEM root certificate.</summary>
    public string? RootCert { get; init; }

    /// <summary>PEM intermediates.</summary>
    public IReadOnlyList<string>? IntermediateCerts { get; init; }

    /// <summary>Whether this root is active.</summary>
    public bool Active { get; init; }

    /// <summary>Key type.</summary>
    public string? PrivateKeyType { get; init; }

    /// <summary>Key bits.</summary>
    public int PrivateKeyBits { get; init; }

    /// <summary>Raft index of creation.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Raft index of the last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary><c>/v1/agent/connect/ca/leaf/&lt;service&gt;</c>: a leaf certificate and its key.</summary>
/// <remarks><see cref="object.ToString"/> is not overridden and never shows the key.</remarks>
public sealed class ConsulLeafCertificate
{
    /// <summary>Serial number (hex with colons).</summary>
    public string? SerialNumber { get; init; }

    /// <summary>PEM certificate.</summary>
    public string? CertPEM { get; init; }

    /// <summary>PEM private key. Secret.</summary>
    public string? PrivateKeyPEM { get; init; }

    /// <summary>Service name.</summary>
    public string? Service { get; init; }

    /// <summary>SPIFFE URI of the service.</summary>
    public string? ServiceURI { get; init; }

    /// <summary>Validity start.</summary>
    public DateTimeOffset? ValidAfter { get; init; }

    /// <summary>Validity end.</summary>
    public DateTimeOffset? ValidBefore { get; init; }

    /// <summary>Raft index of creation.</summary>
    public ulong CreateIndex { get; init; }

    /// <summary>Raft index of the last change.</summary>
    public ulong ModifyIndex { get; init; }
}

/// <summary><c>/v1/agent/self</c> (the stable parts).</summary>
public sealed class ConsulAgentSelf
{
    /// <summary>The agent's configuration summary.</summary>
    public ConsulAgentConfig? Config { get; init; }

    /// <summary>Node metadata.</summary>
    public IReadOnlyDictionary<string, string>? Meta { get; init; }

    /// <summary>The full runtime configuration (unstable shape; read defensively).</summary>
    public System.Text.Json.JsonElement? DebugConfig { get; init; }

    /// <summary>
    /// The agent's limit on concurrent HTTP(S) connections per client IP (<c>limits.http_max_conns_per_client</c>, default
    /// 200; <c>DebugConfig.HTTPMaxConnsPerClient</c> in Consul 1.8), or null when the agent does not report it.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int? HttpMaxConnsPerClient =>
        DebugConfig is { ValueKind: System.Text.Json.JsonValueKind.Object } debug
        && debug.TryGetProperty("HTTPMaxConnsPerClient", out System.Text.Json.JsonElement value)
        && value.ValueKind == System.Text.Json.JsonValueKind.Number
        && value.TryGetInt32(out int limit)
            ? limit
            : null;

    /// <summary>
    /// The agent's DNS domain (<c>domain</c>, default <c>consul</c>; <c>DebugConfig.DNSDomain</c>, reported with a trailing
    /// dot), without the trailing dot and lower-cased; null when the agent does not report it. WAN-federation server names
    /// end in it (<c>server.&lt;dc&gt;.&lt;domain&gt;</c>, docs/consul-behaviour.md §2).
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? DnsDomain =>
        DebugConfig is { ValueKind: System.Text.Json.JsonValueKind.Object } debug
        && debug.TryGetProperty("DNSDomain", out System.Text.Json.JsonElement value)
        && value.ValueKind == System.Text.Json.JsonValueKind.String
        && value.GetString()?.TrimEnd('.') is { Length: > 0 } domain
            ? domain.ToLowerInvariant()
            : null;
}

/// <summary><c>Config</c> of <c>/v1/agent/self</c>.</summary>
public sealed class ConsulAgentConfig
{
    /// <summary>The agent's datacenter.</summary>
    public string? Datacenter { get; init; }

    /// <summary>The primary datacenter (owner of the CA and ACLs).</summary>
    public string? PrimaryDatacenter { get; init; }

    /// <summary>Node name.</summary>
    public string? NodeName { get; init; }

    /// <summary>Node ID.</summary>
    public string? NodeID { get; init; }

    /// <summary>Partition (Enterprise; omitted when empty).</summary>
    public string? Partition { get; init; }

    /// <summary>Git revision.</summary>
    public string? Revision { get; init; }

    /// <summary>Whether the agent is a server.</summary>
    public bool Server { get; init; }

    /// <summary>Version, e.g. <c>1.8.7</c>.</summary>
    public string? Version { get; init; }
}
