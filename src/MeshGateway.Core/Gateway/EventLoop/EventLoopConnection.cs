using System.Buffers;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Tls;
using static MeshGateway.Gateway.LinuxNative;

namespace MeshGateway.Gateway;

/// <summary>
/// One accepted connection on an <see cref="EventLoop"/>: the same pipeline as <see cref="GatewayConnection"/> (hello →
/// route → connect with retries → splice that replays the bytes read first), as a state machine the loop's thread drives
/// from epoll events. Every method runs on that one thread, so nothing here is synchronised.
/// </summary>
/// <remarks>
/// <para><b>Descriptors.</b> Both sockets are registered once, edge-triggered, for reading, writing and the peer's FIN
/// (<c>EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET</c>): no registration changes after that, and closing a descriptor
/// removes it. Each registration carries a token (<see cref="ClientToken"/>, <see cref="UpstreamToken"/>) unique in the
/// loop, so an event queued for a descriptor already closed (a failed connect attempt, an ended connection whose slot was
/// reused in the same batch) is recognised and dropped.</para>
/// <para><b>The splice.</b> Each direction reads into the loop's one buffer and sends at once; only what the destination
/// does not take is copied into a pooled buffer of the connection (<see cref="Flow.Pending"/>), and the source is not read
/// again until that is sent: an idle or flowing connection holds no buffer, a stalled one holds one. A read shorter than
/// the buffer drained the socket (a later arrival raises a new edge), so the loop does not read again to see EAGAIN,
/// unless the peer's FIN was reported with the data (then it reads on to the end of stream), as nginx does.</para>
/// <para><b>Faults</b>, as on the sockets engine: a reset on either side (a failed read or send, or <c>EPOLLERR</c> on a
/// source that is not being read because its destination is stalled) resets both; a FIN is forwarded as a FIN after the
/// bytes before it (a read of 0 on a socket whose TCP state is CLOSED is a reset whose error an earlier call took); the
/// idle timeout and maximum duration end both sides with FIN.</para>
/// </remarks>
internal sealed class EventLoopConnection
{
    private const int StateHello = 0;
    private const int StateConnecting = 1;
    private const int StateSpliced = 2;
    private const int StateEnded = 3;

    /// <summary>The smallest hello buffer: room for a record header and the start of a handshake message.</summary>
    private const int MinHelloBuffer = 16;

    private readonly EventLoop _loop;
    private readonly GatewayListener _owner;
    private readonly GatewayTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly long _accepted;
    private int _state;
    private int _upstream = -1;
    private long _deadline;
    private bool _aborted;

    // Hello.
    private byte[]? _hello;
    private int _filled;
    private int _helloStart;
    private bool _expectProxyHeader;
    private IPEndPoint? _proxiedDestination;

    // Routing and connect.
    private Route? _route;
    private ReadOnlyMemory<byte> _serverName;
    private int _attempt;
    private int _firstSent;
    private int _peerReset;
    private int _endpointIndex;
    private bool _panic;
    private TriedEndpoints _tried;
    private IPEndPoint? _connecting;
    private IPEndPoint? _upstreamEndPoint;
    private EndpointState? _endpoint;

    // Splice.
    private Flow _up;
    private Flow _down;
    private long _spliceStart;
    private long _lastActivity;
    private long _idleTicks;
    private long _maxDurationTicks;
    private SpliceCloseReason _reason;
    private SocketError _error;
    private long _end;

    public EventLoopConnection(EventLoop loop, int client, ListenerContext listener, EndPoint? clientEndPoint, int slot)
    {
        _loop = loop;
        _owner = loop.Owner;
        _telemetry = _owner.Telemetry;
        _time = _owner.TimeProvider;
        Client = client;
        Listener = listener;
        ClientEndPoint = clientEndPoint;
        Slot = slot;
        _expectProxyHeader = listener.ProxyProtocol;
        _accepted = _time.GetTimestamp();
        _deadline = _accepted + Ticks(_owner.Options.HelloTimeout);
    }

    /// <summary>The upstream socket's descriptor, -1 before the first connect attempt (and between attempts).</summary>
    public int Upstream => _upstream;

    /// <summary>The client's descriptor.</summary>
    public int Client { get; }

    /// <summary>The connection's index in its loop's table.</summary>
    public int Slot { get; }

    /// <summary>The epoll data of the client's registration.</summary>
    public ulong ClientToken { get; set; }

    /// <summary>The epoll data of the current upstream socket's registration (a new one per connect attempt).</summary>
    public ulong UpstreamToken { get; private set; }

    /// <summary>The address the connection came in on.</summary>
    public ListenerContext Listener { get; }

    /// <summary>The client's address (the PROXY header's source when there was one); null when no one needs it (see <see cref="EventLoop"/>).</summary>
    public EndPoint? ClientEndPoint { get; private set; }

    /// <summary>Whether <see cref="Abort"/> cut it (the gateway's stop past its deadline).</summary>
    public bool WasCut => _aborted;

    /// <summary>Whether the connection has ended (its slot is free or about to be).</summary>
    public bool IsEnded => _state == StateEnded;

    private ConnectionContext Context => new(Listener, ClientEndPoint, _serverName.Span, _route, _upstreamEndPoint);

    private long Ticks(TimeSpan span) => span == Timeout.InfiniteTimeSpan ? long.MaxValue : (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>Handles epoll's report for the client (<paramref name="upstream"/> false) or the upstream socket.</summary>
    public void OnEvent(bool upstream, uint events)
    {
        bool readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
        bool writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
        bool peerFin = (events & (EPOLLRDHUP | EPOLLHUP)) != 0;
        ref Flow from = ref upstream ? ref _down : ref _up;
        ref Flow to = ref upstream ? ref _up : ref _down;
        from.Readable |= readable;
        from.PeerFin |= peerFin;
        to.Writable |= writable;

        switch (_state)
        {
            case StateHello when !upstream && readable:
                ReadHello();
                break;
            case StateConnecting when upstream && writable:
                FinishConnect();
                break;
            case StateSpliced:
                if ((events & EPOLLERR) != 0 && (upstream ? _down.Pending : _up.Pending) is not null)
                {
                    // The source of a stalled direction failed (it is not being read, see remarks): both sides go now.
                    int error = PendingError(upstream ? _upstream : Client);
                    Fail(clientSide: !upstream, error == 0 ? ConnectionReset : error);
                    return;
                }

                Pump();
                break;
        }
    }

    // ---------------------------------------------------------------- hello

    private void ReadHello()
    {
        GatewayListenerOptions options = _owner.Options;
        int maxHello = options.MaxHelloSize;
        int maxTotal = maxHello + (_expectProxyHeader ? ProxyProtocol.MaxHeaderLength : 0);
        while (true)
        {
            byte[] buffer;
            int room;
            if (_hello is null)
            {
                // First bytes into the loop's buffer: a hello that arrives at once is copied once, sized to what came.
                buffer = _loop.Scratch;
                room = Math.Min(buffer.Length, maxTotal);
            }
            else
            {
                if (_filled == _hello.Length)
                {
                    int wanted = Math.Max(_filled * 2, _filled + Queued(Client));
                    byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Min(wanted, maxTotal));
                    _hello.AsSpan(0, _filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(_hello);
                    _hello = larger;
                }

                buffer = _hello;
                room = Math.Min(buffer.Length, maxTotal) - _filled;
            }

            int offset = _hello is null ? 0 : _filled;
            if (room <= 0)
            {
                // Cannot happen (a full hello is decided as too large before the buffer is full); never read into nothing.
                Reject(RejectionReason.HelloTooLarge, reset: false);
                return;
            }

            nint received = Receive(Client, ref buffer[offset], room);
            if (received < 0 && Errno == EAGAIN)
            {
                _up.Readable = false;
                return;
            }

            if (received <= 0)
            {
                Reject(_aborted ? RejectionReason.Stopping : RejectionReason.ClientClosed, reset: received < 0);
                return;
            }

            _filled = offset + (int)received;
            if (_expectProxyHeader)
            {
                ProxyHeaderStatus proxy = ProxyProtocol.TryRead(buffer.AsSpan(0, _filled), out _helloStart, out IPEndPoint? source, out _proxiedDestination);
                if (proxy is ProxyHeaderStatus.Missing or ProxyHeaderStatus.Invalid)
                {
                    Reject(proxy == ProxyHeaderStatus.Missing ? RejectionReason.ProxyHeaderMissing : RejectionReason.ProxyHeaderInvalid, reset: false);
                    return;
                }

                if (proxy == ProxyHeaderStatus.Done)
                {
                    _expectProxyHeader = false;
                    ClientEndPoint = source ?? ClientEndPoint ?? PeerOf(Client);
                }
            }

            if (_hello is null)
            {
                // Keep what came (the replayed prefix once routed, or the start of a hello still arriving).
                _hello = ArrayPool<byte>.Shared.Rent(Math.Max(_filled, MinHelloBuffer));
                buffer.AsSpan(0, _filled).CopyTo(_hello);
            }

            Route? route = null;
            bool decided = !_expectProxyHeader && _filled > _helloStart && ReadHello(_hello.AsSpan(_helloStart, _filled - _helloStart), _filled - _helloStart >= maxHello, out route);
            if (decided)
            {
                if (route is not null)
                {
                    OnRouted(route);
                }

                return;
            }

            if (received < room && !_up.PeerFin)
            {
                // Drained (see remarks): wait for the next edge.
                _up.Readable = false;
                return;
            }
        }
    }

    /// <summary>Reads the hello; false while more bytes are needed; true once decided (routed when <paramref name="route"/> is set).</summary>
    private bool ReadHello(ReadOnlySpan<byte> input, bool full, out Route? route)
    {
        route = null;
        if (!HelloRouting.TryRead(_owner, input, full, out ClientHelloInfo hello, out ClientHelloStatus status))
        {
            return false;
        }

        route = HelloRouting.Decide(_owner, Listener, ClientEndPoint, in hello, status, _time.GetElapsedTime(_accepted), out _serverName);
        if (route is null)
        {
            End(reset: false);
        }

        return true;
    }

    private void OnRouted(Route route)
    {
        _route = route;
        if (route.Terminator is { } terminator)
        {
            // Handed over to the sockets engine (issue 14's HTTP terminator runs on Kestrel's transport).
            byte[] hello = _hello!;
            _hello = null;
            _state = StateEnded;
            _loop.HandOver(this, terminator, hello, _helloStart, _filled, route, _serverName);
            return;
        }

        if (route.Cluster.Endpoints.Count == 0)
        {
            Reject(RejectionReason.NoEndpoint, reset: false);
            return;
        }

        _state = StateConnecting;
        NextAttempt();
    }

    // ---------------------------------------------------------------- connect

    /// <summary>Dials the next endpoint of the route's cluster, or rejects the connection when the attempts ran out.</summary>
    private void NextAttempt()
    {
        UpstreamCluster cluster = _route!.Cluster;
        int attempts = Math.Min(cluster.MaxConnectAttempts, cluster.Endpoints.Count);
        while (++_attempt <= attempts)
        {
            if (_aborted)
            {
                Reject(RejectionReason.Stopping, reset: true);
                return;
            }

            int index = cluster.Select(((ReadOnlySpan<int>)_tried)[..(_attempt - 1)], _time.GetTimestamp(), out _panic);
            if (index < 0)
            {
                if (_attempt == 1)
                {
                    // Nothing excluded yet, so no endpoint has an address: host names not resolved (yet), or failing.
                    Reject(RejectionReason.EndpointUnresolved, reset: false);
                    return;
                }

                break;
            }

            _tried[_attempt - 1] = index;
            IPEndPoint? endPoint = cluster.GetState(index).Address;
            if (endPoint is null)
            {
                continue;
            }

            if (_panic)
            {
                _telemetry.Panic();
            }

            int fd = CreateTcpSocket(endPoint.AddressFamily);
            if (fd < 0)
            {
                // Out of descriptors or buffers: not the endpoint's fault, so no ejection and no retry.
                _telemetry.ConnectFailed(Context, endPoint, _attempt, timedOut: false, ToSocketError(Errno), _panic);
                break;
            }

            if (cluster.TcpKeepAlive is { } keepAlive)
            {
                TryApplyKeepAlive(fd, keepAlive);
            }

            _upstream = fd;
            _endpointIndex = index;
            _connecting = endPoint;

            // Registered only once the connect is under way: a socket not yet connecting polls as writable and hung up
            // (state CLOSED), which would read as a finished connect. In SYN_SENT it polls as nothing until it settles.
            int result = Connect(fd, endPoint);
            int errno = result == 0 ? 0 : Errno;
            if (result == 0 || errno == EINPROGRESS)
            {
                UpstreamToken = _loop.Register(fd, this, upstream: true);
                if (UpstreamToken == 0)
                {
                    // epoll refused it (out of memory, or max_user_watches): not the endpoint's fault, no retry.
                    errno = Errno;
                    CloseHandle(fd);
                    _upstream = -1;
                    _telemetry.ConnectFailed(Context, endPoint, _attempt, timedOut: false, ToSocketError(errno), _panic);
                    break;
                }

                int first = result == 0 ? 1 : TrySendFirst(out errno);
                if (first > 0)
                {
                    OnConnected();
                    return;
                }

                if (first < 0)
                {
                    // The connect failed (the first send returned its error): the next attempt.
                    OnConnectFailed(timedOut: false, ToSocketError(errno));
                    continue;
                }

                _deadline = _time.GetTimestamp() + Ticks(cluster.ConnectTimeout);
                _owner.ConnectStarted?.Invoke(endPoint);
                return;
            }

            OnConnectFailed(timedOut: false, ToSocketError(errno));
            if (_state == StateEnded)
            {
                return;
            }
        }

        Reject(_aborted ? RejectionReason.Stopping : RejectionReason.UpstreamUnreachable, reset: false);
    }

    /// <summary>
    /// Sends the first replayed bytes on a socket whose connect is under way, before waiting for epoll: on loopback and
    /// other near links the handshake is usually complete by now, and this saves the wait, the wake-up and the SO_ERROR
    /// query. A socket still connecting refuses with EAGAIN (nothing was sent: wait as usual); one whose connect failed
    /// returns the connect's error (the attempt failed: the next one is made here). Not with a PROXY header to prepend,
    /// which is written at <see cref="OnConnected"/>.
    /// </summary>
    /// <param name="errno">The connect's error when it failed.</param>
    /// <returns>1: connected (bytes were sent; <see cref="OnConnected"/> sends the rest); 0: still connecting; -1: failed.</returns>
    private int TrySendFirst(out int errno)
    {
        errno = 0;
        if (_owner.Options.SendProxyProtocol)
        {
            return 0;
        }

        nint sent = Send(_upstream, ref _hello![_helloStart], _filled - _helloStart);
        if (sent > 0)
        {
            _helloStart += (int)sent;
            _firstSent = (int)sent;
            return 1;
        }

        errno = Errno;
        return errno == EAGAIN ? 0 : -1;
    }

    private void FinishConnect()
    {
        int error = PendingError(_upstream);
        if (error == 0)
        {
            OnConnected();
            return;
        }

        OnConnectFailed(timedOut: false, ToSocketError(error));
        if (_state == StateConnecting)
        {
            NextAttempt();
        }
    }

    /// <summary>One attempt failed: its socket is closed, the endpoint's failure counted and reported.</summary>
    private void OnConnectFailed(bool timedOut, SocketError error)
    {
        CloseHandle(_upstream);
        _upstream = -1;
        UpstreamToken = 0;
        _up.Writable = false;
        _down.Readable = false;
        _down.PeerFin = false;
        UpstreamCluster cluster = _route!.Cluster;
        cluster.OnConnectFailed(_endpointIndex, _time.GetTimestamp(), _time.TimestampFrequency);
        _telemetry.ConnectFailed(Context, _connecting!, _attempt, timedOut, timedOut ? SocketError.TimedOut : error, _panic);
    }

    private void OnConnected()
    {
        UpstreamCluster cluster = _route!.Cluster;
        _upstreamEndPoint = _connecting;
        _endpoint = cluster.OnConnected(_endpointIndex);
        _state = StateSpliced;
        long now = _time.GetTimestamp();
        _spliceStart = now;
        _lastActivity = now;
        _up.LastReport = now;
        _down.LastReport = now;
        _idleTicks = Ticks(cluster.IdleTimeout ?? _owner.Options.Splice.IdleTimeout);
        _maxDurationTicks = Ticks(_owner.Options.Splice.MaxDuration);
        _telemetry.Routed(Context);

        // The bytes read so far (the hello and whatever followed it) go upstream first, as the splice's first pending bytes.
        int added = 0;
        if (_owner.Options.SendProxyProtocol)
        {
            added = PrependProxyHeader();
        }

        _up.Pending = _hello;
        _up.Pool = ArrayPool<byte>.Shared;
        _up.Offset = _helloStart;
        _up.End = _filled;
        _up.Header = added;
        _hello = null;
        if (_firstSent > 0)
        {
            // Sent by TrySendFirst: counted now that the splice began.
            Relayed(ref _up, fromClient: true, _firstSent);
        }

        _up.Writable = true;

        // _up.Readable stays as the client's events left it (the hello read drained the socket, and every edge since was
        // recorded): no blind read that would only see EAGAIN.
        Pump();
    }

    /// <summary>Puts a PROXY protocol v2 header before the bytes to replay (over a consumed incoming header when it fits).</summary>
    private int PrependProxyHeader()
    {
        var source = (ClientEndPoint ?? PeerOf(Client)) as IPEndPoint ?? new IPEndPoint(IPAddress.IPv6Any, 0);
        IPEndPoint destination = _proxiedDestination ?? Listener.EndPoint;
        int length = ProxyProtocol.GetLength(source, destination);
        if (_helloStart >= length)
        {
            _helloStart -= length;
            ProxyProtocol.Write(_hello.AsSpan(_helloStart), source, destination);
            return length;
        }

        byte[] larger = ArrayPool<byte>.Shared.Rent(length + _filled - _helloStart);
        ProxyProtocol.Write(larger, source, destination);
        _hello.AsSpan(_helloStart, _filled - _helloStart).CopyTo(larger.AsSpan(length));
        ArrayPool<byte>.Shared.Return(_hello!);
        _hello = larger;
        _filled = length + _filled - _helloStart;
        _helloStart = 0;
        return length;
    }

    // ---------------------------------------------------------------- splice

    private void Pump()
    {
        if (Move(ref _up, Client, _upstream, fromClient: true) && Move(ref _down, _upstream, Client, fromClient: false) && _up.FinSent && _down.FinSent)
        {
            // Both directions ended with FIN: a clean close.
            End(reset: false);
        }
    }

    /// <summary>Moves what it can in one direction; false when the connection ended.</summary>
    /// <remarks>
    /// Reads go into the loop's buffer while the destination takes everything at once. Once it does not (a stall), the
    /// rest is copied into a buffer of the flow's own, and while the flow stays bulk (reads that fill the buffer) it
    /// reads into that buffer directly, so a later stall leaves the rest in place instead of copying it again. The first
    /// short read (the source drained) gives the buffer back: an idle flow holds none.
    /// </remarks>
    private bool Move(ref Flow flow, int from, int to, bool fromClient)
    {
        SpliceOptions options = _owner.Options.Splice;
        if (flow.Pending is { } pending)
        {
            if (!flow.Writable)
            {
                return true;
            }

            while (flow.Offset < flow.End)
            {
                nint sent = Send(to, ref pending[flow.Offset], flow.End - flow.Offset);
                if (sent < 0)
                {
                    int errno = Errno;
                    if (errno == EAGAIN)
                    {
                        flow.Writable = false;
                        return true;
                    }

                    Fail(clientSide: !fromClient, errno);
                    return false;
                }

                int headerPart = (int)Math.Min(sent, flow.Header);
                flow.Header -= headerPart;
                flow.Offset += (int)sent;
                Relayed(ref flow, fromClient, (int)sent - headerPart);
            }

            if (flow.Pool == options.BufferPool && pending.Length >= options.BufferSize && !flow.Eof)
            {
                // A stalled bulk flow's own buffer: read into it next (see remarks).
                flow.Offset = 0;
                flow.End = 0;
            }
            else
            {
                flow.Pending = null;
                flow.Pool!.Return(pending);
            }
        }

        while (flow.Readable && !flow.Eof)
        {
            byte[] buffer = flow.Pending ?? _loop.Scratch;
            int size = flow.Pending is null ? buffer.Length : options.BufferSize;
            nint received = Receive(from, ref buffer[0], size);
            if (received < 0)
            {
                int errno = Errno;
                if (errno == EAGAIN)
                {
                    flow.Readable = false;
                    break;
                }

                Fail(clientSide: fromClient, errno);
                return false;
            }

            if (received == 0)
            {
                // A reset whose error another call took reads as 0: the TCP state tells (CLOSED, not CLOSE_WAIT),
                // unless this splice already shut its own send down on the socket (a FIN also ends in CLOSED then).
                ref Flow back = ref fromClient ? ref _down : ref _up;
                if (!back.FinSent && TcpState(from) == LinuxNative.TcpClose)
                {
                    Fail(clientSide: fromClient, ConnectionReset);
                    return false;
                }

                flow.Eof = true;
                break;
            }

            _lastActivity = _loop.Now;
            nint sent = Send(to, ref buffer[0], (int)received);
            if (sent < 0)
            {
                int errno = Errno;
                if (errno != EAGAIN)
                {
                    Fail(clientSide: !fromClient, errno);
                    return false;
                }

                sent = 0;
            }

            Relayed(ref flow, fromClient, (int)sent);
            if (sent < received)
            {
                // The destination is full: keep the rest (in place when this is the flow's own buffer) and read this
                // source again once it is sent.
                if (flow.Pending is null)
                {
                    byte[] keep = options.BufferPool.Rent(options.BufferSize);
                    buffer.AsSpan((int)sent, (int)(received - sent)).CopyTo(keep);
                    flow.Pending = keep;
                    flow.Pool = options.BufferPool;
                    flow.Offset = 0;
                    flow.End = (int)(received - sent);
                }
                else
                {
                    flow.Offset = (int)sent;
                    flow.End = (int)received;
                }

                flow.Header = 0;
                flow.Writable = false;
                return true;
            }

            if (received >= BulkRead || received == size)
            {
                // A bulk sender (a full TLS record, or a full buffer): the loop pauses before its next turn.
                _loop.OnBulkRead();
            }

            if (received < size && !flow.PeerFin)
            {
                // Drained (see the class remarks): wait for the next edge, holding no buffer.
                flow.Readable = false;
                break;
            }
        }

        if (flow.Pending is { } idle && flow.Offset == flow.End)
        {
            flow.Pending = null;
            flow.Pool!.Return(idle);
        }

        if (flow.Eof && !flow.FinSent)
        {
            flow.FinSent = true;
            SetReason(fromClient ? SpliceCloseReason.ClientClosed : SpliceCloseReason.UpstreamClosed, SocketError.Success);
            ShutdownSend(to);
        }

        return true;
    }

    private const int ConnectionReset = 104;

    /// <summary>A read this large came from a bulk sender (<see cref="EventLoop.OnBulkRead"/>): one full TLS record's plaintext size.</summary>
    private const int BulkRead = 16 * 1024;

    private void Relayed(ref Flow flow, bool fromClient, int count)
    {
        if (count <= 0)
        {
            return;
        }

        flow.Bytes += count;
        long now = _loop.Now;
        _lastActivity = now;
        long pending = flow.Bytes - flow.Reported;
        if (SpliceSession.IsReportDue(pending, now, flow.LastReport, _time.TimestampFrequency))
        {
            Listener.OnRelayed(fromClient, pending);
            flow.Reported = flow.Bytes;
            flow.LastReport = now;
        }
    }

    /// <summary>Records <paramref name="reason"/> unless one is recorded; a clean FIN gives way to what came after it (as <see cref="SpliceSession"/>).</summary>
    private void SetReason(SpliceCloseReason reason, SocketError error)
    {
        if (SpliceSession.Replaces(_reason, reason))
        {
            _reason = reason;
            _error = error;
        }
    }

    private void Fail(bool clientSide, int errno)
    {
        SetReason(clientSide ? SpliceCloseReason.ClientError : SpliceCloseReason.UpstreamError, ToSocketError(errno));

        // A side that reset the connection is closed already: it needs no SO_LINGER of its own (one system call less).
        _peerReset = errno == ConnectionReset ? (clientSide ? 1 : 2) : 0;
        End(reset: true);
    }

    // ---------------------------------------------------------------- timeouts, abort, end

    /// <summary>Checks this connection's deadlines (the loop's periodic sweep); <paramref name="now"/> from the gateway's clock.</summary>
    public void OnTick(long now)
    {
        switch (_state)
        {
            case StateHello when now >= _deadline:
                Reject(RejectionReason.HelloTimeout, reset: false);
                break;
            case StateConnecting when now >= _deadline:
                OnConnectFailed(timedOut: true, SocketError.TimedOut);
                NextAttempt();
                break;
            case StateSpliced:
                if (_maxDurationTicks != long.MaxValue && now - _spliceStart >= _maxDurationTicks)
                {
                    SetReason(SpliceCloseReason.MaxDurationReached, SocketError.Success);
                    ShutdownAndEnd();
                }
                else if (_idleTicks != long.MaxValue && now - _lastActivity >= _idleTicks)
                {
                    SetReason(SpliceCloseReason.IdleTimeout, SocketError.Success);
                    ShutdownAndEnd();
                }

                break;
        }
    }

    /// <summary>Cuts the connection (gateway stop past its deadline): both sides are reset.</summary>
    /// <returns>Whether it was still open.</returns>
    public bool Abort()
    {
        if (_state == StateEnded)
        {
            return false;
        }

        _aborted = true;
        if (_state == StateSpliced)
        {
            SetReason(SpliceCloseReason.Aborted, SocketError.Success);
            End(reset: true);
        }
        else
        {
            Reject(RejectionReason.Stopping, reset: true);
        }

        return true;
    }

    /// <summary>The idle timeout and maximum duration end both sides with FIN (the sockets engine's teardown without reset).</summary>
    private void ShutdownAndEnd()
    {
        LinuxNative.ShutdownBoth(Client);
        LinuxNative.ShutdownBoth(_upstream);
        End(reset: false);
    }

    /// <summary>Closes the client without splicing and reports why.</summary>
    private void Reject(RejectionReason reason, bool reset)
    {
        HostNameIssues issues = _telemetry.HasObserver && !_serverName.IsEmpty ? HostNameClassifier.Classify(_serverName.Span) : HostNameIssues.None;
        _telemetry.Rejected(Context, reason, ClientHelloError.None, issues);
        End(reset);
    }

    /// <summary>Closes both descriptors, reports a spliced connection's end, returns the buffers and frees the slot.</summary>
    private void End(bool reset)
    {
        int state = _state;
        if (state == StateEnded)
        {
            return;
        }

        _state = StateEnded;
        _end = _time.GetTimestamp();
        Close(Client, reset && _peerReset != 1);
        if (_upstream >= 0)
        {
            Close(_upstream, reset && _peerReset != 2);
        }

        ReturnBuffers();
        if (state == StateSpliced)
        {
            var result = new SpliceResult(_reason, _up.Bytes, _down.Bytes, _error, _time.GetElapsedTime(_spliceStart, _end));
            try
            {
                _telemetry.Closed(Context, result, _up.Reported, _down.Reported, _time.GetElapsedTime(_accepted, _end));
            }
            finally
            {
                _endpoint?.OnDisconnected();
            }
        }

        _loop.OnEnded(this);
    }

    private void ReturnBuffers()
    {
        if (_hello is { } hello)
        {
            _hello = null;
            ArrayPool<byte>.Shared.Return(hello);
        }

        ReturnPending(ref _up);
        ReturnPending(ref _down);

        static void ReturnPending(ref Flow flow)
        {
            if (flow.Pending is { } pending)
            {
                flow.Pending = null;
                flow.Pool!.Return(pending);
            }
        }
    }

    /// <summary>One direction of the splice.</summary>
    private struct Flow
    {
        /// <summary>Bytes the destination has not taken yet (a pooled buffer), or null.</summary>
        public byte[]? Pending;

        /// <summary>Where <see cref="Pending"/> goes back to: the shared pool (the replayed hello) or the splice's.</summary>
        public ArrayPool<byte>? Pool;
        public int Offset;
        public int End;

        /// <summary>Bytes of <see cref="Pending"/> that are the gateway's own PROXY header (sent, never counted as the client's).</summary>
        public int Header;

        /// <summary>The source may have bytes to read (an edge was reported and not drained).</summary>
        public bool Readable;

        /// <summary>The source's FIN (or hang-up) was reported: read to the end of stream.</summary>
        public bool PeerFin;

        /// <summary>The destination may take more bytes.</summary>
        public bool Writable;

        /// <summary>The source sent FIN (a read returned 0).</summary>
        public bool Eof;

        /// <summary>That FIN was forwarded (the destination's send was shut down).</summary>
        public bool FinSent;

        public long Bytes;
        public long Reported;
        public long LastReport;
    }

    [System.Runtime.CompilerServices.InlineArray(UpstreamCluster.MaxAllowedConnectAttempts)]
    private struct TriedEndpoints
    {
        private int _element0;
    }
}
