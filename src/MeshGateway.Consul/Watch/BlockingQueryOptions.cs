namespace MeshGateway.Consul;

/// <summary>Tuning of a <see cref="BlockingQuery{T}"/> loop (docs/consul-behaviour.md §9).</summary>
public sealed class BlockingQueryOptions
{
    /// <summary>The <c>wait</c> sent with each blocking request. Default 5 minutes (Consul's default; at most 10 minutes).</summary>
    public TimeSpan Wait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Token-bucket capacity: how many requests may go out back to back. Default 2 (Consul's suggestion).</summary>
    public int RateLimitBurst { get; set; } = 2;

    /// <summary>
    /// Token-bucket refill: one request token per interval. Default 1 s, so a result that changes constantly is
    /// re-read at most about once a second after the burst is spent. Consul's blocking-query guide suggests backing off
    /// towards one request per 15 s under sustained churn; raise this to trade freshness for server load.
    /// </summary>
    public TimeSpan RateLimitInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>First retry delay after an error; doubles per consecutive error. Default 1 s.</summary>
    public TimeSpan ErrorBackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of the retry delay. Default 3 min, as Consul's own watches (<c>api/watch/plan.go</c>:
    /// <c>maxBackoffTime = 180 * time.Second</c>), so a long outage costs the agent a few requests a minute per loop.</summary>
    public TimeSpan ErrorBackoffMax { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public void Validate()
    {
        if (Wait < TimeSpan.FromSeconds(1) || Wait > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException("Wait must be between 1 second and 10 minutes.", nameof(Wait));
        }

        if (RateLimitBurst < 1)
        {
            throw new ArgumentException("RateLimitBurst must be at least 1.", nameof(RateLimitBurst));
        }

        if (RateLimitInterval < TimeSpan.Zero || ErrorBackoffBase <= TimeSpan.Zero || ErrorBackoffMax < ErrorBackoffBase)
        {
            throw new ArgumentException("RateLimitInterval must be ≥ 0, ErrorBackoffBase > 0 and ErrorBackoffMax ≥ ErrorBackoffBase.");
        }
    }
}
