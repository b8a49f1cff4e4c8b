using System.Buffers;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>One accepted connection: hello → route → connect (with retries) → splice (which replays the bytes read first).</summary>
/// <remarks>
/// <para>Every event is reported to the gateway's <see cref="GatewayTelemetry"/> (counters, metrics and observer in one
/// call) with the connection's <see cref="Context"/>; the listener hears back from the connection only when it ended
/// (<see cref="GatewayListener.OnConnectionEnded(GatewayConnection)"/>).</para>
/// <para>
/// One <see cref="ITimer"/> serves the hello deadline and then each connect timeout. The timer and the pipeline race
/// through <see cref="_phase"/> with compare-and-swap, so exactly one of them decides the outcome of a phase: the
/// timer closes the socket only if the phase is still the one it was armed for.</para>
/// </remarks>
internal sealed class GatewayConnection : IDisposable
{
    private const int PhaseHello = 0;
    private const int PhaseRouting = 1;
    private const int PhaseConnecting = 2;
    private const int PhaseSpliced = 3;
    private const int PhaseTimedOut = 4;

    private readonly GatewayListener _owner;
    private readonly GatewayTelemetry _telemetry;
    private readonly Socket _client;
    private readonly TimeProvider _time;
    private readonly SocketOperation _upOperation = new();
    private readonly long _accepted;
    private ITimer? _timer;
    private long _deadline;
    private int _phase;
    private int _aborted;
    private Socket? _upstream;
    private IPEndPoint? _upstreamEndPoint;
    private Route? _route;
    private SocketSplice? _splice;

    /// <summary>
    /// The ClientHello's server name once the hello was routed (empty before): the route's own bytes when the name is
    /// exactly its pattern, else a copy. The parsed hello itself (<see cref="ClientHelloInfo"/>, ~550 bytes of inline
    /// buffers) lives only on <see cref="ReadHello"/>'s stack: kept in this object it was the largest part of an idle
    /// connection's memory (issue 15: 696 of ~3,900 bytes per spliced connection by dotnet-gcdump).
    /// </summary>
    private ReadOnlyMemory<byte> _serverName;
    private bool _expectProxyHeader;
    private IPEndPoint? _proxiedDestination;

    /// <summary>The client's socket (tests read its options).</summary>
    internal Socket ClientSocket => _client;

    /// <summary>The upstream socket once dialled, else null (tests read its options).</summary>
    internal Socket? UpstreamSocket => Volatile.Read(ref _upstream);

    public GatewayConnection(GatewayListener owner, Socket client, ListenerContext listener)
    {
        Listener = listener;
        _expectProxyHeader = listener.ProxyProtocol;
        _owner = owner;
        _telemetry = owner.Telemetry;
        _client = client;
        _time = owner.TimeProvider;
        _accepted = _time.GetTimestamp();
        ClientEndPoint = client.RemoteEndPoint;
    }

    /// <summary>The client's address: the socket's peer, or the source of the PROXY protocol header when there was one.</summary>
    public EndPoint? ClientEndPoint { get; private set; }

    /// <summary>The address the connection came in on: its endpoint, PROXY protocol setting, metric tag and byte sink.</summary>
    public ListenerContext Listener { get; }

    /// <summary>The gateway address the client connected to.</summary>
    public IPEndPoint ListenerEndPoint => Listener.EndPoint;

    /// <summary>The connection as far as it got, for an event (built on the stack: nothing allocated).</summary>
    private ConnectionContext Context => new(Listener, ClientEndPoint, _serverName.Span, _route, _upstreamEndPoint);

    /// <summary>Whether <see cref="Abort"/> cut this connection.</summary>
    public bool IsCut => Volatile.Read(ref _aborted) != 0;

    /// <summary>Starts the connection on the calling thread; it runs until its first pending socket operation.</summary>
    public void Execute() => _ = RunAsync();

    /// <summary>
    /// Starts a connection the event loop read and routed to <paramref name="terminator"/> (see
    /// <see cref="EventLoop.HandOver"/>): the hand-over to the terminator, then the listener's accounting.
    /// </summary>
    public void ExecuteTerminated(EndPoint? clientEndPoint, ConnectionTerminator terminator, byte[] hello, int start, int filled, Route route, ReadOnlyMemory<byte> serverName)
    {
        ClientEndPoint = clientEndPoint ?? ClientEndPoint;
        _route = route;
        _serverName = serverName;
        _ = RunTerminatedAsync(terminator, hello, start, filled);
    }

    private async Task RunTerminatedAsync(ConnectionTerminator terminator, byte[] hello, int start, int filled)
    {
        try
        {
            await TerminateAsync(terminator, hello, start, filled).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // As in RunAsync: never expected; the connection is closed either way.
            Reset(_client);
        }
        finally
        {
            Dispose();
            _owner.OnConnectionEnded(this);
        }
    }

    /// <summary>Releases the socket operations (the splice's, when there is one).</summary>
    public void Dispose()
    {
        _upOperation.Dispose();
        Volatile.Read(ref _splice)?.Dispose();
    }

    /// <summary>Cuts the connection (gateway stop past its deadline).</summary>
    /// <returns>Whether this call cut it (false if it was already cut).</returns>
    public bool Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return false;
        }

        SocketSplice? splice = Volatile.Read(ref _splice);
        if (splice is not null)
        {
            splice.Abort();
        }
        else
        {
            Reset(_client);
            Socket? upstream = Volatile.Read(ref _upstream);
            if (upstream is not null)
            {
                Reset(upstream);
            }
        }

        return true;
    }

    private static void Reset(Socket socket) => SocketSplice.Close(socket, reset: true);

    /// <summary>The smallest hello buffer: room for a record header and the start of a handshake message.</summary>
    private const int MinHelloBuffer = 16;

    /// <summary>A larger pooled buffer holding the <paramref name="filled"/> bytes of <paramref name="buffer"/> (returned to the pool).</summary>
    private byte[] Grow(byte[] buffer, int filled, int maxHello)
    {
        // Room for what is already queued, at least double: bounded by bytes actually received, few receives for a
        // hello that arrived at once (a 2 KiB post-quantum hello: 16 B, then 2 KiB).
        int wanted = Math.Max(filled * 2, filled + QueuedBytes());
        byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Min(wanted, maxHello));
        buffer.AsSpan(0, filled).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }

    /// <summary>Bytes queued on the client socket (FIONREAD); 0 when it cannot tell (for example closed by the hello deadline).</summary>
    private int QueuedBytes()
    {
        try
        {
            return _client.Available;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Closed under us by the hello deadline: the next receive reports it.
            return 0;
        }
    }

    private async Task RunAsync()
    {
        byte[]? buffer = null;
        try
        {
            GatewayListenerOptions options = _owner.Options;
            Arm(options.HelloTimeout, PhaseHello);
            _owner.HelloDeadlineArmed?.Invoke();

            // Wait for the first bytes without a buffer: a silent connection holds no memory until its deadline.
            int received = await _upOperation.ReceiveAsync(_client, Memory<byte>.Empty).ConfigureAwait(false);
            if (received < 0)
            {
                RejectHelloFailure();
                return;
            }

            // Size the buffer by what has arrived, not by MaxHelloSize: a client that sent 5 bytes and went quiet holds
            // a 16-byte array, not 16 KiB (a wave of 10,000 such clients held ~200 MB before, issue 16). The buffer
            // grows, at most doubling past what was received, only as bytes arrive.
            // A PROXY protocol header, when the address requires one, comes first in the same buffer: the hello starts
            // at `start`, and only the hello and what follows it are replayed upstream.
            int maxHello = options.MaxHelloSize;
            int maxTotal = maxHello + (_expectProxyHeader ? ProxyProtocol.MaxHeaderLength : 0);
            buffer = ArrayPool<byte>.Shared.Rent(Math.Clamp(QueuedBytes(), MinHelloBuffer, maxTotal));
            int filled = 0;
            int start = 0;
            Route? route = null;
            while (true)
            {
                int room = Math.Min(buffer.Length, maxTotal) - filled;
                received = await _upOperation.ReceiveAsync(_client, buffer.AsMemory(filled, room)).ConfigureAwait(false);
                if (received <= 0)
                {
                    RejectHelloFailure();
                    return;
                }

                filled += received;
                if (_expectProxyHeader)
                {
                    ProxyHeaderStatus proxy = ProxyProtocol.TryRead(buffer.AsSpan(0, filled), out start, out IPEndPoint? source, out _proxiedDestination);
                    if (proxy is ProxyHeaderStatus.Missing or ProxyHeaderStatus.Invalid)
                    {
                        if (Interlocked.CompareExchange(ref _phase, PhaseRouting, PhaseHello) == PhaseHello)
                        {
                            Reject(proxy == ProxyHeaderStatus.Missing ? RejectionReason.ProxyHeaderMissing : RejectionReason.ProxyHeaderInvalid);
                        }
                        else
                        {
                            Reject(RejectionReason.HelloTimeout);
                        }

                        return;
                    }

                    if (proxy == ProxyHeaderStatus.Done)
                    {
                        _expectProxyHeader = false;
                        ClientEndPoint = source ?? ClientEndPoint;
                    }
                }

                if (!_expectProxyHeader && filled > start && ReadHello(buffer.AsSpan(start, filled - start), filled - start >= maxHello, out route))
                {
                    break;
                }

                if (filled == buffer.Length)
                {
                    buffer = Grow(buffer, filled, maxTotal);
                }
            }

            if (route is null)
            {
                // Rejected by ReadHello (and reported there).
                return;
            }

            if (route.Terminator is { } terminator)
            {
                // Handed over in process (issue 14): the terminator reads the replayed bytes, then the socket.
                // TerminateAsync returns the hello buffer to the pool once copied, before the session runs.
                byte[] read = buffer;
                buffer = null;
                await TerminateAsync(terminator, read, start, filled).ConfigureAwait(false);
                return;
            }

            if (route.Cluster.Endpoints.Count == 0)
            {
                Reject(RejectionReason.NoEndpoint);
                return;
            }

            EndpointState? endpoint = await ConnectAsync(route).ConfigureAwait(false);
            if (endpoint is null)
            {
                return;
            }

            int added = 0;
            if (options.SendProxyProtocol)
            {
                (buffer, start, filled, added) = PrependProxyHeader(buffer, start, filled);
            }

            // The splice owns the buffer from here: it replays it and returns it to the pool exactly once, whatever happens.
            var prefix = new ReplayPrefix(buffer, start, filled, added);
            buffer = null;
            await SpliceAsync(route, endpoint, prefix).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Never expected (socket errors are values here); the connection is closed below either way.
            Reset(_client);
        }
        finally
        {
            _timer?.Dispose();
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            Dispose();
            _owner.OnConnectionEnded(this);
        }
    }

    /// <summary>
    /// Reads the hello bytes so far and, once the hello is complete (or can no longer be), decides it (see
    /// <see cref="HelloRouting"/>): rejects it with the reason or routes it (<see cref="_route"/>, <see cref="_serverName"/>).
    /// The parsed hello is a local of this synchronous method, never a field (see <see cref="_serverName"/>).
    /// </summary>
    /// <param name="input">The hello's bytes received so far.</param>
    /// <param name="full">Whether <paramref name="input"/> already holds the most a hello may take: incomplete is then too large.</param>
    /// <param name="route">The route when the hello was routed; null when rejected or when more bytes are needed.</param>
    /// <returns>False while more bytes are needed; true once decided (routed when <paramref name="route"/> is set).</returns>
    private bool ReadHello(ReadOnlySpan<byte> input, bool full, out Route? route)
    {
        route = null;
        if (!HelloRouting.TryRead(_owner, input, full, out ClientHelloInfo hello, out ClientHelloStatus status))
        {
            return false;
        }

        if (Interlocked.CompareExchange(ref _phase, PhaseRouting, PhaseHello) != PhaseHello)
        {
            // The deadline closed the socket first: reported with whatever name the hello carried.
            Reject(new ConnectionContext(Listener, ClientEndPoint, hello.ServerName), RejectionReason.HelloTimeout, ClientHelloError.None, _telemetry.HasObserver ? hello.ServerNameIssues : HostNameIssues.None);
            return true;
        }

        route = HelloRouting.Decide(_owner, Listener, ClientEndPoint, in hello, status, _time.GetElapsedTime(_accepted), out _serverName);
        if (route is null)
        {
            // Rejected (and reported) by Decide: close the client.
            CloseRejected();
            return true;
        }

        _route = route;
        return true;
    }

    /// <summary>Dials endpoints of the route's cluster until one answers or the attempts run out.</summary>
    /// <returns>
    /// The connected endpoint's state, counted on (the connection releases this very object when it ends, even if a
    /// newer table is current by then), or null after the connection was rejected.
    /// </returns>
    private async Task<EndpointState?> ConnectAsync(Route route)
    {
        UpstreamCluster cluster = route.Cluster;
        TriedEndpoints tried = default;
        int attempts = Math.Min(cluster.MaxConnectAttempts, cluster.Endpoints.Count);
        for (int attempt = 1; attempt <= attempts; attempt++)
        {
            if (Volatile.Read(ref _aborted) != 0)
            {
                Reject(RejectionReason.Stopping);
                return null;
            }

            int index = cluster.Select(((ReadOnlySpan<int>)tried)[..(attempt - 1)], _time.GetTimestamp(), out bool panic);
            if (index < 0)
            {
                if (attempt == 1)
                {
                    // Nothing excluded yet, so no endpoint has an address: host names not resolved (yet), or failing.
                    Reject(RejectionReason.EndpointUnresolved);
                    return null;
                }

                break;
            }

            tried[attempt - 1] = index;
            IPEndPoint? endPoint = cluster.GetState(index).Address;
            if (endPoint is null)
            {
                // The endpoint has no resolved address (never resolved): try another endpoint, no ejection.
                continue;
            }

            if (panic)
            {
                _telemetry.Panic();
            }

            Socket upstream;
            try
            {
                upstream = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                cluster.TcpKeepAlive?.TryApply(upstream);
            }
            catch (SocketException ex)
            {
                // Out of file descriptors (EMFILE/ENFILE) or buffers: not the endpoint's fault, so no ejection and no retry.
                _telemetry.ConnectFailed(Context, endPoint, attempt, timedOut: false, ex.SocketErrorCode, panic);

                break;
            }

            // Full fence (store then load, against Abort's exchange then load): either Abort sees the socket or we see the abort.
            Interlocked.Exchange(ref _upstream, upstream);
            if (Volatile.Read(ref _aborted) != 0)
            {
                upstream.Dispose();
                Reject(RejectionReason.Stopping);
                return null;
            }

            Arm(cluster.ConnectTimeout, PhaseConnecting);
            _owner.ConnectStarted?.Invoke(endPoint);
            int result = await _upOperation.ConnectAsync(upstream, endPoint).ConfigureAwait(false);
            bool timedOut = Interlocked.CompareExchange(ref _phase, PhaseRouting, PhaseConnecting) != PhaseConnecting;
            SocketError error = _upOperation.SocketError;
            _upOperation.RemoteEndPoint = null;
            if (result >= 0 && !timedOut)
            {
                _upstreamEndPoint = endPoint;
                return cluster.OnConnected(index);
            }

            upstream.Dispose();
            Volatile.Write(ref _phase, PhaseRouting);
            cluster.OnConnectFailed(index, _time.GetTimestamp(), _time.TimestampFrequency);
            _telemetry.ConnectFailed(Context, endPoint, attempt, timedOut, timedOut ? SocketError.TimedOut : error, panic);
        }

        Reject(Volatile.Read(ref _aborted) != 0 ? RejectionReason.Stopping : RejectionReason.UpstreamUnreachable);
        return null;
    }

    /// <summary>
    /// Puts a PROXY protocol v2 header (client address, and the address it connected to) before the bytes to replay.
    /// Writes it over the consumed incoming header when that left room, else into a new pooled buffer.
    /// </summary>
    /// <returns>The buffer to replay from (the old one returned to the pool if replaced), its range and the header length.</returns>
    private (byte[] Buffer, int Start, int End, int Added) PrependProxyHeader(byte[] buffer, int start, int filled)
    {
        var source = ClientEndPoint as IPEndPoint ?? new IPEndPoint(IPAddress.IPv6Any, 0);
        IPEndPoint destination = _proxiedDestination ?? _client.LocalEndPoint as IPEndPoint ?? ListenerEndPoint;
        int length = ProxyProtocol.GetLength(source, destination);
        if (start >= length)
        {
            ProxyProtocol.Write(buffer.AsSpan(start - length), source, destination);
            return (buffer, start - length, filled, length);
        }

        byte[] larger = ArrayPool<byte>.Shared.Rent(length + filled - start);
        ProxyProtocol.Write(larger, source, destination);
        buffer.AsSpan(start, filled - start).CopyTo(larger.AsSpan(length));
        ArrayPool<byte>.Shared.Return(buffer);
        return (larger, 0, length + filled - start, length);
    }

    private async Task SpliceAsync(Route route, EndpointState endpoint, ReplayPrefix prefix)
    {
        Socket upstream = _upstream!;
        Volatile.Write(ref _phase, PhaseSpliced);
        _timer?.Dispose();
        _timer = null;
        _telemetry.Routed(Context);
        SocketSplice? splice = null;
        try
        {
            // No retry after this point: the splice sends the bytes read so far (the ClientHello and whatever followed it)
            // upstream first, and owns their buffer from here (see SocketSplice).
            splice = new SocketSplice(_client, upstream, _owner.Options.Splice, _time, _upOperation, new SocketOperation(), route.Cluster.IdleTimeout, prefix);
            splice.BytesSink = Listener;
            Interlocked.Exchange(ref _splice, splice);
            if (Volatile.Read(ref _aborted) != 0)
            {
                splice.Abort();
            }

            SpliceResult result = await splice.RunAsync().ConfigureAwait(false);

            // Most bytes were measured while they flowed (SpliceSession.BytesSink); the telemetry measures the rest.
            _telemetry.Closed(Context, result, splice.ReportedFromClient, splice.ReportedFromUpstream, _time.GetElapsedTime(_accepted));
        }
        finally
        {
            if (splice is null)
            {
                // Never reached the splice (it could not be built): its buffer is still ours to return.
                if (prefix.Buffer is { } unsent)
                {
                    ArrayPool<byte>.Shared.Return(unsent);
                }
            }

            endpoint.OnDisconnected();
        }
    }

    /// <summary>Hands the connection to the route's terminator and waits until it has ended.</summary>
    /// <remarks>Off the passthrough path: the copy of the bytes read so far and the server name string are made only here.</remarks>
    private async Task TerminateAsync(ConnectionTerminator terminator, byte[] buffer, int start, int filled)
    {
        Volatile.Write(ref _phase, PhaseSpliced);
        _timer?.Dispose();
        _timer = null;
        byte[] prefix = buffer.AsSpan(start, filled - start).ToArray();
        ArrayPool<byte>.Shared.Return(buffer);
        if (Volatile.Read(ref _aborted) != 0)
        {
            Reject(RejectionReason.Stopping);
            return;
        }

        var connection = new TerminatedConnection(_client, prefix, System.Text.Encoding.ASCII.GetString(_serverName.Span), _route!, ClientEndPoint, ListenerEndPoint);

        // Off the accept loop's thread before user code runs (the connection may have started on it, see OnAccepted).
        await Task.Yield();
        Task run;
        try
        {
            run = terminator.RunAsync(connection) ?? Task.CompletedTask;
        }
#pragma warning disable CA1031 // A terminator is user code: whatever it throws, the listener resets this connection and goes on.
        catch (Exception)
#pragma warning restore CA1031
        {
            Reject(RejectionReason.TerminatorFailed);
            return;
        }

        _telemetry.Terminated(Context);
        try
        {
            await run.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // As above: a faulted session is the terminator's failure, counted, never the listener's.
        catch (Exception)
#pragma warning restore CA1031
        {
            _telemetry.TerminatorFaulted();
            Reset(_client);
        }
    }

    private void RejectHelloFailure()
    {
        bool timedOut = Volatile.Read(ref _phase) == PhaseTimedOut;
        Reject(timedOut ? RejectionReason.HelloTimeout : Volatile.Read(ref _aborted) != 0 ? RejectionReason.Stopping : RejectionReason.ClientClosed);
    }

    /// <summary>Closes the client without splicing and reports why (with the route and server name when it got that far).</summary>
    private void Reject(RejectionReason reason) =>
        Reject(Context, reason, ClientHelloError.None, _telemetry.HasObserver && !_serverName.IsEmpty ? HostNameClassifier.Classify(_serverName.Span) : HostNameIssues.None);

    private void Reject(ConnectionContext context, RejectionReason reason, ClientHelloError helloError, HostNameIssues nameIssues)
    {
        try
        {
            _telemetry.Rejected(context, reason, helloError, nameIssues);
        }
        finally
        {
            // Closed even when the observer breaks its no-throw contract: the socket must not wait for the finalizer.
            CloseRejected();
        }
    }

    /// <summary>Closes the client of a rejected connection (and the timer).</summary>
    private void CloseRejected()
    {
        _timer?.Dispose();
        _timer = null;
        _client.Dispose();
    }

    /// <summary>Arms the one timer for <paramref name="timeout"/> from now, for the given phase.</summary>
    private void Arm(TimeSpan timeout, int phase)
    {
        Volatile.Write(ref _phase, phase);
        long deadline = _time.GetTimestamp() + (long)(timeout.TotalSeconds * _time.TimestampFrequency);
        Volatile.Write(ref _deadline, deadline);
        if (_timer is null)
        {
            _timer = _time.CreateTimer(static s => ((GatewayConnection)s!).OnTimer(), this, timeout, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _timer.Change(timeout, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer()
    {
        long remaining = Volatile.Read(ref _deadline) - _time.GetTimestamp();
        if (remaining > 0)
        {
            // A late tick from an earlier phase: wait for this phase's own deadline.
            try
            {
                _timer?.Change(TimeSpan.FromSeconds((double)remaining / _time.TimestampFrequency), Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The connection moved on.
            }

            return;
        }

        if (Interlocked.CompareExchange(ref _phase, PhaseTimedOut, PhaseHello) == PhaseHello)
        {
            _client.Dispose();
        }
        else if (Interlocked.CompareExchange(ref _phase, PhaseTimedOut, PhaseConnecting) == PhaseConnecting)
        {
            Volatile.Read(ref _upstream)?.Dispose();
        }
    }

    [System.Runtime.CompilerServices.InlineArray(UpstreamCluster.MaxAllowedConnectAttempts)]
    private struct TriedEndpoints
    {
        private int _element0;
    }
}
