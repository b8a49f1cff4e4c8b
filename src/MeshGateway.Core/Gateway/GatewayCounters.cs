namespace MeshGateway.Gateway;

/// <summary>Running totals of one <see cref="GatewayListener"/>, readable at any time (the same facts as its metrics, without a metrics listener).</summary>
public sealed class GatewayCounters
{
    private readonly long[] _rejected = new long[(int)RejectionReason.TerminatorFailed + 1];
    private long _accepted;
    private long _routed;
    private long _terminated;
    private long _connectFailures;
    private long _panicSelections;
    private long _acceptErrors;
    private long _cut;
    private long _observerErrors;

    internal GatewayCounters()
    {
    }

    /// <summary>Connections accepted (including those then rejected).</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections routed and spliced.</summary>
    public long Routed => Interlocked.Read(ref _routed);

    /// <summary>Connections handed to a route's <see cref="MeshGateway.Routing.Route.Terminator"/> instead of being spliced.</summary>
    public long Terminated => Interlocked.Read(ref _terminated);

    /// <summary>Failed or timed-out connect attempts.</summary>
    public long UpstreamConnectFailures => Interlocked.Read(ref _connectFailures);

    /// <summary>Endpoint choices made in panic mode (no healthy endpoint).</summary>
    public long PanicSelections => Interlocked.Read(ref _panicSelections);

    /// <summary>Failed accepts (each followed by a back-off).</summary>
    public long AcceptErrors => Interlocked.Read(ref _acceptErrors);

    /// <summary>Connections cut at the end of a drain.</summary>
    public long Cut => Interlocked.Read(ref _cut);

    /// <summary>
    /// Exceptions thrown by the <see cref="GatewayObserver"/> (every call is guarded: the gateway goes on regardless), and
    /// tasks of a <see cref="ConnectionTerminator"/> that faulted. An observer must not throw; this counts the ones that
    /// did, so a faulty observer is visible.
    /// </summary>
    public long ObserverErrors => Interlocked.Read(ref _observerErrors);

    /// <summary>All rejections.</summary>
    public long Rejected
    {
        get
        {
            long total = 0;
            for (int i = 0; i < _rejected.Length; i++)
            {
                total += Interlocked.Read(ref _rejected[i]);
            }

            return total;
        }
    }

    /// <summary>Rejections for one reason.</summary>
    /// <param name="reason">The reason.</param>
    /// <returns>The count.</returns>
    public long GetRejected(RejectionReason reason) => Interlocked.Read(ref _rejected[(int)reason]);

    internal void OnAccepted() => Interlocked.Increment(ref _accepted);

    internal void OnRouted() => Interlocked.Increment(ref _routed);

    internal void OnTerminated() => Interlocked.Increment(ref _terminated);

    internal void OnRejected(RejectionReason reason) => Interlocked.Increment(ref _rejected[(int)reason]);

    internal void OnConnectFailed() => Interlocked.Increment(ref _connectFailures);

    internal void OnPanic() => Interlocked.Increment(ref _panicSelections);

    internal void OnAcceptError() => Interlocked.Increment(ref _acceptErrors);

    internal void OnObserverError() => Interlocked.Increment(ref _observerErrors);

    internal void OnCut(int count) => Interlocked.Add(ref _cut, count);
}
