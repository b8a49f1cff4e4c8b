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
    /// Limitation: HTTP-like services, which Consul's gateway terminates for peers, are passed through like TCP.
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
        var warnings = ImmutableArray.CreateBuilder<string>();
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
                AddExported(view, exportedServices, options, routes, warnings);
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

            return new ConsulRouteConversion { Table = RouteTable.Create(unique), Warnings = warnings.ToImmutable() };
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

    private static void AddExported(ConsulCatalogView view, ConsulExportedServices exported, ConsulRouteTableOptions options, List<Route> routes, ImmutableArray<string>.Builder warnings)
    {
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
                    string cluster = "exported~" + ConsulSniName.ForService(service.Name, entry.Namespace, partition, view.Datacenter, view.TrustDomain);
                    routes.Add(new Route(name, new UpstreamCluster(cluster, ToEndpoints(cluster, service.Instances, wan: false, onlyPassing: false, warnings))
                    {
                        ConnectTimeout = service.Resolver?.ConnectTimeout is { } t && t > TimeSpan.Zero ? t : options.ConnectTimeout,
                        MaxConnectAttempts = options.MaxConnectAttempts, OutlierDetection = options.OutlierDetection,
                    }));
                }
            }
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
