using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace MeshGateway.Peering;

/// <summary>
/// Terminates the peers' mTLS sessions for HTTP-like services exported to cluster peers (docs/consul-behaviour.md §11, issue 14) and
/// forwards their requests to the local sidecars: a <see cref="ConnectionTerminator"/> for the gateway's
/// <see cref="GatewayListener"/>, built on Kestrel (fed in process, no listening port of its own) and YARP's forwarder.
/// </summary>
/// <remarks>
/// <para>Per connection: the gateway listener reads the ClientHello and matches the service's exact form-8 route
/// (<see cref="CreateRoutes"/>), then hands the socket and the bytes it read to <see cref="RunAsync"/>, which performs
/// the handshake (and gives Kestrel the decrypted stream) with the gateway's leaf certificate (taken per handshake from
/// the current snapshot, so a rotated leaf applies to new handshakes while established connections keep theirs),
/// requires a client certificate and accepts it only when its single <c>spiffe://</c> URI names the trust domain of a
/// peer the service is exported to and it chains to that peer's bundle alone at the current time
/// (<see cref="HandshakeRefusal"/> says why not; refusals are counted and logged, and nothing is forwarded). HTTP/1.1
/// and HTTP/2 are offered by ALPN.</para>
/// <para>Per request: the service's route rules are applied with Consul's match semantics (first match wins; 404 when
/// none), a split leg is drawn by weight, <c>PrefixRewrite</c> applied, <c>X-Forwarded-Client-Cert</c> replaced by the
/// validated client's details (Envoy's <c>SANITIZE_SET</c>) and YARP's <see cref="IHttpForwarder"/> forwards over new
/// mTLS to the target's next sidecar (round robin), presenting the gateway's leaf and accepting only a certificate from
/// the local CA roots with the target's SPIFFE ID. The rules choose the target, so YARP's route table, endpoint routing
/// and proxy pipeline are not used: calling the forwarder directly cost ~9 % less CPU per request
/// (docs/benchmarks.md, issue 14).</para>
/// <para>Not an ASP.NET Core host the application configures: it owns a private <see cref="WebApplication"/>.</para>
/// </remarks>
public sealed class PeeringTerminator : ConnectionTerminator, IAsyncDisposable
{
    private static readonly List<SslApplicationProtocol> s_alpn = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    private readonly InProcessTransport _transport = new();
    private readonly SidecarHttpClientFactory _clients;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly PeeringLogThrottle _refusalLog;
    private readonly PeeringLogThrottle _failureLog;
    private readonly PeeringCounters _counters = new();
    private WebApplication? _app;
    private IHttpForwarder? _forwarder;
    private readonly TimeSpan _handshakeTimeout;
    private PeeringState _state;
    private int _disposed;

    private PeeringTerminator(PeeringState state, PeeringTerminatorOptions options)
    {
        _clients = new SidecarHttpClientFactory(this);
        _handshakeTimeout = options.HandshakeTimeout;
        _state = state;
        _time = options.TimeProvider ?? TimeProvider.System;
        _logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("MeshGateway.Peering");
        _refusalLog = new PeeringLogThrottle(_logger, "refused certificate", options.LogRateLimit, _time);
        _failureLog = new PeeringLogThrottle(_logger, "failed request", options.LogRateLimit, _time);
    }

    /// <summary>
    /// How long a forwarded request may go without a byte moving either way before it is ended (408 before the response
    /// begins, reset after), unless its route sets <see cref="HttpRouteRule.IdleTimeout"/>: 5 minutes, Envoy's default
    /// stream idle timeout, which Consul's gateway keeps.
    /// </summary>
    public static TimeSpan DefaultIdleTimeout { get; } = TimeSpan.FromMinutes(5);

    /// <summary>Running totals: connections, handshakes accepted and refused by reason, requests routed and unrouted.</summary>
    public PeeringCounters Counters => _counters;

    /// <summary>The snapshot in force.</summary>
    public PeeringSnapshot Snapshot => Volatile.Read(ref _state).Snapshot;

    internal PeeringState State => Volatile.Read(ref _state);

    /// <summary>Validates the snapshot and starts the in-process Kestrel server and YARP.</summary>
    /// <param name="snapshot">The first snapshot.</param>
    /// <param name="options">Logging, clock and handshake timeout; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The started terminator; dispose it after the gateway listener that uses it has stopped.</returns>
    /// <exception cref="ArgumentException">The snapshot is inconsistent (the message names what).</exception>
    public static async Task<PeeringTerminator> StartAsync(PeeringSnapshot snapshot, PeeringTerminatorOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        options ??= new PeeringTerminatorOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.LogRateLimit, "options.LogRateLimit");
        var state = new PeeringState(snapshot);
        var terminator = new PeeringTerminator(state, options);
        terminator.BindClients(state, previous: null);
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "MeshGateway.Peering" });
        builder.Services.AddLogging();
        if (options.LoggerFactory is { } loggerFactory)
        {
            // Kestrel's and YARP's per-request lines stay out of the host's log (FrameworkWarningsLoggerFactory says why).
            builder.Services.AddSingleton<ILoggerFactory>(new FrameworkWarningsLoggerFactory(loggerFactory));
        }

        // Registered before Kestrel's defaults: Kestrel's socket transport is then never added (TryAdd), and this end
        // point binds no port.
        builder.Services.AddSingleton<IConnectionListenerFactory>(terminator._transport);
        // Not the console lifetime the builder registers: that one would catch the process's SIGINT/SIGTERM (and keep
        // a process without a host of its own from ending on them) and log "Application started" for this private app.
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // A proxy, not an application: no body size cap (Kestrel's default is 30 MB) and no minimum data rates
            // (a slow peer is not a reason to cut a stream; Envoy has neither). Request headers up to 60 KiB, Envoy's
            // max_request_headers_kb default.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.Limits.MaxRequestHeadersTotalSize = 60 * 1024;
            // TLS is the terminator's own (RunAsync): Kestrel gets the decrypted stream with the TLS features set, and
            // picks HTTP/2 or HTTP/1.1 from the ALPN result as it does behind its own HTTPS middleware.
            kestrel.Listen(terminator._transport.EndPoint, listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
        });
        builder.Services.AddHttpForwarder();
        WebApplication app = builder.Build();
        app.Run(terminator.ForwardAsync);
        terminator._forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        terminator._app = app;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        terminator.LogSnapshot(terminator._state);
        return terminator;
    }

    /// <summary>
    /// Replaces the snapshot: new handshakes use its leaf and bundles, new requests its routes and targets; established
    /// connections keep their TLS session. An invalid snapshot throws and the current one stays.
    /// </summary>
    /// <param name="snapshot">The new snapshot.</param>
    /// <exception cref="ArgumentException">The snapshot is inconsistent (the message names what).</exception>
    /// <exception cref="ObjectDisposedException">The terminator was disposed.</exception>
    public void Update(PeeringSnapshot snapshot)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var state = new PeeringState(snapshot);
        BindClients(state, State);
        Volatile.Write(ref _state, state);
        LogSnapshot(state);
    }

    /// <summary>
    /// One exact route per server name of the current snapshot (each exported service and consumer peer), handing its
    /// connections to this terminator; add them to the gateway's <see cref="RouteTable"/> next to the passthrough routes.
    /// </summary>
    /// <returns>The routes, each with an empty cluster named like its server name (used in logs and metrics only).</returns>
    public IReadOnlyList<Route> CreateRoutes() =>
        [.. State.ServerNames.Order(StringComparer.Ordinal).Select(sni => new Route(sni, new UpstreamCluster(sni, [])) { Terminator = this })];

    /// <inheritdoc />
    public override Task RunAsync(TerminatedConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _counters.OnConnection();
        PeeringState state = State;
        if (!state.TryGetService(connection.ServerName, out ServiceState? service))
        {
            Refuse(HandshakeRefusal.UnknownServerName, connection.ServerName, connection.ClientEndPoint?.ToString(), null);
            SocketReset(connection.Socket);
            return Task.CompletedTask;
        }

        return TerminateAsync(connection, new PeeringConnectionFeature(connection.ServerName, state, service));
    }

    /// <summary>
    /// The TLS handshake on the handed-over socket (after the bytes the listener already read), then the decrypted
    /// stream to Kestrel until it closes the connection.
    /// </summary>
    /// <remarks>
    /// The handshake is done here rather than by Kestrel's HTTPS middleware: that middleware would put the socket's
    /// stream behind a pipe and the TLS stream behind a second one; here Kestrel's one pipe reads the TLS stream directly.
    /// </remarks>
    private async Task TerminateAsync(TerminatedConnection connection, PeeringConnectionFeature feature)
    {
        Socket socket = connection.Socket;
        try
        {
            // As Kestrel's socket transport does: responses go out in several writes (headers, body, TLS records), and
            // Nagle's algorithm against the peer's delayed ACK stalled each HTTP/1.1 response by ~40-200 ms (measured).
            socket.NoDelay = true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already reset: the handshake reports it.
        }

        string? client = connection.ClientEndPoint?.ToString();
        var tls = new SslStream(new PrefixedStream(connection.Prefix, new NetworkStream(socket, ownsSocket: true)), leaveInnerStreamOpen: false);
        TerminatedConnectionContext? context = null;
        try
        {
            using var deadline = new CancellationTokenSource(_handshakeTimeout);
            await tls.AuthenticateAsServerAsync(ServerOptions(feature, client), deadline.Token).ConfigureAwait(false);
            context = new TerminatedConnectionContext(connection, tls, feature);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // A refused certificate was counted and logged by ValidatePeer; anything else (the peer gave up, a timeout,
            // not TLS) is the peer's: closed, as Kestrel's HTTPS middleware closes it.
            PeeringLog.HandshakeFailed(_logger, feature.ServerName, client, ex.Message);
            return;
        }
        finally
        {
            if (context is null)
            {
                // Whatever ended the handshake (an unexpected fault goes on to the listener's count), the socket closes.
                await tls.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (!_transport.TryQueue(context))
        {
            // Stopped: close it as the listener's drain would.
            await context.DisposeAsync().ConfigureAwait(false);
            return;
        }

        await context.Closed.ConfigureAwait(false);
    }

    /// <summary>Stops Kestrel (open connections are closed) and YARP.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_app is not null)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(deadline.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        await _transport.DisposeAsync().ConfigureAwait(false);
        foreach (SidecarTarget target in State.Targets.Values)
        {
            target.Client.Dispose();
        }
    }

    /// <summary>Checks a sidecar's server certificate against the current local roots and the target's SPIFFE ID.</summary>
    internal bool ValidateSidecar(X509Certificate? certificate, X509Chain? chain, string spiffeId, string? destination)
    {
        using X509Certificate2? owned = certificate is null or X509Certificate2 ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (PeerCertificates.ValidateSidecar(owned ?? certificate as X509Certificate2, chain, spiffeId, State, _time.GetUtcNow().UtcDateTime))
        {
            return true;
        }

        if (_refusalLog.Allow())
        {
            PeeringLog.SidecarRefused(_logger, destination, spiffeId);
        }

        return false;
    }

    private static void SocketReset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Closed already.
        }

        socket.Dispose();
    }

    private SslServerAuthenticationOptions ServerOptions(PeeringConnectionFeature feature, string? client) =>
        new()
        {
            // Per handshake from the snapshot current at hand-over: rotation never touches established sessions.
            ServerCertificateContext = feature.State.ServerCertificate,
            ClientCertificateRequired = true,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ApplicationProtocols = s_alpn,
            RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidatePeer(feature, certificate, chain, client),
        };

    private bool ValidatePeer(PeeringConnectionFeature feature, X509Certificate? certificate, X509Chain? chain, string? client)
    {
        HandshakeRefusal? refusal;
        PeerIdentity? identity = null;
        string? detail;
        try
        {
            using X509Certificate2? owned = certificate is null or X509Certificate2 ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            refusal = PeerCertificates.Validate(owned ?? certificate as X509Certificate2, chain, feature.Service!, feature.State, _time.GetUtcNow().UtcDateTime, out identity, out detail);
        }
        catch (System.Security.Cryptography.CryptographicException ex)
        {
            refusal = HandshakeRefusal.UntrustedChain;
            detail = ex.Message;
        }

        if (refusal is { } reason)
        {
            Refuse(reason, feature.ServerName, client, detail);
            return false;
        }

        feature.Identity = identity;
        _counters.OnAccepted();
        PeeringLog.HandshakeAccepted(_logger, identity!.SpiffeId, identity.PeerName, feature.ServerName);
        return true;
    }

    private void Refuse(HandshakeRefusal reason, string serverName, string? client, string? detail)
    {
        _counters.OnRefused(reason);
        if (_refusalLog.Allow())
        {
            PeeringLog.HandshakeRefused(_logger, serverName, client, reason, detail);
        }
    }

    /// <summary>
    /// Gives each target of <paramref name="state"/> its client: the previous snapshot's when the target has the same id
    /// and SPIFFE ID (its pooled connections stay), a new one otherwise. Clients no longer used are left to finish their
    /// requests and close their idle connections (as YARP does when a cluster is replaced).
    /// </summary>
    private void BindClients(PeeringState state, PeeringState? previous)
    {
        foreach (SidecarTarget target in state.Targets.Values)
        {
            target.Client = previous is not null && previous.Targets.TryGetValue(target.ClusterId, out SidecarTarget? old) && old.SpiffeId == target.SpiffeId
                ? old.Client
                : _clients.Create(target);
        }
    }

    /// <summary>Chooses the target (rules, then split), rewrites the path, sets XFCC and forwards to the next sidecar.</summary>
    private Task ForwardAsync(HttpContext context)
    {
        PeeringConnectionFeature? feature = context.Features.Get<PeeringConnectionFeature>();
        if (feature?.Identity is not { } identity || feature.ServiceIn(State) is not { } service)
        {
            // No validated client (cannot happen past the handshake) or the service is no longer exported.
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return Task.CompletedTask;
        }

        CompiledRule? rule = service.Match(context.Request);
        if (rule is null)
        {
            _counters.OnUnrouted();
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        string path = context.Request.Path.Value ?? "/";
        string rewritten = rule.Rewrite(path);
        if (!ReferenceEquals(path, rewritten))
        {
            context.Request.Path = new PathString(rewritten);
        }

        // SANITIZE_SET: whatever the client sent is replaced by what the gateway validated.
        context.Request.Headers[PeerCertificates.ForwardedClientCertHeader] = identity.ForwardedClientCert;
        SidecarTarget target = rule.PickTarget(Random.Shared.NextDouble(), out WeightedTarget split).Serving();
        _counters.OnRequest();
        if (target.NextDestination() is not { } destination)
        {
            // No healthy sidecar: Envoy answers 503 (no healthy upstream).
            _counters.OnUpstreamFailure();
            if (_failureLog.Allow())
            {
                PeeringLog.NoSidecar(_logger, target.ClusterId);
            }

            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return Task.CompletedTask;
        }

        return rule.HasPolicy ? SendWithPolicyAsync(context, rule, split, target, destination) : SendAsync(context, target, destination);
    }

    /// <summary>Forwards to one sidecar; counts and logs a request the forwarder could not complete (it has answered 502/504 when it still could).</summary>
    private async Task SendAsync(HttpContext context, SidecarTarget target, SidecarDestination destination)
    {
        ForwarderError error = await _forwarder!.SendAsync(context, destination.Prefix, target.Client, target.RequestConfig, destination.Transformer).ConfigureAwait(false);
        if (error != ForwarderError.None)
        {
            ReportForwardFailure(context, destination, error);
        }
    }

    /// <summary>
    /// Counts a request the forwarder could not complete with a sidecar and logs it within the rate limit (event 4007).
    /// A timeout is counted as one too and, when no response has begun, answered as Envoy answers it: the route's request
    /// timeout 504 ("upstream request timeout"), the idle timeout (YARP's activity timeout, which YARP would answer 504)
    /// 408 as Envoy's stream idle timeout.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <param name="destination">The sidecar that failed it.</param>
    /// <param name="error">The forwarder's error.</param>
    /// <param name="routeTimedOut">The route's request timeout ended it.</param>
    private void ReportForwardFailure(HttpContext context, SidecarDestination destination, ForwarderError error, bool routeTimedOut = false)
    {
        if (routeTimedOut || error == ForwarderError.RequestTimedOut)
        {
            _counters.OnTimeout();
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                context.Response.StatusCode = routeTimedOut ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status408RequestTimeout;
            }
        }

        _counters.OnUpstreamFailure();
        if (_failureLog.Allow())
        {
            PeeringLog.ForwardFailed(_logger, destination.Address, error, context.GetForwarderErrorFeature()?.Exception?.Message);
        }
    }

    /// <summary>The largest request body kept for a retry (Envoy's default buffer limit, 1 MiB); a larger or unannounced one is forwarded once.</summary>
    internal const int MaxReplayedBodyBytes = 1024 * 1024;

    /// <summary>
    /// Forwards under the rule's timeouts and retries (service-router <c>RequestTimeout</c>, <c>IdleTimeout</c>,
    /// <c>NumRetries</c>, <c>RetryOn</c>, <c>RetryOnConnectFailure</c>, <c>RetryOnStatusCodes</c>), as Envoy's route timeout
    /// and retry policy do: the request timeout covers every attempt and answers 504 when no response has begun; a retry
    /// (<see cref="RetryConditions"/>) goes to the target's next sidecar. A
    /// request body is kept for the retries only when its length is announced and at most
    /// <see cref="MaxReplayedBodyBytes"/> (read whole, in memory, before the first attempt); any other body is forwarded
    /// once (Envoy likewise retries only what fits its buffer).
    /// The leg's header modifiers and then the route's apply to the request and to the sidecar's response (Envoy's order:
    /// the more general level last, so it wins).
    /// </summary>
    private async Task SendWithPolicyAsync(HttpContext context, CompiledRule rule, WeightedTarget split, SidecarTarget target, SidecarDestination destination)
    {
        HttpRouteRule policy = rule.Rule;
        ApplyHeaders(context.Request.Headers, split.RequestHeaders);
        ApplyHeaders(context.Request.Headers, policy.RequestHeaders);
        using CancellationTokenSource? timeout = policy.RequestTimeout is { } limit ? new CancellationTokenSource(limit, _time) : null;
        CancellationToken token = timeout?.Token ?? CancellationToken.None;
        int retriesLeft = rule.RetryOn != RetryCondition.None ? rule.Retries : 0;
        // The route's idle timeout replaces the default one (Envoy's route idle_timeout over its stream idle timeout).
        ForwarderRequestConfig config = policy.IdleTimeout is { } idle ? target.RequestConfig with { ActivityTimeout = idle } : target.RequestConfig;
        bool bodiless = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false;
        if (retriesLeft > 0 && !bodiless)
        {
            try
            {
                if (!await TryKeepBodyAsync(context, token).ConfigureAwait(false))
                {
                    retriesLeft = 0;
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException)
            {
                // The body did not arrive whole: the client went away, sent less than it announced, or was too slow for
                // the route's timeout. Nothing was forwarded; the client gets 408 or 400 if it is still there.
                if (!context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
                {
                    context.Response.StatusCode = ex is OperationCanceledException ? StatusCodes.Status408RequestTimeout : StatusCodes.Status400BadRequest;
                }

                return;
            }
        }

        RetryCondition answerRetries = retriesLeft > 0 ? rule.RetryOn : RetryCondition.None;
        PolicyTransformer? policyTransformer = answerRetries != RetryCondition.None || split.ResponseHeaders is not null || policy.ResponseHeaders is not null
            ? new PolicyTransformer(answerRetries, policy.RetryOnStatusCodes, split.ResponseHeaders, policy.ResponseHeaders)
            : null;
        while (true)
        {
            HttpTransformer transformer = destination.Transformer;
            if (policyTransformer is not null)
            {
                policyTransformer.Prepare(destination.Transformer, retriesLeft > 0);
                transformer = policyTransformer;
            }

            ForwarderError error = await _forwarder!.SendAsync(context, destination.Prefix, target.Client, config, transformer, token).ConfigureAwait(false);
            bool retry = retriesLeft > 0 && !context.Response.HasStarted && !token.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested
                && (error == ForwarderError.None ? policyTransformer?.Declined == true : error is ForwarderError.Request or ForwarderError.RequestBodyDestination && RetryConditions.RetriesFailure(rule.RetryOn, context.GetForwarderErrorFeature()?.Exception));
            if (retry && target.NextDestination() is { } next)
            {
                // Nothing reached the client: the next sidecar gets the request as if it were the first attempt.
                _counters.OnRetry();
                retriesLeft--;
                destination = next;
                if (!bodiless)
                {
                    // The kept body, from its first byte (TryKeepBodyAsync).
                    context.Request.Body.Position = 0;
                }

                context.Response.Clear();
                context.Features.Set<IForwarderErrorFeature>(null);
                continue;
            }

            if (policyTransformer?.Declined == true)
            {
                // Declined for a retry that cannot happen after all (the request was cancelled meanwhile): nothing was sent.
                error = ForwarderError.RequestCanceled;
            }

            if (error != ForwarderError.None)
            {
                ReportForwardFailure(context, destination, error, routeTimedOut: timeout?.IsCancellationRequested == true && !context.RequestAborted.IsCancellationRequested);
            }

            return;
        }

        // Reads a body of announced length up to MaxReplayedBodyBytes into memory (seekable from then on); false otherwise.
        static async Task<bool> TryKeepBodyAsync(HttpContext context, CancellationToken timeout)
        {
            if (context.Request.ContentLength is not long length || length > MaxReplayedBodyBytes)
            {
                return false;
            }

            context.Request.EnableBuffering(bufferThreshold: MaxReplayedBodyBytes, bufferLimit: MaxReplayedBodyBytes);
            using CancellationTokenSource either = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, timeout);
            await Microsoft.AspNetCore.WebUtilities.StreamHelperExtensions.DrainAsync(context.Request.Body, either.Token).ConfigureAwait(false);
            context.Request.Body.Position = 0;
            return true;
        }
    }

    /// <summary>Consul's header modifiers as Envoy applies them: removals, then additions, then replacements.</summary>
    private static void ApplyHeaders(IHeaderDictionary headers, HttpHeaderModifiers? modifiers)
    {
        if (modifiers is null)
        {
            return;
        }

        foreach (string name in modifiers.Remove)
        {
            headers.Remove(name);
        }

        foreach (KeyValuePair<string, string> header in modifiers.Add)
        {
            headers.Append(header.Key, header.Value);
        }

        foreach (KeyValuePair<string, string> header in modifiers.Set)
        {
            headers[header.Key] = header.Value;
        }
    }

    /// <summary>
    /// The sidecar's transformer, except that a response with a status the rule retries on is declined (not copied to the
    /// client) while a retry is left (YARP's <see cref="HttpTransformer.TransformResponseAsync(HttpContext, HttpResponseMessage?, CancellationToken)"/>
    /// returning false), and that a response passed on gets the leg's and the route's header modifiers. One per request
    /// that has either.
    /// </summary>
    private sealed class PolicyTransformer(RetryCondition retryOn, IReadOnlyList<int> statuses, HttpHeaderModifiers? legHeaders, HttpHeaderModifiers? routeHeaders) : HttpTransformer
    {
        private HttpTransformer _inner = Default;
        private bool _mayDecline;

        /// <summary>Whether the last attempt's response was declined for a retry.</summary>
        public bool Declined { get; private set; }

        public void Prepare(HttpTransformer inner, bool mayDecline)
        {
            _inner = inner;
            _mayDecline = mayDecline;
            Declined = false;
        }

        public override ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken) =>
            _inner.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            if (_mayDecline && proxyResponse is not null && RetryConditions.RetriesAnswer(retryOn, proxyResponse, statuses))
            {
                Declined = true;
                return false;
            }

            bool copy = await _inner.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
            if (copy && proxyResponse is not null)
            {
                ApplyHeaders(httpContext.Response.Headers, legHeaders);
                ApplyHeaders(httpContext.Response.Headers, routeHeaders);
            }

            return copy;
        }

        public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken) =>
            _inner.TransformResponseTrailersAsync(httpContext, proxyResponse, cancellationToken);
    }

    private void LogSnapshot(PeeringState state) =>
        PeeringLog.SnapshotApplied(_logger, state.Snapshot.Services.Count, state.Snapshot.TrustBundles.Count, state.Snapshot.Leaf.Subject, state.Snapshot.Leaf.NotAfter.ToUniversalTime());

    /// <summary>
    /// YARP's client factory (its handler defaults: no proxy, redirects, cookies or decompression) with the gateway's mTLS
    /// towards the sidecars, made by <see cref="ConnectSidecarAsync"/> (see <see cref="SidecarDestination"/> for why).
    /// </summary>
    private sealed class SidecarHttpClientFactory(PeeringTerminator owner) : ForwarderHttpClientFactory
    {
        // The target's details travel from Create to ConfigureHandler in the context's metadata (YARP's only channel).
        private const string SpiffeIdMetadata = "meshgateway.spiffe-id";
        private const string ServerNameMetadata = "meshgateway.server-name";
        private const string Http2Metadata = "meshgateway.http2";

        public HttpMessageInvoker Create(SidecarTarget target)
        {
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { [SpiffeIdMetadata] = target.SpiffeId };
            if (target.ServerName is { } serverName)
            {
                metadata[ServerNameMetadata] = serverName;
            }

            if (target.RequestConfig.Version == HttpVersion.Version20)
            {
                metadata[Http2Metadata] = "true";
            }

            return CreateClient(new ForwarderHttpClientContext
            {
                ClusterId = target.ClusterId,
                OldConfig = HttpClientConfig.Empty,
                NewConfig = HttpClientConfig.Empty,
                NewMetadata = metadata,
            });
        }

        protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
        {
            base.ConfigureHandler(context, handler);
            IReadOnlyDictionary<string, string> metadata = context.NewMetadata
                ?? throw new InvalidOperationException($"The peering cluster '{context.ClusterId}' has no metadata.");
            if (!metadata.TryGetValue(SpiffeIdMetadata, out string? spiffeId))
            {
                throw new InvalidOperationException($"The peering cluster '{context.ClusterId}' has no expected SPIFFE ID.");
            }

            var sidecar = new SidecarConnection(
                context.ClusterId,
                spiffeId,
                metadata.GetValueOrDefault(ServerNameMetadata),
                metadata.ContainsKey(Http2Metadata) ? s_h2 : s_http11);
            handler.ConnectCallback = (connection, cancellationToken) => owner.ConnectSidecarAsync(connection.DnsEndPoint, sidecar, cancellationToken);
        }
    }

    private static readonly List<SslApplicationProtocol> s_h2 = [SslApplicationProtocol.Http2];
    private static readonly List<SslApplicationProtocol> s_http11 = [SslApplicationProtocol.Http11];

    /// <summary>What the connections to one target's sidecars need: who they must be, the SNI to send, the ALPN to offer.</summary>
    private sealed record SidecarConnection(string Cluster, string SpiffeId, string? ServerName, List<SslApplicationProtocol> Protocols);

    /// <summary>
    /// One connection to a sidecar (the handler's connect callback): TCP without Nagle's delay, then TLS with the target's
    /// SNI (Consul's cluster <c>sni</c>, never the request's <c>Host</c>), the gateway's current leaf and its
    /// intermediates, and the sidecar's certificate checked against the current local roots and the target's SPIFFE ID.
    /// The handler counts a failure here as a connection failure (a retry on connect failure takes the next sidecar).
    /// </summary>
    private async ValueTask<Stream> ConnectSidecarAsync(DnsEndPoint endPoint, SidecarConnection sidecar, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? tls = null;
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(
                new SslClientAuthenticationOptions
                {
                    TargetHost = sidecar.ServerName ?? endPoint.Host,
                    ApplicationProtocols = sidecar.Protocols,
                    // Per connection, from the snapshot in force: a rotated leaf or root applies to new connections.
                    ClientCertificateContext = State.ServerCertificate,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                    RemoteCertificateValidationCallback = (_, certificate, chain, _) => ValidateSidecar(certificate, chain, sidecar.SpiffeId, sidecar.Cluster),
                },
                cancellationToken).ConfigureAwait(false);
            _counters.OnSidecarConnection(opened: true);
            return tls;
        }
        catch
        {
            // Cancelled too: the handler runs connection attempts apart from requests, so what cancels one is its connect
            // timeout (or the client being disposed).
            _counters.OnSidecarConnection(opened: false);
            if (tls is not null)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
            }

            socket.Dispose();
            throw;
        }
    }
}

/// <summary>Options of <see cref="PeeringTerminator.StartAsync"/>.</summary>
public sealed class PeeringTerminatorOptions
{
    /// <summary>
    /// Where the terminator logs (category <c>MeshGateway.Peering</c>), and its Kestrel and YARP from Warning up (their
    /// per-request lines are not written; docs/peering.md, "Logging"); nowhere when null.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>The clock certificate validity is checked against. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider? TimeProvider { get; set; }

    /// <summary>
    /// Warnings a second about refused certificates (a peer's, event 4001; a sidecar's, 4004) and, separately, about
    /// failed requests (4007, 4008); the rest are counted in <see cref="PeeringCounters"/> and summarised in the next line
    /// let through (event 4010); 0 for no limit. Default 20, as the gateway's <c>MeshGateway:LogRateLimit</c> (hosted, that option's value is
    /// used).
    /// </summary>
    public int LogRateLimit { get; set; } = 20;

    /// <summary>How long a peer may take to complete the TLS handshake. Default 10 s (the gateway's hello timeout).</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>The private application's lifetime: no signal handling and no lifetime logs (the process's host, if any, owns both).</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
