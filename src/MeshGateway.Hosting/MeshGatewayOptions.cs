using MeshGateway.Routing;
using System.ComponentModel.DataAnnotations;
using MeshGateway.Consul;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>
/// Settings of the hosted mesh gateway, bound from the <c>MeshGateway</c> configuration section by default
/// (see <see cref="MeshGatewayServiceCollectionExtensions"/>). Every value is validated when the host starts; an
/// invalid value stops the start with a message naming the option and the value.
/// </summary>
/// <remarks>
/// <para>Listeners follow Consul's gateway bind rules (docs/consul-behaviour.md §6.1): the <c>default</c> listener on
/// <see cref="Address"/>:<see cref="Port"/> unless <see cref="NoDefaultBind"/>
/// (<c>envoy_gateway_no_default_bind</c>); the <c>lan</c> and <c>wan</c> tagged addresses when
/// <see cref="BindTaggedAddresses"/> (<c>envoy_gateway_bind_tagged_addresses</c>); and every entry of
/// <see cref="BindAddresses"/> (<c>envoy_gateway_bind_addresses</c>). The set is sorted by name and a later duplicate
/// of the same address and port is dropped, as Consul does.</para>
/// </remarks>
public sealed class MeshGatewayOptions
{
    /// <summary>The configuration section bound by default: <c>MeshGateway</c>.</summary>
    public const string DefaultSectionName = "MeshGateway";

    /// <summary>The IP address of the <c>default</c> listener (Consul's registration <c>Address</c>). Default <c>0.0.0.0</c>.</summary>
    [Required]
    public string Address { get; set; } = "0.0.0.0";

    /// <summary>The port of the <c>default</c> listener (Consul's registration <c>Port</c>); 0 picks a free port. Default 8443.</summary>
    [OptionRange("0", "65535")]
    public int Port { get; set; } = 8443;

    /// <summary>
    /// The gateway's LAN address <c>ip:port</c> (Consul tagged address <c>lan</c>); bound as the <c>lan</c> listener when
    /// <see cref="BindTaggedAddresses"/>. Default none: <see cref="Address"/>:<see cref="Port"/>.
    /// </summary>
    public string? LanAddress { get; set; }

    /// <summary>
    /// The gateway's WAN address <c>ip:port</c> (Consul tagged address <c>wan</c>, what other datacenters dial); bound as
    /// the <c>wan</c> listener when <see cref="BindTaggedAddresses"/>. Default none.
    /// </summary>
    public string? WanAddress { get; set; }

    /// <summary>Skip the <c>default</c> listener (Consul <c>envoy_gateway_no_default_bind</c>). Default <see langword="false"/>.</summary>
    public bool NoDefaultBind { get; set; }

    /// <summary>Add a listener per tagged address, <c>lan</c> and <c>wan</c> (Consul <c>envoy_gateway_bind_tagged_addresses</c>). Default <see langword="false"/>.</summary>
    public bool BindTaggedAddresses { get; set; }

    /// <summary>Extra named listeners, name → <c>ip:port</c> (Consul <c>envoy_gateway_bind_addresses</c>). Default empty.</summary>
    public IDictionary<string, string> BindAddresses { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The absolute deadline, from accept, for a complete ClientHello. Default 10 s; 1 ms to 10 min.</summary>
    [OptionRange("00:00:00.001", "00:10:00")]
    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The most bytes a ClientHello may take (record headers included). Default 16384 (client hellos are 0.2-2 KiB; the limit bounds what a peer can make a connection buffer); 512 to 131445 (the largest legal ClientHello, for clients such as OpenSSL with long ALPN or certificate-authority lists).</summary>
    [OptionRange("512", "131445")]
    public int MaxHelloSize { get; set; } = 16 * 1024;

    /// <summary>The default timeout of one upstream connect attempt (a route may override it). Default 5 s (Consul's <c>connect_timeout_ms</c> default); 1 ms to 5 min.</summary>
    [OptionRange("00:00:00.001", "00:05:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The default number of endpoints one connection may try when connects fail (a route may override it). Default 3; 1 to 16.</summary>
    [OptionRange("1", "16")]
    public int ConnectAttempts { get; set; } = 3;

    /// <summary>
    /// How often host-name endpoints (a cloud load balancer's DNS name as a gateway or service address) are resolved
    /// again in the background; a new name is resolved as soon as its routes are published. Default 10 s (the refresh
    /// rate Consul gives Envoy's DNS clusters); 1 s to 1 h.
    /// </summary>
    [OptionRange("00:00:01", "01:00:00")]
    public TimeSpan HostNameRefreshInterval { get; set; } = HostNameRefresherOptions.DefaultRefreshInterval;

    /// <summary>How long a spliced connection may carry no byte in either direction before it is closed. Default 1 h; 1 s to 7 days.</summary>
    [OptionRange("00:00:01", "7.00:00:00")]
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The longest a connection may last, idle or not. Default none (no limit); when set, 1 s to 365 days.</summary>
    public TimeSpan? MaxConnectionDuration { get; set; }

    /// <summary>
    /// Linux: the most kernel pipes open at once for moving bulk bytes with <c>splice(2)</c> instead of copying them
    /// through the process (HAProxy's <c>option splice-auto</c>; see <see cref="MeshGateway.Splicing.SpliceOptions.MaxKernelPipes"/>).
    /// A direction takes a pipe only for a burst of bulk data; each pipe is two descriptors, set aside from the
    /// connection limit. Default 0: off (bytes are copied); 0 to 100000. Ignored on other systems.
    /// </summary>
    [OptionRange("0", "100000")]
    public int SplicePipes { get; set; }

    /// <summary>
    /// The I/O engine: <c>Sockets</c> (.NET's sockets, any system; the default) or <c>EventLoop</c> (Linux x86-64/arm64:
    /// the gateway's own epoll loops over raw descriptors, fewer system calls and thread switches per connection; see
    /// <see cref="MeshGateway.Gateway.GatewayIoEngine"/>). Where the event loop cannot run (another system, or
    /// <see cref="SplicePipes"/> set) the sockets engine serves; the engine in use is logged at start.
    /// </summary>
    public MeshGateway.Gateway.GatewayIoEngine Engine { get; set; }

    /// <summary>Event-loop threads when <see cref="Engine"/> is <c>EventLoop</c> (see <see cref="MeshGateway.Gateway.GatewayListenerOptions.EventLoopThreads"/>). Default 1; 1 to 64.</summary>
    [OptionRange("1", "64")]
    public int EventLoopThreads { get; set; } = 1;

    /// <summary>
    /// How long an event loop sleeps after a turn in which a connection read a bulk amount (at least 16 KiB), so that
    /// the next turn moves several TLS records per socket at once (see
    /// <see cref="MeshGateway.Gateway.GatewayListenerOptions.EventLoopBulkPause"/>): less CPU per GiB relayed. Default
    /// 100 µs (<c>00:00:00.0001</c>); 0 turns it off; at most 1 ms. Only with <see cref="Engine"/> <c>EventLoop</c>.
    /// </summary>
    [OptionRange("00:00:00", "00:00:00.001")]
    public TimeSpan EventLoopBulkPause { get; set; } = MeshGateway.Gateway.GatewayListenerOptions.DefaultEventLoopBulkPause;

    /// <summary>
    /// The most connections open at once; more are refused and counted. Default 50000; 1 to 10000000. Lowered at start
    /// to what the open-file limit holds: (<c>ulimit -n</c> − 128 − <c>Consul:MaxConnections</c> − listeners − 2 × <see cref="SplicePipes"/>) / 2
    /// (see <see cref="MeshGateway.Gateway.GatewayListenerOptions.MaxConnections"/>); the value in use is logged (event 13).
    /// </summary>
    [OptionRange("1", "10000000")]
    public int MaxConnections { get; set; } = 50_000;

    /// <summary>
    /// The most log lines per second for each kind of per-connection event that a flood can multiply: rejected
    /// connections (event 4), failed upstream connects (event 5) and failed accepts (event 6). Past it, events are only
    /// counted, and the next line let through is preceded by a summary of how many were left out (event 14). Metrics
    /// count every event. The access log (event 3) is not limited. Default 20; 0 to 1000000, 0 for no limit.
    /// </summary>
    [OptionRange("0", "1000000")]
    public int LogRateLimit { get; set; } = 20;

    /// <summary>
    /// Names of listeners (<c>default</c>, <c>lan</c>, <c>wan</c> or a <see cref="BindAddresses"/> name) behind a TCP load
    /// balancer that sends the PROXY protocol v2 header: every connection there must start with one, and its source
    /// address is the client address in the logs; a missing or malformed header is a counted rejection. A name that
    /// matches no listener fails the start. Default none.
    /// </summary>
    public IList<string> ProxyProtocolListeners { get; } = new List<string>();

    /// <summary>
    /// Whether routed connections start, toward the upstream, with a PROXY protocol v2 header carrying the client
    /// address. Only for upstreams that expect it. Default false.
    /// </summary>
    public bool SendProxyProtocol { get; set; }

    /// <summary>The listen backlog of each listener. Default 1024; 1 to 65535.</summary>
    [OptionRange("1", "65535")]
    public int ListenBacklog { get; set; } = 1024;

    /// <summary>
    /// On stop, how long the gateway keeps accepting after it deregistered from Consul, so peers that still dial it
    /// (remote gateways and sidecars learn of the deregistration through their own watches) are served rather than
    /// refused; then it stops accepting and drains for <see cref="DrainTimeout"/>. Applies only when a registration was
    /// removed (<c>UseConsulCatalog</c> with <c>Consul:Register</c>). Default 5 s (a few seconds, the usual pre-stop
    /// pause in front of Envoy and Consul proxies); 0 (stop accepting at once) to 5 min. Keep the host's
    /// <c>HostOptions.ShutdownTimeout</c> at least this plus <see cref="DrainTimeout"/>, or the drain is cut short.
    /// </summary>
    [OptionRange("00:00:00", "00:05:00")]
    public TimeSpan PropagationDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long open connections may finish after the gateway stops accepting; the rest are cut. The host's shutdown
    /// timeout (<c>HostOptions.ShutdownTimeout</c>, 30 s by default) bounds it as well. Default 25 s; 0 to 1 h.
    /// </summary>
    [OptionRange("00:00:00", "01:00:00")]
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// When endpoints are left out after failed connects, for every route (Consul, static and routes-file routes; a
    /// routes-file route may override it). Defaults are Envoy's outlier-detection defaults, see
    /// <see cref="MeshGatewayOutlierDetectionOptions"/>.
    /// </summary>
    [ValidateObjectMembers]
    public MeshGatewayOutlierDetectionOptions OutlierDetection { get; } = new();

    /// <summary>
    /// TCP keepalive on connections to remote gateways (other datacenters' and peers' mesh gateways, Consul routes only),
    /// as Consul configures Envoy from the gateway's <c>Proxy.Config</c>: <c>Enabled</c> is
    /// <c>envoy_gateway_remote_tcp_enable_keepalive</c>, <c>Time</c>/<c>Interval</c>/<c>Probes</c> are
    /// <c>envoy_gateway_remote_tcp_keepalive_time</c>/<c>_interval</c>/<c>_probes</c>. Written into the registration's
    /// <c>Proxy.Config</c> under those keys. Default off.
    /// </summary>
    [ValidateObjectMembers]
    public MeshGatewayTcpKeepaliveOptions RemoteTcpKeepalive { get; } = new();

    /// <summary>TCP keepalive on accepted client connections (every listener; Consul has no key for this side). Default off.</summary>
    [ValidateObjectMembers]
    public MeshGatewayTcpKeepaliveOptions ListenerTcpKeepalive { get; } = new();

    /// <summary>
    /// A routes file (see <c>RouteFileParser</c> for the format) used as the route source and reloaded when it
    /// changes; a bad file keeps the last good table. Default none. Cannot be combined with <see cref="Routes"/>.
    /// </summary>
    public string? RoutesFile { get; set; }

    /// <summary>Static routes from configuration (added to routes given in code). Default empty.</summary>
    [ValidateEnumeratedItems]
    public IList<MeshGatewayRouteOptions> Routes { get; } = new List<MeshGatewayRouteOptions>();

    /// <summary>
    /// The admin endpoint (readiness, Prometheus metrics, the route table as JSON), off unless
    /// <see cref="MeshGatewayAdminOptions.Bind"/> is set (configuration key <c>MeshGateway:Admin:Bind</c>).
    /// </summary>
    [ValidateObjectMembers]
    public MeshGatewayAdminOptions Admin { get; } = new();

    /// <summary>How to reach Consul and how to register the gateway (used by the Consul route source, <c>UseConsulCatalog</c>).</summary>
    [ValidateObjectMembers]
    public MeshGatewayConsulOptions Consul { get; } = new();
}

/// <summary>
/// Outlier detection (passive health checking of upstream endpoints) with Envoy's defaults: an endpoint whose connects
/// fail <see cref="ConsecutiveFailures"/> times in a row is ejected for <see cref="BaseEjectionTime"/> × the number of
/// ejections in a row (at most <see cref="MaxEjectionTime"/>), while at most <see cref="MaxEjectionPercent"/> of a
/// cluster (always at least one endpoint) is ejected; a successful connect resets the count. See <see cref="OutlierDetection"/>.
/// </summary>
public sealed class MeshGatewayOutlierDetectionOptions
{
    /// <summary>Failed or timed-out connects in a row that eject an endpoint (Envoy <c>consecutive_5xx</c>). Default 5; 1 to 1000.</summary>
    [OptionRange("1", "1000")]
    public int ConsecutiveFailures { get; set; } = Routing.OutlierDetection.DefaultConsecutiveFailures;

    /// <summary>The length of a first ejection; the n-th in a row lasts n times as long (Envoy <c>base_ejection_time</c>). Default 30 s; 0 (no ejection) to 1 h.</summary>
    [OptionRange("00:00:00", "01:00:00")]
    public TimeSpan BaseEjectionTime { get; set; } = Routing.OutlierDetection.DefaultBaseEjectionTime;

    /// <summary>The longest one ejection lasts (Envoy <c>max_ejection_time</c>). Default 300 s; 0 to 1 day.</summary>
    [OptionRange("00:00:00", "1.00:00:00")]
    public TimeSpan MaxEjectionTime { get; set; } = Routing.OutlierDetection.DefaultMaxEjectionTime;

    /// <summary>The largest share of a cluster ejected at once, in percent; one endpoint may always be ejected (Envoy <c>max_ejection_percent</c>). Default 10; 0 to 100.</summary>
    [OptionRange("0", "100")]
    public int MaxEjectionPercent { get; set; } = Routing.OutlierDetection.DefaultMaxEjectionPercent;

    /// <summary>Each whole interval spent outside an ejection takes one off the ejection multiplier (Envoy <c>interval</c>). Default 10 s; 1 ms to 1 h.</summary>
    [OptionRange("00:00:00.001", "01:00:00")]
    public TimeSpan Interval { get; set; } = Routing.OutlierDetection.DefaultInterval;

    /// <summary>The Core settings these options describe.</summary>
    /// <returns>The settings.</returns>
    public OutlierDetection ToOutlierDetection() => new()
    {
        ConsecutiveFailures = ConsecutiveFailures,
        BaseEjectionTime = BaseEjectionTime,
        MaxEjectionTime = MaxEjectionTime,
        MaxEjectionPercent = MaxEjectionPercent,
        Interval = Interval,
    };
}

/// <summary>TCP keepalive settings (see <see cref="TcpKeepAlive"/>); unset timings keep the operating system's (Linux: 7200 s, 75 s, 9 probes).</summary>
public sealed class MeshGatewayTcpKeepaliveOptions
{
    /// <summary>Turn keepalive on. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Seconds idle before the first probe (<c>TCP_KEEPIDLE</c>). Default none: the system's; 1 to 32767.</summary>
    [OptionRange("1", "32767")]
    public int? Time { get; set; }

    /// <summary>Seconds between probes (<c>TCP_KEEPINTVL</c>). Default none: the system's; 1 to 32767.</summary>
    [OptionRange("1", "32767")]
    public int? Interval { get; set; }

    /// <summary>Unanswered probes before the connection is dropped (<c>TCP_KEEPCNT</c>). Default none: the system's; 1 to 127.</summary>
    [OptionRange("1", "127")]
    public int? Probes { get; set; }

    /// <summary>The Core settings, or <see langword="null"/> when not <see cref="Enabled"/>.</summary>
    /// <returns>The settings.</returns>
    public TcpKeepAlive? ToTcpKeepAlive() => Enabled ? new TcpKeepAlive { Time = Time, Interval = Interval, Probes = Probes } : null;
}

/// <summary>One static route: a server name (or <c>*.suffix</c>) and its endpoints.</summary>
public sealed class MeshGatewayRouteOptions
{
    /// <summary>The SNI server name, or a wildcard <c>*.suffix</c>. Required.</summary>
    [Required]
    public string Sni { get; set; } = string.Empty;

    /// <summary>The endpoints, each <c>ip:port</c>. Default empty (connections are refused as having no endpoint).</summary>
    public IList<string> Endpoints { get; } = new List<string>();

    /// <summary>The cluster name. Default: <see cref="Sni"/>.</summary>
    public string? Cluster { get; set; }

    /// <summary>Overrides <see cref="MeshGatewayOptions.ConnectTimeout"/> for this route. Default none.</summary>
    public TimeSpan? ConnectTimeout { get; set; }

    /// <summary>Overrides <see cref="MeshGatewayOptions.ConnectAttempts"/> for this route. Default none.</summary>
    public int? ConnectAttempts { get; set; }
}

/// <summary>Consul settings: the agent, the ACL token, and the gateway's registration.</summary>
public sealed class MeshGatewayConsulOptions
{
    /// <summary>
    /// The local agent's address in any form <c>CONSUL_HTTP_ADDR</c> takes: <c>127.0.0.1:8500</c>, <c>http://…</c>,
    /// <c>https://…</c> or <c>unix:///path/to/consul.sock</c>. Default none: <c>CONSUL_HTTP_ADDR</c>, else
    /// <c>http://127.0.0.1:8500</c>. Credentials in the address (<c>user:pass@</c>) are rejected.
    /// </summary>
    public string? Address { get; set; }

    /// <summary>Use HTTPS for an address without a scheme (or <c>http://</c>). Default none: <c>CONSUL_HTTP_SSL</c>, else false.</summary>
    public bool? UseHttps { get; set; }

    /// <summary>
    /// The ACL token (sent as <c>X-Consul-Token</c>). Default none: <c>CONSUL_HTTP_TOKEN_FILE</c>, then
    /// <c>CONSUL_HTTP_TOKEN</c>, else the agent's default token. Cannot be combined with <see cref="TokenFile"/>.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>A file holding the ACL token (read at start, trimmed). Default none.</summary>
    public string? TokenFile { get; set; }

    /// <summary>A PEM file of CA certificates for an HTTPS agent. Default none: <c>CONSUL_CACERT</c>/<c>CONSUL_CAPATH</c>, else system trust.</summary>
    public string? CaFile { get; set; }

    /// <summary>A directory of PEM CA files. Default none: <c>CONSUL_CAPATH</c>.</summary>
    public string? CaPath { get; set; }

    /// <summary>
    /// The client certificate (PEM) for an agent with <c>verify_incoming = true</c>; needs <see cref="ClientKeyFile"/>.
    /// Default none: <c>CONSUL_CLIENT_CERT</c>.
    /// </summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The client certificate's private key (PEM). Default none: <c>CONSUL_CLIENT_KEY</c>.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>The TLS server name (SNI and certificate name check). Default none: <c>CONSUL_TLS_SERVER_NAME</c>, else the address's host.</summary>
    public string? TlsServerName { get; set; }

    /// <summary>
    /// Verify the agent's certificate. <see langword="false"/> is insecure and logged as a warning at start. Default none:
    /// <c>CONSUL_HTTP_SSL_VERIFY</c>, else <see langword="true"/>.
    /// </summary>
    public bool? VerifyServerCertificate { get; set; }

    /// <summary>
    /// The most connections to the agent at once (more requests queue). Default 8; 2 to 64. Keep it at most a quarter of the
    /// agent's <c>limits.http_max_conns_per_client</c> (200 by default).
    /// </summary>
    [OptionRange("2", "64")]
    public int MaxConnections { get; set; } = ConsulClientOptions.DefaultMaxConnections;

    /// <summary>The datacenter to watch and register in. Default none: the agent's own datacenter.</summary>
    public string? Datacenter { get; set; }

    /// <summary>
    /// Enterprise: the admin partition the gateway serves (sent as <c>?partition=</c>; a partition other than
    /// <c>default</c> gives local services the partition SNI forms). Default none: the <c>default</c> partition.
    /// </summary>
    public string? Partition { get; set; }

    /// <summary>
    /// How long start waits for the first complete routing table from Consul before it fails with a message naming what
    /// is missing. Default 60 s; 1 s to 10 min.
    /// </summary>
    [OptionRange("00:00:01", "00:10:00")]
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Register the gateway with the agent at start and deregister it at stop. Default <see langword="true"/>. When
    /// <see langword="false"/> (the gateway was registered by someone else, for example <c>consul services register</c>)
    /// and the agent has the service <see cref="ServiceId"/>, that registration decides what it decides for Envoy: the
    /// listeners (its <c>Address</c>/<c>Port</c>, tagged addresses and the <c>Proxy.Config</c> keys
    /// <c>envoy_gateway_no_default_bind</c>, <c>envoy_gateway_bind_tagged_addresses</c>, <c>envoy_gateway_bind_addresses</c>),
    /// <c>connect_timeout_ms</c> and <c>envoy_gateway_remote_tcp_*</c>, in place of the corresponding options; a value
    /// that cannot be decoded fails the start naming the key. Without such a service the options decide.
    /// </summary>
    public bool Register { get; set; } = true;

    /// <summary>
    /// Run <c>ConsulPreflight.RunAsync</c> at start (agent version, datacenter, Connect, trust domain, primary, token
    /// permissions) and log each finding: errors at level Error, the rest as warnings. Findings do not fail the start (many
    /// are "could not determine" probes); what really blocks the gateway fails the start on its own, with a specific error
    /// (no first routing table in <see cref="StartupTimeout"/>, unreachable agent, refused registration). Default <see langword="true"/>.
    /// </summary>
    public bool Preflight { get; set; } = true;

    /// <summary>
    /// WAN federation through mesh gateways (like <c>consul connect envoy -expose-servers</c>): registers the gateway with
    /// meta <c>consul-wan-federation = "1"</c> and serves the server routes that meta promises (other datacenters'
    /// <c>*.server.&lt;dc&gt;.&lt;domain&gt;</c> to their gateways, the local servers by node name and as
    /// <c>server.&lt;dc&gt;.&lt;domain&gt;</c>), with remote gateways also read from the replicated federation states. Setting
    /// that meta key to <c>"1"</c> under <see cref="Meta"/> turns this on too. Default partition only. Default <see langword="false"/>.
    /// </summary>
    public bool WanFederation { get; set; }

    /// <summary>
    /// The idle timeout of server routes in WAN-federation mode: servers pool their cross-datacenter connections and leave
    /// them idle between uses. Default 4 h.
    /// </summary>
    public TimeSpan ServerIdleTimeout { get; set; } = TimeSpan.FromHours(4);

    /// <summary>
    /// Cluster peering (Consul 1.13+): read the exported-services entry, the <c>mesh</c> entry, the peerings and the services
    /// imported from peers with each gateway poll, and serve them: exported services by their peer SNI names (TCP passthrough;
    /// HTTP-like services need <see cref="PeeringHttpTerminator"/>), peers' control plane through the gateway when the
    /// <c>mesh</c> entry sets <c>Peering.PeerThroughMeshGateways</c>, and outgoing routes to imported services for sidecars in
    /// <c>local</c> mode. Default none: auto-detect (an agent without peering, such as 1.8.7, is logged once as event 54 and not
    /// asked again); <see langword="true"/>: required (such an agent's answers are watch errors); <see langword="false"/>: off.
    /// Also decides whether the preflight checks <c>peering:read</c>.
    /// </summary>
    public bool? Peering { get; set; }

    /// <summary>
    /// Cluster peering: <c>ip:port</c> of an L7 terminator for HTTP-like exported services (<c>http</c>, <c>http2</c>, <c>grpc</c>),
    /// which Consul's gateway terminates rather than passes through. Their peer SNI names are routed there, still encrypted.
    /// Default none: those names get no route, and a warning (event 27) names each such service.
    /// </summary>
    public string? PeeringHttpTerminator { get; set; }

    /// <summary>Whether WAN federation is on, by <see cref="WanFederation"/> or by the meta key <c>consul-wan-federation = "1"</c>.</summary>
    internal bool WanFederationEnabled => WanFederation || (Meta.TryGetValue("consul-wan-federation", out string? value) && value == "1");

    /// <summary>The gateway's service name. Default <c>mesh-gateway</c>.</summary>
    [Required]
    public string ServiceName { get; set; } = "mesh-gateway";

    /// <summary>The gateway's service ID. Default: <see cref="ServiceName"/>.</summary>
    public string? ServiceId { get; set; }

    /// <summary>
    /// Service metadata. Keys starting with <c>consul-</c> are reserved by Consul except <c>consul-wan-federation</c>
    /// (docs/consul-behaviour.md §6). Default empty.
    /// </summary>
    public IDictionary<string, string> Meta { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>
/// The admin endpoint: a small HTTP/1.1 server on its own socket, apart from the data path. Paths: <c>/ready</c> (200 when
/// every listener is bound and the first routing table arrived, else 503 with the reason), <c>/stats/prometheus</c> and
/// <c>/metrics</c> (Prometheus text format 0.0.4 of the <c>MeshGateway</c> meter), <c>/routes</c> (the current route
/// table as JSON: each route, cluster and endpoint with health, weight, ejection state and counters). Only GET and HEAD.
/// </summary>
public sealed class MeshGatewayAdminOptions
{
    /// <summary>
    /// The admin endpoint's <c>ip:port</c> (port 0 picks a free port), for example <c>127.0.0.1:19000</c> (Envoy's
    /// admin port). Default none: no admin endpoint. Anything but a loopback address exposes the gateway's topology to
    /// the network and is logged as a warning at start.
    /// </summary>
    public string? Bind { get; set; }

    /// <summary>The most bytes a request's head (request line and headers) may take; larger gets 431. Default 8192; 1024 to 65536.</summary>
    [OptionRange("1024", "65536")]
    public int MaxRequestHeadSize { get; set; } = 8192;

    /// <summary>How long one request may take, from accept to the last byte of the answer. Default 5 s; 100 ms to 1 min.</summary>
    [OptionRange("00:00:00.100", "00:01:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The most admin connections served at once; more are closed at accept. Default 16; 1 to 1024.</summary>
    [OptionRange("1", "1024")]
    public int MaxConnections { get; set; } = 16;
}
