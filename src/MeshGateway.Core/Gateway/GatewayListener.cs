using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>
/// The gateway data plane: accepts connections, reads each ClientHello, routes its server name through the current
/// <see cref="RouteTable"/>, dials an endpoint of the route's cluster, replays the bytes already read and splices both
/// directions. It never decrypts and holds no key.
/// </summary>
/// <remarks>
/// <para>Per connection: read until the ClientHello reader says done, within an absolute <see cref="GatewayListenerOptions.HelloTimeout"/>
/// and <see cref="GatewayListenerOptions.MaxHelloSize"/>; route; connect (retrying other endpoints on a failed or
/// timed-out connect, before any byte went upstream); send exactly the bytes read so far; splice with a
/// <see cref="DuplexSplicer"/>-equivalent loop pair. A rejection closes the client without dialling anything and is
/// counted by reason and reported once (<see cref="GatewayObserver.OnConnectionRejected"/>).</para>
/// <para>File descriptors: the connection limit is capped by the process's open-file limit
/// (<see cref="ConnectionLimit"/>, see <see cref="GatewayListenerOptions.MaxConnections"/>), so a flood is refused
/// connection by connection instead of starving the runtime. Should accept still run out (EMFILE/ENFILE: the limit was
/// lowered, or something else in the process holds descriptors) or an accepted socket's descriptor is within 8 of the
/// current limit, it gives the runtime the 16 descriptors it holds in reserve, backs off (doubling from
/// <see cref="GatewayListenerOptions.AcceptRetryDelay"/> to 1 s), counts, reports, and accepts again once it could take
/// its reserve back with room to spare.</para>
/// <para><see cref="StopAsync"/> stops accepting, lets open connections finish until a deadline, then cuts the rest.</para>
/// </remarks>
/// <example>
/// <code>
/// var routes = new RouteTableSource(RouteTable.Create([new Route("web.default.dc1.internal.td.consul", cluster)]));
/// var options = new GatewayListenerOptions();
/// options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 8443));
/// await using var gateway = new GatewayListener(options, routes);
/// gateway.Start();
/// </code>
/// </example>
public sealed class GatewayListener : IAsyncDisposable
{
    private static readonly TimeSpan s_maxAcceptRetryDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_cutWait = TimeSpan.FromSeconds(10);

    private readonly GatewayListenerOptions _options;
    private readonly ClientHelloReaderOptions _readerOptions;
    private readonly RouteTableSource _routes;
    private readonly TimeProvider _timeProvider;
    private readonly GatewayTelemetry _telemetry;
    private readonly WaveMemoryTrimmer? _trimmer;
    private readonly ConcurrentDictionary<GatewayConnection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Socket> _listenSockets = [];
    private readonly List<IPEndPoint> _localEndPoints = [];
    private readonly List<Task> _acceptLoops = [];
    private readonly DescriptorReserve _descriptorReserve = new();
    private readonly object _gate = new();
    private Task<GatewayStopResult>? _stopTask;
    private int _connectionLimit;
    private long? _fileDescriptorLimit;
    private readonly CountSignal _active = new();
    private EventLoopEngine? _engine;
    private GatewayIoEngine _engineKind;
    private int _drainedCount;
    private int _state;

    /// <summary>Creates a listener; call <see cref="Start"/> to bind.</summary>
    /// <param name="options">Addresses and limits.</param>
    /// <param name="routes">Where the current routing table comes from.</param>
    /// <param name="observer">Receives access-log and diagnostic events; none when null.</param>
    /// <param name="meterFactory">Creates the <c>MeshGateway</c> meter; a plain <see cref="Meter"/> when null.</param>
    /// <param name="timeProvider">The clock for every timeout; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or <paramref name="routes"/> is null.</exception>
    /// <exception cref="ArgumentException"><see cref="GatewayListenerOptions.EndPoints"/> is empty.</exception>
    public GatewayListener(GatewayListenerOptions options, RouteTableSource routes, GatewayObserver? observer = null, IMeterFactory? meterFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(routes);
        if (options.EndPoints.Count == 0)
        {
            throw new ArgumentException("GatewayListenerOptions.EndPoints needs at least one address to listen on.", nameof(options));
        }

        foreach (IPEndPoint proxied in options.ProxyProtocolEndPoints)
        {
            if (!options.EndPoints.Contains(proxied))
            {
                throw new ArgumentException($"GatewayListenerOptions.ProxyProtocolEndPoints has {proxied}, which is not one of EndPoints.", nameof(options));
            }
        }

        _options = options;
        _readerOptions = new ClientHelloReaderOptions { MaxHelloSize = options.MaxHelloSize };
        _routes = routes;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _telemetry = new GatewayTelemetry(observer, meterFactory);
        _connectionLimit = options.MaxConnections;
        _trimmer = options.ReturnMemoryAfterWaves ? new WaveMemoryTrimmer(_timeProvider, () => (int)_active.Value, _telemetry.HasObserver ? _telemetry.MemoryReturned : null) : null;
    }

    /// <summary>The bound addresses, with the actual ports (after <see cref="Start"/>).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints
    {
        get
        {
            lock (_gate)
            {
                return [.. _localEndPoints];
            }
        }
    }

    /// <summary>Connections open now (reading a hello or spliced).</summary>
    public int ActiveConnections => (int)_active.Value;

    /// <summary>
    /// Completes once at most <paramref name="maximum"/> connections are open (<see cref="ActiveConnections"/>), at once
    /// when that holds now: a change signal the listener raises as connections end, for a host or a test that waits for
    /// connections to finish (0: idle) without polling the count. Costs the connection path nothing while no one waits.
    /// </summary>
    /// <param name="maximum">The most connections that may still be open.</param>
    /// <param name="cancellationToken">Ends the wait; the task is then cancelled.</param>
    /// <returns>A task that completes when the count is at most <paramref name="maximum"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maximum"/> is negative.</exception>
    public Task WhenActiveConnectionsAtMostAsync(int maximum, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maximum);
        return _active.WhenAtMostAsync(maximum, cancellationToken);
    }

    /// <summary>
    /// The most connections open at once: <see cref="GatewayListenerOptions.MaxConnections"/>, lowered (at
    /// <see cref="Start"/>) to what <see cref="FileDescriptorLimit"/> can hold with
    /// <see cref="GatewayListenerOptions.FileDescriptorReserve"/> set aside.
    /// </summary>
    public int ConnectionLimit => Volatile.Read(ref _connectionLimit);

    /// <summary>The process's open-file (soft) limit read at <see cref="Start"/>; null when there is none to read (Windows) or before the start.</summary>
    public long? FileDescriptorLimit => _fileDescriptorLimit;

    /// <summary>Running totals.</summary>
    public GatewayCounters Counters => _telemetry.Counters;

    /// <summary>
    /// The I/O engine serving the connections since <see cref="Start"/>: <see cref="GatewayListenerOptions.Engine"/>, or
    /// <see cref="GatewayIoEngine.Sockets"/> where the event loop cannot run (see <see cref="GatewayIoEngine.EventLoop"/>).
    /// </summary>
    public GatewayIoEngine Engine => _engineKind;

    /// <summary>Tests: the event loops' pauses after bulk turns (0 on the sockets engine).</summary>
    internal long EventLoopBulkPauses => Volatile.Read(ref _engine)?.BulkPauses ?? 0;

    internal GatewayListenerOptions Options => _options;

    internal ref readonly ClientHelloReaderOptions ReaderOptions => ref _readerOptions;

    internal RouteTableSource Routes => _routes;

    internal TimeProvider TimeProvider => _timeProvider;

    /// <summary>Where the gateway's connections report every event (counters, metrics and the observer at once).</summary>
    internal GatewayTelemetry Telemetry => _telemetry;

    /// <summary>The descriptors held for the runtime should accept run out (see <see cref="DescriptorReserve"/>).</summary>
    internal DescriptorReserve DescriptorReserve => _descriptorReserve;

    /// <summary>The open connections (tests read their sockets' options).</summary>
    internal ICollection<GatewayConnection> OpenConnections => _connections.Keys;

    /// <summary>Tests: raised as each connect attempt starts, once its timeout is armed, with the endpoint dialled.</summary>
    internal Action<IPEndPoint>? ConnectStarted { get; set; }

    /// <summary>Tests: raised for each accepted connection once its hello deadline counts (on the listener's clock).</summary>
    internal Action? HelloDeadlineArmed { get; set; }

    /// <summary>
    /// Tests: the open connections' client and upstream sockets, on either engine (the event loop's descriptors as
    /// non-owning <see cref="Socket"/> views, read while the loop is between events), to read their options.
    /// </summary>
    internal async Task<IReadOnlyList<(Socket Client, Socket? Upstream)>> OpenSocketsAsync()
    {
        var sockets = new List<(Socket, Socket?)>();
        foreach (GatewayConnection connection in _connections.Keys)
        {
            sockets.Add((connection.ClientSocket, connection.UpstreamSocket));
        }

        if (_engine is not null)
        {
            foreach ((int client, int upstream) in await _engine.SnapshotAsync().ConfigureAwait(false))
            {
                sockets.Add((View(client), upstream < 0 ? null : View(upstream)));
            }
        }

        return sockets;

        static Socket View(int fd) => new(new SafeSocketHandle(fd, ownsHandle: false));
    }

    /// <summary>Binds every address and starts accepting. Either every address is bound or none stays bound.</summary>
    /// <exception cref="InvalidOperationException">Already started or stopped.</exception>
    /// <exception cref="SocketException">An address could not be bound (for example it is in use).</exception>
    public void Start()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The gateway listener was already started.");
        }

        _descriptorReserve.TryFill();
        long? fileLimit = OpenFileLimit.GetSoftLimit();
        if (fileLimit is long limit)
        {
            // Each kernel pipe (SpliceOptions.MaxKernelPipes) holds two descriptors while a burst of bulk data moves.
            int pipes = _options.Splice.UsesKernelPipes ? _options.Splice.MaxKernelPipes : 0;
            int reserve = _options.FileDescriptorReserve + _options.EndPoints.Count + (pipes * 2);
            _fileDescriptorLimit = limit;
            Volatile.Write(ref _connectionLimit, Math.Min(_options.MaxConnections, OpenFileLimit.ConnectionsFor(limit, reserve)));
        }

        var sockets = new List<Socket>();
        var proxied = new List<bool>();
        try
        {
            foreach (IPEndPoint endPoint in _options.EndPoints)
            {
                proxied.Add(_options.ProxyProtocolEndPoints.Contains(endPoint));
                // NoDelay on the listening socket: accepted sockets inherit TCP_NODELAY (Linux, BSD and Windows copy it
                // from the listener), so the client leg sends each relayed read at once like the upstream leg, at no
                // per-connection cost. With Nagle on, a small write behind unacknowledged data (a TLS server's second
                // flight, a short response after a request) waited for the client's delayed ACK, up to 40 ms.
                var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                sockets.Add(socket);
                if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    socket.DualMode = false;
                }

                socket.Bind(endPoint);
                socket.Listen(_options.ListenBacklog);
            }
        }
        catch
        {
            foreach (Socket socket in sockets)
            {
                socket.Dispose();
            }

            _descriptorReserve.Dispose();
            Volatile.Write(ref _state, 3);
            throw;
        }

        lock (_gate)
        {
            var listeners = new List<(Socket, ListenerContext)>(sockets.Count);
            for (int i = 0; i < sockets.Count; i++)
            {
                Socket socket = sockets[i];
                var local = (IPEndPoint)socket.LocalEndPoint!;
                string name = i < _options.EndPointNames.Count && !string.IsNullOrEmpty(_options.EndPointNames[i]) ? _options.EndPointNames[i] : local.ToString();
                listeners.Add((socket, _telemetry.CreateListener(local, name, proxied[i])));
                _listenSockets.Add(socket);
                _localEndPoints.Add(local);
            }

            if (_options.Engine == GatewayIoEngine.EventLoop && EventLoopEngine.CanRun(_options))
            {
                try
                {
                    _engine = new EventLoopEngine(this, listeners, _options.EventLoopThreads);
                }
                catch (SocketException)
                {
                    // No epoll or eventfd (out of descriptors or memory): nothing stays bound.
                    foreach (Socket socket in sockets)
                    {
                        socket.Dispose();
                    }

                    _listenSockets.Clear();
                    _localEndPoints.Clear();
                    _descriptorReserve.Dispose();
                    Volatile.Write(ref _state, 3);
                    throw;
                }

                _engineKind = GatewayIoEngine.EventLoop;
                _engine.Start();
            }
            else
            {
                foreach ((Socket socket, ListenerContext listener) in listeners)
                {
                    _acceptLoops.Add(Task.Run(() => AcceptLoopAsync(socket, listener)));
                }
            }
        }
    }

    /// <summary>
    /// Stops accepting, waits until the open connections finish or <paramref name="drainTimeout"/> passes, then cuts
    /// (resets) the rest. Calling it again returns the first call's result.
    /// </summary>
    /// <param name="drainTimeout">How long open connections may take to finish.</param>
    /// <param name="cancellationToken">Ends the drain early (the rest is cut).</param>
    /// <returns>How many connections drained and how many were cut.</returns>
    public Task<GatewayStopResult> StopAsync(TimeSpan drainTimeout, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return _stopTask ??= StopCoreAsync(drainTimeout, cancellationToken);
        }
    }

    /// <summary>Stops at once (no drain) and releases the meter.</summary>
    /// <returns>A task that completes when every connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _engine?.Dispose();
        _telemetry.Dispose();
        _trimmer?.Dispose();
        _descriptorReserve.Dispose();
        _stopping.Dispose();
    }

    internal void OnConnectionEnded(GatewayConnection connection)
    {
        _connections.TryRemove(connection, out _);
        OnConnectionEnded(connection.Listener, connection.IsCut);
    }

    /// <summary>An open connection ended (either engine): counts, drain signal and memory trimmer.</summary>
    /// <param name="listener">Where it came in.</param>
    /// <param name="cut">Whether the stop cut it (not counted as drained).</param>
    internal void OnConnectionEnded(ListenerContext listener, bool cut)
    {
        _telemetry.Ended(listener);
        if (_stopping.IsCancellationRequested && !cut)
        {
            Interlocked.Increment(ref _drainedCount);
        }

        int active = (int)_active.Decrement();
        _trimmer?.OnEnded(active);
        if (active == 0 && _stopping.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }

    private async Task<GatewayStopResult> StopCoreAsync(TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        // Synchronous up to the first await: when StopAsync returns, accepting has stopped and the drain has begun.
        Volatile.Write(ref _state, 2);
        _stopping.Cancel();
        Task[] loops;
        if (_engine is not null)
        {
            // The loops stop watching the listeners before the sockets are disposed (their descriptors stay held until then).
            await _engine.StopAcceptingAsync().ConfigureAwait(false);
        }

        lock (_gate)
        {
            foreach (Socket socket in _listenSockets)
            {
                socket.Dispose();
            }

            loops = [.. _acceptLoops];
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        if (_active.Value == 0)
        {
            _drained.TrySetResult();
        }

        if (drainTimeout > TimeSpan.Zero)
        {
            try
            {
                await _drained.Task.WaitAsync(drainTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                // Deadline reached: cut what is left.
            }
        }

        int cut = _engine is null ? 0 : await _engine.AbortAllAsync().ConfigureAwait(false);
        foreach (GatewayConnection connection in _connections.Keys)
        {
            if (connection.Abort())
            {
                cut++;
            }
        }

        if (cut > 0)
        {
            _telemetry.Cut(cut);
            try
            {
                // Aborted connections finish promptly (their sockets are closed); bounded in case one does not.
                await _drained.Task.WaitAsync(s_cutWait, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Reported through the result; nothing else to do.
            }
        }

        var result = new GatewayStopResult(Volatile.Read(ref _drainedCount), cut);
        _telemetry.Stopped(result);
        return result;
    }

    private async Task AcceptLoopAsync(Socket listenSocket, ListenerContext listener)
    {
        CancellationToken stopping = _stopping.Token;
        TimeSpan retryDelay = _options.AcceptRetryDelay;
        while (!stopping.IsCancellationRequested)
        {
            SocketError error;
            try
            {
                Socket accepted = await listenSocket.AcceptAsync(stopping).ConfigureAwait(false);

                // Near the open-file limit (read now: it may have been lowered since Start), accept no more until
                // descriptors return: the runtime must never find none (see DescriptorReserve).
                bool nearLimit = DescriptorReserve.IsNearLimit(accepted);
                OnAccepted(accepted, listener);
                if (!nearLimit)
                {
                    retryDelay = _options.AcceptRetryDelay;
                    continue;
                }

                error = SocketError.TooManyOpenSockets;
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.Interrupted)
            {
                // The client gave up while queued: nothing to report.
                continue;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // EMFILE/ENFILE (TooManyOpenSockets), ENOBUFS, ENOMEM...: wait and try again rather than spin or die.
                error = ex is SocketException se ? se.SocketErrorCode : SocketError.OperationAborted;
            }

            if (error == SocketError.TooManyOpenSockets)
            {
                // First, before anything that could need a descriptor: the runtime must find some (see DescriptorReserve).
                _descriptorReserve.Release();
            }

            while (true)
            {
                _telemetry.AcceptFailed(listener, error, retryDelay);
                try
                {
                    await Task.Delay(retryDelay, _timeProvider, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                retryDelay = retryDelay * 2 > s_maxAcceptRetryDelay ? s_maxAcceptRetryDelay : retryDelay * 2;

                // Accept again only with the reserve back and room beyond it: until then the process is still short of
                // descriptors, and an accept would take the runtime's last ones. Reported as the same failure.
                if (error != SocketError.TooManyOpenSockets || _descriptorReserve.TryFill())
                {
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Counts an accepted connection and decides whether it may open (either engine): past the connection limit or while
    /// stopping it may not, and the caller rejects it with <paramref name="refusal"/> and closes it with a reset.
    /// </summary>
    internal bool TryAdmit(ListenerContext listener, out RejectionReason refusal)
    {
        _telemetry.Accepted(listener);
        int active = (int)_active.Increment();
        if (active > _connectionLimit || _stopping.IsCancellationRequested)
        {
            refusal = _stopping.IsCancellationRequested ? RejectionReason.Stopping : RejectionReason.ConnectionLimit;
            if (_active.Decrement() == 0 && _stopping.IsCancellationRequested)
            {
                _drained.TrySetResult();
            }

            return false;
        }

        refusal = default;
        _trimmer?.OnOpened(active);
        _telemetry.Opened(listener);
        return true;
    }

    /// <summary>Takes over a connection the event loop routed to a terminator (it stays counted as open).</summary>
    internal void StartTerminated(Socket client, ListenerContext listener, EndPoint? clientEndPoint, ConnectionTerminator terminator, byte[] hello, int start, int filled, Route route, ReadOnlyMemory<byte> serverName)
    {
        var connection = new GatewayConnection(this, client, listener);
        _connections.TryAdd(connection, 0);
        connection.ExecuteTerminated(clientEndPoint, terminator, hello, start, filled, route, serverName);
    }

    private void OnAccepted(Socket accepted, ListenerContext listener)
    {
        if (!TryAdmit(listener, out RejectionReason refusal))
        {
            RejectNow(accepted, listener, refusal);
            return;
        }

        _options.ClientTcpKeepAlive?.TryApply(accepted);
        var connection = new GatewayConnection(this, accepted, listener);
        _connections.TryAdd(connection, 0);

        // Started on the accept loop's own thread, not queued to the thread pool: it runs only until its first pending
        // socket operation (usually the zero-byte receive that waits for the hello; at most the hello read, routing and
        // the start of a connect when the hello is already there), so the next accept waits microseconds, and a new
        // connection no longer costs a work item and a worker wake-up. Measured with peers.sh close64, alternating
        // builds (docs/benchmarks.md): CPU per connection 2.18x -> 1.73x sniproxy's, connections/s 0.82x -> 0.94x.
        // Nothing on that path blocks: user code (a ConnectionTerminator) is called only after a yield.
        connection.Execute();
    }

    private void RejectNow(Socket accepted, ListenerContext listener, RejectionReason reason)
    {
        try
        {
            _telemetry.Rejected(new ConnectionContext(listener, accepted.RemoteEndPoint), reason);
        }
        finally
        {
            // Reset: the refused connection frees its resources at once on both ends.
            SocketSplice.Close(accepted, reset: true);
        }
    }
}
