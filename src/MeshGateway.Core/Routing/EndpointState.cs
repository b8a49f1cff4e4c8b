using System.Net;

namespace MeshGateway.Routing;

/// <summary>
/// The live, mutable state of one <see cref="UpstreamEndpoint"/> of one cluster: connections in flight, ejection after
/// failed connects (consecutive failures, ejections in a row), running counters and, for a host-name endpoint, the last resolved address.
/// </summary>
/// <remarks>
/// <para>
/// <b>Shared across routing snapshots.</b> Every catalog change builds a new <see cref="RouteTable"/> with new
/// <see cref="UpstreamCluster"/>s. When <see cref="RouteTableSource"/> publishes it, each endpoint that was already
/// there (same cluster name, same <see cref="UpstreamEndpoint.Key"/>) takes over the state object of the previous
/// table, so ejections hold, connection counts stay exact and a resolved host name stays resolved under churn. An
/// endpoint that leaves the table drops its state: if it comes back later it starts fresh, and no other endpoint
/// ever receives it.
/// </para>
/// <para>
/// A connection keeps the state object it counted itself on and releases that same object when it ends, whichever
/// table is current by then; the count can neither leak nor go negative.
/// </para>
/// <para>Every member is thread-safe, lock-free and allocation-free.</para>
/// </remarks>
public sealed class EndpointState
{
    private readonly bool _fixedAddress;
    private IPEndPoint? _address;
    private int _active;
    private long _ejectedUntil;
    private long _lastEjectionEnd;
    private int _consecutiveFailures;
    private int _ejectionMultiplier;
    private long _ejections;
    private long _connections;
    private long _connectFailures;
    private long _resolutionFailures;
    private string? _lastResolutionError;
    private int _resolutionAttempted;

    internal EndpointState(UpstreamEndpoint endpoint)
    {
        _address = endpoint.EndPoint;
        _fixedAddress = endpoint.EndPoint is not null;
    }

    /// <summary>
    /// The address connections are dialled at: the endpoint's <see cref="UpstreamEndpoint.EndPoint"/>, or for a
    /// host-name endpoint the last address resolved in the background (<see langword="null"/> before the first
    /// successful resolution: the endpoint is then not chosen, not even in panic mode; a later failed lookup keeps the
    /// last good address).
    /// </summary>
    public IPEndPoint? Address => Volatile.Read(ref _address);

    /// <summary>Connections currently spliced to the endpoint.</summary>
    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Successful connects to the endpoint since its state was created.</summary>
    public long Connections => Interlocked.Read(ref _connections);

    /// <summary>Failed or timed-out connects to the endpoint since its state was created.</summary>
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);

    /// <summary>Failed or timed-out connects since the last successful one or the last ejection (see <see cref="OutlierDetection"/>).</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>How many times the endpoint was ejected since its state was created.</summary>
    public long Ejections => Interlocked.Read(ref _ejections);

    /// <summary>Failed resolutions of a host-name endpoint (always 0 for an IP endpoint).</summary>
    public long ResolutionFailures => Interlocked.Read(ref _resolutionFailures);

    /// <summary>Why the last resolution of a host-name endpoint failed; <see langword="null"/> after a success or for an IP endpoint.</summary>
    public string? LastResolutionError => Volatile.Read(ref _lastResolutionError);

    /// <summary>Whether a resolution of this host-name endpoint has completed (successfully or not).</summary>
    internal bool ResolutionAttempted => Volatile.Read(ref _resolutionAttempted) != 0;

    /// <summary>The <see cref="TimeProvider.GetTimestamp"/> until which the endpoint is ejected; 0 when it is not.</summary>
    internal long EjectedUntil => Volatile.Read(ref _ejectedUntil);

    /// <summary>Whether the endpoint is currently ejected after failed connects (see <see cref="OutlierDetection"/>).</summary>
    /// <param name="timeProvider">The clock the ejection was measured with.</param>
    /// <returns><see langword="true"/> while the ejection lasts.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    public bool IsEjected(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return Volatile.Read(ref _ejectedUntil) > timeProvider.GetTimestamp();
    }

    /// <summary>The ejection multiplier: ejections in a row, before the decay of <see cref="OutlierDetection.Interval"/> (tests read it).</summary>
    internal int EjectionMultiplier => Volatile.Read(ref _ejectionMultiplier);

    /// <summary>Records a successful connect: one more active connection, consecutive failures reset, ejection cleared.</summary>
    internal void OnConnected()
    {
        Interlocked.Increment(ref _active);
        Interlocked.Increment(ref _connections);
        if (Volatile.Read(ref _consecutiveFailures) != 0)
        {
            Volatile.Write(ref _consecutiveFailures, 0);
        }

        if (Volatile.Read(ref _ejectedUntil) != 0)
        {
            Volatile.Write(ref _ejectedUntil, 0);
        }
    }

    /// <summary>Records the end of a connection counted by <see cref="OnConnected"/> on this same object.</summary>
    internal void OnDisconnected() => Interlocked.Decrement(ref _active);

    /// <summary>Counts a failed connect.</summary>
    /// <returns>The consecutive failures, this one included.</returns>
    internal int OnConnectFailed()
    {
        Interlocked.Increment(ref _connectFailures);
        return Interlocked.Increment(ref _consecutiveFailures);
    }

    /// <summary>
    /// Ejects the endpoint (see <see cref="OutlierDetection"/>): the multiplier loses one per whole
    /// <see cref="OutlierDetection.Interval"/> spent outside an ejection since the last one ended, then counts this one.
    /// Called by the cluster under its ejection lock.
    /// </summary>
    internal void Eject(OutlierDetection detection, long now, long timestampFrequency)
    {
        int multiplier = Volatile.Read(ref _ejectionMultiplier);
        long lastEnd = Volatile.Read(ref _lastEjectionEnd);
        if (multiplier > 0 && now > lastEnd)
        {
            long intervalTicks = Math.Max(1, (long)(detection.Interval.TotalSeconds * timestampFrequency));
            long healthyIntervals = (now - lastEnd) / intervalTicks;
            multiplier = (int)Math.Max(0, multiplier - healthyIntervals);
        }

        multiplier = multiplier == int.MaxValue ? multiplier : multiplier + 1;
        long until = Math.Max(now + (long)(detection.EjectionTime(multiplier).TotalSeconds * timestampFrequency), 1);
        Volatile.Write(ref _ejectionMultiplier, multiplier);
        Volatile.Write(ref _lastEjectionEnd, until);
        Volatile.Write(ref _consecutiveFailures, 0);
        Interlocked.Increment(ref _ejections);
        Volatile.Write(ref _ejectedUntil, until);
    }

    /// <summary>Publishes a resolved address (host-name endpoints only; ignored for a fixed IP).</summary>
    internal void OnResolved(IPEndPoint address)
    {
        if (_fixedAddress)
        {
            return;
        }

        IPEndPoint? current = Volatile.Read(ref _address);
        if (current is null || !current.Equals(address))
        {
            Volatile.Write(ref _address, address);
        }

        Volatile.Write(ref _lastResolutionError, null);
        Volatile.Write(ref _resolutionAttempted, 1);
    }

    /// <summary>
    /// Records a failed resolution. The last good address stays in use (Envoy's <c>LOGICAL_DNS</c> keeps its last
    /// successful answer when DNS fails, so a DNS outage does not cut a working upstream); an endpoint that was never
    /// resolved stays unavailable.
    /// </summary>
    internal void OnResolutionFailed(string error)
    {
        if (_fixedAddress)
        {
            return;
        }

        Interlocked.Increment(ref _resolutionFailures);
        Volatile.Write(ref _lastResolutionError, error);
        Volatile.Write(ref _resolutionAttempted, 1);
    }
}
