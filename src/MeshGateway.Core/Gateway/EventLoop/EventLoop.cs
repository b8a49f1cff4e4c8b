using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using static MeshGateway.Gateway.LinuxNative;

namespace MeshGateway.Gateway;

/// <summary>
/// One event-loop thread of the <see cref="EventLoopEngine"/>: its own epoll instance, the listening sockets (shared with
/// the other loops, <c>EPOLLEXCLUSIVE</c> so one loop wakes per arrival), and the connections it accepted, which it
/// drives alone (<see cref="EventLoopConnection"/>) until they end.
/// </summary>
/// <remarks>
/// <para>Each epoll event carries a token: the kind of descriptor (the wake-up eventfd, a listener, a connection's client
/// or upstream socket) and, for a connection, its slot in the table and a serial unique in this loop, so an event for a
/// descriptor closed earlier in the same batch is dropped.</para>
/// <para>Time: timeouts are checked by a sweep of the table every <see cref="TickMilliseconds"/> (the epoll wait's
/// timeout, so an idle loop wakes ten times a second), against the gateway's <see cref="TimeProvider"/>; with a clock
/// other than the system's, its timer also wakes the loop, so a test's virtual time moves the deadlines too.</para>
/// <para>Other threads talk to the loop only through <see cref="Post"/> (a queue and the eventfd).</para>
/// <para><b>Yield before waiting.</b> Each turn starts with <c>sched_yield</c>: when the gateway shares its cores with
/// the processes it serves (the benchmark's clients and backends, a sidecar, a busy node), they run first, so the next
/// wait finds more events ready and the loop, and the peers it forwards to, wake fewer times per message. With nothing
/// else runnable it returns at once (one cheap system call per turn). Measured with alternating runs (docs/benchmarks.md,
/// "The event-loop engine"): keep-alive requests/s +2-9 %, new connections/s +2 %, at the same CPU; repeated a session
/// later, within the noise (kept: never worse). Busy polling before the wait cost 7 % more CPU for nothing.</para>
/// <para><b>A pause after a bulk turn.</b> When a connection read a bulk amount in a turn (<see cref="OnBulkRead"/>: at
/// least 16 KiB, or a full buffer), the next turn starts with a sleep of <see cref="GatewayListenerOptions.EventLoopBulkPause"/>
/// instead of the yield, then a poll that does not block (and the usual wait when it finds nothing). A TLS sender writes
/// one 16 KiB record per call; without the pause the loop, which drains a socket faster than its sender fills it, sleeps
/// and is woken once per record (profiled: 4,800 sleeps a second in a 4-connection download against HAProxy's 1,300).
/// After it the loop finds several records per socket and moves them with fewer, fuller reads and sends. Measured
/// (docs/benchmarks.md, issue 15, "Bulk: a pause after a turn that read a full record"): about a fifth less CPU per GiB,
/// throughput unchanged or higher. Small messages never trigger it, so keep-alive and new connections are unchanged.</para>
/// </remarks>
internal sealed unsafe class EventLoop : IDisposable
{
    /// <summary>The sweep's period: the resolution of every timeout the loop runs.</summary>
    public const int TickMilliseconds = 100;

    private const int MaxEvents = 256;
    private const int AcceptBatch = 64;
    private const ulong KindWake = 0, KindListener = 1, KindClient = 2, KindUpstream = 3;
    private const uint ConnectionEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

    private static readonly TimeSpan s_maxAcceptRetryDelay = TimeSpan.FromSeconds(1);

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<Action<EventLoop>> _commands = new();
    private readonly (int Fd, ListenerContext Context)[] _listeners;
    private readonly bool _needPeer;
    private readonly ITimer? _timer;
    private EventLoopConnection?[] _slots = new EventLoopConnection?[64];
    private int[] _free = new int[64];
    private int _freeCount;
    private int _highWater;
    private uint _serial;
    private bool _quit;
    private bool _acceptStopped;
    private bool _acceptPaused;
    private long _resumeAcceptAt;
    private TimeSpan _retryDelay;
    private SocketError _acceptError;
    private long _fileLimit = long.MaxValue;
    private long _lastSweep;
    private readonly long _bulkPauseNanoseconds;
    private bool _bulkTurn;
    private long _bulkPauses;

    public EventLoop(GatewayListener owner, (int Fd, ListenerContext Context)[] listeners, int index)
    {
        Owner = owner;
        _listeners = listeners;
        _needPeer = owner.Telemetry.HasObserver || owner.Options.SendProxyProtocol;
        _retryDelay = owner.Options.AcceptRetryDelay;
        _bulkPauseNanoseconds = owner.Options.EventLoopBulkPause.Ticks * 100;
        Scratch = GC.AllocateUninitializedArray<byte>(owner.Options.Splice.BufferSize, pinned: true);
        _epoll = CreateEpoll();
        _wake = CreateEventFd();
        if (_epoll < 0 || _wake < 0)
        {
            int errno = Errno;
            CloseDescriptors();
            throw new SocketException((int)ToSocketError(errno));
        }

        Control(_epoll, EPOLL_CTL_ADD, _wake, EPOLLIN, KindWake);
        RegisterListeners();
        RefreshFileLimit();
        _lastSweep = owner.TimeProvider.GetTimestamp();
        if (owner.TimeProvider != TimeProvider.System)
        {
            // A virtual clock: its timer wakes the loop so that moving the clock moves the deadlines (see remarks).
            TimeSpan tick = TimeSpan.FromMilliseconds(TickMilliseconds);
            _timer = owner.TimeProvider.CreateTimer(static s => ((EventLoop)s!).Post(static _ => { }), this, tick, tick);
        }

        _thread = new Thread(Run) { IsBackground = true, Name = $"MeshGateway event loop {index}" };
    }

    /// <summary>The gateway listener.</summary>
    public GatewayListener Owner { get; }

    /// <summary>How many times the loop paused after a bulk turn (see remarks).</summary>
    public long BulkPauses => Volatile.Read(ref _bulkPauses);

    /// <summary>A connection read a bulk amount in this turn: the next turn starts with the pause (see remarks).</summary>
    public void OnBulkRead() => _bulkTurn = true;

    /// <summary>The buffer every read of this loop goes into (pinned; one per loop: only one connection reads at a time).</summary>
    public byte[] Scratch { get; }

    /// <summary>The gateway clock's time of the current batch of events.</summary>
    public long Now { get; private set; }

    public void Start() => _thread.Start();

    /// <summary>Runs <paramref name="command"/> on the loop's thread (thread-safe).</summary>
    public void Post(Action<EventLoop> command)
    {
        _commands.Enqueue(command);
        Signal(_wake);
    }

    /// <summary>Stops accepting on this loop; the task completes once the loop no longer watches the listeners.</summary>
    public Task StopAcceptingAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(loop =>
        {
            loop._acceptStopped = true;
            loop.UnregisterListeners();
            done.TrySetResult();
        });
        return done.Task;
    }

    /// <summary>Tests: this loop's open connections' descriptors (client, upstream or -1).</summary>
    public Task<(int Client, int Upstream)[]> SnapshotAsync()
    {
        var done = new TaskCompletionSource<(int, int)[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(loop =>
        {
            var open = new List<(int, int)>();
            for (int i = 0; i < loop._highWater; i++)
            {
                if (loop._slots[i] is { } connection)
                {
                    open.Add((connection.Client, connection.Upstream));
                }
            }

            done.TrySetResult([.. open]);
        });
        return done.Task;
    }

    /// <summary>Cuts every open connection of this loop; the task gives how many it cut.</summary>
    public Task<int> AbortAllAsync()
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(loop =>
        {
            int cut = 0;
            for (int i = 0; i < loop._highWater; i++)
            {
                if (loop._slots[i] is { } connection && connection.Abort())
                {
                    cut++;
                }
            }

            done.TrySetResult(cut);
        });
        return done.Task;
    }

    /// <summary>Ends the thread (connections still open are cut) and releases the loop's descriptors.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        if (_thread.ThreadState != ThreadState.Unstarted)
        {
            Post(static loop => loop._quit = true);
            _thread.Join();
        }

        CloseDescriptors();
    }

    private void CloseDescriptors()
    {
        if (_wake >= 0)
        {
            CloseHandle(_wake);
        }

        if (_epoll >= 0)
        {
            CloseHandle(_epoll);
        }
    }

    /// <summary>Registers a connection's socket (edge-triggered, read, write and FIN); its token, or 0 when epoll refused it.</summary>
    public ulong Register(int fd, EventLoopConnection connection, bool upstream)
    {
        ulong token = ((ulong)++_serial << 32) | ((ulong)(uint)connection.Slot << 2) | (upstream ? KindUpstream : KindClient);
        return Control(_epoll, EPOLL_CTL_ADD, fd, ConnectionEvents, token) == 0 ? token : 0;
    }

    /// <summary>A connection ended (its sockets are closed): frees its slot and tells the listener.</summary>
    public void OnEnded(EventLoopConnection connection)
    {
        FreeSlot(connection.Slot);
        Owner.OnConnectionEnded(connection.Listener, connection.WasCut);
    }

    /// <summary>
    /// Moves a connection routed to a terminator (issue 14's HTTP termination) to the sockets engine: its client socket
    /// leaves this loop and becomes a <see cref="Socket"/>, which a <see cref="GatewayConnection"/> hands over.
    /// </summary>
    public void HandOver(EventLoopConnection connection, ConnectionTerminator terminator, byte[] hello, int start, int filled, Route route, ReadOnlyMemory<byte> serverName)
    {
        Control(_epoll, EPOLL_CTL_DEL, connection.Client, 0, 0);
        FreeSlot(connection.Slot);
        Socket socket;
        try
        {
            socket = new Socket(new SafeSocketHandle(connection.Client, ownsHandle: true));
        }
        catch (SocketException)
        {
            // Not expected for a connected TCP socket; the connection is rejected and released here rather than leaked.
            System.Buffers.ArrayPool<byte>.Shared.Return(hello);
            Owner.Telemetry.Rejected(new ConnectionContext(connection.Listener, connection.ClientEndPoint, serverName.Span, route), RejectionReason.TerminatorFailed);
            Close(connection.Client, reset: true);
            Owner.OnConnectionEnded(connection.Listener, cut: false);
            return;
        }

        Owner.StartTerminated(socket, connection.Listener, connection.ClientEndPoint ?? PeerOf(connection.Client), terminator, hello, start, filled, route, serverName);
    }

    private void Run()
    {
        byte* events = stackalloc byte[MaxEvents * 16];
        while (!_quit)
        {
            int count;
            bool bulkTurn = _bulkTurn;
            _bulkTurn = false;
            if (bulkTurn && _bulkPauseNanoseconds > 0)
            {
                // A bulk turn (see remarks): let the senders queue more, then take it without blocking, or wait as usual.
                Volatile.Write(ref _bulkPauses, _bulkPauses + 1);
                LinuxNative.Sleep(_bulkPauseNanoseconds);
                count = Wait(_epoll, events, MaxEvents, 0);
                if (count == 0)
                {
                    count = Wait(_epoll, events, MaxEvents, TickMilliseconds);
                }
            }
            else
            {
                // Let whatever else is runnable on this core go first (see remarks): more events are then ready per wait.
                LinuxNative.Yield();
                count = Wait(_epoll, events, MaxEvents, TickMilliseconds);
            }

            Now = Owner.TimeProvider.GetTimestamp();
            if (count < 0)
            {
                // EINTR (a signal, a debugger); anything else cannot happen with a valid epoll descriptor.
                continue;
            }

            for (int i = 0; i < count; i++)
            {
                ulong token = EventData(events, i);
                try
                {
                    Dispatch(token, EventFlags(events, i));
                }
#pragma warning disable CA1031 // A fault in one connection's handling must not end the loop (and every other connection with it).
                catch (Exception)
#pragma warning restore CA1031
                {
                    OnDispatchFault(token);
                }
            }

            if (Now - _lastSweep >= Owner.TimeProvider.TimestampFrequency * TickMilliseconds / 1000)
            {
                Sweep();
            }
        }

        // Quitting: cut whatever is still open (the listener's stop has normally ended every connection before this).
        for (int i = 0; i < _highWater; i++)
        {
            _slots[i]?.Abort();
        }
    }

    /// <summary>
    /// Handling an event threw (a defect: nothing on the loop's path throws by design, and the observer's faults are caught
    /// by the telemetry): the connection it was for is cut, counted with the observer errors, and the loop goes on.
    /// </summary>
    private void OnDispatchFault(ulong token)
    {
        Owner.Telemetry.Counters.OnObserverError();
        int slot = (int)((uint)token >> 2);
        if ((token & 3) >= KindClient && slot < _highWater && _slots[slot] is { } connection)
        {
            try
            {
                connection.Abort();
            }
#pragma warning disable CA1031 // As above: the loop must survive; the slot is freed whatever happened.
            catch (Exception)
#pragma warning restore CA1031
            {
                if (_slots[slot] == connection)
                {
                    FreeSlot(slot);
                }
            }
        }
    }

    private void Dispatch(ulong token, uint flags)
    {
        ulong kind = token & 3;
        if (kind == KindWake)
        {
            Drain(_wake);
            while (_commands.TryDequeue(out Action<EventLoop>? command))
            {
                command(this);
            }

            // A command may come from the virtual clock's timer: check the deadlines at its time.
            Sweep();
            return;
        }

        int slot = (int)((uint)token >> 2);
        if (kind == KindListener)
        {
            Accept(slot);
            return;
        }

        if (slot < _highWater && _slots[slot] is { } connection)
        {
            bool upstream = kind == KindUpstream;
            if ((upstream ? connection.UpstreamToken : connection.ClientToken) == token)
            {
                connection.OnEvent(upstream, flags);
            }
        }
    }

    private void Sweep()
    {
        long now = Owner.TimeProvider.GetTimestamp();
        Now = now;
        _lastSweep = now;
        RefreshFileLimit();
        for (int i = 0; i < _highWater; i++)
        {
            _slots[i]?.OnTick(now);
        }

        if (_acceptPaused && now >= _resumeAcceptAt)
        {
            TryResumeAccepting(now);
        }
    }

    // ---------------------------------------------------------------- accept

    private void Accept(int index)
    {
        (int listenFd, ListenerContext listener) = _listeners[index];
        Span<byte> address = stackalloc byte[SockAddrSize];
        for (int i = 0; i < AcceptBatch && !_acceptPaused && !_acceptStopped; i++)
        {
            int fd = LinuxNative.Accept(listenFd, address);
            if (fd < 0)
            {
                int errno = Errno;
                if (errno == EAGAIN)
                {
                    return;
                }

                if (errno is ECONNABORTED or EINTR)
                {
                    // The client gave up while queued: nothing to report.
                    continue;
                }

                // EMFILE/ENFILE (TooManyOpenSockets), ENOBUFS, ENOMEM...: wait and try again rather than spin.
                PauseAccepting(listener, ToSocketError(errno));
                return;
            }

            // Near the open-file limit, accept no more until descriptors return (see DescriptorReserve).
            bool nearLimit = fd >= _fileLimit - 1 - DescriptorReserve.Margin;
            OnAccepted(fd, listener, address);
            if (nearLimit)
            {
                PauseAccepting(listener, SocketError.TooManyOpenSockets);
                return;
            }

            _retryDelay = Owner.Options.AcceptRetryDelay;
        }
    }

    private void OnAccepted(int fd, ListenerContext listener, ReadOnlySpan<byte> address)
    {
        if (!Owner.TryAdmit(listener, out RejectionReason refusal))
        {
            Owner.Telemetry.Rejected(new ConnectionContext(listener, _needPeer ? ReadAddress(address) : null), refusal);
            Close(fd, reset: true);
            return;
        }

        if (Owner.Options.ClientTcpKeepAlive is { } keepAlive)
        {
            TryApplyKeepAlive(fd, keepAlive);
        }

        int slot = AllocateSlot();
        var connection = new EventLoopConnection(this, fd, listener, _needPeer ? ReadAddress(address) : null, slot);
        _slots[slot] = connection;
        ulong token = Register(fd, connection, upstream: false);
        if (token == 0)
        {
            // epoll refused the descriptor (out of memory, or the max_user_watches limit): the system's connection limit.
            FreeSlot(slot);
            Owner.Telemetry.Rejected(new ConnectionContext(listener, connection.ClientEndPoint), RejectionReason.ConnectionLimit);
            Close(fd, reset: true);
            Owner.OnConnectionEnded(listener, cut: false);
            return;
        }

        connection.ClientToken = token;
        Owner.HelloDeadlineArmed?.Invoke();
    }

    private void PauseAccepting(ListenerContext listener, SocketError error)
    {
        if (error == SocketError.TooManyOpenSockets)
        {
            // First, before anything that could need a descriptor: the runtime must find some (see DescriptorReserve).
            Owner.DescriptorReserve.Release();
        }

        _acceptPaused = true;
        _acceptError = error;
        UnregisterListeners();
        ScheduleAcceptRetry(listener);
    }

    private void ScheduleAcceptRetry(ListenerContext listener)
    {
        Owner.Telemetry.AcceptFailed(listener, _acceptError, _retryDelay);
        _resumeAcceptAt = Owner.TimeProvider.GetTimestamp() + (long)(_retryDelay.TotalSeconds * Owner.TimeProvider.TimestampFrequency);
        _retryDelay = _retryDelay * 2 > s_maxAcceptRetryDelay ? s_maxAcceptRetryDelay : _retryDelay * 2;
    }

    private void TryResumeAccepting(long now)
    {
        // Accept again only with the reserve back and room beyond it (see GatewayListener's accept loop).
        if (_acceptStopped || (_acceptError == SocketError.TooManyOpenSockets && !Owner.DescriptorReserve.TryFill()))
        {
            if (!_acceptStopped)
            {
                ScheduleAcceptRetry(_listeners[0].Context);
            }

            return;
        }

        _ = now;
        _acceptPaused = false;
        RegisterListeners();
    }

    private void RegisterListeners()
    {
        for (int i = 0; i < _listeners.Length; i++)
        {
            Control(_epoll, EPOLL_CTL_ADD, _listeners[i].Fd, EPOLLIN | EPOLLEXCLUSIVE, ((ulong)(uint)i << 2) | KindListener);
        }
    }

    private void UnregisterListeners()
    {
        foreach ((int fd, _) in _listeners)
        {
            Control(_epoll, EPOLL_CTL_DEL, fd, 0, 0);
        }
    }

    private void RefreshFileLimit() => _fileLimit = OpenFileLimit.GetSoftLimit() ?? long.MaxValue;

    // ---------------------------------------------------------------- slots

    private int AllocateSlot()
    {
        if (_freeCount > 0)
        {
            return _free[--_freeCount];
        }

        if (_highWater == _slots.Length)
        {
            Array.Resize(ref _slots, _slots.Length * 2);
            Array.Resize(ref _free, _slots.Length);
        }

        return _highWater++;
    }

    private void FreeSlot(int slot)
    {
        _slots[slot] = null;
        _free[_freeCount++] = slot;
    }
}
