using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using MeshGateway.Model;
using MeshGateway.Routing;

namespace MeshGateway.Consul;

/// <summary>Settings of <see cref="ConsulRouteTableBuilder"/>.</summary>
public sealed record ConsulRouteTableOptions
{
    /// <summary>
    /// The gateway's <c>connect_timeout_ms</c> (docs/consul-behaviour.md §6.1): the connect timeout of every cluster whose
    /// <c>service-resolver</c> sets no <c>ConnectTimeout</c>. Default 5000 ms.
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = UpstreamCluster.DefaultConnectTimeout;

    /// <summary>
    /// How many upstream connect attempts every cluster makes (<see cref="UpstreamCluster.MaxConnectAttempts"/>). Default
    /// <see cref="UpstreamCluster.DefaultMaxConnectAttempts"/>; 1 to <see cref="UpstreamCluster.MaxAllowedConnectAttempts"/>.
    /// </summary>
    public int MaxConnectAttempts { get; init; } = UpstreamCluster.DefaultMaxConnectAttempts;

    /// <summary>When every cluster leaves endpoints out after failed connects. Default <see cref="Routing.OutlierDetection.Default"/> (Envoy's defaults, as Consul leaves them for a mesh gateway).</summary>
    public OutlierDetection OutlierDetection { get; init; } = OutlierDetection.Default;

    /// <summary>
    /// TCP keepalive on connections to remote gateways (other datacenters' and peers' mesh gateways), as Consul sets it
    /// for Envoy from <c>envoy_gateway_remote_tcp_enable_keepalive</c> and the <c>envoy_gateway_remote_tcp_keepalive_*</c>
    /// keys; local service instances never get it (as in Consul). Default none.
    /// </summary>
    public TcpKeepAlive? RemoteGatewayTcpKeepAlive { get; init; }

    /// <summary>
    /// Enterprise: the admin partition the gateway serves. Null, empty or <c>default</c> gives the form-1/2 names
    /// (<c>…&lt;dc&gt;.internal.&lt;TD&gt;</c>); another partition gives forms 3/4 (<c>…&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c>)
    /// for local services. Remote datacenters are always addressed through their default-partition gateways (form 5).
    /// </summary>
    public string? Partition { get; init; }

    /// <summary>
    /// WAN federation through mesh gateways (the gateway registered with <c>consul-wan-federation = "1"</c> meta;
    /// docs/consul-behaviour.md §3 and §14): adds the server routes. For each other datacenter with gateways, <c>*.server.&lt;dc&gt;.&lt;domain&gt;</c>
    /// and <c>server.&lt;dc&gt;.&lt;domain&gt;</c> to that datacenter's gateways (WAN address); for each local server (see
    /// <see cref="ConsulCatalogView.LocalServers"/>), <c>&lt;node&gt;.server.&lt;localdc&gt;.&lt;domain&gt;</c> to its RPC port; and
    /// <c>server.&lt;localdc&gt;.&lt;domain&gt;</c> to every local server. Default partition only, as in Consul. Default false.
    /// </summary>
    public bool WanFederation { get; init; }

    /// <summary>
    /// Cluster peering: the local endpoint of an L7 terminator for HTTP-like exported services (<c>http</c>, <c>http2</c>,
    /// <c>grpc</c>; docs/consul-behaviour.md §11). Consul's gateway does not pass those through: it terminates the peer's mTLS with its
    /// own leaf certificate and applies the service's discovery chain. When set, each such export's form-8 name is routed
    /// (still encrypted) to this endpoint, which must terminate it; the exports are listed in
    /// <see cref="ConsulRouteConversion.TerminatedExports"/>. When null (default) those names get no route and one warning
    /// per service says it needs HTTP termination, as Consul builds no filter chain for them until it has a leaf.
    /// </summary>
    public IPEndPoint? PeeringHttpTerminator { get; init; }

    /// <summary>
    /// Cluster peering: an in-process L7 terminator for HTTP-like exported services (for example the MeshGateway.Peering
    /// package's), as an alternative to <see cref="PeeringHttpTerminator"/>. When set, each such export's form-8 name gets an
    /// exact route whose <see cref="Route.Terminator"/> is this one (the gateway hands it the accepted socket and the bytes
    /// it read; no second hop); it wins over <see cref="PeeringHttpTerminator"/>. Default null.
    /// </summary>
    public MeshGateway.Gateway.ConnectionTerminator? PeeringTerminator { get; init; }

    /// <summary>The default <see cref="ServerIdleTimeout"/>: 4 hours.</summary>
    public static readonly TimeSpan DefaultServerIdleTimeout = TimeSpan.FromHours(4);

    /// <summary>
    /// The idle timeout of server routes (<see cref="WanFederation"/>). Consul servers keep their RPC and gossip connections
    /// across datacenters open and pooled, idle between uses, so a short timeout cuts live connections
    /// (docs/consul-behaviour.md §14: an hour worked). Default <see cref="DefaultServerIdleTimeout"/>; <see cref="Timeout.InfiniteTimeSpan"/> for none.
    /// </summary>
    public TimeSpan ServerIdleTimeout { get; init; } = DefaultServerIdleTimeout;
}

/// <summary>Inputs beyond the catalog view, for features newer than Consul 1.8 (docs/consul-behaviour.md §8.4 and §11).</summary>
public sealed record ConsulRouteExtras
{
    /// <summary>
    /// The partition's <c>exported-services</c> entry (Consul 1.13+), or null. For each exported local service with ≥ 1
    /// instance and each <c>Peer</c> consumer: an exact form-8 route <c>&lt;svc&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;peer&gt;.external.&lt;TD&gt;</c>
    /// to the service's instances (TCP passthrough, cluster <c>exported~&lt;local cluster&gt;</c>). <c>Name: "*"</c> exports
    /// every service. <c>Partition</c> consumers need no route here; <c>SamenessGroup</c> consumers are reported, not resolved.
    /// HTTP-like services (<see cref="Protocols"/>), which Consul's gateway terminates for peers, are not passed through: they
    /// are listed in <see cref="ConsulRouteConversion.TerminatedExports"/> and routed only to
    /// <see cref="ConsulRouteTableOptions.PeeringHttpTerminator"/>. When null, the view's <see cref="ConsulCatalogView.Peering"/> is used.
    /// </summary>
    public ConsulExportedServices? ExportedServices { get; init; }

    /// <summary>
    /// Instances of services imported from cluster peers (<c>/v1/health/connect/&lt;svc&gt;?peer=&lt;peer&gt;</c>, Consul 1.13+):
    /// each is one of the exporter's mesh gateways with <c>Service.Connect.PeerMeta.SNI</c>. They become the importer's
    /// outgoing clusters for sidecars in <c>local</c> mode: an exact route per <c>PeerMeta.SNI[0]</c> (form 8) to those
    /// gateways at their WAN best address (docs/consul-behaviour.md §3, clusters reachable through the default chain). Read them with
    /// <see cref="ConsulClient.GetHealthConnectAsync"/>.
    /// </summary>
    public IReadOnlyList<CatalogServiceInstance> ImportedPeerInstances { get; init; } = [];

    /// <summary>
    /// The protocol of exported services by name (<c>service-defaults</c> <c>Protocol</c>, else <c>proxy-defaults</c>
    /// <c>Config.protocol</c>; see <see cref="ConsulPeeringView.Protocols"/>); a service not listed is <c>tcp</c>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Protocols { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The extras a peering view carries (what <see cref="ConsulRouteTableBuilder.Convert"/> uses when given none).</summary>
    /// <param name="peering">The view's peering part.</param>
    /// <returns>The extras.</returns>
    public static ConsulRouteExtras FromPeering(ConsulPeeringView peering)
    {
        ArgumentNullException.ThrowIfNull(peering);
        return new ConsulRouteExtras { ExportedServices = peering.ExportedServices, ImportedPeerInstances = peering.ImportedInstances, Protocols = peering.Protocols };
    }
}

/// <summary>
/// An HTTP-like exported service (<c>http</c>, <c>http2</c>, <c>grpc</c>) that a peer reaches by <see cref="Sni"/>: Consul's
/// gateway terminates such connections (docs/consul-behaviour.md §11), so they are not passed through. An L7 terminator serves
/// these (see <see cref="ConsulRouteTableOptions.PeeringHttpTerminator"/>).
/// </summary>
public sealed record ConsulTerminatedExport
{
    /// <summary>The exported service.</summary>
    public required string Service { get; init; }

    /// <summary>Its namespace (<c>default</c> in CE).</summary>
    public required string Namespace { get; init; }

    /// <summary>Its partition (<c>default</c> in CE).</summary>
    public required string Partition { get; init; }

    /// <summary>The consumer peer (the exporter's local name for it).</summary>
    public required string Peer { get; init; }

    /// <summary>The form-8 name the peer's sidecars send: <c>&lt;svc&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;peer&gt;.external.&lt;TD&gt;</c>.</summary>
    public required string Sni { get; init; }

    /// <summary>The service's protocol: <c>http</c>, <c>http2</c> or <c>grpc</c>.</summary>
    public required string Protocol { get; init; }

    /// <summary>The service's own local cluster name (form 1/3), whose instances a terminator forwards to over new mTLS.</summary>
    public required string LocalCluster { get; init; }

    /// <summary>Whether the name is routed to <see cref="ConsulRouteTableOptions.PeeringHttpTerminator"/> (false: no route).</summary>
    public bool Routed { get; init; }
}

/// <summary>The outcome of one conversion: a complete table, or why none was built; plus what was left out and why.</summary>
public sealed record ConsulRouteConversion
{
    /// <summary>The table, or null when the conversion failed as a whole (see <see cref="Error"/>).</summary>
    public RouteTable? Table { get; init; }

    /// <summary>Why no table was built, or null.</summary>
    public string? Error { get; init; }

    /// <summary>Routes or endpoints left out (bad subset filter, port 0, IP addresses beside host names, …), one sentence each.</summary>
    public ImmutableArray<string> Warnings { get; init; } = [];

    /// <summary>
    /// HTTP-like exported services, one per service and consumer peer, that need an L7 terminator instead of passthrough
    /// (routed to <see cref="ConsulRouteTableOptions.PeeringHttpTerminator"/> when set, else left without a route).
    /// </summary>
    public ImmutableArray<ConsulTerminatedExport> TerminatedExports { get; init; } = [];

    /// <summary>The peering part of the converted view (peerings with the peers' CA certificates), or null.</summary>
    public ConsulPeeringView? Peering { get; init; }

    /// <summary>The converted view (null when the conversion failed): what an L7 terminator reads the chain targets' instances from.</summary>
    public ConsulCatalogView? View { get; init; }

    /// <summary>Whether <see cref="Table"/> was built.</summary>
    [MemberNotNullWhen(true, nameof(Table))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Succeeded => Table is not null;
}

/// <summary>
/// Converts a <see cref="ConsulCatalogView"/> into the complete <see cref="RouteTable"/> Consul's own mesh gateway would
/// build (docs/consul-behaviour.md §3). Pure: no I/O, same view in, equal routes out.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Every local service with ≥ 1 Connect-capable instance gets an exact route named by form 1
/// (<c>&lt;svc&gt;.default.&lt;dc&gt;.internal.&lt;TD&gt;</c>) and one per <c>service-resolver</c> subset (form 2). Subset
/// endpoints are the instances the subset <c>Filter</c> selects (<see cref="ConsulSubsetFilter"/>); with
/// <c>OnlyPassing</c> any non-passing check makes an endpoint unhealthy; a <c>DefaultSubset</c> makes the unnamed cluster
/// use that subset's endpoints (Consul's <c>endpointsFromServicesAndResolvers</c>).</item>
/// <item>Endpoints: the LAN best address, with health and weight per <c>calculateEndpointHealthAndWeight</c>; unhealthy
/// endpoints stay in the cluster (used only in panic mode).</item>
/// <item>Connect timeout: the resolver's <c>ConnectTimeout</c>, else <see cref="ConsulRouteTableOptions.ConnectTimeout"/>.</item>
/// <item>Every remote datacenter with ≥ 1 mesh gateway gets the wildcard <c>*.&lt;dc&gt;.internal.&lt;TD&gt;</c> and the
/// exact gateway-cluster name <c>&lt;dc&gt;.internal.&lt;TD&gt;</c> (Envoy's default <c>sni_cluster</c> chain), both to one
/// cluster of that datacenter's gateways at their WAN best address. No wildcard for the local datacenter.</item>
/// <item>WAN federation (<see cref="ConsulRouteTableOptions.WanFederation"/>): server routes, see that option.</item>
/// </list>
/// <para>Reported, not thrown (the rest of the table is still built): a subset filter outside the supported language
/// (its route is left out; if it is the <c>DefaultSubset</c>, the unnamed cluster gets no endpoints rather than every
/// instance), a <c>DefaultSubset</c> naming no subset (the unnamed cluster keeps every instance, as in Consul), an
/// endpoint that has port 0 or an invalid host name, IP endpoints left out beside host names and host names beyond the
/// one used (below), and a service name that cannot form an SNI name.</para>
/// <para>Host-name addresses (a cloud load balancer) follow Consul's DNS clusters (docs/consul-behaviour.md §3): when a cluster's
/// instances have host names, it gets one host-name endpoint, the first healthy one (else the last unhealthy one),
/// resolved in the background by a <see cref="HostNameRefresher"/>; IP instances beside host names are left out.</para>
/// </remarks>
public static class ConsulRouteTableBuilder
{
    /// <summary>Builds the table for <paramref name="view"/>.</summary>
    /// <param name="view">The catalog view.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="extras">Exported services and peer imports (Consul 1.13+), or null.</param>
    /// <returns>The table (or the error) and the warnings.</returns>
    public static ConsulRouteConversion Convert(ConsulCatalogView view, ConsulRouteTableOptions? options = null, ConsulRouteExtras? extras = null)
    {
        ArgumentNullException.ThrowIfNull(view);
        options ??= new ConsulRouteTableOptions();
        if (extras is null && view.Peering is { } peering)
        {
            extras = ConsulRouteExtras.FromPeering(peering);
        }

        var warnings = ImmutableArray.CreateBuilder<string>();
        var terminated = ImmutableArray.CreateBuilder<ConsulTerminatedExport>();
        if (string.IsNullOrEmpty(view.TrustDomain) || string.IsNullOrEmpty(view.Datacenter))
        {
            return new ConsulRouteConversion { Error = "the view has no trust domain or no datacenter" };
        }

        var routes = new List<Route>();
        try
        {
            foreach (ConsulServiceView service in view.Services.Values)
            {
                AddService(view, service, options, routes, warnings);
            }

            bool servers = ServesServers(options, warnings);
            foreach ((string dc, ImmutableArray<CatalogServiceInstance> gateways) in view.RemoteGateways)
            {
                if (string.Equals(dc, view.Datacenter, StringComparison.Ordinal) || gateways.IsDefaultOrEmpty)
                {
                    continue;
                }

                if (servers)
                {
                    AddRemoteServers(view, dc, gateways, options, routes, warnings);
                }

                string name;
                string wildcard;
                try
                {
                    name = ConsulSniName.ForGateway(dc, null, view.TrustDomain).ToString();
                    wildcard = ConsulSniName.RemoteGatewayWildcard(dc, null, view.TrustDomain);
                }
                catch (ArgumentException ex)
                {
                    warnings.Add($"Datacenter '{dc}' was left out: its name cannot form a gateway SNI name ({ex.Message}).");
                    continue;
                }

                AddGatewayRoutes(routes, wildcard, RemoteGatewayCluster(name, gateways, options, warnings));
            }

            if (servers)
            {
                AddLocalServers(view, options, routes, warnings);
            }

            AddPartitions(view, options, routes, warnings);

            if (extras?.ExportedServices is { } exportedServices)
            {
                AddExported(view, exportedServices, extras.Protocols, options, routes, warnings, terminated);
            }

            if (view.Peering is { PeerThroughMeshGateways: true } controlPlane)
            {
                AddPeeringControlPlane(view, controlPlane, options, routes, warnings);
            }

            if (extras?.ImportedPeerInstances is { Count: > 0 } imported)
            {
                AddImported(imported, options, routes, warnings);
            }

            var unique = new List<Route>(routes.Count);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (Route route in routes)
            {
                if (seen.Add(route.Pattern))
                {
                    unique.Add(route);
                }
                else
                {
                    warnings.Add($"The route '{route.Pattern}' (cluster '{route.Cluster.Name}') was left out: an earlier route has the same name (service names with dots make SNI names ambiguous).");
                }
            }

            return new ConsulRouteConversion { Table = RouteTable.Create(unique), Warnings = warnings.ToImmutable(), TerminatedExports = terminated.ToImmutable(), Peering = view.Peering, View = view };
        }
        catch (ArgumentException ex)
        {
            return new ConsulRouteConversion { Error = ex.Message, Warnings = warnings.ToImmutable() };
        }
    }

    private static void AddService(ConsulCatalogView view, ConsulServiceView service, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        if (service.Instances.IsDefaultOrEmpty)
        {
            return;
        }

        string unnamed;
        try
        {
            unnamed = ConsulSniName.ForService(service.Name, null, options.Partition, view.Datacenter, view.TrustDomain).ToString();
            _ = new Route(unnamed, new UpstreamCluster(unnamed, []));
        }
        catch (ArgumentException ex)
        {
            warnings.Add($"Service '{service.Name}' was left out: its name cannot form an SNI route ({ex.Message}).");
            return;
        }

        ConsulResolverView? resolver = service.Resolver;
        TimeSpan timeout = resolver?.ConnectTimeout is { } t && t > TimeSpan.Zero ? t : options.ConnectTimeout;
        IEnumerable<UpstreamEndpoint> unnamedEndpoints = ToEndpoints(unnamed, service.Instances, wan: false, onlyPassing: false, warnings);
        if (resolver is not null)
        {
            bool defaultFound = resolver.DefaultSubset is null or "";
            foreach ((string subsetName, ConsulSubsetView subset) in resolver.Subsets)
            {
                bool isDefault = string.Equals(subsetName, resolver.DefaultSubset, StringComparison.Ordinal);
                defaultFound |= isDefault;
                if (!ConsulSubsetFilter.TryParse(subset.Filter, out ConsulSubsetFilter? filter, out string? error))
                {
                    warnings.Add($"Subset '{subsetName}' of service '{service.Name}' was left out: {ConsulSubsetFilter.Describe(subset.Filter, error)}."
                        + (isDefault ? " It is the DefaultSubset, so the service's own route has no endpoints until the filter is fixed." : string.Empty));
                    if (isDefault)
                    {
                        unnamedEndpoints = [];
                    }

                    continue;
                }

                string name;
                try
                {
                    name = ConsulSniName.ForService(service.Name, null, options.Partition, view.Datacenter, view.TrustDomain, subsetName).ToString();
                    _ = new Route(name, new UpstreamCluster(name, []));
                }
                catch (ArgumentException ex)
                {
                    warnings.Add($"Subset '{subsetName}' of service '{service.Name}' was left out: the name cannot form an SNI route ({ex.Message}).");
                    continue;
                }

                CatalogServiceInstance[] selected = [.. service.Instances.Where(filter.Matches)];
                UpstreamEndpoint[] endpoints = [.. ToEndpoints(name, selected, wan: false, subset.OnlyPassing, warnings)];
                routes.Add(new Route(name, new UpstreamCluster(name, endpoints) { ConnectTimeout = timeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection }));
                if (isDefault)
                {
                    unnamedEndpoints = ToEndpoints(unnamed, selected, wan: false, subset.OnlyPassing, warnings: null);
                }
            }

            if (!defaultFound)
            {
                warnings.Add($"The service-resolver of '{service.Name}' names DefaultSubset '{resolver.DefaultSubset}', which is not one of its subsets; the service's own route uses every instance.");
            }
        }

        routes.Add(new Route(unnamed, new UpstreamCluster(unnamed, unnamedEndpoints) { ConnectTimeout = timeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection }));
    }

    /// <summary>
    /// Enterprise: every other partition of the local datacenter with gateways gets <c>*.&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c>
    /// and the exact <c>&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c> (forms 6; the default partition's are form 5,
    /// <c>*.&lt;dc&gt;.internal.&lt;TD&gt;</c>) to its gateways at their WAN best address. Never the gateway's own partition.
    /// </summary>
    private static void AddPartitions(ConsulCatalogView view, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        string own = string.IsNullOrEmpty(options.Partition) ? "default" : options.Partition.ToLowerInvariant();
        foreach ((string partition, ImmutableArray<CatalogServiceInstance> gateways) in view.PartitionGateways)
        {
            if (string.Equals(partition, own, StringComparison.OrdinalIgnoreCase) || gateways.IsDefaultOrEmpty)
            {
                continue;
            }

            string name;
            string wildcard;
            try
            {
                name = ConsulSniName.ForGateway(view.Datacenter, partition, view.TrustDomain).ToString();
                wildcard = ConsulSniName.RemoteGatewayWildcard(view.Datacenter, partition, view.TrustDomain);
            }
            catch (ArgumentException ex)
            {
                warnings.Add($"Partition '{partition}' was left out: its name cannot form a gateway SNI name ({ex.Message}).");
                continue;
            }

            AddGatewayRoutes(routes, wildcard, RemoteGatewayCluster(name, gateways, options, warnings));
        }
    }

    /// <summary>Whether the WAN-federation server routes are built (default partition only, as in Consul; else a warning).</summary>
    private static bool ServesServers(ConsulRouteTableOptions options, ImmutableArray<string>.Builder warnings)
    {
        if (!options.WanFederation)
        {
            return false;
        }

        if (!string.IsNullOrEmpty(options.Partition) && !string.Equals(options.Partition, "default", StringComparison.OrdinalIgnoreCase))
        {
            warnings.Add($"WAN federation was left out: it works only in the default partition (the gateway serves partition '{options.Partition}').");
            return false;
        }

        return true;
    }

    /// <summary>Another datacenter's servers through its gateways (Consul's clusters.go/listeners.go for a gateway with the federation meta).</summary>
    private static void AddRemoteServers(ConsulCatalogView view, string dc, ImmutableArray<CatalogServiceInstance> gateways, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        string name;
        string wildcard;
        try
        {
            name = ConsulSniName.ForWanFederationServers(dc, view.DnsDomain).ToString();
            wildcard = ConsulSniName.WanFederationServerWildcard(dc, view.DnsDomain);
        }
        catch (ArgumentException ex)
        {
            warnings.Add($"The server routes of datacenter '{dc}' were left out: its name cannot form a server name ({ex.Message}).");
            return;
        }

        AddGatewayRoutes(routes, wildcard, RemoteGatewayCluster(name, gateways, options, warnings, options.ServerIdleTimeout));
    }

    /// <summary>The local servers: each by node name, and all of them by the bare <c>server.&lt;dc&gt;.&lt;domain&gt;</c>.</summary>
    private static void AddLocalServers(ConsulCatalogView view, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        if (view.LocalServers.IsDefaultOrEmpty)
        {
            return;
        }

        string all = ConsulSniName.ForWanFederationServers(view.Datacenter, view.DnsDomain).ToString();
        foreach (CatalogServiceInstance server in view.LocalServers)
        {
            string name;
            try
            {
                name = ConsulSniName.ForWanFederationServer(server.Node.Name, view.Datacenter, view.DnsDomain).ToString();
                _ = new Route(name, new UpstreamCluster(name, []));
            }
            catch (ArgumentException ex)
            {
                warnings.Add($"Server '{server.Node.Name}' was left out: its node name cannot form a server name ({ex.Message}).");
                continue;
            }

            routes.Add(new Route(name, ServerCluster(name, ToEndpoints(name, [server], wan: false, onlyPassing: false, warnings), options)));
        }

        // The bare name (a secondary's first join through primary_gateways, and any server): every local server.
        routes.Add(new Route(all, ServerCluster(all, ToEndpoints(all, view.LocalServers, wan: false, onlyPassing: false, warnings: null), options)));
    }

    /// <summary>A cluster of another datacenter's, partition's or peer's gateways: WAN addresses, remote keepalive.</summary>
    private static UpstreamCluster RemoteGatewayCluster(string name, ImmutableArray<CatalogServiceInstance> gateways, ConsulRouteTableOptions options, ImmutableArray<string>.Builder warnings, TimeSpan? idleTimeout = null) =>
        new(name, ToEndpoints(name, gateways, wan: true, onlyPassing: false, warnings))
        {
            ConnectTimeout = options.ConnectTimeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection,
            TcpKeepAlive = options.RemoteGatewayTcpKeepAlive, IdleTimeout = idleTimeout,
        };

    /// <summary>The wildcard chain and the exact cluster name (Envoy's default <c>sni_cluster</c> chain) to one cluster.</summary>
    private static void AddGatewayRoutes(List<Route> routes, string wildcard, UpstreamCluster cluster)
    {
        routes.Add(new Route(wildcard, cluster));
        routes.Add(new Route(cluster.Name, cluster));
    }

    private static UpstreamCluster ServerCluster(string name, IEnumerable<UpstreamEndpoint> endpoints, ConsulRouteTableOptions options) =>
        new(name, endpoints) { ConnectTimeout = options.ConnectTimeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection, IdleTimeout = options.ServerIdleTimeout };

    private static void AddExported(ConsulCatalogView view, ConsulExportedServices exported, IReadOnlyDictionary<string, string> protocols, ConsulRouteTableOptions options,
        List<Route> routes, ImmutableArray<string>.Builder warnings, ImmutableArray<ConsulTerminatedExport>.Builder terminated)
    {
        var needTermination = new SortedDictionary<string, (string Protocol, SortedSet<string> Peers)>(StringComparer.Ordinal);
        // The entry's name is its partition (docs/consul-behaviour.md §8.4); "" and "default" are the default partition.
        string? partition = string.IsNullOrEmpty(exported.Partition) ? exported.Name : exported.Partition;
        foreach (ConsulExportedService entry in exported.Services ?? [])
        {
            if (string.IsNullOrEmpty(entry.Name))
            {
                warnings.Add("An exported-services entry without a Name was ignored.");
                continue;
            }

            IEnumerable<ConsulServiceView> targets = entry.Name == "*"
                ? view.Services.Values
                : view.Services.TryGetValue(entry.Name, out ConsulServiceView? one) ? [one] : [];
            if (entry.Name != "*" && !view.Services.ContainsKey(entry.Name))
            {
                warnings.Add($"Exported service '{entry.Name}' has no Connect-capable instance here, so no peer route was built for it.");
                continue;
            }

            foreach (ConsulExportedServiceConsumer consumer in entry.Consumers ?? [])
            {
                string? peer = string.IsNullOrEmpty(consumer.Peer) ? consumer.PeerName : consumer.Peer;
                if (string.IsNullOrEmpty(peer))
                {
                    if (!string.IsNullOrEmpty(consumer.SamenessGroup))
                    {
                        warnings.Add($"Exported service '{entry.Name}': sameness group '{consumer.SamenessGroup}' consumers are not resolved to peers; no routes were built for them.");
                    }

                    continue;
                }

                foreach (ConsulServiceView service in targets)
                {
                    string name;
                    try
                    {
                        name = ConsulSniName.ForPeeredService(service.Name, entry.Namespace, partition, peer, view.TrustDomain).ToString();
                        _ = new Route(name, new UpstreamCluster(name, []));
                    }
                    catch (ArgumentException ex)
                    {
                        warnings.Add($"Exported service '{service.Name}' for peer '{peer}' was left out: the name cannot form an SNI route ({ex.Message}).");
                        continue;
                    }

                    // Consul's cluster is exported~<local target cluster>: the service's own (unnamed) endpoints.
                    string local = ConsulSniName.ForService(service.Name, entry.Namespace, partition, view.Datacenter, view.TrustDomain).ToString();
                    string protocol = protocols.TryGetValue(service.Name, out string? p) && !string.IsNullOrEmpty(p) ? p.ToLowerInvariant() : "tcp";
                    if (protocol is "http" or "http2" or "grpc")
                    {
                        // agent/xds/listeners.go makeMeshGatewayPeerFilterChain: HTTP-like exports are terminated with the gateway's
                        // leaf (IsProtocolHTTPLike), and without a leaf no filter chain is built at all ("not ready").
                        terminated.Add(new ConsulTerminatedExport
                        {
                            Service = service.Name, Namespace = OrDefault(entry.Namespace), Partition = OrDefault(partition), Peer = peer, Sni = name,
                            Protocol = protocol, LocalCluster = local, Routed = options.PeeringHttpTerminator is not null || options.PeeringTerminator is not null,
                        });
                        if (options.PeeringTerminator is { } inProcess)
                        {
                            routes.Add(new Route(name, new UpstreamCluster("terminated~" + local, [])) { Terminator = inProcess });
                        }
                        else if (options.PeeringHttpTerminator is { } terminator)
                        {
                            routes.Add(new Route(name, new UpstreamCluster("terminated~" + local, [new UpstreamEndpoint(terminator)])
                            {
                                ConnectTimeout = options.ConnectTimeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection,
                            }));
                        }
                        else
                        {
                            if (!needTermination.TryGetValue(service.Name, out var pending))
                            {
                                needTermination[service.Name] = pending = (protocol, new SortedSet<string>(StringComparer.Ordinal));
                            }

                            pending.Peers.Add(peer);
                        }

                        continue;
                    }

                    string cluster = "exported~" + local;
                    routes.Add(new Route(name, new UpstreamCluster(cluster, ToEndpoints(cluster, service.Instances, wan: false, onlyPassing: false, warnings))
                    {
                        ConnectTimeout = service.Resolver?.ConnectTimeout is { } t && t > TimeSpan.Zero ? t : options.ConnectTimeout,
                        MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection,
                    }));
                }
            }
        }

        foreach ((string service, (string protocol, SortedSet<string> peers)) in needTermination)
        {
            warnings.Add($"Exported service '{service}' (protocol {protocol}) needs HTTP termination, which is not configured: Consul's gateway terminates peers' mTLS for HTTP-like services instead of passing it through, so peer(s) {string.Join(", ", peers.Select(p => "'" + p + "'"))} get no route to it. Set ConsulRouteTableOptions.PeeringTerminator or PeeringHttpTerminator (an L7 terminator; hosted: AddMeshGatewayPeering from MeshGateway.Peering), or make the service tcp.");
        }
    }

    private static void AddImported(IReadOnlyList<CatalogServiceInstance> imported, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        var bySni = new SortedDictionary<string, List<CatalogServiceInstance>>(StringComparer.OrdinalIgnoreCase);
        foreach (CatalogServiceInstance entry in imported)
        {
            string id = entry.Service.Id.Length == 0 ? "(no ID)" : entry.Service.Id;
            if (entry.Service.PeerSni is not { Count: > 0 } sni || string.IsNullOrEmpty(sni[0]))
            {
                warnings.Add($"Imported instance '{id}' has no Service.Connect.PeerMeta.SNI, so it cannot be routed.");
                continue;
            }

            if (string.IsNullOrEmpty(entry.Service.PeerName))
            {
                warnings.Add($"Instance '{id}' carries PeerMeta but no PeerName; it was not treated as imported.");
                continue;
            }

            if (!bySni.TryGetValue(sni[0], out List<CatalogServiceInstance>? list))
            {
                list = [];
                bySni.Add(sni[0], list);
            }

            list.Add(entry);
        }

        foreach ((string sni, List<CatalogServiceInstance> entries) in bySni)
        {
            // Consul dials PeerMeta.PrimarySNI() (SNI[0]); the instances are the exporter's gateways, reached over the WAN.
            ImmutableArray<CatalogServiceInstance> gateways = CatalogInstances.Sorted(entries, gatewaysOnly: false);
            try
            {
                routes.Add(new Route(sni, RemoteGatewayCluster(sni, gateways, options, warnings)));
            }
            catch (ArgumentException ex)
            {
                warnings.Add($"The peer SNI '{sni}' cannot be a route: {ex.Message}");
            }
        }
    }

    private static string OrDefault(string? value) => string.IsNullOrEmpty(value) ? "default" : value;

    /// <summary>
    /// Peering control plane through gateways (the <c>mesh</c> entry's <c>Peering.PeerThroughMeshGateways</c>; agent/xds/listeners.go
    /// "Peering control plane", clusters.go <c>makePeerServerClusters</c>, endpoints.go <c>makePeerServerEndpointsForMeshGateway</c>):
    /// <c>server.&lt;dc&gt;.peering.&lt;TD&gt;</c> (<c>connect.PeeringServerSAN</c>) to the local voting servers (not
    /// <c>read_replica</c>) at their LAN address and <c>Service.Meta.grpc_tls_port</c>; and, default partition only, each peering
    /// this side dials (<c>ShouldDial</c>) by its <c>PeerServerName</c> to its addresses (the newest peering per name; host names
    /// win over IPs, as <c>peerHostnamesAndIPs</c>).
    /// </summary>
    private static void AddPeeringControlPlane(ConsulCatalogView view, ConsulPeeringView peering, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
        var voters = peering.Servers.Where(s => !(s.Service.Meta.TryGetValue("read_replica", out string? replica) && replica == "true")).ToList();
        if (voters.Count > 0)
        {
            string name = ConsulSniName.ForPeeringServers(view.Datacenter, view.TrustDomain).ToString();
            var endpoints = new List<UpstreamEndpoint>();
            foreach (CatalogServiceInstance server in voters)
            {
                if (!server.Service.Meta.TryGetValue("grpc_tls_port", out string? text))
                {
                    warnings.Add($"Server '{server.Node.Name}' was left out of '{name}': peering goes through mesh gateways but it has no Service.Meta.grpc_tls_port (set ports.grpc_tls on the server).");
                    continue;
                }

                if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port is <= 0 or > IPEndPoint.MaxPort)
                {
                    warnings.Add($"Server '{server.Node.Name}' was left out of '{name}': its grpc_tls_port '{text}' is not a port.");
                    continue;
                }

                // Consul: srv.BestAddress(false) for the address, the meta for the port (endpoints.go).
                BestAddress best = BestAddress.Select(server, wan: false);
                (bool healthy, _) = server.HealthAndWeight(onlyPassing: false);
                try
                {
                    endpoints.Add(IPAddress.TryParse(best.Address, out IPAddress? ip)
                        ? new UpstreamEndpoint(new IPEndPoint(ip, port), 1, healthy)
                        : new UpstreamEndpoint(best.Address, port, 1, healthy));
                }
                catch (ArgumentException ex)
                {
                    warnings.Add($"Server '{server.Node.Name}' was left out of '{name}': {ex.Message}");
                }
            }

            routes.Add(new Route(name, ServerCluster(name, endpoints, options)));
        }

        if (!string.IsNullOrEmpty(options.Partition) && !string.Equals(options.Partition, "default", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var newest = new SortedDictionary<string, ConsulPeering>(StringComparer.Ordinal);
        foreach (ConsulPeering p in peering.Peerings)
        {
            if (p.ShouldDial && !string.IsNullOrEmpty(p.PeerServerName) && (!newest.TryGetValue(p.PeerServerName, out ConsulPeering? known) || p.ModifyIndex > known.ModifyIndex))
            {
                newest[p.PeerServerName] = p;
            }
        }

        foreach ((string serverName, ConsulPeering p) in newest)
        {
            var ips = new List<UpstreamEndpoint>();
            var hosts = new List<UpstreamEndpoint>();
            foreach (string address in p.AddressesToDial.Order(StringComparer.Ordinal))
            {
                int colon = address.LastIndexOf(':');
                if (colon <= 0 || !int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port is <= 0 or > IPEndPoint.MaxPort)
                {
                    warnings.Add($"Peer '{p.Name}': server address '{address}' is not host:port and was left out.");
                    continue;
                }

                string host = address[..colon].Trim('[', ']');
                try
                {
                    if (IPAddress.TryParse(host, out IPAddress? ip))
                    {
                        ips.Add(new UpstreamEndpoint(new IPEndPoint(ip, port)));
                    }
                    else
                    {
                        hosts.Add(new UpstreamEndpoint(host, port));
                    }
                }
                catch (ArgumentException ex)
                {
                    warnings.Add($"Peer '{p.Name}': server address '{address}' was left out: {ex.Message}");
                }
            }

            if (hosts.Count > 0 && ips.Count > 0)
            {
                warnings.Add($"Peer '{p.Name}' lists host names and IP addresses for its servers: only the host names are used, as in Consul.");
            }

            List<UpstreamEndpoint> endpoints = hosts.Count > 0 ? hosts : ips;
            if (endpoints.Count == 0)
            {
                continue;
            }

            try
            {
                routes.Add(new Route(serverName, new UpstreamCluster(serverName, endpoints)
                {
                    ConnectTimeout = options.ConnectTimeout, MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection,
                    IdleTimeout = options.ServerIdleTimeout, TcpKeepAlive = options.RemoteGatewayTcpKeepAlive,
                }));
            }
            catch (ArgumentException ex)
            {
                warnings.Add($"Peer '{p.Name}': its server name '{serverName}' cannot be a route: {ex.Message}");
            }
        }
    }

    private static UpstreamEndpoint[] ToEndpoints(string cluster, IEnumerable<CatalogServiceInstance> instances, bool wan, bool onlyPassing, ImmutableArray<string>.Builder? warnings)
    {
        var endpoints = new List<UpstreamEndpoint>();
        var hostNames = new List<UpstreamEndpoint>();
        foreach (CatalogServiceInstance instance in instances)
        {
            // The one best-address and the one health/weight routine of the model (docs/consul-behaviour.md §4 and §3).
            BestAddress best = BestAddress.Select(instance, wan);
            (bool healthy, int weight) = instance.HealthAndWeight(onlyPassing);
            if (best.Port is <= 0 or > IPEndPoint.MaxPort)
            {
                warnings?.Add($"Endpoint '{instance.Service.Id}' on node '{instance.Node.Name}' of '{cluster}' was left out: port {best.Port} is not dialable.");
                continue;
            }

            weight = Math.Clamp(weight, 1, UpstreamEndpoint.MaxWeight);
            if (IPAddress.TryParse(best.Address, out IPAddress? address))
            {
                endpoints.Add(new UpstreamEndpoint(new IPEndPoint(address, best.Port), weight, healthy));
                continue;
            }

            try
            {
                hostNames.Add(new UpstreamEndpoint(best.Address, best.Port, weight, healthy));
            }
            catch (ArgumentException ex)
            {
                warnings?.Add($"Endpoint '{instance.Service.Id}' on node '{instance.Node.Name}' of '{cluster}' was left out: {ex.Message}");
            }
        }

        return hostNames.Count == 0 ? [.. endpoints] : [HostNameEndpoint(cluster, hostNames, ipCount: endpoints.Count, warnings)];
    }

    /// <summary>
    /// Consul's DNS-cluster rule (docs/consul-behaviour.md §3, <c>makeGatewayCluster</c>): one host name, the first healthy one, else the
    /// last unhealthy one; IP instances beside host names are dropped with a warning.
    /// </summary>
    private static UpstreamEndpoint HostNameEndpoint(string cluster, List<UpstreamEndpoint> hostNames, int ipCount, ImmutableArray<string>.Builder? warnings)
    {
        UpstreamEndpoint chosen = hostNames.Find(static e => e.IsHealthy) ?? hostNames[^1];
        if (ipCount > 0)
        {
            warnings?.Add($"'{cluster}' mixes host names and IP addresses: only the host names are used, as in Consul ({ipCount} IP endpoints left out).");
        }

        int others = hostNames.Count(e => e.Key != chosen.Key);
        if (others > 0)
        {
            warnings?.Add($"'{cluster}' has several host-name endpoints: only '{chosen.Key}' is used, as in Consul ({others} others left out).");
        }

        return chosen;
    }
}
