using System.Buffers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace MeshGateway.Splicing;

/// <summary>Splices two connected sockets with one loop per direction (see <see cref="DuplexSplicer"/>).</summary>
/// <remarks>
/// <para><b>A peer that leaves while its loop is stuck sending.</b> A loop waits on the destination's send while the
/// destination does not read; nothing then watches the source, so a source that resets would go unnoticed until the
/// idle timeout (1 h by default) and hold both sockets (issue 16). While any send is pending, a timer
/// (<see cref="StallCheckInterval"/>, created the first time a send stalls) asks the stalled loop's source for its TCP
/// state (<see cref="EndOf"/>) and fails the splice when it was reset, so both sockets are released (and the other
/// side reset). A zero-byte receive cannot watch it: the source usually has unread bytes queued (that is why its loop is
/// sending), and a receive returns at once then. A source that sent FIN only half-closed: its bytes are still delivered
/// if the destination reads again, and the idle timeout bounds the wait.</para>
/// <para><b>The replayed prefix.</b> The bytes the gateway read from the client before the splice (the ClientHello and
/// whatever followed it, see <see cref="ReplayPrefix"/>) belong to the splice from its construction: the client-to-upstream
/// loop sends them first, under the same failure handling, stall watch and idle timeout as every later byte, counts the
/// client's part of them in <see cref="SpliceSession.BytesFromClient"/>, and the splice returns their pooled buffer exactly
/// once (after the send, or in <see cref="Dispose"/> when it never ran).</para>
/// </remarks>
internal sealed class SocketSplice : SpliceSession, IDisposable
{
    /// <summary>How often the source of a stalled send is checked for a reset.</summary>
    internal static readonly TimeSpan StallCheckInterval = TimeSpan.FromMilliseconds(250);

    private const int ClientToUpstreamStalled = 1;
    private const int UpstreamToClientStalled = 2;

    private readonly Socket _client;
    private readonly Socket _upstream;
    private readonly SocketOperation _upOperation;
    private readonly SocketOperation _downOperation;
    private readonly int _prefixStart;
    private readonly int _prefixEnd;
    private readonly int _prefixHeader;
    private byte[]? _prefix;
    private int _clientSendShutdown;
    private int _upstreamSendShutdown;
    private object? _stallGate;
    private int _stalled;
    private ITimer? _stallTimer;
    private bool _stallTimerRunning;

    public SocketSplice(Socket client, Socket upstream, SpliceOptions options, TimeProvider timeProvider, SocketOperation? upOperation = null, SocketOperation? downOperation = null, TimeSpan? idleTimeout = null, ReplayPrefix prefix = default)
        : base(options, timeProvider, idleTimeout)
    {
        _client = client;
        _upstream = upstream;
        _upOperation = upOperation ?? new SocketOperation();
        _downOperation = downOperation ?? new SocketOperation();
        _prefix = prefix.Buffer;
        _prefixStart = prefix.Start;
        _prefixEnd = prefix.End;
        _prefixHeader = prefix.HeaderLength;
    }

    /// <summary>Releases both socket operations; call after <see cref="SpliceSession.RunAsync"/> completed.</summary>
    public void Dispose()
    {
        if (Volatile.Read(ref _stallGate) is { } gate)
        {
            lock (gate)
            {
                _stallTimer?.Dispose();
            }
        }

        _upOperation.Dispose();
        _downOperation.Dispose();
        ReturnPrefix();
    }

    /// <summary>Takes the prefix buffer, once: whoever gets it returns it to the pool.</summary>
    private byte[]? TakePrefix() => Interlocked.Exchange(ref _prefix, null);

    private void ReturnPrefix()
    {
        if (TakePrefix() is { } prefix)
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
    }

    /// <summary>Sends the replayed prefix upstream (see remarks) and returns its buffer.</summary>
    /// <returns>Whether all of it was sent; otherwise the splice has failed (or was already torn down).</returns>
    private async ValueTask<bool> ReplayAsync(byte[] prefix)
    {
        try
        {
            int sent = _prefixStart;
            int header = _prefixHeader;
            while (sent < _prefixEnd)
            {
                ValueTask<int> send = _upOperation.SendAsync(_upstream, prefix.AsMemory(sent, _prefixEnd - sent));
                int n;
                if (send.IsCompleted)
                {
                    n = await send.ConfigureAwait(false);
                }
                else
                {
                    OnStalled(ClientToUpstreamStalled);
                    n = await send.ConfigureAwait(false);
                    Interlocked.And(ref _stalled, ~ClientToUpstreamStalled);
                }

                if (n <= 0)
                {
                    Fail(clientSide: false, _upOperation.SocketError);
                    return false;
                }

                sent += n;

                // A header the gateway wrote itself (PROXY protocol) is sent, not counted as the client's bytes.
                int headerPart = Math.Min(n, header);
                header -= headerPart;
                if (n > headerPart)
                {
                    OnRelayed(fromClient: true, n - headerPart);
                }
            }

            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(prefix);
        }
    }

    protected override async Task PumpAsync(bool fromClient)
    {
        Socket from = fromClient ? _client : _upstream;
        Socket to = fromClient ? _upstream : _client;
        SocketOperation operation = fromClient ? _upOperation : _downOperation;
        byte[]? buffer = null;
        KernelPipe? pipe = null;
        bool kernel = Options.UsesKernelPipes;
        try
        {
            if (fromClient && TakePrefix() is { } prefix && !await ReplayAsync(prefix).ConfigureAwait(false))
            {
                return;
            }

            if (kernel && Options.KernelPipeFromFirstRead)
            {
                pipe = KernelPipe.TryCreate(Options.PipeBudget);
            }

            while (true)
            {
                if (pipe is not null)
                {
                    KernelBurstEnd end = await KernelBurstAsync(pipe, from, to, operation, fromClient).ConfigureAwait(false);
                    pipe.Dispose();
                    pipe = null;
                    if (end == KernelBurstEnd.Over)
                    {
                        return;
                    }

                    kernel &= end != KernelBurstEnd.Unsupported;
                }

                if (buffer is null)
                {
                    // Wait for data without holding a buffer: idle connections keep no memory (Kestrel, YARP).
                    if (await operation.ReceiveAsync(from, Memory<byte>.Empty).ConfigureAwait(false) < 0)
                    {
                        Fail(fromClient, operation.SocketError);
                        return;
                    }

                    if (!IsTornDown && WokeWithNothingToRead(from))
                    {
                        // A late epoll event ended the wait (see WokeWithNothingToRead): a read now would wait holding the
                        // buffer while the connection idles, so wait again (as the stream loop does).
                        continue;
                    }

                    buffer = Options.BufferPool.Rent(Options.BufferSize);
                }

                int received = await operation.ReceiveAsync(from, buffer).ConfigureAwait(false);
                if (received < 0)
                {
                    Fail(fromClient, operation.SocketError);
                    return;
                }

                if (received == 0)
                {
                    OnEndOfSource(fromClient, from, to);
                    return;
                }

                Touch();
                if (!await SendAllAsync(operation, to, buffer.AsMemory(0, received), fromClient).ConfigureAwait(false))
                {
                    return;
                }

                OnRelayed(fromClient, received);

                // Keep the buffer only while more is queued (a full read and bytes still in the socket); otherwise give it
                // back before waiting again, so a connection that goes idle after a full read holds nothing either. Bulk
                // data (a full read, more queued) moves by splice(2) when pipes are allowed (SpliceOptions.MaxKernelPipes).
                if (received < buffer.Length || !HasQueuedBytes(from) || (kernel && (pipe = KernelPipe.TryCreate(Options.PipeBudget)) is not null))
                {
                    Options.BufferPool.Return(buffer);
                    buffer = null;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                Options.BufferPool.Return(buffer);
            }

            pipe?.Dispose();
        }
    }

    /// <summary>How a burst of <see cref="KernelBurstAsync"/> ended.</summary>
    private enum KernelBurstEnd
    {
        /// <summary>The source has nothing more queued: copy again (the pipe is empty and goes back).</summary>
        Drained,

        /// <summary>The kernel cannot splice these sockets: copy from now on.</summary>
        Unsupported,

        /// <summary>The direction ended (end of stream forwarded, or the splice failed).</summary>
        Over,
    }

    /// <summary>
    /// Moves a burst of bulk data with <c>splice(2)</c>: source socket into <paramref name="pipe"/> (up to 64 KiB), pipe
    /// into the destination, until the source has nothing queued. The same failure, end-of-stream, idle and byte-count
    /// handling as the copy loop. When the destination has no room, the pipe's first bytes (at most
    /// <see cref="WaitForRoomChunk"/>) are sent through the runtime, which waits for room and falls under the stall watch
    /// like any send; the rest follows by splice.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<KernelBurstEnd> KernelBurstAsync(KernelPipe pipe, Socket from, Socket to, SocketOperation operation, bool fromClient)
    {
        while (true)
        {
            switch (pipe.Fill(from, out int moved, out SocketError error))
            {
                case KernelSpliceStatus.WouldBlock when Options.KernelPipeFromFirstRead:
                    if (await operation.ReceiveAsync(from, Memory<byte>.Empty).ConfigureAwait(false) < 0)
                    {
                        Fail(fromClient, operation.SocketError);
                        return KernelBurstEnd.Over;
                    }

                    continue;
                case KernelSpliceStatus.WouldBlock:
                    return KernelBurstEnd.Drained;
                case KernelSpliceStatus.Unsupported:
                    return KernelBurstEnd.Unsupported;
                case KernelSpliceStatus.Failed:
                    Fail(fromClient, error);
                    return KernelBurstEnd.Over;
            }

            if (moved == 0)
            {
                OnEndOfSource(fromClient, from, to);
                return KernelBurstEnd.Over;
            }

            Touch();
            Options.PipeBudget.OnSpliced(moved);
            int pending = moved;
            while (pending > 0)
            {
                KernelSpliceStatus status = pipe.Drain(to, pending, out int sent, out error);
                if (status == KernelSpliceStatus.Moved && sent > 0)
                {
                    pending -= sent;
                    continue;
                }

                if (status == KernelSpliceStatus.Failed)
                {
                    Fail(!fromClient, error);
                    return KernelBurstEnd.Over;
                }

                // No room (or no splice to this socket): send the first bytes through the runtime, which waits for room.
                Options.PipeBudget.OnRoomWait();
                byte[] chunk = Options.BufferPool.Rent(status == KernelSpliceStatus.WouldBlock ? WaitForRoomChunk : Options.BufferSize);
                try
                {
                    int read = pipe.Read(chunk, pending);
                    if (read <= 0)
                    {
                        // Cannot happen (the pipe holds what was moved in); end the splice rather than lose bytes.
                        Fail(!fromClient, SocketError.SocketError);
                        return KernelBurstEnd.Over;
                    }

                    if (!await SendAllAsync(operation, to, chunk.AsMemory(0, read), fromClient).ConfigureAwait(false))
                    {
                        return KernelBurstEnd.Over;
                    }

                    pending -= read;
                }
                finally
                {
                    Options.BufferPool.Return(chunk);
                }
            }

            OnRelayed(fromClient, moved);
        }
    }

    /// <summary>How much of a pipe a destination without room gets through the runtime (a copy) before splicing the rest.</summary>
    /// <remarks>
    /// Of 1, 4, 16 and 64 KiB (one or two bulk runs each, docs/benchmarks.md), 4 KiB had the lowest CPU per GiB: a larger
    /// first send copies more of what the pipe would move for free, a smaller one wakes the loop more often.
    /// </remarks>
    private const int WaitForRoomChunk = 4096;

    /// <summary>Sends all of <paramref name="data"/>, watching the source while a send waits (see remarks); false when the splice failed.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> SendAllAsync(SocketOperation operation, Socket to, ReadOnlyMemory<byte> data, bool fromClient)
    {
        int sent = 0;
        while (sent < data.Length)
        {
            ValueTask<int> send = operation.SendAsync(to, data[sent..]);
            int n;
            if (send.IsCompleted)
            {
                n = await send.ConfigureAwait(false);
            }
            else
            {
                // The destination is not reading: watch the source while waiting (see remarks).
                int flag = fromClient ? ClientToUpstreamStalled : UpstreamToClientStalled;
                OnStalled(flag);
                n = await send.ConfigureAwait(false);
                Interlocked.And(ref _stalled, ~flag);
            }

            if (n <= 0)
            {
                Fail(!fromClient, operation.SocketError);
                return false;
            }

            sent += n;
        }

        return true;
    }

    /// <summary>The source's read returned 0: forwards a true FIN (half-close), or fails the splice for anything else.</summary>
    private void OnEndOfSource(bool fromClient, Socket from, Socket to)
    {
        StreamEnd end = HasShutDownSend(fromClient) ? StreamEnd.Fin : EndOf(from);
        if (end != StreamEnd.Fin || IsTornDown)
        {
            // Not a FIN. Reset: the peer reset and the other loop's send took the error (see EndOf).
            // ClosedHere, or a teardown under way: the other loop is failing the splice (it took the peer's
            // reset on its send, say) and closes both sockets with RST; a shutdown here would send FIN on
            // the other socket ahead of that RST, and the reset would arrive as a clean end of stream
            // (1 in 100 in ResetPropagationTests' Sending case). Fail does nothing once the teardown began.
            Fail(fromClient, SocketError.ConnectionReset);
            return;
        }

        OnEndOfStream(fromClient);
        MarkSendShutDown(toClient: !fromClient);
        ShutdownSend(to);
    }

    protected override void CloseBoth(bool reset)
    {
        if (Volatile.Read(ref _stallGate) is { } gate)
        {
            lock (gate)
            {
                _stallTimerRunning = false;
                _stallTimer?.Dispose();
            }
        }

        Close(_client, reset);
        Close(_upstream, reset);
    }

    protected override void ShutdownBoth()
    {
        Shutdown(_client, SocketShutdown.Both);
        Shutdown(_upstream, SocketShutdown.Both);
    }

    /// <summary>Closes <paramref name="socket"/>; with <paramref name="reset"/> SO_LINGER 0 makes the kernel send RST. Never throws.</summary>
    internal static void Close(Socket socket, bool reset)
    {
        try
        {
            if (reset)
            {
                // SO_LINGER 0: the kernel answers with RST, so the peer sees the failure instead of a clean end.
                socket.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        socket.Dispose();
    }

    /// <summary>
    /// What a receive that returned 0 really saw. Linux reports a reset (ECONNRESET) to one call only: when the other
    /// loop has a send pending on the same socket, that send usually takes it (.NET completes the send first on an error
    /// event) and the receive reads 0 as if the peer had sent FIN. Forwarding that "FIN" would end the other side cleanly
    /// and make a cut stream look complete (issue 16). A real FIN leaves the socket in CLOSE_WAIT; a reset leaves it
    /// CLOSED, which <c>TCP_INFO</c>'s first byte (<c>tcpi_state</c>) tells apart without allocating. Only asked before
    /// this splice shut down its own send on the socket: after that a FIN also ends in CLOSED (through TIME_WAIT), and
    /// no send of ours is left to take a reset's error. Other systems: <see cref="StreamEnd.Fin"/>.
    /// </summary>
    /// <remarks>
    /// <para><b>The race this answer must survive.</b> The loop whose send took the reset fails the splice at the same
    /// moment: it closes this socket (SO_LINGER 0) and then the other one. If the state is read after the first close,
    /// the socket is gone and its state unknowable. Taking that for a FIN (as this check once did) let the reading loop
    /// shut down its send on the other socket, still open for a moment, so that side got FIN before the teardown's RST
    /// and saw a clean end of stream: 1 of 100 client resets reached the upstream as a FIN in CI. A socket closed under
    /// us is therefore <see cref="StreamEnd.ClosedHere"/>: only the splice's teardown closes it while the loops run,
    /// and that teardown resets both sides, so the loop must end without forwarding anything.</para>
    /// <para>The state is read under the socket's own reference count (a closed descriptor cannot be reused under it),
    /// and a reset's CLOSED state is final, so a reset is never read as CLOSE_WAIT: the only remaining overlap (a true
    /// FIN read, then a failure of the other side before the shutdown) forwards a FIN that is true, followed by RST.</para>
    /// </remarks>
    internal static StreamEnd EndOf(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return StreamEnd.Fin;
        }

        // A socket closed under us (-1) was closed by the teardown, which resets both sides (see remarks).
        return TcpStateOf(socket) switch
        {
            < 0 => StreamEnd.ClosedHere,
            TcpClose => StreamEnd.Reset,
            _ => StreamEnd.Fin,
        };
    }

    /// <summary>
    /// Whether bytes are already queued in <paramref name="socket"/>'s receive buffer (<c>FIONREAD</c>): asked only after
    /// a read filled the whole buffer, to keep the buffer for the next read instead of renting it again. A closed or failed
    /// socket has nothing queued; the next read reports why.
    /// </summary>
    internal static bool HasQueuedBytes(Socket socket)
    {
        try
        {
            return socket.Available > 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether a zero-byte wait on <paramref name="socket"/> ended with nothing to read while the peer is still sending:
    /// nothing queued, and the TCP state says the peer has sent no FIN. Our reading of rare <c>SplicerBufferTests</c>
    /// failures under load is that the sockets engine can end a pending zero-byte receive on a late epoll event, for bytes
    /// an earlier read already took; a read then would wait holding a buffer while the connection idles. False when the
    /// system cannot tell (not Linux) or the socket failed: the next read then reports what happened.
    /// </summary>
    internal static bool WokeWithNothingToRead(Socket socket)
    {
        return OperatingSystem.IsLinux() && !HasQueuedBytes(socket) && TcpStateOf(socket) is TcpEstablished or TcpFinWait1 or TcpFinWait2;
    }

    // Linux's TCP states (include/net/tcp_states.h) as TCP_INFO's first byte reports them.
    private const int TcpEstablished = 1, TcpFinWait1 = 4, TcpFinWait2 = 5, TcpClose = 7;

    /// <summary>The socket's TCP state (<c>TCP_INFO</c>'s <c>tcpi_state</c>, Linux), 0 if unreported, -1 if the socket is closed or failed.</summary>
    private static int TcpStateOf(Socket socket)
    {
        const int IpProtoTcp = 6, TcpInfo = 11;
        Span<byte> info = stackalloc byte[8];
        try
        {
            return socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info) >= 1 ? info[0] : 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return -1;
        }
    }

    private static void ShutdownSend(Socket socket) => Shutdown(socket, SocketShutdown.Send);

    /// <summary>Whether this splice shut down its send on the client (<paramref name="client"/>) or the upstream socket.</summary>
    private bool HasShutDownSend(bool client) => Volatile.Read(ref client ? ref _clientSendShutdown : ref _upstreamSendShutdown) != 0;

    private void MarkSendShutDown(bool toClient)
    {
        if (toClient)
        {
            Volatile.Write(ref _clientSendShutdown, 1);
        }
        else
        {
            Volatile.Write(ref _upstreamSendShutdown, 1);
        }
    }

    private static void Shutdown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The other side is gone or the splice is being torn down; the other loop reports it.
        }
    }

    /// <summary>The lock of the stall timer's state, created by the first stall (most splices never need it).</summary>
    private object StallGate => Volatile.Read(ref _stallGate) ?? Interlocked.CompareExchange(ref _stallGate, new object(), null) ?? _stallGate!;

    /// <summary>Marks a send as pending and makes sure the stall timer runs (started here, paused by the timer once no send is pending).</summary>
    private void OnStalled(int flag)
    {
        Interlocked.Or(ref _stalled, flag);
        lock (StallGate)
        {
            if (_stallTimerRunning || IsTornDown)
            {
                return;
            }

            _stallTimerRunning = true;
            if (_stallTimer is null)
            {
                // Created once per splice, and only for splices whose sends stall: the common path allocates nothing.
                _stallTimer = Clock.CreateTimer(static s => ((SocketSplice)s!).OnStallCheck(), this, StallCheckInterval, StallCheckInterval);
            }
            else
            {
                _stallTimer.Change(StallCheckInterval, StallCheckInterval);
            }
        }
    }

    private void OnStallCheck()
    {
        int stalled = Volatile.Read(ref _stalled);
        if (stalled == 0 || IsTornDown)
        {
            lock (StallGate)
            {
                // Re-read under the lock: a send that stalled meanwhile keeps the timer running.
                if ((Volatile.Read(ref _stalled) == 0 || IsTornDown) && _stallTimerRunning)
                {
                    _stallTimerRunning = false;
                    _stallTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                }
            }

            return;
        }

        // After this splice shut its send down on a socket, a clean FIN also leaves it CLOSED: only ask before.
        if ((stalled & ClientToUpstreamStalled) != 0 && !HasShutDownSend(client: true) && EndOf(_client) == StreamEnd.Reset)
        {
            Fail(clientSide: true, SocketError.ConnectionReset);
        }
        else if ((stalled & UpstreamToClientStalled) != 0 && !HasShutDownSend(client: false) && EndOf(_upstream) == StreamEnd.Reset)
        {
            Fail(clientSide: false, SocketError.ConnectionReset);
        }
    }

    private void Fail(bool clientSide, SocketError error)
    {
        if (!IsTornDown)
        {
            OnFailure(clientSide, error);
        }
    }
}
