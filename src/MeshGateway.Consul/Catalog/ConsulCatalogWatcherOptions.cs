namespace MeshGateway.Consul;

/// <summary>Settings of a <see cref="ConsulCatalogWatcher"/>.</summary>
public sealed class ConsulCatalogWatcherOptions
{
    /// <summary>Long-polls the watcher keeps open at all times: catalog names, all checks, and one per config-entry kind
    /// (<c>proxy-defaults</c>, <c>service-defaults</c>, <c>service-resolver</c>).</summary>
    public const int LongPollCount = 5;

    /// <summary>
    /// The fewest agent connections (<see cref="ConsulClientOptions.MaxConnections"/>) the watcher runs with: its
    /// <see cref="LongPollCount"/> long-polls, one lane for refetches and one left for registration and other calls.
    /// </summary>
    public const int MinimumAgentConnections = LongPollCount + 2;

    /// <summary>The gateway's own datacenter. Default: read from <c>/v1/agent/self</c> (needs <c>agent:read</c>).</summary>
    public string? Datacenter { get; set; }

    /// <summary>Wait, rate limit and backoff of every blocking query the watcher runs, and the backoff of failed refetches.</summary>
    public BlockingQueryOptions BlockingQuery { get; set; } = new();

    /// <summary>How often <c>/v1/catalog/datacenters</c> (not blocking) is polled. Default 30 s, like Consul's own gateway.</summary>
    public TimeSpan DatacenterPollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the mesh gateways of each other datacenter (and of the local one, see <see cref="WatchLocalGateways"/>) are
    /// re-read with non-blocking queries. Default 10 s. Consul's own gateway holds one in-process watch per datacenter;
    /// over HTTP that would be one long-poll connection per datacenter, which a bounded connection budget cannot give
    /// a mesh of many datacenters, so gateway lists are polled (a gateway that goes away between polls is ejected by the
    /// data plane on its first failed connect).
    /// </summary>
    public TimeSpan GatewayPollInterval { get; set; } = TimeSpan.FromSeconds(10);


    /// <summary>
    /// A round whose catalog change was explained by a name, tag or check change may still hide a second registration
    /// that changed only a port, address, weight or metadata (Consul's HTTP API names no per-service index in one call).
    /// Such rounds, and sweeps that stopped at the change they looked for, are verified by a full sweep this long after the
    /// first of them. Default 10 s. Sweeps are also paced, whatever the catalog size: they spend at most a quarter of the
    /// time, and a verification sweep waits until it would leave a full sweep's worth for an unexplained change.
    /// </summary>
    public TimeSpan VerificationSweepDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// WAN federation through mesh gateways (docs/consul-behaviour.md §3 and §14): also read, with each gateway poll
    /// (<see cref="GatewayPollInterval"/>), the local Consul servers (<c>/v1/health/service/consul</c>) and the mesh gateways of
    /// every datacenter from the replicated federation states (<c>/v1/internal/federation-states/mesh-gateways</c>, only those
    /// with <c>consul-wan-federation = "1"</c> meta). Per datacenter the view takes the federation state's list when its newest
    /// registration is newer than the catalog's or the catalog has none (Consul's <c>GetMeshGatewayEndpoints</c>).
    /// The DNS domain for server names is read from <c>/v1/agent/self</c> unless <see cref="DnsDomain"/> is set. Default false.
    /// </summary>
    public bool WanFederation { get; set; }

    /// <summary>The agent's DNS domain for WAN-federation server names. Default: read from <c>/v1/agent/self</c>, else <c>consul</c>.</summary>
    public string? DnsDomain { get; set; }

    /// <summary>
    /// Enterprise admin partitions: with each gateway poll, read the mesh gateways of every other partition of the local
    /// datacenter (<c>/v1/partitions</c>, then each partition's kind-filtered catalog, <c>?partition=</c>) for
    /// <see cref="ConsulCatalogView.PartitionGateways"/>. A Community Edition agent answers 404 once and is not asked again.
    /// Default true.
    /// </summary>
    public bool WatchPartitions { get; set; } = true;

    /// <summary>
    /// Cluster peering (Consul 1.13+, docs/consul-behaviour.md §11): with each gateway poll (<see cref="GatewayPollInterval"/>) read the
    /// partition's <c>exported-services</c> entry, the <c>mesh</c> entry (<c>Peering.PeerThroughMeshGateways</c>), the peerings
    /// (<c>/v1/peerings</c>), the local servers when control-plane traffic goes through gateways, and the instances imported
    /// from each peer (<c>?peer=</c>), for <see cref="ConsulCatalogView.Peering"/>. Polled, not long-polled: four more long-polls
    /// would not fit the connection bound, and these change rarely. <see langword="null"/> (default): auto-detect: an agent without
    /// peering (404 from <c>/v1/peerings</c>, or <c>invalid config entry kind</c> as 1.8.7 answers) is not asked again and
    /// <see cref="ConsulCatalogWatcher.PeeringUnavailable"/> is called once. <see langword="true"/>: such answers are errors.
    /// <see langword="false"/>: never read.
    /// </summary>
    public bool? Peering { get; set; }

    /// <summary>Whether mesh gateways of the local datacenter are watched too (for dialers in <c>local</c> mode). Default true.</summary>
    public bool WatchLocalGateways { get; set; } = true;

    /// <summary>Whether the watcher checks <see cref="ConsulClientOptions.MaxConnections"/> against the agent's
    /// <c>limits.http_max_conns_per_client</c> (from <c>/v1/agent/self</c>) at start. Default true.</summary>
    public bool ValidateAgentConnectionLimit { get; set; } = true;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        BlockingQuery.Validate();
        if (DatacenterPollInterval < TimeSpan.FromMilliseconds(10))
        {
            throw new ArgumentException($"DatacenterPollInterval must be at least 10 ms (was {DatacenterPollInterval}).", nameof(DatacenterPollInterval));
        }

        if (GatewayPollInterval < TimeSpan.FromMilliseconds(10))
        {
            throw new ArgumentException($"GatewayPollInterval must be at least 10 ms (was {GatewayPollInterval}).", nameof(GatewayPollInterval));
        }

        if (VerificationSweepDelay < TimeSpan.FromMilliseconds(10) || VerificationSweepDelay > TimeSpan.FromHours(1))
        {
            throw new ArgumentException($"VerificationSweepDelay must be between 10 ms and 1 h (was {VerificationSweepDelay}).", nameof(VerificationSweepDelay));
        }
    }
}
