using Microsoft.Extensions.Logging;

namespace MeshGateway.Peering;

/// <summary>The terminator's source-generated log messages (event ids 4001-4099).</summary>
internal static partial class PeeringLog
{
    [LoggerMessage(4001, LogLevel.Warning, "Peering: refused the TLS handshake for {ServerName} from {Client}: {Reason} ({Detail}).")]
    public static partial void HandshakeRefused(ILogger logger, string serverName, string? client, HandshakeRefusal reason, string? detail);

    [LoggerMessage(4002, LogLevel.Debug, "Peering: accepted {SpiffeId} of peer {Peer} for {ServerName}.")]
    public static partial void HandshakeAccepted(ILogger logger, string spiffeId, string peer, string serverName);

    [LoggerMessage(4003, LogLevel.Information, "Peering: snapshot applied: {Services} exported HTTP services, {Peers} trust bundles, leaf {Leaf} valid until {NotAfter:O}.")]
    public static partial void SnapshotApplied(ILogger logger, int services, int peers, string leaf, DateTime notAfter);

    [LoggerMessage(4004, LogLevel.Warning, "Peering: the sidecar certificate of {Destination} was refused: not issued by the local CA for {SpiffeId}.")]
    public static partial void SidecarRefused(ILogger logger, string? destination, string spiffeId);

    [LoggerMessage(4005, LogLevel.Warning, "Peering: the snapshot could not be built from Consul ({Error}); the previous one stays in force.")]
    public static partial void FeedFailed(ILogger logger, string error);

    [LoggerMessage(4006, LogLevel.Warning, "Peering: {What}.")]
    public static partial void FeedWarning(ILogger logger, string what);

    [LoggerMessage(4007, LogLevel.Warning, "Peering: a request to the sidecar {Destination} failed: {Error} ({Detail}).")]
    public static partial void ForwardFailed(ILogger logger, string destination, Yarp.ReverseProxy.Forwarder.ForwarderError error, string? detail);

    [LoggerMessage(4008, LogLevel.Warning, "Peering: no sidecar to forward to for {Target}: answered 503.")]
    public static partial void NoSidecar(ILogger logger, string target);

    [LoggerMessage(4009, LogLevel.Debug, "Peering: the TLS handshake for {ServerName} from {Client} failed: {Detail}.")]
    public static partial void HandshakeFailed(ILogger logger, string serverName, string? client, string detail);

    [LoggerMessage(4010, LogLevel.Warning, "Peering: {Count} {What} log lines left out in the last {Seconds:0.#} s (LogRateLimit {Limit} per second; PeeringCounters count every one).")]
    public static partial void Suppressed(ILogger logger, long count, string what, double seconds, int limit);
}

/// <summary>
/// Thins one kind of the terminator's per-connection or per-request warnings to <c>limit</c> a second, writing how many
/// were left out before the next one let through (event 4010), as the gateway's own rejections are thinned
/// (<see cref="MeshGateway.Gateway.LogRateLimiter"/>, <c>MeshGateway:LogRateLimit</c>).
/// </summary>
internal sealed class PeeringLogThrottle(ILogger logger, string what, int limit, TimeProvider time)
{
    /// <summary>Null when <c>limit</c> is 0: no limit, as <c>MeshGateway:LogRateLimit</c> 0.</summary>
    private readonly MeshGateway.Gateway.LogRateLimiter? _limiter = limit == 0 ? null : new(limit, TimeSpan.FromSeconds(1), time);

    /// <summary>Whether to write one more event of this kind; writes the "left out" line first when some were.</summary>
    public bool Allow()
    {
        if (!logger.IsEnabled(LogLevel.Warning))
        {
            return false;
        }

        if (_limiter is null)
        {
            return true;
        }

        if (!_limiter.TryAcquire(out long suppressed, out TimeSpan since))
        {
            return false;
        }

        if (suppressed > 0)
        {
            PeeringLog.Suppressed(logger, suppressed, what, since.TotalSeconds, limit);
        }

        return true;
    }
}

/// <summary>
/// The host's logging as the terminator's private Kestrel and YARP see it: the framework's categories
/// (<c>Microsoft.*</c>: ASP.NET Core, hosting; <c>Yarp.*</c>) from Warning up, ASP.NET Core's hosting diagnostics and
/// YARP's forwarder not at all, every other category (the terminator's own) as the host configured it.
/// </summary>
/// <remarks>
/// <para>Below Warning those categories write per request and per connection: the hosting diagnostics "Request
/// starting" and "Request finished" and YARP's "Proxying to" and "Received HTTP response" at Information, Kestrel's
/// connection events at Debug, i.e. four lines per forwarded request into a host whose default level is Information
/// (measured with a console logger at Information: 0.70x the requests/s at 1.7x the CPU per request,
/// docs/benchmarks.md, issue 14). A mesh gateway writes no access log unless asked (Envoy's has none by default); the
/// terminator's own events (category <c>MeshGateway.Peering</c>) say what an operator needs and its counters count the
/// rest.</para>
/// <para>The hosting diagnostics category is silenced whole: enabled at any level, it starts an
/// <see cref="System.Diagnostics.Activity"/> and a logging scope for every request (~5 us per request, measured), for
/// events that are per request or about a failed start (which <see cref="PeeringTerminator.StartAsync"/> throws to its
/// caller anyway); failures of the forwarding are logged by the terminator (4007) and unhandled exceptions by Kestrel's
/// category.</para>
/// <para>YARP's forwarder category is silenced whole too: its one warning is "error proxying", once per failed request,
/// which the terminator's own event 4007 says with the same error and is thinned to the rate limit
/// (<see cref="PeeringLogThrottle"/>); unthinned, a sidecar that went away would write two warnings per request.</para>
/// </remarks>
internal sealed class FrameworkWarningsLoggerFactory(ILoggerFactory host) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName)
    {
        if (categoryName is "Microsoft.AspNetCore.Hosting.Diagnostics" or "Yarp.ReverseProxy.Forwarder.HttpForwarder")
        {
            return Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        }

        ILogger logger = host.CreateLogger(categoryName);
        return categoryName.StartsWith("Microsoft.", StringComparison.Ordinal) || categoryName.StartsWith("Yarp", StringComparison.Ordinal)
            ? new WarningsOnly(logger, categoryName == "Microsoft.AspNetCore.Server.Kestrel")
            : logger;
    }

    public void AddProvider(ILoggerProvider provider) => host.AddProvider(provider);

    public void Dispose()
    {
        // The host owns its logging.
    }

    /// <param name="inner">The host's logger for the category.</param>
    /// <param name="kestrel">
    /// Kestrel's own category, whose start-up warning "HTTP/2 is not enabled ... TLS is not enabled" is left out: it
    /// judges the in-process end point, which carries no TLS because the terminator does the handshake; each connection
    /// brings its TLS and ALPN features, and <c>h2</c> selects HTTP/2 (tested by the routing tests over HTTP/2).
    /// </param>
    private sealed class WarningsOnly(ILogger inner, bool kestrel) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning && inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel) && !(kestrel && eventId.Name == "Http2DisabledWithHttp1AndNoTls"))
            {
                inner.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
