using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Peering;

/// <summary>
/// Everything the terminator needs at one moment: the gateway's leaf certificate, the local CA roots, the peers' trust
/// bundles and the HTTP-like services exported to peers with their flattened discovery chains. Immutable; replace it
/// as a whole with <see cref="PeeringTerminator.Update"/> (new handshakes and new requests see the new snapshot,
/// established connections keep theirs).
/// </summary>
/// <remarks>
/// Fed by the Consul side: the leaf from <c>/v1/agent/connect/ca/leaf/&lt;gateway service&gt;</c> (kind
/// <c>mesh-gateway</c>, needs <c>mesh:write</c>), the roots from <c>/v1/agent/connect/ca/roots</c>, the bundles from the
/// peering trust-bundle endpoint, the services from <c>exported-services</c> and each service's compiled discovery
/// chain (<c>/v1/discovery-chain/&lt;service&gt;</c>, flattened into <see cref="ExportedHttpService.Routes"/> and <see cref="ExportedHttpService.Targets"/>) with the healthy
/// sidecar instances of each chain target (docs/consul-behaviour.md §11).
/// </remarks>
public sealed record PeeringSnapshot
{
    /// <summary>The gateway's leaf certificate with its private key: the server certificate for peers and the client certificate towards local sidecars.</summary>
    public required X509Certificate2 Leaf { get; init; }

    /// <summary>Intermediate certificates sent with <see cref="Leaf"/> (none for Consul's built-in CA).</summary>
    public IReadOnlyList<X509Certificate2> LeafIntermediates { get; init; } = [];

    /// <summary>The local cluster's trust domain (<c>&lt;uuid&gt;.consul</c>): local sidecars must present a SPIFFE ID in it.</summary>
    public required string TrustDomain { get; init; }

    /// <summary>The local Connect CA roots: the only anchors for the sidecars' server certificates.</summary>
    public required IReadOnlyList<X509Certificate2> LocalRoots { get; init; }

    /// <summary>The trust bundle of each peer: the only anchors for that peer's client certificates.</summary>
    public required IReadOnlyList<PeerTrustBundle> TrustBundles { get; init; }

    /// <summary>The HTTP-like services exported to peers (TCP exports stay passthrough routes and are not listed here).</summary>
    public required IReadOnlyList<ExportedHttpService> Services { get; init; }
}

/// <summary>A peer's trust bundle: its trust domain and CA roots.</summary>
public sealed record PeerTrustBundle
{
    /// <summary>The local name of the peering (the <c>Peer</c> of <c>exported-services</c> consumers).</summary>
    public required string PeerName { get; init; }

    /// <summary>The peer's trust domain: its client certificates carry <c>spiffe://&lt;trust domain&gt;/...</c>.</summary>
    public required string TrustDomain { get; init; }

    /// <summary>The peer's CA roots.</summary>
    public required IReadOnlyList<X509Certificate2> Roots { get; init; }
}

/// <summary>One HTTP-like service exported to one or more peers, and where its requests go.</summary>
public sealed record ExportedHttpService
{
    /// <summary>The service name.</summary>
    public required string Name { get; init; }

    /// <summary>The namespace (<c>default</c> on Consul CE).</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>The admin partition (<c>default</c> on Consul CE).</summary>
    public string Partition { get; init; } = "default";

    /// <summary><c>http</c>, <c>http2</c> or <c>grpc</c> (from service-defaults / proxy-defaults); <c>http2</c> and <c>grpc</c> go to the sidecars over HTTP/2 only.</summary>
    public required string Protocol { get; init; }

    /// <summary>
    /// The peers the service is exported to, each with the exact server name (docs/consul-behaviour.md §2 form 8,
    /// <c>&lt;svc&gt;.&lt;ns&gt;.&lt;partition&gt;.&lt;peer&gt;.external.&lt;trust domain&gt;</c>) its connections arrive with.
    /// A client certificate is accepted when it chains to the trust bundle of any of these peers (one filter chain
    /// per service in Consul, whichever of its server names was sent).
    /// </summary>
    public required IReadOnlyList<ServiceConsumer> Consumers { get; init; }

    /// <summary>
    /// The HTTP routes in order (service-router routes, then the default route): the first whose match applies
    /// takes the request. A chain without a router has one rule without a match.
    /// </summary>
    public required IReadOnlyList<HttpRouteRule> Routes { get; init; }

    /// <summary>The chain's targets by <see cref="ChainTargetEndpoints.Id"/> (resolver subsets and redirects are targets of their own).</summary>
    public required IReadOnlyList<ChainTargetEndpoints> Targets { get; init; }
}

/// <summary>A peer a service is exported to, and the server name its connections use.</summary>
/// <param name="Peer">The peer name.</param>
/// <param name="ServerName">The form-8 SNI.</param>
public sealed record ServiceConsumer(string Peer, string ServerName);

/// <summary>One service-router route (or the default route) of a compiled chain, with its splits.</summary>
public sealed record HttpRouteRule
{
    /// <summary>When the rule applies; null matches every request (the default route).</summary>
    public HttpRouteMatch? Match { get; init; }

    /// <summary>
    /// Where matching requests go: one target (weight ignored) or a service-splitter's legs, chosen at random in
    /// proportion to their weights (Consul's weights are percentages with up to two decimals; legs of weight 0 are never chosen).
    /// </summary>
    public required IReadOnlyList<WeightedTarget> Splits { get; init; }

    /// <summary>The service-router <c>Destination.PrefixRewrite</c>: replaces the matched path prefix (or exact path); null keeps the path.</summary>
    public string? PrefixRewrite { get; init; }

    /// <summary>
    /// The service-router <c>Destination.RequestTimeout</c> (Envoy's route timeout): the longest a request may wait for
    /// its sidecar's complete response, retries included; past it the request is answered 504 (or, once the response has
    /// begun, reset). Null (Consul's 0): no timeout, unlike Envoy's default of 15 s (docs/peering.md, "Timeouts and retries").
    /// </summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>The service-router <c>Destination.NumRetries</c>: retries per request when a retry condition holds; 0 with a condition set means Envoy's default, 1.</summary>
    public int NumRetries { get; init; }

    /// <summary>The service-router <c>Destination.RetryOnConnectFailure</c>: retry (on the next sidecar) a request whose sidecar connection could not be made.</summary>
    public bool RetryOnConnectFailure { get; init; }

    /// <summary>The service-router <c>Destination.RetryOnStatusCodes</c>: retry a request the sidecar answered with one of these statuses.</summary>
    public IReadOnlyList<int> RetryOnStatusCodes { get; init; } = [];

    /// <summary>
    /// The service-router <c>Destination.RetryOn</c> (Consul 1.15+): Envoy's retry conditions, as its router reads them
    /// (a retry goes to the target's next sidecar, up to <see cref="NumRetries"/>): <c>5xx</c> (a 5xx answer, or none at
    /// all), <c>gateway-error</c> (502, 503 or 504, or none at all), <c>reset</c> (no answer: the connection failed or
    /// broke), <c>connect-failure</c>, <c>refused-stream</c> (HTTP/2 <c>REFUSED_STREAM</c>), <c>retriable-4xx</c> (409),
    /// <c>envoy-ratelimited</c> (the answer carries <c>x-envoy-ratelimited</c>), <c>retriable-status-codes</c> (as
    /// <see cref="RetryOnStatusCodes"/>), and the gRPC statuses in the answer's headers <c>cancelled</c>,
    /// <c>deadline-exceeded</c>, <c>internal</c>, <c>resource-exhausted</c>, <c>unavailable</c>. Any other value is refused
    /// when the snapshot is applied.
    /// </summary>
    public IReadOnlyList<string> RetryOn { get; init; } = [];

    /// <summary>
    /// The service-router <c>Destination.IdleTimeout</c> (Consul 1.15+; Envoy's route <c>idle_timeout</c>): a request
    /// whose bytes stop moving, both ways, for this long is ended: answered 408 when the sidecar's response has not
    /// begun, reset after. Null (Consul's 0): <see cref="PeeringTerminator.DefaultIdleTimeout"/>;
    /// <see cref="Timeout.InfiniteTimeSpan"/> (Consul's negative value): no limit at all.
    /// </summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary>The service-router <c>Destination.RequestHeaders</c> (Consul 1.9+): applied after the chosen leg's, so they win over them (Envoy's order).</summary>
    public HttpHeaderModifiers? RequestHeaders { get; init; }

    /// <summary>The service-router <c>Destination.ResponseHeaders</c> (Consul 1.9+): applied after the chosen leg's.</summary>
    public HttpHeaderModifiers? ResponseHeaders { get; init; }
}

/// <summary>
/// Consul's <c>HTTPHeaderModifiers</c> (service-router destinations and service-splitter legs, 1.9+), as Envoy applies
/// them: <see cref="Remove"/> first, then <see cref="Add"/> (another value besides those present) and <see cref="Set"/>
/// (replaces every value).
/// </summary>
public sealed record HttpHeaderModifiers
{
    /// <summary>Headers to append a value to (Envoy's <c>append: true</c>).</summary>
    public IReadOnlyDictionary<string, string> Add { get; init; } = new Dictionary<string, string>();

    /// <summary>Headers to set, replacing any value (Envoy's <c>append: false</c>).</summary>
    public IReadOnlyDictionary<string, string> Set { get; init; } = new Dictionary<string, string>();

    /// <summary>Headers to remove.</summary>
    public IReadOnlyList<string> Remove { get; init; } = [];
}

/// <summary>A service-router <c>Match.HTTP</c> (Consul's semantics, which are Envoy's route matching).</summary>
public sealed record HttpRouteMatch
{
    /// <summary>The path must equal this exactly.</summary>
    public string? PathExact { get; init; }

    /// <summary>The path must start with this (a plain string prefix: <c>/api</c> matches <c>/apis</c> too, as in Envoy).</summary>
    public string? PathPrefix { get; init; }

    /// <summary>The whole path must match this regular expression.</summary>
    public string? PathRegex { get; init; }

    /// <summary>Every header match must apply.</summary>
    public IReadOnlyList<HttpHeaderMatch> Headers { get; init; } = [];

    /// <summary>Every query-parameter match must apply.</summary>
    public IReadOnlyList<HttpQueryMatch> QueryParameters { get; init; } = [];

    /// <summary>When not empty, the request method must be one of these.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];
}

/// <summary>A service-router header match: exactly one of <see cref="Present"/>, <see cref="Exact"/>, <see cref="Prefix"/>, <see cref="Suffix"/>, <see cref="Regex"/>.</summary>
public sealed record HttpHeaderMatch
{
    /// <summary>The header name (case-insensitive).</summary>
    public required string Name { get; init; }

    /// <summary>The header must be present (any value).</summary>
    public bool Present { get; init; }

    /// <summary>The value must equal this.</summary>
    public string? Exact { get; init; }

    /// <summary>The value must start with this.</summary>
    public string? Prefix { get; init; }

    /// <summary>The value must end with this.</summary>
    public string? Suffix { get; init; }

    /// <summary>The whole value must match this regular expression.</summary>
    public string? Regex { get; init; }

    /// <summary>Inverts the result.</summary>
    public bool Invert { get; init; }
}

/// <summary>A service-router query-parameter match: <see cref="Present"/>, <see cref="Exact"/> or <see cref="Regex"/>.</summary>
public sealed record HttpQueryMatch
{
    /// <summary>The parameter name (case-sensitive).</summary>
    public required string Name { get; init; }

    /// <summary>The parameter must be present.</summary>
    public bool Present { get; init; }

    /// <summary>The value must equal this.</summary>
    public string? Exact { get; init; }

    /// <summary>The whole value must match this regular expression.</summary>
    public string? Regex { get; init; }
}

/// <summary>One leg of a split.</summary>
/// <param name="TargetId">A <see cref="ChainTargetEndpoints.Id"/> of the service.</param>
/// <param name="Weight">The share, as Consul gives it (percent).</param>
public sealed record WeightedTarget(string TargetId, double Weight)
{
    /// <summary>The service-splitter leg's <c>RequestHeaders</c> (Consul 1.9+), applied before the route's.</summary>
    public HttpHeaderModifiers? RequestHeaders { get; init; }

    /// <summary>The service-splitter leg's <c>ResponseHeaders</c> (Consul 1.9+), applied before the route's.</summary>
    public HttpHeaderModifiers? ResponseHeaders { get; init; }
}

/// <summary>A compiled chain target and its healthy sidecar instances (the public listeners of their Connect proxies).</summary>
public sealed record ChainTargetEndpoints
{
    /// <summary>The target id (Consul's <c>&lt;subset&gt;.&lt;svc&gt;.&lt;ns&gt;.&lt;partition&gt;.&lt;dc&gt;</c>).</summary>
    public required string Id { get; init; }

    /// <summary>The SPIFFE ID the sidecars must present (<c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/dc/&lt;dc&gt;/svc/&lt;service&gt;</c>; see <see cref="MeshGateway.Model.ConsulSpiffeId.ForService"/>).</summary>
    public required string SpiffeId { get; init; }

    /// <summary>The sidecar public listeners to forward to.</summary>
    public required IReadOnlyList<DnsEndPoint> Endpoints { get; init; }

    /// <summary>
    /// The server name (SNI) the gateway sends when it connects to these sidecars: the target's own SNI, as Consul's
    /// mesh gateway cluster for an exported HTTP service sets it (<c>[&lt;subset&gt;.]&lt;service&gt;.&lt;ns&gt;.&lt;dc&gt;.internal.&lt;td&gt;.consul</c>;
    /// see <see cref="MeshGateway.Model.ConsulSniName.ForService"/>). When null, the sidecar's address is sent. Never the
    /// request's <c>Host</c> header, so requests for any host share one pool of connections per sidecar.
    /// </summary>
    public string? ServerName { get; init; }

    /// <summary>
    /// The service-resolver's failover targets (ids of other targets of the service), in order: when this target has no
    /// sidecar, requests go to the first of them that has one, as Consul's Envoy clusters fail over when the primary
    /// has no healthy endpoint.
    /// </summary>
    public IReadOnlyList<string> FailoverTargetIds { get; init; } = [];
}
