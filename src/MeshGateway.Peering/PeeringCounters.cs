namespace MeshGateway.Peering;

/// <summary>Running totals of a <see cref="PeeringTerminator"/>.</summary>
public sealed class PeeringCounters
{
    private readonly long[] _refused = new long[(int)HandshakeRefusal.UntrustedChain + 1];
    private long _connections;
    private long _handshakes;
    private long _requests;
    private long _unrouted;
    private long _upstreamFailures;
    private long _retries;
    private long _timeouts;
    private long _sidecarConnections;
    private long _sidecarConnectFailures;

    internal PeeringCounters()
    {
    }

    /// <summary>Connections handed over by the gateway listener.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>Peer client certificates accepted (each a completed mTLS handshake, unless the client then gave up).</summary>
    public long HandshakesAccepted => Interlocked.Read(ref _handshakes);

    /// <summary>Handshakes refused, all reasons.</summary>
    public long HandshakesRefused
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _refused.Length; i++)
            {
                total += Interlocked.Read(ref _refused[i]);
            }

            return total;
        }
    }

    /// <summary>Requests given a route and forwarded (or attempted) to a sidecar.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests no route rule matched (answered 404, as Envoy does).</summary>
    public long Unrouted => Interlocked.Read(ref _unrouted);

    /// <summary>
    /// Routed requests that did not complete with a sidecar: none available (answered 503), no connection or a refused
    /// sidecar certificate (502), a timeout (504), or the exchange cut midway.
    /// </summary>
    public long UpstreamFailures => Interlocked.Read(ref _upstreamFailures);

    /// <summary>Retries of routed requests (a route's <c>RetryOn</c>, <c>RetryOnConnectFailure</c> or <c>RetryOnStatusCodes</c>), each on the target's next sidecar: Envoy's <c>upstream_rq_retry</c>.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Routed requests a timeout ended: a route's <c>RequestTimeout</c> (answered 504 when no response had begun, else reset; Envoy's <c>upstream_rq_timeout</c>) or the idle timeout (408, else reset). Also counted in <see cref="UpstreamFailures"/>.</summary>
    public long Timeouts => Interlocked.Read(ref _timeouts);

    /// <summary>Connections the terminator opened to sidecars (TCP and mTLS both completed): Envoy's <c>upstream_cx_total</c> less its failures.</summary>
    public long SidecarConnections => Interlocked.Read(ref _sidecarConnections);

    /// <summary>Connections to sidecars that failed (TCP refused or timed out, or the mTLS handshake failed, a refused sidecar certificate included): Envoy's <c>upstream_cx_connect_fail</c> and <c>upstream_cx_connect_timeout</c>.</summary>
    public long SidecarConnectFailures => Interlocked.Read(ref _sidecarConnectFailures);

    /// <summary>Handshakes refused for one reason.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The count.</returns>
    public long GetRefused(HandshakeRefusal reason) => Interlocked.Read(ref _refused[(int)reason]);

    internal void OnConnection() => Interlocked.Increment(ref _connections);

    internal void OnAccepted() => Interlocked.Increment(ref _handshakes);

    internal void OnRefused(HandshakeRefusal reason) => Interlocked.Increment(ref _refused[(int)reason]);

    internal void OnRequest() => Interlocked.Increment(ref _requests);

    internal void OnUnrouted() => Interlocked.Increment(ref _unrouted);

    internal void OnUpstreamFailure() => Interlocked.Increment(ref _upstreamFailures);

    internal void OnRetry() => Interlocked.Increment(ref _retries);

    internal void OnTimeout() => Interlocked.Increment(ref _timeouts);

    internal void OnSidecarConnection(bool opened) => Interlocked.Increment(ref opened ? ref _sidecarConnections : ref _sidecarConnectFailures);
}
