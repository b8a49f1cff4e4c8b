using System.Text.Json;

namespace MeshGateway.Consul;

/// <summary>The body of <c>PUT /v1/agent/service/register</c>.</summary>
public sealed class ConsulServiceRegistration
{
    /// <summary>Kind, e.g. <c>mesh-gateway</c>; null for a typical service.</summary>
    public string? Kind { get; init; }

    /// <summary>Instance ID (defaults to the name in Consul).</summary>
    public string? ID { get; init; }

    /// <summary>Service name.</summary>
    public required string Name { get; init; }

    /// <summary>Tags.</summary>
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>Address.</summary>
    public string? Address { get; init; }

    /// <summary>Port.</summary>
    public int Port { get; init; }

    /// <summary>Tagged addresses.</summary>
    public IReadOnlyDictionary<string, ConsulServiceAddress>? TaggedAddresses { get; init; }

    /// <summary>Metadata.</summary>
    public IReadOnlyDictionary<string, string>? Meta { get; init; }

    /// <summary>Weights.</summary>
    public ConsulWeights? Weights { get; init; }

    /// <summary>Proxy settings (gateway <c>Config</c>).</summary>
    public ConsulProxyRegistration? Proxy { get; init; }

    /// <summary>Connect settings.</summary>
    public ConsulConnectRegistration? Connect { get; init; }

    /// <summary>A single check.</summary>
    public ConsulCheckRegistration? Check { get; init; }

    /// <summary>Several checks.</summary>
    public IReadOnlyList<ConsulCheckRegistration>? Checks { get; init; }
}

/// <summary><c>Proxy</c> of a registration.</summary>
public sealed class ConsulProxyRegistration
{
    /// <summary>Opaque configuration, e.g. <c>envoy_gateway_bind_tagged_addresses</c>.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Config { get; init; }

    /// <summary>Mesh gateway mode.</summary>
    public ConsulMeshGatewayConfig? MeshGateway { get; init; }
}

/// <summary><c>Connect</c> of a registration.</summary>
public sealed class ConsulConnectRegistration
{
    /// <summary>Registers a Connect-native instance.</summary>
    public bool Native { get; init; }
}

/// <summary>A check definition.</summary>
public sealed class ConsulCheckRegistration
{
    /// <summary>Check ID.</summary>
    public string? CheckID { get; init; }

    /// <summary>Name.</summary>
    public string? Name { get; init; }

    /// <summary><c>host:port</c> for a TCP check.</summary>
    public string? TCP { get; init; }

    /// <summary>URL for an HTTP check.</summary>
    public string? HTTP { get; init; }

    /// <summary>TTL (Go duration) for a TTL check.</summary>
    public string? TTL { get; init; }

    /// <summary>Interval (Go duration).</summary>
    public string? Interval { get; init; }

    /// <summary>Timeout (Go duration).</summary>
    public string? Timeout { get; init; }

    /// <summary>Deregister after critical for this long (Go duration).</summary>
    public string? DeregisterCriticalServiceAfter { get; init; }

    /// <summary>Initial status (new checks start critical otherwise).</summary>
    public string? Status { get; init; }

    /// <summary>Notes.</summary>
    public string? Notes { get; init; }
}
