using System.Net;
using System.Net.Security;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace MeshGateway.Peering;

/// <summary>A validated <see cref="PeeringSnapshot"/> compiled for the data path: SNI lookup, TLS contexts, route rules, sidecar targets.</summary>
internal sealed class PeeringState
{
    private readonly Dictionary<string, ServiceState> _bySni = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _trustDomains = new(StringComparer.OrdinalIgnoreCase);

    public PeeringState(PeeringSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(snapshot.Leaf);
        if (!snapshot.Leaf.HasPrivateKey)
        {
            throw new ArgumentException("PeeringSnapshot.Leaf has no private key: the gateway's leaf certificate must come with its key.", nameof(snapshot));
        }

        ArgumentException.ThrowIfNullOrEmpty(snapshot.TrustDomain, nameof(snapshot));
        if (snapshot.LocalRoots is null || snapshot.LocalRoots.Count == 0)
        {
            throw new ArgumentException("PeeringSnapshot.LocalRoots is empty: the sidecars' certificates could not be validated.", nameof(snapshot));
        }

        Snapshot = snapshot;
        ServerCertificate = SslStreamCertificateContext.Create(snapshot.Leaf, new System.Security.Cryptography.X509Certificates.X509Certificate2Collection(snapshot.LeafIntermediates.ToArray()), offline: true);
        PeerCertificates.ReadSubjectAltNames(snapshot.Leaf, out List<string> leafUris, out _);
        LeafUris = leafUris;

        var bundles = new Dictionary<string, PeerTrustBundle>(StringComparer.Ordinal);
        foreach (PeerTrustBundle bundle in snapshot.TrustBundles ?? [])
        {
            ArgumentNullException.ThrowIfNull(bundle, nameof(snapshot));
            ArgumentException.ThrowIfNullOrEmpty(bundle.PeerName, nameof(snapshot));
            ArgumentException.ThrowIfNullOrEmpty(bundle.TrustDomain, nameof(snapshot));
            if (bundle.Roots is null || bundle.Roots.Count == 0)
            {
                throw new ArgumentException($"The trust bundle of peer '{bundle.PeerName}' has no root certificate.", nameof(snapshot));
            }

            if (!bundles.TryAdd(bundle.PeerName, bundle))
            {
                throw new ArgumentException($"Peer '{bundle.PeerName}' has two trust bundles.", nameof(snapshot));
            }

            _trustDomains.Add(bundle.TrustDomain);
        }

        var targets = new Dictionary<string, SidecarTarget>(StringComparer.Ordinal);
        foreach (ExportedHttpService service in snapshot.Services ?? [])
        {
            var compiled = new ServiceState(service, bundles, targets);
            foreach (ServiceConsumer consumer in service.Consumers)
            {
                if (!_bySni.TryAdd(consumer.ServerName, compiled))
                {
                    throw new ArgumentException($"The server name '{consumer.ServerName}' is used by two exported services.", nameof(snapshot));
                }
            }
        }

        Targets = targets;
    }

    public PeeringSnapshot Snapshot { get; }

    /// <summary>The server certificate context of <see cref="PeeringSnapshot.Leaf"/>, built once per snapshot.</summary>
    public SslStreamCertificateContext ServerCertificate { get; }

    /// <summary>The URI SANs of the gateway's leaf (XFCC <c>By</c>).</summary>
    public IReadOnlyList<string> LeafUris { get; }

    /// <summary>Every chain target of every exported service, by cluster id (<c>partition/namespace/service/target</c>).</summary>
    public IReadOnlyDictionary<string, SidecarTarget> Targets { get; }

    public IEnumerable<string> ServerNames => _bySni.Keys;

    public bool TryGetService(string serverName, out ServiceState? service) => _bySni.TryGetValue(serverName, out service);

    public bool IsKnownTrustDomain(string trustDomain) => _trustDomains.Contains(trustDomain);
}

/// <summary>One exported service compiled: the bundles of its consumer peers and its route rules.</summary>
internal sealed class ServiceState
{
    private readonly CompiledRule[] _rules;

    public ServiceState(ExportedHttpService service, Dictionary<string, PeerTrustBundle> bundles, Dictionary<string, SidecarTarget> all)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentException.ThrowIfNullOrEmpty(service.Name);
        Service = service;
        Version? version = service.Protocol switch
        {
            "http" => HttpVersion.Version11,
            "http2" or "grpc" => HttpVersion.Version20,
            _ => throw new ArgumentException($"Exported service '{service.Name}' has protocol '{service.Protocol}'; only http, http2 and grpc are terminated (tcp stays a passthrough route)."),
        };

        if (service.Consumers is null || service.Consumers.Count == 0)
        {
            throw new ArgumentException($"Exported service '{service.Name}' has no consumer peer.");
        }

        var own = new List<PeerTrustBundle>();
        foreach (ServiceConsumer consumer in service.Consumers)
        {
            ArgumentException.ThrowIfNullOrEmpty(consumer.ServerName);
            if (bundles.TryGetValue(consumer.Peer, out PeerTrustBundle? bundle))
            {
                own.Add(bundle);
            }

            // A consumer without a bundle yet accepts no client: its handshakes are refused (unknown trust domain).
        }

        Bundles = own;
        string key = service.Partition + "/" + service.Namespace + "/" + service.Name;
        var targets = new Dictionary<string, SidecarTarget>(StringComparer.Ordinal);
        // http: HTTP/1.1 as Envoy's default upstream codec; http2/grpc: HTTP/2 only (gRPC needs it).
        var requestConfig = new ForwarderRequestConfig
        {
            // Envoy's stream idle timeout (5 minutes, which Consul leaves as it is), not YARP's 100 s: a quiet stream such
            // as a gRPC watch lives as long as through Consul's gateway. A route's IdleTimeout replaces it per request.
            ActivityTimeout = PeeringTerminator.DefaultIdleTimeout,
            Version = version,
            VersionPolicy = version == HttpVersion.Version20 ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower,
        };
        foreach (ChainTargetEndpoints target in service.Targets ?? [])
        {
            ArgumentException.ThrowIfNullOrEmpty(target.Id);
            ArgumentException.ThrowIfNullOrEmpty(target.SpiffeId);
            var destinations = new SidecarDestination[target.Endpoints.Count];
            for (int i = 0; i < destinations.Length; i++)
            {
                DnsEndPoint endpoint = target.Endpoints[i];
                string host = IPAddress.TryParse(endpoint.Host, out IPAddress? ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "[" + endpoint.Host + "]" : endpoint.Host;
                destinations[i] = new SidecarDestination(host + ":" + endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), http2: version == HttpVersion.Version20);
            }

            var compiled = new SidecarTarget(key + "/" + target.Id, target.SpiffeId, string.IsNullOrEmpty(target.ServerName) ? null : target.ServerName, destinations, requestConfig);
            if (!targets.TryAdd(target.Id, compiled))
            {
                throw new ArgumentException($"Exported service '{service.Name}' lists target '{target.Id}' twice.");
            }

            all[compiled.ClusterId] = compiled;
        }

        foreach (ChainTargetEndpoints target in service.Targets ?? [])
        {
            var failover = new List<SidecarTarget>();
            foreach (string id in target.FailoverTargetIds ?? [])
            {
                if (!targets.TryGetValue(id, out SidecarTarget? next) || id == target.Id)
                {
                    throw new ArgumentException($"Target '{target.Id}' of exported service '{service.Name}' fails over to '{id}', which is {(id == target.Id ? "itself" : "not among its targets")}.");
                }

                failover.Add(next);
            }

            targets[target.Id].Failover = [.. failover];
        }

        if (service.Routes is null || service.Routes.Count == 0)
        {
            throw new ArgumentException($"Exported service '{service.Name}' has no route (a chain without a router has one rule without a match).");
        }

        _rules = new CompiledRule[service.Routes.Count];
        for (int r = 0; r < service.Routes.Count; r++)
        {
            HttpRouteRule rule = service.Routes[r];
            if (rule.Splits is null || rule.Splits.Count == 0)
            {
                throw new ArgumentException($"Route {r} of exported service '{service.Name}' has no target.");
            }

            var legs = new (SidecarTarget Target, double Cumulative, WeightedTarget Split)[rule.Splits.Count];
            double total = 0;
            for (int l = 0; l < rule.Splits.Count; l++)
            {
                WeightedTarget split = rule.Splits[l];
                if (!targets.TryGetValue(split.TargetId, out SidecarTarget? leg))
                {
                    throw new ArgumentException($"Route {r} of exported service '{service.Name}' names target '{split.TargetId}', which is not among its targets.");
                }

                if (split.Weight < 0 || double.IsNaN(split.Weight))
                {
                    throw new ArgumentException($"Route {r} of exported service '{service.Name}' gives target '{split.TargetId}' the weight {split.Weight}.");
                }

                total += rule.Splits.Count == 1 ? 1 : split.Weight;
                legs[l] = (leg, total, split);
                ValidateModifiers(split.RequestHeaders, split.ResponseHeaders, $"Leg {l} of route {r} of exported service '{service.Name}'");
            }

            if (total <= 0)
            {
                throw new ArgumentException($"Route {r} of exported service '{service.Name}' has splits whose weights are all 0.");
            }

            if (rule.RequestTimeout is { } timeout && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > int.MaxValue))
            {
                throw new ArgumentException($"Route {r} of exported service '{service.Name}' has the request timeout {timeout}: it must be positive (null for none) and at most {int.MaxValue} ms.");
            }

            if (rule.NumRetries < 0 || (rule.RetryOnStatusCodes ?? []).Any(code => code is < 100 or > 599))
            {
                throw new ArgumentException($"Route {r} of exported service '{service.Name}' has {rule.NumRetries} retries on statuses [{string.Join(", ", rule.RetryOnStatusCodes ?? [])}]: retries must not be negative and statuses must lie in 100-599.");
            }

            if (rule.IdleTimeout is { } idle && idle != Timeout.InfiniteTimeSpan && (idle <= TimeSpan.Zero || idle.TotalMilliseconds > int.MaxValue))
            {
                throw new ArgumentException($"Route {r} of exported service '{service.Name}' has the idle timeout {idle}: it must be positive and at most {int.MaxValue} ms (null for the default, Timeout.InfiniteTimeSpan for none).");
            }

            foreach (string condition in rule.RetryOn ?? throw new ArgumentException($"Route {r} of exported service '{service.Name}' has a null RetryOn (empty for none)."))
            {
                if (RetryConditions.Parse(condition) == RetryCondition.None)
                {
                    throw new ArgumentException($"Route {r} of exported service '{service.Name}' retries on '{condition}', which is none of {string.Join(", ", RetryConditions.Names)}.");
                }
            }

            ValidateModifiers(rule.RequestHeaders, rule.ResponseHeaders, $"Route {r} of exported service '{service.Name}'");
            _rules[r] = new CompiledRule(rule, legs, total);
        }
    }

    public ExportedHttpService Service { get; }

    /// <summary>Header modifiers must name real header tokens and carry values without line breaks (they reach the wire).</summary>
    private static void ValidateModifiers(HttpHeaderModifiers? request, HttpHeaderModifiers? response, string where)
    {
        foreach (HttpHeaderModifiers? modifiers in (ReadOnlySpan<HttpHeaderModifiers?>)[request, response])
        {
            if (modifiers is null)
            {
                continue;
            }

            if (modifiers.Add is null || modifiers.Set is null || modifiers.Remove is null)
            {
                throw new ArgumentException($"{where} has header modifiers with a null Add, Set or Remove (empty ones change nothing).");
            }

            foreach (string name in modifiers.Add.Keys.Concat(modifiers.Set.Keys).Concat(modifiers.Remove))
            {
                if (string.IsNullOrEmpty(name) || name.Any(c => c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c, StringComparison.Ordinal)))
                {
                    throw new ArgumentException($"{where} modifies the header '{name}', which is not a valid header name.");
                }
            }

            foreach (KeyValuePair<string, string> header in modifiers.Add.Concat(modifiers.Set))
            {
                if (header.Value is null || header.Value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
                {
                    throw new ArgumentException($"{where} gives the header '{header.Key}' a value with a line break (or none).");
                }
            }
        }
    }

    /// <summary>The trust bundles of the peers this service is exported to.</summary>
    public IReadOnlyList<PeerTrustBundle> Bundles { get; }

    /// <summary>The first rule matching the request, or null (Envoy answers 404 then).</summary>
    public CompiledRule? Match(HttpRequest request)
    {
        foreach (CompiledRule rule in _rules)
        {
            if (rule.Matches(request))
            {
                return rule;
            }
        }

        return null;
    }
}

/// <summary>A route rule with its regular expressions compiled and its legs' cumulative weights.</summary>
internal sealed class CompiledRule
{
    private readonly HttpRouteMatch? _match;
    private readonly Regex? _pathRegex;
    private readonly Regex?[] _headerRegex;
    private readonly Regex?[] _queryRegex;
    private readonly (SidecarTarget Target, double Cumulative, WeightedTarget Split)[] _legs;
    private readonly double _total;

    public CompiledRule(HttpRouteRule rule, (SidecarTarget Target, double Cumulative, WeightedTarget Split)[] legs, double total)
    {
        Rule = rule;
        _legs = legs;
        _total = total;
        _match = rule.Match;
        RetryOn = RetryConditions.Of(rule);
        HasPolicy = rule.RequestTimeout is not null || rule.IdleTimeout is not null || RetryOn != RetryCondition.None
            || rule.RequestHeaders is not null || rule.ResponseHeaders is not null || legs.Any(l => l.Split.RequestHeaders is not null || l.Split.ResponseHeaders is not null);
        _pathRegex = _match?.PathRegex is { } pathRegex ? Re2Pattern.CompileFullMatch(pathRegex, "PathRegex") : null;
        _headerRegex = [.. (_match?.Headers ?? []).Select(h => h.Regex is null ? null : Re2Pattern.CompileFullMatch(h.Regex, "header " + h.Name))];
        _queryRegex = [.. (_match?.QueryParameters ?? []).Select(q => q.Regex is null ? null : Re2Pattern.CompileFullMatch(q.Regex, "query parameter " + q.Name))];
    }

    public HttpRouteRule Rule { get; }

    /// <summary>The rule's retry conditions (<c>RetryOn</c>, <c>RetryOnConnectFailure</c>, <c>RetryOnStatusCodes</c>) together.</summary>
    public RetryCondition RetryOn { get; }

    /// <summary>Whether the rule has a timeout, a retry condition or header modifiers (the forwarding then takes the slower path that applies them).</summary>
    public bool HasPolicy { get; }

    /// <summary>How many retries a request may have when a retry condition holds: <c>NumRetries</c>, or Envoy's default of 1 when it is 0.</summary>
    public int Retries => Rule.NumRetries > 0 ? Rule.NumRetries : 1;

    /// <summary>Picks a leg in proportion to the weights; <paramref name="sample"/> is uniform in [0, 1).</summary>
    public SidecarTarget PickTarget(double sample, out WeightedTarget split)
    {
        double point = sample * _total;
        foreach ((SidecarTarget target, double cumulative, WeightedTarget leg) in _legs)
        {
            if (point < cumulative)
            {
                split = leg;
                return target;
            }
        }

        // Rounding at the top end: the last leg with a weight.
        for (int i = _legs.Length - 1; i > 0; i--)
        {
            if (_legs[i].Cumulative > _legs[i - 1].Cumulative)
            {
                split = _legs[i].Split;
                return _legs[i].Target;
            }
        }

        split = _legs[0].Split;
        return _legs[0].Target;
    }

    /// <summary>The path after the service-router <c>PrefixRewrite</c>, or the path unchanged.</summary>
    public string Rewrite(string path)
    {
        if (Rule.PrefixRewrite is not { } rewrite || _match is null)
        {
            return path;
        }

        if (_match.PathExact is not null)
        {
            return rewrite;
        }

        if (_match.PathPrefix is { } prefix)
        {
            return rewrite + path[prefix.Length..];
        }

        return path;
    }

    public bool Matches(HttpRequest request)
    {
        if (_match is null)
        {
            return true;
        }

        string path = request.Path.Value ?? "/";
        if (_match.PathExact is { } exact && !string.Equals(path, exact, StringComparison.Ordinal))
        {
            return false;
        }

        if (_match.PathPrefix is { } prefix && !path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        if (_pathRegex is not null && !_pathRegex.IsMatch(path))
        {
            return false;
        }

        if (_match.Methods.Count > 0 && !_match.Methods.Contains(request.Method, StringComparer.OrdinalIgnoreCase))
        {
            return false;
        }

        for (int i = 0; i < _match.Headers.Count; i++)
        {
            HttpHeaderMatch header = _match.Headers[i];
            bool present = request.Headers.TryGetValue(header.Name, out Microsoft.Extensions.Primitives.StringValues values);
            string value = values.ToString();
            bool ok = header switch
            {
                { Exact: { } e } => present && string.Equals(value, e, StringComparison.Ordinal),
                { Prefix: { } p } => present && value.StartsWith(p, StringComparison.Ordinal),
                { Suffix: { } s } => present && value.EndsWith(s, StringComparison.Ordinal),
                { Regex: not null } => present && _headerRegex[i]!.IsMatch(value),
                _ => present,
            };

            if (ok == header.Invert)
            {
                return false;
            }
        }

        for (int i = 0; i < _match.QueryParameters.Count; i++)
        {
            HttpQueryMatch query = _match.QueryParameters[i];
            bool present = request.Query.TryGetValue(query.Name, out Microsoft.Extensions.Primitives.StringValues values);
            string value = values.ToString();
            bool ok = query switch
            {
                { Exact: { } e } => present && string.Equals(value, e, StringComparison.Ordinal),
                { Regex: not null } => present && _queryRegex[i]!.IsMatch(value),
                _ => present,
            };

            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// One chain target: its sidecars' addresses, the SPIFFE ID their certificates must carry, the HTTP version towards
/// them, and the client that forwards to them (set by the terminator before the state is published).
/// </summary>
internal sealed class SidecarTarget(string clusterId, string spiffeId, string? serverName, SidecarDestination[] destinations, ForwarderRequestConfig requestConfig)
{
    private readonly SidecarDestination[] _destinations = destinations;
    private uint _next;

    /// <summary><c>partition/namespace/service/target</c>: names the target in logs and keys its client across snapshots.</summary>
    public string ClusterId { get; } = clusterId;

    public string SpiffeId { get; } = spiffeId;

    /// <summary>The SNI sent to this target's sidecars (<see cref="ChainTargetEndpoints.ServerName"/>); null for the sidecar's address.</summary>
    public string? ServerName { get; } = serverName;

    public ForwarderRequestConfig RequestConfig { get; } = requestConfig;

    /// <summary>The client towards this target's sidecars; a target with the same id and SPIFFE ID in the next snapshot keeps it (and its pooled connections).</summary>
    public HttpMessageInvoker Client { get; set; } = null!;

    /// <summary>The service-resolver's failover targets, in order (empty without failover).</summary>
    public SidecarTarget[] Failover { get; set; } = [];

    /// <summary>
    /// The target requests go to: this one while it has a sidecar, else the first failover target that has one (Consul's
    /// failover: only when the primary has no healthy instance), else this one (which answers 503).
    /// </summary>
    public SidecarTarget Serving()
    {
        if (_destinations.Length > 0)
        {
            return this;
        }

        foreach (SidecarTarget failover in Failover)
        {
            if (failover._destinations.Length > 0)
            {
                return failover;
            }
        }

        return this;
    }

    /// <summary>The next sidecar in turn (round robin, Envoy's default load-balancing policy), or null when the target has none.</summary>
    public SidecarDestination? NextDestination() => _destinations.Length switch
    {
        0 => null,
        1 => _destinations[0],
        _ => _destinations[(int)(Interlocked.Increment(ref _next) % (uint)_destinations.Length)],
    };
}

/// <summary>
/// One sidecar of a target: the address prefix requests are sent to and the request transformer for it, which sets
/// <c>X-Forwarded-Proto: https</c> and reuses the request URI while requests keep the same path and query.
/// </summary>
/// <remarks>
/// <para>Every connection to a sidecar is mTLS made by the terminator's connect callback
/// (<c>PeeringTerminator.ConnectSidecarAsync</c>) with the target's SNI, as Consul's gateway sends it whatever the
/// request's <c>Host</c>; <see cref="SocketsHttpHandler"/> on its own would send the <c>Host</c> header as the SNI. For
/// HTTP/1.1 targets the prefix YARP gets is <c>http://host:port</c> all the same: with <c>https</c> the handler keeps a
/// separate connection pool per <c>Host</c> value, so a peer choosing hosts would choose how many connections the gateway
/// opens to a sidecar (an HTTP/1.1 request line carries no scheme, so nothing else changes). HTTP/2 targets keep
/// <c>https</c>: HTTP/2 sends the scheme (<c>:scheme</c>), which must match the TLS connection; there the pool is per
/// <c>:authority</c> (one multiplexed connection each, closed when idle; docs/peering.md).</para>
/// <para>YARP builds (and parses) a new <see cref="Uri"/> per request when the transformer leaves
/// <see cref="HttpRequestMessage.RequestUri"/> unset: ~1.7 % of the gateway's CPU per request in a profile of the
/// benchmark (docs/benchmarks.md, issue 14). A <see cref="Uri"/> is immutable, so consecutive requests for the same
/// path and query share one; any other path builds a new one as YARP would.</para>
/// </remarks>
internal sealed class SidecarDestination
{
    /// <param name="authority"><c>host:port</c> (an IPv6 host in brackets).</param>
    /// <param name="http2">The target is served over HTTP/2.</param>
    public SidecarDestination(string authority, bool http2)
    {
        Address = "https://" + authority;
        Prefix = http2 ? Address : "http://" + authority;
        Transformer = new SidecarTransformer(Prefix);
    }

    /// <summary>YARP's destination prefix: <c>http://host:port</c> for HTTP/1.1, <c>https://host:port</c> for HTTP/2 (see the remarks).</summary>
    public string Prefix { get; }

    /// <summary><c>https://host:port</c>: the sidecar as logs name it.</summary>
    public string Address { get; }

    public HttpTransformer Transformer { get; }

    public override string ToString() => Address;

    /// <summary>
    /// <c>X-Forwarded-Proto</c> set, nothing else added: Consul's peer filter chain leaves Envoy's use_remote_address
    /// unset (agent/xds/listeners.go, makeHTTPFilter), so the peer's address is not appended to <c>X-Forwarded-For</c>
    /// and no host or prefix is added. Headers are copied as YARP's default transformer copies them.
    /// </summary>
    private sealed class SidecarTransformer(string prefix) : HttpTransformer
    {
        private const string ForwardedProto = "X-Forwarded-Proto";
        private LastUri? _last;

        public override ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            HttpRequest request = httpContext.Request;
            string path = request.Path.Value ?? string.Empty;
            string query = request.QueryString.Value ?? string.Empty;
            LastUri? last = Volatile.Read(ref _last);
            if (last is null || !string.Equals(last.Path, path, StringComparison.Ordinal) || !string.Equals(last.Query, query, StringComparison.Ordinal))
            {
                last = new LastUri(path, query, RequestUtilities.MakeDestinationAddress(prefix, request.Path, request.QueryString));
                Volatile.Write(ref _last, last);
            }

            // Set before the base copies the headers: YARP builds the URI only when the transformer left it unset.
            proxyRequest.RequestUri = last.Uri;
            ValueTask copied = base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            if (!copied.IsCompletedSuccessfully)
            {
                return SetProtoAfterAsync(copied, proxyRequest);
            }

            SetProto(proxyRequest);
            return ValueTask.CompletedTask;
        }

        private static async ValueTask SetProtoAfterAsync(ValueTask copied, HttpRequestMessage proxyRequest)
        {
            await copied.ConfigureAwait(false);
            SetProto(proxyRequest);
        }

        private static void SetProto(HttpRequestMessage proxyRequest)
        {
            proxyRequest.Headers.Remove(ForwardedProto);
            // Always https: the terminator serves TLS only.
            proxyRequest.Headers.TryAddWithoutValidation(ForwardedProto, "https");
        }

        private sealed record LastUri(string Path, string Query, Uri Uri);
    }
}

/// <summary>Envoy's retry conditions (its router's <c>retry_on</c> flags) that Consul's service-router can set.</summary>
[Flags]
internal enum RetryCondition
{
    None = 0,
    ServerError = 1 << 0,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    RefusedStream = 1 << 4,
    Retriable4xx = 1 << 5,
    EnvoyRateLimited = 1 << 6,
    StatusCodes = 1 << 7,
    GrpcCancelled = 1 << 8,
    GrpcDeadlineExceeded = 1 << 9,
    GrpcInternal = 1 << 10,
    GrpcResourceExhausted = 1 << 11,
    GrpcUnavailable = 1 << 12,
}

/// <summary>
/// When a sidecar's answer (or its absence) is retried, as Envoy's router decides (source/common/router/retry_state_impl.cc:
/// <c>wouldRetryFromHeaders</c>, <c>wouldRetryFromReset</c>); Consul passes the route's <c>RetryOn</c> through unchanged and
/// adds <c>connect-failure</c> and <c>retriable-status-codes</c> for its two older fields (agent/xds/routes.go,
/// <c>getRetryPolicyForDestination</c>).
/// </summary>
internal static class RetryConditions
{
    private static readonly (string Name, RetryCondition Condition)[] s_names =
    [
        ("5xx", RetryCondition.ServerError),
        ("gateway-error", RetryCondition.GatewayError),
        ("reset", RetryCondition.Reset),
        ("connect-failure", RetryCondition.ConnectFailure),
        ("refused-stream", RetryCondition.RefusedStream),
        ("retriable-4xx", RetryCondition.Retriable4xx),
        ("envoy-ratelimited", RetryCondition.EnvoyRateLimited),
        ("retriable-status-codes", RetryCondition.StatusCodes),
        ("cancelled", RetryCondition.GrpcCancelled),
        ("deadline-exceeded", RetryCondition.GrpcDeadlineExceeded),
        ("internal", RetryCondition.GrpcInternal),
        ("resource-exhausted", RetryCondition.GrpcResourceExhausted),
        ("unavailable", RetryCondition.GrpcUnavailable),
    ];

    private const RetryCondition Grpc = RetryCondition.GrpcCancelled | RetryCondition.GrpcDeadlineExceeded | RetryCondition.GrpcInternal
        | RetryCondition.GrpcResourceExhausted | RetryCondition.GrpcUnavailable;

    /// <summary>The condition names, as Envoy spells them.</summary>
    public static IEnumerable<string> Names => s_names.Select(n => n.Name);

    /// <summary>The condition a name stands for (Envoy's names are case-sensitive), or <see cref="RetryCondition.None"/>.</summary>
    public static RetryCondition Parse(string? name)
    {
        foreach ((string known, RetryCondition condition) in s_names)
        {
            if (string.Equals(name, known, StringComparison.Ordinal))
            {
                return condition;
            }
        }

        return RetryCondition.None;
    }

    /// <summary>A rule's conditions: its <c>RetryOn</c> names, <c>RetryOnConnectFailure</c>, and <c>RetryOnStatusCodes</c> when it lists any.</summary>
    public static RetryCondition Of(HttpRouteRule rule)
    {
        RetryCondition conditions = rule.RetryOnConnectFailure ? RetryCondition.ConnectFailure : RetryCondition.None;
        foreach (string name in rule.RetryOn ?? [])
        {
            conditions |= Parse(name);
        }

        // Envoy's retriable-status-codes retries nothing without codes; Consul adds it only with codes.
        return rule.RetryOnStatusCodes is { Count: > 0 } ? conditions | RetryCondition.StatusCodes : conditions & ~RetryCondition.StatusCodes;
    }

    /// <summary>Whether an answer the sidecar gave is retried (<c>wouldRetryFromHeaders</c>).</summary>
    public static bool RetriesAnswer(RetryCondition conditions, HttpResponseMessage response, IReadOnlyList<int> statuses)
    {
        int status = (int)response.StatusCode;
        if (((conditions & RetryCondition.ServerError) != 0 && status is >= 500 and <= 599)
            || ((conditions & RetryCondition.GatewayError) != 0 && status is 502 or 503 or 504)
            || ((conditions & RetryCondition.Retriable4xx) != 0 && status == 409)
            || ((conditions & RetryCondition.StatusCodes) != 0 && statuses.Contains(status))
            || ((conditions & RetryCondition.EnvoyRateLimited) != 0 && response.Headers.Contains("x-envoy-ratelimited")))
        {
            return true;
        }

        if ((conditions & Grpc) == 0 || !response.Headers.TryGetValues("grpc-status", out IEnumerable<string>? values)
            || !int.TryParse(values.FirstOrDefault(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int grpc))
        {
            return false;
        }

        // gRPC status codes: CANCELLED 1, DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8, INTERNAL 13, UNAVAILABLE 14.
        RetryCondition matching = grpc switch
        {
            1 => RetryCondition.GrpcCancelled,
            4 => RetryCondition.GrpcDeadlineExceeded,
            8 => RetryCondition.GrpcResourceExhausted,
            13 => RetryCondition.GrpcInternal,
            14 => RetryCondition.GrpcUnavailable,
            _ => RetryCondition.None,
        };
        return (conditions & matching) != 0;
    }

    /// <summary>
    /// Whether a request the sidecar did not answer is retried (<c>wouldRetryFromReset</c>): any failure for <c>reset</c>,
    /// <c>5xx</c> and <c>gateway-error</c> (Envoy counts a reset as a 5xx), a failed connection for
    /// <c>connect-failure</c>, HTTP/2 <c>REFUSED_STREAM</c> for <c>refused-stream</c>.
    /// </summary>
    public static bool RetriesFailure(RetryCondition conditions, Exception? failure)
    {
        if ((conditions & (RetryCondition.Reset | RetryCondition.ServerError | RetryCondition.GatewayError)) != 0)
        {
            return true;
        }

        if (failure is not HttpRequestException http)
        {
            return false;
        }

        return ((conditions & RetryCondition.ConnectFailure) != 0 && http.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError)
            || ((conditions & RetryCondition.RefusedStream) != 0 && http.InnerException is HttpProtocolException { ErrorCode: 0x7 });
    }
}
