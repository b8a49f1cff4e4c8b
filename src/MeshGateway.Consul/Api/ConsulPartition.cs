namespace MeshGateway.Consul;

/// <summary>An admin partition as <c>GET /v1/partitions</c> lists it (Consul Enterprise 1.11+; api-docs/admin-partitions).</summary>
public sealed class ConsulPartition
{
    /// <summary>The partition's name (<c>default</c> for the built-in one).</summary>
    public string? Name { get; init; }

    /// <summary>Its description.</summary>
    public string? Description { get; init; }
}
