using System.Diagnostics.Metrics;
using MeshGateway.Gateway;

namespace MeshGateway.Peering;

/// <summary>
/// A hosted terminator's <see cref="PeeringCounters"/> as observable instruments of the gateway's <c>MeshGateway</c>
/// meter, created through the host's <see cref="IMeterFactory"/>: the admin endpoint's Prometheus page and OpenTelemetry
/// see them next to the listener's and the clusters' instruments.
/// </summary>
/// <remarks>
/// Observable, read at collection time from the counters the terminator keeps anyway: nothing is added to the request
/// path. Before the first snapshot (no terminator yet) every instrument reports 0.
/// </remarks>
internal sealed class PeeringMetrics : IDisposable
{
    public const string Connections = "meshgateway.peering.connections";
    public const string Handshakes = "meshgateway.peering.handshakes";
    public const string Requests = "meshgateway.peering.requests";
    public const string UpstreamFailures = "meshgateway.peering.upstream_failures";
    public const string Retries = "meshgateway.peering.retries";
    public const string Timeouts = "meshgateway.peering.timeouts";
    public const string SidecarConnections = "meshgateway.peering.sidecar_connections";
    public const string HandshakeResultTag = "meshgateway.peering.handshake.result";
    public const string RequestResultTag = "meshgateway.peering.request.result";
    public const string SidecarConnectionResultTag = "meshgateway.peering.sidecar_connection.result";

    /// <summary>Tag values by <see cref="HandshakeRefusal"/> value, written out as the listener's rejection reasons are (GatewayMetrics).</summary>
    private static readonly string[] s_refusalTags =
    [
        "unknown_server_name", "no_client_certificate", "no_spiffe_id", "unknown_trust_domain", "not_exported_to_peer", "expired", "untrusted_chain",
    ];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public PeeringMetrics(Func<PeeringCounters?> counters, IMeterFactory? meterFactory)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(new MeterOptions(GatewayMetricNames.MeterName)) ?? new Meter(GatewayMetricNames.MeterName);
        _meter.CreateObservableCounter(Connections, () => counters()?.Connections ?? 0, "{connection}", "Connections handed to the peering terminator (HTTP-like exports).");
        _meter.CreateObservableCounter(Handshakes, () => HandshakeMeasurements(counters()), "{handshake}", "Peer TLS handshakes: accepted, or refused and why.");
        _meter.CreateObservableCounter(Requests, () => RequestMeasurements(counters()), "{request}", "Terminated requests: routed to a chain target, or unrouted (404).");
        _meter.CreateObservableCounter(UpstreamFailures, () => counters()?.UpstreamFailures ?? 0, "{request}", "Requests no sidecar answered (502, 503, 504, 408).");
        _meter.CreateObservableCounter(Retries, () => counters()?.Retries ?? 0, "{retry}", "Retries of requests on the next sidecar (a route's RetryOn, RetryOnConnectFailure or RetryOnStatusCodes).");
        _meter.CreateObservableCounter(Timeouts, () => counters()?.Timeouts ?? 0, "{request}", "Requests a timeout ended: a route's RequestTimeout (504) or the idle timeout (408).");
        _meter.CreateObservableCounter(SidecarConnections, () => SidecarConnectionMeasurements(counters()), "{connection}", "Connections to local sidecars: opened (TCP and mTLS), or failed.");
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static List<Measurement<long>> HandshakeMeasurements(PeeringCounters? counters)
    {
        var measurements = new List<Measurement<long>>(s_refusalTags.Length + 1)
        {
            new(counters?.HandshakesAccepted ?? 0, new KeyValuePair<string, object?>(HandshakeResultTag, "accepted")),
        };
        for (int reason = 0; reason < s_refusalTags.Length; reason++)
        {
            measurements.Add(new(counters?.GetRefused((HandshakeRefusal)reason) ?? 0, new KeyValuePair<string, object?>(HandshakeResultTag, s_refusalTags[reason])));
        }

        return measurements;
    }

    private static Measurement<long>[] SidecarConnectionMeasurements(PeeringCounters? counters) =>
    [
        new(counters?.SidecarConnections ?? 0, new KeyValuePair<string, object?>(SidecarConnectionResultTag, "opened")),
        new(counters?.SidecarConnectFailures ?? 0, new KeyValuePair<string, object?>(SidecarConnectionResultTag, "failed")),
    ];

    private static Measurement<long>[] RequestMeasurements(PeeringCounters? counters) =>
    [
        new(counters?.Requests ?? 0, new KeyValuePair<string, object?>(RequestResultTag, "routed")),
        new(counters?.Unrouted ?? 0, new KeyValuePair<string, object?>(RequestResultTag, "unrouted")),
    ];
}
