using System.Net.Sockets;

namespace MeshGateway.Splicing;

/// <summary>
/// State shared by both directions of one splice: the close reason (recorded once, atomically), the idle and
/// maximum-duration timer, byte counters and the teardown (once). Subclasses move the bytes.
/// </summary>
/// <remarks>
/// Pattern from Pipelines.Sockets.Unofficial's <c>TrySetShutdown</c> and YARP's <c>HandleUpgradedResponse</c>: the
/// first direction to end decides the reason; on failure the other direction is aborted and still awaited; on a clean
/// FIN the peer is half-closed and the other direction drains under the idle timeout.
/// </remarks>
internal abstract class SpliceSession
{
    private readonly TimeProvider _timeProvider;
    private readonly long _start;
    private ITimer? _timer;
    private long _lastActivity;
    private int _reason;
    private int _error;
    private int _tornDown;
    private long _end;
    private long _bytesFromClient;
    private long _bytesFromUpstream;
    private readonly TimeSpan _idleTimeout;
    private IRelayedBytesSink? _bytesSink;

    // Written only by the one pump of their direction; read after both pumps ended (RunAsync).
    private long _reportedFromClient;
    private long _reportedFromUpstream;
    private long _lastReportFromClient;
    private long _lastReportFromUpstream;

    /// <param name="options">The splice settings.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="idleTimeout">This connection's idle timeout (a route's own, e.g. long-lived server connections), or
    /// null for <see cref="SpliceOptions.IdleTimeout"/>.</param>
    protected SpliceSession(SpliceOptions options, TimeProvider timeProvider, TimeSpan? idleTimeout = null)
    {
        Options = options;
        _idleTimeout = idleTimeout ?? options.IdleTimeout;
        _timeProvider = timeProvider;
        _start = timeProvider.GetTimestamp();
        _lastActivity = _start;
        _lastReportFromClient = _start;
        _lastReportFromUpstream = _start;
    }

    /// <summary>
    /// The bytes a direction must gather before they are reported to <see cref="BytesSink"/> (or a second passes): a
    /// long-lived tunnel's bytes show in the metrics while it runs, at one instrument call per 64 KiB per direction
    /// instead of one per read.
    /// </summary>
    internal const int ReportBytes = 64 * 1024;

    /// <summary>Receives the relayed bytes as they pass, in batches (<see cref="ReportBytes"/> or a second); set before <see cref="RunAsync"/>.</summary>
    internal IRelayedBytesSink? BytesSink
    {
        set => _bytesSink = value;
    }

    /// <summary>Bytes from the client already given to <see cref="BytesSink"/>; final once <see cref="RunAsync"/> returned.</summary>
    internal long ReportedFromClient => Volatile.Read(ref _reportedFromClient);

    /// <summary>Bytes from the upstream already given to <see cref="BytesSink"/>; final once <see cref="RunAsync"/> returned.</summary>
    internal long ReportedFromUpstream => Volatile.Read(ref _reportedFromUpstream);

    protected SpliceOptions Options { get; }

    /// <summary>The clock for timeouts and durations.</summary>
    protected TimeProvider Clock => _timeProvider;

    /// <summary>The reason recorded first (a clean FIN gives way to a later failure, see <see cref="TrySetReason"/>).</summary>
    public SpliceCloseReason CloseReason => (SpliceCloseReason)Volatile.Read(ref _reason);

    /// <summary>Bytes relayed from the client so far.</summary>
    public long BytesFromClient => Interlocked.Read(ref _bytesFromClient);

    /// <summary>Bytes relayed from the upstream so far.</summary>
    public long BytesFromUpstream => Interlocked.Read(ref _bytesFromUpstream);

    /// <summary>Runs both directions to their end and tears the connection down.</summary>
    public async Task<SpliceResult> RunAsync()
    {
        StartTimer();
        try
        {
            Task upstream = PumpAsync(fromClient: true);
            Task downstream = PumpAsync(fromClient: false);
            await upstream.ConfigureAwait(false);
            await downstream.ConfigureAwait(false);
        }
        finally
        {
            _timer?.Dispose();
            if (Interlocked.Exchange(ref _tornDown, 1) == 0)
            {
                Interlocked.Exchange(ref _end, _timeProvider.GetTimestamp());
            }

            // Both loops are done, so no operation is pending and closing sends FIN (unless a reset already happened).
            CloseBoth(reset: false);
        }

        long end = Interlocked.Read(ref _end);
        return new SpliceResult(
            CloseReason,
            BytesFromClient,
            BytesFromUpstream,
            (SocketError)Volatile.Read(ref _error),
            _timeProvider.GetElapsedTime(_start, end == 0 ? _timeProvider.GetTimestamp() : end));
    }

    /// <summary>Ends the splice now: both sides are reset and the reason becomes <see cref="SpliceCloseReason.Aborted"/> unless one was recorded already.</summary>
    public void Abort()
    {
        TrySetReason(SpliceCloseReason.Aborted, SocketError.Success);
        TearDown(reset: true);
    }

    protected abstract Task PumpAsync(bool fromClient);

    /// <summary>Closes both connections; with <paramref name="reset"/> the peers get RST. Must be idempotent.</summary>
    protected abstract void CloseBoth(bool reset);

    /// <summary>Ends both connections cleanly (FIN both ways) so that both loops finish; <see cref="CloseBoth"/> follows.</summary>
    protected abstract void ShutdownBoth();

    /// <summary>Counts bytes relayed in one direction and records activity for the idle timeout.</summary>
    protected void OnRelayed(bool fromClient, int count)
    {
        long now = _timeProvider.GetTimestamp();
        Volatile.Write(ref _lastActivity, now);
        if (fromClient)
        {
            long total = Interlocked.Add(ref _bytesFromClient, count);
            if (_bytesSink is { } sink)
            {
                Report(sink, fromClient: true, total, now, ref _reportedFromClient, ref _lastReportFromClient);
            }
        }
        else
        {
            long total = Interlocked.Add(ref _bytesFromUpstream, count);
            if (_bytesSink is { } sink)
            {
                Report(sink, fromClient: false, total, now, ref _reportedFromUpstream, ref _lastReportFromUpstream);
            }
        }
    }

    // Per read: a subtraction and two comparisons; the sink (an instrument call) once per ReportBytes or per second.
    private void Report(IRelayedBytesSink sink, bool fromClient, long total, long now, ref long reported, ref long lastReport)
    {
        long pending = total - reported;
        if (IsReportDue(pending, now, lastReport, _timeProvider.TimestampFrequency))
        {
            sink.OnRelayed(fromClient, pending);
            Volatile.Write(ref reported, total);
            lastReport = now;
        }
    }

    /// <summary>Records activity for the idle timeout.</summary>
    protected void Touch() => Volatile.Write(ref _lastActivity, _timeProvider.GetTimestamp());

    /// <summary>Records a clean FIN from one side.</summary>
    protected void OnEndOfStream(bool fromClient)
        => TrySetReason(fromClient ? SpliceCloseReason.ClientClosed : SpliceCloseReason.UpstreamClosed, SocketError.Success);

    /// <summary>Records a failure of one side and resets both.</summary>
    protected void OnFailure(bool clientSide, SocketError error)
    {
        TrySetReason(clientSide ? SpliceCloseReason.ClientError : SpliceCloseReason.UpstreamError, error);
        TearDown(reset: true);
    }

    /// <summary>Whether the teardown has begun (errors seen after it are its echo, not a cause).</summary>
    protected bool IsTornDown => Volatile.Read(ref _tornDown) != 0;

    /// <summary>
    /// Records <paramref name="reason"/> unless one is recorded already. A clean FIN from one side is provisional: the
    /// other direction keeps flowing, so a failure, timeout or abort after it is what really ended the connection and
    /// replaces it (a client that half-closed and then saw the upstream reset is an upstream error, not a clean close).
    /// </summary>
    private bool TrySetReason(SpliceCloseReason reason, SocketError error)
    {
        while (true)
        {
            int current = Volatile.Read(ref _reason);
            bool replaceable = Replaces((SpliceCloseReason)current, reason);
            if (!replaceable)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _reason, (int)reason, current) == current)
            {
                Volatile.Write(ref _error, (int)error);
                return true;
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="reason"/> is recorded over <paramref name="current"/>: nothing recorded yet, or a clean FIN
    /// (provisional) followed by anything that is not another FIN. Shared with the event loop's splice.
    /// </summary>
    internal static bool Replaces(SpliceCloseReason current, SpliceCloseReason reason) =>
        current == SpliceCloseReason.None || (IsHalfClose(current) && !IsHalfClose(reason));

    private static bool IsHalfClose(SpliceCloseReason value) => value is SpliceCloseReason.ClientClosed or SpliceCloseReason.UpstreamClosed;

    /// <summary>Whether relayed bytes are due to the sink: <see cref="ReportBytes"/> gathered or a second passed since the last report.</summary>
    internal static bool IsReportDue(long pending, long now, long lastReport, long frequency) =>
        pending >= ReportBytes || now - lastReport >= frequency;

    private void TearDown(bool reset)
    {
        if (Interlocked.Exchange(ref _tornDown, 1) != 0)
        {
            return;
        }

        Interlocked.Exchange(ref _end, _timeProvider.GetTimestamp());
        if (reset)
        {
            CloseBoth(reset: true);
        }
        else
        {
            // Closing a socket with a pending receive makes .NET disconnect it abortively (RST) on Linux; a shutdown
            // sends FIN and ends the pending operations, and the sockets are closed once both loops have returned.
            ShutdownBoth();
        }
    }

    private void StartTimer()
    {
        TimeSpan due = NextDue(_timeProvider.GetTimestamp());
        if (due != Timeout.InfiniteTimeSpan)
        {
            _timer = _timeProvider.CreateTimer(static s => ((SpliceSession)s!).OnTimer(), this, due, Timeout.InfiniteTimeSpan);
        }
    }

    private TimeSpan NextDue(long now)
    {
        TimeSpan due = Timeout.InfiniteTimeSpan;
        if (_idleTimeout != Timeout.InfiniteTimeSpan)
        {
            due = _idleTimeout - _timeProvider.GetElapsedTime(Volatile.Read(ref _lastActivity), now);
        }

        if (Options.MaxDuration != Timeout.InfiniteTimeSpan)
        {
            TimeSpan left = Options.MaxDuration - _timeProvider.GetElapsedTime(_start, now);
            due = due == Timeout.InfiniteTimeSpan || left < due ? left : due;
        }

        return due;
    }

    private void OnTimer()
    {
        if (IsTornDown)
        {
            return;
        }

        long now = _timeProvider.GetTimestamp();
        if (Options.MaxDuration != Timeout.InfiniteTimeSpan && _timeProvider.GetElapsedTime(_start, now) >= Options.MaxDuration)
        {
            TrySetReason(SpliceCloseReason.MaxDurationReached, SocketError.Success);
            TearDown(reset: false);
            return;
        }

        TimeSpan due = NextDue(now);
        if (due <= TimeSpan.Zero)
        {
            TrySetReason(SpliceCloseReason.IdleTimeout, SocketError.Success);
            TearDown(reset: false);
            return;
        }

        try
        {
            _timer?.Change(due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // The splice ended while the timer was firing.
        }
    }
}

/// <summary>Receives relayed bytes while a splice runs (the gateway's <c>meshgateway.bytes</c> counter).</summary>
internal interface IRelayedBytesSink
{
    /// <summary>Called by the pump of one direction; must not throw or block.</summary>
    public void OnRelayed(bool fromClient, long count);
}
