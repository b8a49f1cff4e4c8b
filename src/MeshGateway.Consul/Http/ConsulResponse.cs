namespace MeshGateway.Consul;

/// <summary>A decoded Consul response with its blocking-query metadata.</summary>
/// <typeparam name="T">The decoded body.</typeparam>
public sealed class ConsulResponse<T>
{
    /// <summary>Creates a response.</summary>
    /// <param name="value">The decoded body.</param>
    /// <param name="index"><c>X-Consul-Index</c>, 0 when absent.</param>
    public ConsulResponse(T value, ulong index)
    {
        Value = value;
        Index = index;
    }

    /// <summary>The decoded body.</summary>
    public T Value { get; }

    /// <summary>The <c>X-Consul-Index</c> header, 0 when absent.</summary>
    public ulong Index { get; }

    /// <summary>The <c>X-Consul-KnownLeader</c> header (false when absent).</summary>
    public bool KnownLeader { get; init; }

    /// <summary>The <c>X-Consul-LastContact</c> header (ms since the answering server heard from the leader).</summary>
    public TimeSpan LastContact { get; init; }

    /// <summary>The <c>X-Consul-ContentHash</c> header of hash-blocking agent endpoints.</summary>
    public string? ContentHash { get; init; }

    /// <summary>Whether <c>X-Consul-Results-Filtered-By-ACLs: true</c> was sent (Consul ≥ 1.11; absence proves nothing).</summary>
    public bool ResultsFilteredByAcls { get; init; }

    /// <summary>A 64-bit FNV-1a hash of the raw body; equal bodies have equal hashes (used to skip unchanged results).</summary>
    public ulong BodyHash { get; init; }
}
