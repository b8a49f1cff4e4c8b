using System.Net.Sockets;
using System.Diagnostics.Metrics;
using MeshGateway.Routing;
using MeshGateway.Splicing;

namespace MeshGateway.Gateway;

/// <summary>The names of the gateway's <see cref="System.Diagnostics.Metrics"/> meter and instruments.</summary>
public static class GatewayMetricNames
{
    /// <summary>The meter: <c>MeshGateway</c>.</summary>
    public const string MeterName = "MeshGateway";

    /// <summary>Up-down counter: connections open now (reading a hello or spliced).</summary>
    public const string ActiveConnections = "meshgateway.connections.active";

    /// <summary>Counter: connections accepted.</summary>
    public const string AcceptedConnections = "meshgateway.connections.accepted";

    /// <summary>Counter: connections closed without splicing; tag <c>error.type</c> (the rejection reason, e.g. <c>no_route</c>).</summary>
    public const string RejectedConnections = "meshgateway.connections.rejected";

    /// <summary>Counter: connections routed and spliced; tag <c>meshgateway.route.kind</c> (<c>exact</c>, <c>wildcard</c>).</summary>
    public const string RoutedConnections = "meshgateway.connections.routed";

    /// <summary>Counter: connections handed to a route's <see cref="MeshGateway.Routing.Route.Terminator"/> instead of being spliced.</summary>
    public const string TerminatedConnections = "meshgateway.connections.terminated";

    /// <summary>Counter: connections cut at the end of a drain.</summary>
    public const string CutConnections = "meshgateway.connections.cut";

    /// <summary>
    /// Counter: failed or timed-out upstream connect attempts; tag <c>error.type</c> (<c>timeout</c>, <c>connection_refused</c>,
    /// <c>host_unreachable</c>, <c>network_unreachable</c>, <c>connection_reset</c>, else <c>socket_error</c>).
    /// </summary>
    public const string UpstreamConnectFailures = "meshgateway.upstream.connect_failures";

    /// <summary>Counter: endpoint choices made in panic mode (no healthy endpoint in the cluster).</summary>
    public const string PanicSelections = "meshgateway.upstream.panic_selections";

    /// <summary>
    /// Counter: bytes relayed, unit <c>By</c>; tag <c>meshgateway.direction</c> (<c>upstream</c>: client to upstream,
    /// <c>downstream</c>). Not OpenTelemetry's <c>network.io.direction</c>: its <c>transmit</c>/<c>receive</c> describe one host's
    /// interface, while every relayed byte is both received and sent here.
    /// </summary>
    public const string Bytes = "meshgateway.bytes";

    /// <summary>
    /// Histogram: spliced connection duration in seconds; tag <c>meshgateway.close.reason</c>, and <c>error.type</c> (the same
    /// value) when the splice ended on an error, as Kestrel's <c>kestrel.connection.duration</c> does.
    /// </summary>
    public const string ConnectionDuration = "meshgateway.connection.duration";

    /// <summary>Histogram: time from accept to a complete ClientHello, in seconds.</summary>
    public const string HelloDuration = "meshgateway.hello.duration";

    /// <summary>Counter: failed accepts (for example out of file descriptors).</summary>
    public const string AcceptErrors = "meshgateway.accept.errors";

    /// <summary>
    /// The tag naming the listener a connection came in on (<see cref="GatewayListenerOptions.EndPointNames"/>, else its
    /// <c>ip:port</c>): on <see cref="ActiveConnections"/>, <see cref="AcceptedConnections"/>, <see cref="RejectedConnections"/>,
    /// <see cref="RoutedConnections"/>, <see cref="TerminatedConnections"/>, <see cref="Bytes"/>, <see cref="ConnectionDuration"/>, <see cref="HelloDuration"/>
    /// and <see cref="AcceptErrors"/>.
    /// </summary>
    public const string ListenerTag = "meshgateway.listener";
}

/// <summary>The instruments. Each records only when a listener is enabled, and tags are built from cached strings (no allocation).</summary>
internal sealed class GatewayMetrics : IDisposable
{
    // OpenTelemetry's standard attribute where one fits (error.type); the others are namespaced as the conventions ask
    // for attributes of one's own.
    private const string ErrorTypeTag = "error.type";
    private const string RouteKindTag = "meshgateway.route.kind";
    private const string DirectionTag = "meshgateway.direction";
    private const string CloseReasonTag = "meshgateway.close.reason";

    private static readonly string[] s_reasonTags =
    [
        "not_tls", "invalid_hello", "hello_too_large", "hello_timeout", "client_closed", "no_sni", "no_route", "no_endpoint",
        "upstream_unreachable", "connection_limit", "stopping", "endpoint_unresolved", "proxy_header_missing", "proxy_header_invalid",
        "invalid_server_name", "terminator_failed",
    ];

    private static readonly string[] s_closeTags =
    [
        "none", "client_closed", "upstream_closed", "client_error", "upstream_error", "idle_timeout", "max_duration", "aborted",
    ];

    // Advised bucket boundaries in seconds. OpenTelemetry's defaults (0, 5, 10, 25, … 10000) are meant for milliseconds:
    // with seconds nearly every value lands in the first bucket. Spliced connections last from milliseconds (a probe)
    // to days (a tunnel); a ClientHello normally arrives within a round trip and is cut at HelloTimeout (10 s).
    private static readonly double[] s_connectionDurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400];
    private static readonly double[] s_helloDurationBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly UpDownCounter<long> _active;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _routed;
    private readonly Counter<long> _terminated;
    private readonly Counter<long> _cut;
    private readonly Counter<long> _connectFailures;
    private readonly Counter<long> _panic;
    private readonly Counter<long> _bytes;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _helloDuration;
    private readonly Counter<long> _acceptErrors;

    public GatewayMetrics(IMeterFactory? meterFactory)
    {
        if (meterFactory is null)
        {
            _meter = new Meter(GatewayMetricNames.MeterName);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(new MeterOptions(GatewayMetricNames.MeterName));
        }

        _active = _meter.CreateUpDownCounter<long>(GatewayMetricNames.ActiveConnections, "{connection}", "Connections open now.");
        _accepted = _meter.CreateCounter<long>(GatewayMetricNames.AcceptedConnections, "{connection}", "Connections accepted.");
        _rejected = _meter.CreateCounter<long>(GatewayMetricNames.RejectedConnections, "{connection}", "Connections closed without splicing.");
        _routed = _meter.CreateCounter<long>(GatewayMetricNames.RoutedConnections, "{connection}", "Connections routed and spliced.");
        _terminated = _meter.CreateCounter<long>(GatewayMetricNames.TerminatedConnections, "{connection}", "Connections handed to a route's terminator.");
        _cut = _meter.CreateCounter<long>(GatewayMetricNames.CutConnections, "{connection}", "Connections cut at the end of a drain.");
        _connectFailures = _meter.CreateCounter<long>(GatewayMetricNames.UpstreamConnectFailures, "{attempt}", "Failed or timed-out upstream connects.");
        _panic = _meter.CreateCounter<long>(GatewayMetricNames.PanicSelections, "{selection}", "Endpoint choices made with no healthy endpoint.");
        _bytes = _meter.CreateCounter<long>(GatewayMetricNames.Bytes, "By", "Bytes relayed.");
        _duration = _meter.CreateHistogram(GatewayMetricNames.ConnectionDuration, "s", "Duration of spliced connections.", tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_connectionDurationBuckets });
        _helloDuration = _meter.CreateHistogram(GatewayMetricNames.HelloDuration, "s", "Time from accept to a complete ClientHello.", tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = s_helloDurationBuckets });
        _acceptErrors = _meter.CreateCounter<long>(GatewayMetricNames.AcceptErrors, "{error}", "Failed accepts.");
    }

    public void Accepted(in KeyValuePair<string, object?> listener)
    {
        if (_accepted.Enabled)
        {
            _accepted.Add(1, listener);
        }
    }

    public void ConnectionOpened(in KeyValuePair<string, object?> listener)
    {
        if (_active.Enabled)
        {
            _active.Add(1, listener);
        }
    }

    public void ConnectionEnded(in KeyValuePair<string, object?> listener)
    {
        if (_active.Enabled)
        {
            _active.Add(-1, listener);
        }
    }

    public void Rejected(RejectionReason reason, in KeyValuePair<string, object?> listener)
    {
        if (_rejected.Enabled)
        {
            _rejected.Add(1, new KeyValuePair<string, object?>(ErrorTypeTag, s_reasonTags[(int)reason]), listener);
        }
    }

    public void Routed(RouteKind kind, in KeyValuePair<string, object?> listener)
    {
        if (_routed.Enabled)
        {
            _routed.Add(1, new KeyValuePair<string, object?>(RouteKindTag, kind == RouteKind.Exact ? "exact" : "wildcard"), listener);
        }
    }

    public void Terminated(in KeyValuePair<string, object?> listener)
    {
        if (_terminated.Enabled)
        {
            _terminated.Add(1, listener);
        }
    }

    public void Cut(int count)
    {
        if (_cut.Enabled)
        {
            _cut.Add(count);
        }
    }

    public void ConnectFailed(SocketError error)
    {
        if (_connectFailures.Enabled)
        {
            _connectFailures.Add(1, new KeyValuePair<string, object?>(ErrorTypeTag, ConnectErrorType(error)));
        }
    }

    /// <summary>A low-cardinality <c>error.type</c> for a failed connect (literals: no allocation).</summary>
    internal static string ConnectErrorType(SocketError error) => error switch
    {
        SocketError.TimedOut => "timeout",
        SocketError.ConnectionRefused => "connection_refused",
        SocketError.HostUnreachable or SocketError.HostDown => "host_unreachable",
        SocketError.NetworkUnreachable or SocketError.NetworkDown => "network_unreachable",
        SocketError.ConnectionReset or SocketError.ConnectionAborted => "connection_reset",
        _ => "socket_error",
    };

    public void Panic()
    {
        if (_panic.Enabled)
        {
            _panic.Add(1);
        }
    }

    public void AcceptFailed(in KeyValuePair<string, object?> listener)
    {
        if (_acceptErrors.Enabled)
        {
            _acceptErrors.Add(1, listener);
        }
    }

    public void HelloRead(TimeSpan elapsed, in KeyValuePair<string, object?> listener)
    {
        if (_helloDuration.Enabled)
        {
            _helloDuration.Record(elapsed.TotalSeconds, listener);
        }
    }

    /// <summary>Bytes of a running splice, in batches (<see cref="SpliceSession.ReportBytes"/>).</summary>
    public void OnRelayed(bool fromClient, long count, in KeyValuePair<string, object?> listener)
    {
        if (_bytes.Enabled && count > 0)
        {
            _bytes.Add(count, new KeyValuePair<string, object?>(DirectionTag, fromClient ? "upstream" : "downstream"), listener);
        }
    }

    /// <summary>A splice ended: the bytes not yet reported while it ran, and its duration.</summary>
    public void Spliced(long bytesFromClient, long bytesFromUpstream, TimeSpan duration, SpliceCloseReason reason, in KeyValuePair<string, object?> listener)
    {
        OnRelayed(fromClient: true, bytesFromClient, listener);
        OnRelayed(fromClient: false, bytesFromUpstream, listener);
        if (_duration.Enabled)
        {
            string tag = s_closeTags[(int)reason];
            var closeReason = new KeyValuePair<string, object?>(CloseReasonTag, tag);
            if (reason is SpliceCloseReason.ClientError or SpliceCloseReason.UpstreamError or SpliceCloseReason.Aborted)
            {
                _duration.Record(duration.TotalSeconds, closeReason, new KeyValuePair<string, object?>(ErrorTypeTag, tag), listener);
            }
            else
            {
                _duration.Record(duration.TotalSeconds, closeReason, listener);
            }
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
