using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.Preflight;
using MeshGateway.Splicing;
using MeshGateway.Tls;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Hosting;

/// <summary>
/// The hosted gateway's log events (source-generated, fixed ids). Categories: <see cref="GatewayCategory"/> for
/// lifecycle, rejections and failures; <see cref="AccessLogCategory"/> for the one-line-per-connection access log;
/// <see cref="RoutesCategory"/> for route sources.
/// </summary>
internal static partial class MeshGatewayLog
{
    public const string GatewayCategory = "MeshGateway.Gateway";
    public const string AccessLogCategory = "MeshGateway.AccessLog";
    public const string RoutesCategory = "MeshGateway.Routes";
    public const string ConsulCategory = "MeshGateway.Consul";

    [LoggerMessage(EventId = 1, EventName = "Listening", Level = LogLevel.Information, Message = "Mesh gateway listening on {Listener} ({EndPoint})")]
    public static partial void Listening(ILogger logger, string listener, IPEndPoint endPoint);

    [LoggerMessage(EventId = 2, EventName = "Stopped", Level = LogLevel.Information, Message = "Mesh gateway stopped: {Drained} connections finished during the drain, {Cut} were cut")]
    public static partial void Stopped(ILogger logger, int drained, int cut);

    [LoggerMessage(EventId = 3, EventName = "ConnectionClosed", Level = LogLevel.Information, Message = "{Client} -> {Listener} sni={ServerName} route={Route} upstream={Upstream} up={BytesFromClient} down={BytesFromUpstream} duration={DurationMs}ms close={CloseReason} error={SocketError}")]
    public static partial void ConnectionClosed(ILogger logger, EndPoint? client, IPEndPoint listener, string serverName, string route, IPEndPoint upstream, long bytesFromClient, long bytesFromUpstream, double durationMs, SpliceCloseReason closeReason, SocketError socketError);

    [LoggerMessage(EventId = 4, EventName = "ConnectionRejected", Level = LogLevel.Information, Message = "Rejected {Client} -> {Listener}: {Reason} sni={ServerName} hello={HelloError}")]
    public static partial void ConnectionRejected(ILogger logger, EndPoint? client, IPEndPoint listener, RejectionReason reason, string serverName, ClientHelloError helloError);

    [LoggerMessage(EventId = 5, EventName = "UpstreamConnectFailed", Level = LogLevel.Warning, Message = "Connect to {Upstream} for {Route} failed (attempt {Attempt}, timed out: {TimedOut}, error: {SocketError}, panic: {Panic}); counted toward the endpoint's outlier detection (ejected after consecutive failures)")]
    public static partial void UpstreamConnectFailed(ILogger logger, IPEndPoint upstream, string route, int attempt, bool timedOut, SocketError socketError, bool panic);

    [LoggerMessage(EventId = 6, EventName = "AcceptFailed", Level = LogLevel.Warning, Message = "Accept on {Listener} failed with {SocketError}; retrying in {RetryDelayMs} ms")]
    public static partial void AcceptFailed(ILogger logger, IPEndPoint listener, SocketError socketError, double retryDelayMs);

    [LoggerMessage(EventId = 13, EventName = "ConnectionLimit", Level = LogLevel.Information, Message = "Connection limit {ConnectionLimit} (MaxConnections {MaxConnections}, open-file limit {FileDescriptorLimit} with {Reserve} descriptors kept for the runtime, the agent client and logs, and {PipeDescriptors} for kernel pipes; -1: no limit to read), {Engine} engine")]
    public static partial void ConnectionLimit(ILogger logger, int connectionLimit, int maxConnections, long fileDescriptorLimit, int reserve, int pipeDescriptors, GatewayIoEngine engine);

    [LoggerMessage(EventId = 14, EventName = "LogSuppressed", Message = "{Count} {What} log lines left out in the last {Seconds:0.#} s (MeshGateway:LogRateLimit {Limit} per second; metrics count every one)")]
    public static partial void LogSuppressed(ILogger logger, LogLevel level, long count, string what, double seconds, int limit);

    [LoggerMessage(EventId = 7, EventName = "RoutesLoaded", Level = LogLevel.Information, Message = "Routes loaded from {Source}: {Count} routes")]
    public static partial void RoutesLoaded(ILogger logger, string source, int count);

    [LoggerMessage(EventId = 8, EventName = "RoutesReloadFailed", Level = LogLevel.Error, Message = "The routes file '{Path}' could not be reloaded; the last good routes stay in use: {Error}")]
    public static partial void RoutesReloadFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 9, EventName = "RoutesWatchError", Level = LogLevel.Warning, Message = "Watching the routes file '{Path}' failed; changes may be missed")]
    public static partial void RoutesWatchError(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 51, EventName = "StopPropagating", Level = LogLevel.Information, Message = "Deregistered; still accepting for {Delay} so peers see the gateway leave, then stopping and draining")]
    public static partial void StopPropagating(ILogger logger, TimeSpan delay);

    [LoggerMessage(EventId = 50, EventName = "RoutesFileMissing", Level = LogLevel.Warning, Message = "The routes file '{Path}' is gone (deleted, or a symbolic link to nothing); the last good routes stay in use until it is back")]
    public static partial void RoutesFileMissing(ILogger logger, string path);

    [LoggerMessage(EventId = 10, EventName = "ListenFailed", Level = LogLevel.Critical, Message = "Mesh gateway cannot listen on {Listener}: {SocketError}")]
    public static partial void ListenFailed(ILogger logger, string listener, SocketError socketError);

    [LoggerMessage(EventId = 41, EventName = "ConsulTlsVerificationDisabled", Level = LogLevel.Warning, Message = "TLS VERIFICATION OF THE CONSUL AGENT IS DISABLED for {Address} (Consul:VerifyServerCertificate=false or CONSUL_HTTP_SSL_VERIFY=false): anyone on the path can impersonate the agent and read the ACL token")]
    public static partial void ConsulTlsVerificationDisabled(ILogger logger, string address);

    [LoggerMessage(EventId = 20, EventName = "ConsulPreflight", Level = LogLevel.Information, Message = "Consul agent {Address}: datacenter {Datacenter}, version {Version}, Connect enabled: {ConnectEnabled}, trust domain {TrustDomain}")]
    public static partial void ConsulPreflight(ILogger logger, string address, string datacenter, string version, bool? connectEnabled, string trustDomain);

    [LoggerMessage(EventId = 21, EventName = "ConsulPreflightProblem", Level = LogLevel.Warning, Message = "Consul preflight warning ({Check}, datacenter {Datacenter}): {Problem} Fix: {Fix}")]
    public static partial void ConsulPreflightProblem(ILogger logger, PreflightCheck check, string datacenter, string problem, string fix);

    [LoggerMessage(EventId = 26, EventName = "ConsulPreflightError", Level = LogLevel.Error, Message = "Consul preflight error ({Check}, datacenter {Datacenter}): {Problem} Fix: {Fix}")]
    public static partial void ConsulPreflightError(ILogger logger, PreflightCheck check, string datacenter, string problem, string fix);

    [LoggerMessage(EventId = 22, EventName = "ConsulWatchError", Level = LogLevel.Warning, Message = "Consul {What} failed (logged once per cause; retrying with back-off; routes stay as they are): {Error}")]
    public static partial void ConsulWatchError(ILogger logger, string what, string error);

    [LoggerMessage(EventId = 30, EventName = "ConsulWatchRecovered", Level = LogLevel.Information, Message = "Consul {What} answers again after {Failures} failed requests")]
    public static partial void ConsulWatchRecovered(ILogger logger, string what, long failures);

    [LoggerMessage(EventId = 23, EventName = "ConsulRoutesUpdated", Level = LogLevel.Information, Message = "Routes from Consul: {Routes} routes; {Warnings} things left out (logged as warnings when they first appear)")]
    public static partial void ConsulRoutesUpdated(ILogger logger, int routes, int warnings);

    [LoggerMessage(EventId = 11, EventName = "HostNameUnresolved", Level = LogLevel.Warning, Message = "Host-name endpoint {HostName} cannot be resolved, so it takes no connections until it resolves: {Error}")]
    public static partial void HostNameUnresolved(ILogger logger, string hostName, string error);

    [LoggerMessage(EventId = 12, EventName = "HostNameStillUnresolved", Level = LogLevel.Debug, Message = "Host-name endpoint {HostName} still cannot be resolved: {Error}")]
    public static partial void HostNameStillUnresolved(ILogger logger, string hostName, string error);

    [LoggerMessage(EventId = 27, EventName = "ConsulRouteWarning", Level = LogLevel.Warning, Message = "Routes from Consul: {Warning}")]
    public static partial void ConsulRouteWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 28, EventName = "ConsulRoutesFailed", Level = LogLevel.Error, Message = "A Consul catalog view could not be converted into routes; the last good routes stay in use: {Error}")]
    public static partial void ConsulRoutesFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 24, EventName = "ConsulRegistered", Level = LogLevel.Information, Message = "Registered mesh gateway {ServiceId} at {Address}:{Port} with the Consul agent")]
    public static partial void ConsulRegistered(ILogger logger, string serviceId, string address, int port);

    [LoggerMessage(EventId = 25, EventName = "ConsulDeregistered", Level = LogLevel.Information, Message = "Deregistered mesh gateway {ServiceId} from the Consul agent")]
    public static partial void ConsulDeregistered(ILogger logger, string serviceId);

    [LoggerMessage(EventId = 29, EventName = "ConsulDeregisterFailed", Level = LogLevel.Warning, Message = "Deregistering mesh gateway {ServiceId} from the Consul agent failed; draining anyway (the agent's check marks it critical once the listeners close): {Error}")]
    public static partial void ConsulDeregisterFailed(ILogger logger, string serviceId, string error);

    [LoggerMessage(EventId = 52, EventName = "ConsulRegistrationRead", Level = LogLevel.Information, Message = "Consul:Register is false: listeners and timeouts come from the registration {ServiceId}: listeners {Listeners}, connect_timeout_ms {ConnectTimeoutMs}, remote TCP keepalive {KeepAlive}")]
    public static partial void ConsulRegistrationRead(ILogger logger, string serviceId, string listeners, int connectTimeoutMs, bool keepAlive);

    [LoggerMessage(EventId = 54, EventName = "ConsulPeeringUnavailable", Level = LogLevel.Information, Message = "Cluster peering is not served: {Reason}; peering is not read again (set Consul:Peering to true to require it)")]
    public static partial void ConsulPeeringUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 53, EventName = "ConsulNoRegistration", Level = LogLevel.Information, Message = "Consul:Register is false and the agent has no service {ServiceId}: listeners and timeouts come from the options")]
    public static partial void ConsulNoRegistration(ILogger logger, string serviceId);

    [LoggerMessage(EventId = 60, EventName = "AdminListening", Level = LogLevel.Information, Message = "Admin endpoint listening on http://{EndPoint} (/ready, /stats/prometheus, /metrics, /routes)")]
    public static partial void AdminListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 61, EventName = "AdminNotLoopback", Level = LogLevel.Warning, Message = "The admin endpoint listens on {EndPoint}, not a loopback address: anyone who reaches it reads the gateway's routes and metrics")]
    public static partial void AdminNotLoopback(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(EventId = 62, EventName = "AdminFailed", Level = LogLevel.Error, Message = "The admin endpoint failed to answer a request; the connection was closed")]
    public static partial void AdminFailed(ILogger logger, Exception exception);
}

/// <summary>Maps Core's <see cref="GatewayObserver"/> events to <see cref="MeshGatewayLog"/>.</summary>
/// <remarks>
/// Rejections, failed connects and failed accepts are rate-limited (<see cref="MeshGatewayOptions.LogRateLimit"/> lines
/// per second each, then a "left out" summary): a flood of bad connections would otherwise write a line per
/// connection (measured: ~770 KB/s of log at 6,500 rejections/s, issue 16). Metrics stay exact.
/// </remarks>
internal sealed class LoggingGatewayObserver : GatewayObserver
{
    private readonly ILogger _gateway;
    private readonly ILogger _accessLog;
    private readonly int _limit;
    private readonly LogRateLimiter? _rejections;
    private readonly LogRateLimiter? _connectFailures;
    private readonly LogRateLimiter? _acceptFailures;

    public LoggingGatewayObserver(ILoggerFactory loggerFactory, int logRateLimit = 0, TimeProvider? timeProvider = null)
    {
        _gateway = loggerFactory.CreateLogger(MeshGatewayLog.GatewayCategory);
        _accessLog = loggerFactory.CreateLogger(MeshGatewayLog.AccessLogCategory);
        _limit = logRateLimit;
        if (logRateLimit > 0)
        {
            _rejections = new LogRateLimiter(logRateLimit, TimeSpan.FromSeconds(1), timeProvider);
            _connectFailures = new LogRateLimiter(logRateLimit, TimeSpan.FromSeconds(1), timeProvider);
            _acceptFailures = new LogRateLimiter(logRateLimit, TimeSpan.FromSeconds(1), timeProvider);
        }
    }

    public override void OnConnectionClosed(in ConnectionClosedEvent connection)
    {
        // The guard keeps the server-name string and the boxing off the path when the access log is off.
        if (_accessLog.IsEnabled(LogLevel.Information))
        {
            string serverName = Ascii(connection.ServerName);
            MeshGatewayLog.ConnectionClosed(_accessLog, connection.ClientEndPoint, connection.ListenerEndPoint, serverName, connection.Route.Pattern, connection.UpstreamEndPoint, connection.BytesFromClient, connection.BytesFromUpstream, connection.Duration.TotalMilliseconds, connection.CloseReason, connection.Error);
        }
    }

    public override void OnConnectionRejected(in ConnectionRejectedEvent rejection)
    {
        if (_gateway.IsEnabled(LogLevel.Information) && Allow(_rejections, LogLevel.Information, "rejected-connection"))
        {
            string serverName = Ascii(rejection.ServerName);
            MeshGatewayLog.ConnectionRejected(_gateway, rejection.ClientEndPoint, rejection.ListenerEndPoint, rejection.Reason, serverName, rejection.HelloError);
        }
    }

    public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure)
    {
        if (_gateway.IsEnabled(LogLevel.Warning) && Allow(_connectFailures, LogLevel.Warning, "upstream-connect-failure"))
        {
            MeshGatewayLog.UpstreamConnectFailed(_gateway, failure.UpstreamEndPoint, failure.Route.Pattern, failure.Attempt, failure.TimedOut, failure.Error, failure.Panic);
        }
    }

    public override void OnAcceptFailed(IPEndPoint listener, SocketError socketError, TimeSpan retryDelay)
    {
        if (Allow(_acceptFailures, LogLevel.Warning, "accept-failure"))
        {
            MeshGatewayLog.AcceptFailed(_gateway, listener, socketError, retryDelay.TotalMilliseconds);
        }
    }

    public override void OnStopped(GatewayStopResult result) => MeshGatewayLog.Stopped(_gateway, result.Drained, result.Cut);

    /// <summary>
    /// The server name for a log line. The reader accepts any host_name bytes (the gateway rejects the non-ASCII and
    /// control ones, and logs that rejection), so bytes outside visible ASCII are written as <c>\xNN</c>: a peer must not
    /// be able to forge log lines with a newline in its SNI.
    /// </summary>
    private static string Ascii(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
        {
            return "-";
        }

        if (!name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E))
        {
            return System.Text.Encoding.ASCII.GetString(name);
        }

        var escaped = new System.Text.StringBuilder(name.Length * 4);
        foreach (byte b in name)
        {
            if (b is >= 0x21 and <= 0x7E && b != (byte)'\\')
            {
                escaped.Append((char)b);
            }
            else
            {
                escaped.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{b:X2}");
            }
        }

        return escaped.ToString();
    }

    /// <summary>Whether to log one event of a kind; logs the "left out" summary first when some were.</summary>
    private bool Allow(LogRateLimiter? limiter, LogLevel level, string what)
    {
        if (limiter is null)
        {
            return true;
        }

        if (!limiter.TryAcquire(out long suppressed, out TimeSpan since))
        {
            return false;
        }

        if (suppressed > 0 && _gateway.IsEnabled(level))
        {
            MeshGatewayLog.LogSuppressed(_gateway, level, suppressed, what, since.TotalSeconds, _limit);
        }

        return true;
    }

}
