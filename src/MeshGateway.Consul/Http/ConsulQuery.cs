namespace MeshGateway.Consul;

/// <summary>Per-call query parameters shared by Consul's read endpoints.</summary>
/// <remarks>Unset members fall back to <see cref="ConsulClientOptions"/> (datacenter) or are not sent.</remarks>
public readonly record struct ConsulQuery
{
    /// <summary>The datacenter (<c>?dc=</c>); overrides <see cref="ConsulClientOptions.Datacenter"/>.</summary>
    public string? Datacenter { get; init; }

    /// <summary>The blocking index (<c>?index=</c>); 0 means a non-blocking call.</summary>
    public ulong Index { get; init; }

    /// <summary>The blocking wait; used only with a non-zero <see cref="Index"/> or a <see cref="Hash"/>. Default: the client's.</summary>
    public TimeSpan? Wait { get; init; }

    /// <summary>The content hash for agent-local hash-blocking endpoints (<c>?hash=</c>).</summary>
    public string? Hash { get; init; }

    /// <summary>Enterprise: the admin partition (<c>?partition=</c>); overrides <see cref="ConsulClientOptions.Partition"/>.</summary>
    public string? Partition { get; init; }

    /// <summary>Consul 1.13+: read what was imported from this cluster peer (<c>?peer=</c>; health and catalog reads).</summary>
    public string? Peer { get; init; }

    /// <summary>A go-bexpr <c>?filter=</c> expression.</summary>
    public string? Filter { get; init; }

    /// <summary>
    /// Consul's consistent mode (<c>?consistent</c>): the leader verifies its leadership and answers only once its state
    /// machine has applied its whole log (it waits up to the servers' RPC hold timeout, 7 s by default, then fails). A
    /// default read can see a server that restarted half-way through replaying its log: a partial catalog at a lower
    /// index (docs/consul-behaviour.md §9). Costs the servers a leadership check per request: for baselines, not for
    /// every read.
    /// </summary>
    public bool Consistent { get; init; }

    /// <summary>Whether a blocking call is made (index or hash set).</summary>
    internal bool IsBlocking => Index > 0 || Hash is not null;
}
