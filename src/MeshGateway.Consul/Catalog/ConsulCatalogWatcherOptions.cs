namespace MeshGateway.Consul;

/// <summary>Settings of a <see cref="ConsulCatalogWatcher"/>.</summary>
public sealed class ConsulCatalogWatcherOptions
{
    /// <summary>The gateway's own datacenter. Default: read from <c>/v1/agent/self</c> (needs <c>agent:read</c>).</summary>
    public string? Datacenter { get; set; }

    /// <summary>Wait, rate limit and backoff of every blocking query the watcher runs.</summary>
    public BlockingQueryOptions BlockingQuery { get; set; } = new();

    /// <summary>How often <c>/v1/catalog/datacenters</c> (not blocking) is polled. Default 30 s, like Consul's own gateway.</summary>
    public TimeSpan DatacenterPollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether mesh gateways of the local datacenter are watched too (for dialers in <c>local</c> mode). Default true.</summary>
    public bool WatchLocalGateways { get; set; } = true;
}
