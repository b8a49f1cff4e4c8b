using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests.Infrastructure;

/// <summary>How a test's gateway moves spliced bytes.</summary>
public enum Relay
{
    /// <summary>Through user-space buffers (the default).</summary>
    Copy,

    /// <summary>Bursts of bulk data by <c>splice(2)</c> through at most 4 kernel pipes (<see cref="SpliceOptions.MaxKernelPipes"/>), the rest copied.</summary>
    BulkKernelPipes,

    /// <summary>Every byte by <c>splice(2)</c>, from the first read (<see cref="SpliceOptions.KernelPipeFromFirstRead"/>).</summary>
    KernelPipesOnly,
}

/// <summary>A started <see cref="GatewayListener"/> on 127.0.0.1:0 with a recording observer and its own meter scope.</summary>
internal sealed class TestGateway : IAsyncDisposable
{
    private TestGateway(GatewayListener listener, RecordingObserver observer, RouteTableSource routes, TestMeterFactory meters)
    {
        Listener = listener;
        Observer = observer;
        Routes = routes;
        Meters = meters;
    }

    public GatewayListener Listener { get; }

    public RecordingObserver Observer { get; }

    public RouteTableSource Routes { get; }

    public TestMeterFactory Meters { get; }

    public IPEndPoint EndPoint => Listener.LocalEndPoints[0];

    public static TestGateway Start(IEnumerable<Route> routes, Func<GatewayListenerOptions>? options = null, TimeProvider? timeProvider = null, IPEndPoint? bind = null)
    {
        GatewayListenerOptions o = options?.Invoke() ?? new GatewayListenerOptions();
        if (TestEngine.Current == GatewayIoEngine.EventLoop)
        {
            o.OverrideEngine(GatewayIoEngine.EventLoop);
        }

        o.EndPoints.Add(bind ?? new IPEndPoint(IPAddress.Loopback, 0));
        var source = new RouteTableSource(RouteTable.Create(routes));
        var observer = new RecordingObserver();
        var meters = new TestMeterFactory();
        var listener = new GatewayListener(o, source, observer, meters, timeProvider);
        listener.Start();
        return new TestGateway(listener, observer, source, meters);
    }

    /// <summary>Splice options for <paramref name="relay"/>; keep them to ask their pipe budget what went through the kernel.</summary>
    public static SpliceOptions SpliceFor(Relay relay) => relay switch
    {
        Relay.BulkKernelPipes => new SpliceOptions { MaxKernelPipes = 4 },
        Relay.KernelPipesOnly => new SpliceOptions { MaxKernelPipes = 64, KernelPipeFromFirstRead = true },
        _ => new SpliceOptions(),
    };

    /// <summary>Starts a gateway over <paramref name="routes"/> whose splices relay as <paramref name="splice"/> says.</summary>
    public static TestGateway Start(IEnumerable<Route> routes, SpliceOptions splice) =>
        Start(routes, () => new GatewayListenerOptions { Splice = splice });

    /// <summary>
    /// After the test's connections closed: on Linux, a kernel relay moved bytes through pipes (at least
    /// <paramref name="atLeast"/>) and every pipe was closed; a copy relay opened none.
    /// </summary>
    public static void AssertRelayed(Relay relay, SpliceOptions splice, long atLeast = 1)
    {
        if (relay == Relay.Copy || !OperatingSystem.IsLinux())
        {
            Assert.Equal(0, splice.PipeBudget.SplicedBytes);
        }
        else
        {
            Assert.True(splice.PipeBudget.SplicedBytes >= atLeast, $"{splice.PipeBudget.SplicedBytes} bytes went through kernel pipes, expected at least {atLeast}");
        }

        Assert.Equal(0, splice.PipeBudget.Open);
    }

    public static Route Route(string pattern, params IPEndPoint[] endpoints)
        => new(pattern, new UpstreamCluster(pattern, endpoints.Select(e => new UpstreamEndpoint(e))));

    /// <summary>The gateway's counts in one line, for a timeout's message (what it did before the wait gave up).</summary>
    public string DescribeState()
    {
        GatewayCounters c = Listener.Counters;
        return $"Gateway: accepted {c.Accepted}, routed {c.Routed}, rejected {c.Rejected}, connect failures {c.UpstreamConnectFailures}, " +
            $"accept errors {c.AcceptErrors}, open {Listener.ActiveConnections}, closes seen {Observer.Closed.Count}, rejections seen {Observer.Rejections.Count}.";
    }

    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(EndPoint).WaitAsync(TimeSpan.FromSeconds(30));
        return socket;
    }

    /// <summary>Waits until every connection has ended (the listener's change signal; fails after 60 s naming the count left).</summary>
    public Task WaitIdleAsync() => WaitActiveAtMostAsync(0);

    /// <summary>Waits until at most <paramref name="maximum"/> connections are open (the listener's change signal, bounded by 60 s).</summary>
    public async Task WaitActiveAtMostAsync(int maximum)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await Listener.WhenActiveConnectionsAtMostAsync(maximum, timeout.Token);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"Still {Listener.ActiveConnections} connections open after 60 s (waited for at most {maximum}).", ex);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Listener.DisposeAsync();
        Meters.Dispose();
        Observer.Dispose();
    }
}

/// <summary>Records every event; lets a test await the n-th rejection or close.</summary>
internal sealed class RecordingObserver : GatewayObserver, IDisposable
{
    private readonly ConcurrentQueue<(RejectionReason Reason, string ServerName, EndPoint? Client)> _rejections = new();
    private readonly ConcurrentQueue<(string ServerName, string Route, IPEndPoint Upstream, long Up, long Down, MeshGateway.Splicing.SpliceCloseReason Reason)> _closed = new();
    private readonly ConcurrentQueue<(IPEndPoint Upstream, bool TimedOut)> _connectFailures = new();
    private readonly ConcurrentQueue<(byte[] ServerName, MeshGateway.Tls.HostNameIssues Issues)> _rejectedNames = new();
    private readonly ConcurrentQueue<EndPoint?> _closedClients = new();
    private readonly SemaphoreSlim _events = new(0);
    private readonly TaskCompletionSource<SocketError> _acceptFailed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<(RejectionReason Reason, string ServerName, EndPoint? Client)> Rejections => _rejections;

    /// <summary>The server name bytes and their issues of each rejection, in the order of <see cref="Rejections"/>.</summary>
    public IReadOnlyCollection<(byte[] ServerName, MeshGateway.Tls.HostNameIssues Issues)> RejectedServerNames => _rejectedNames;

    public IReadOnlyCollection<(string ServerName, string Route, IPEndPoint Upstream, long Up, long Down, MeshGateway.Splicing.SpliceCloseReason Reason)> Closed => _closed;

    public IReadOnlyCollection<(IPEndPoint Upstream, bool TimedOut)> ConnectFailures => _connectFailures;

    /// <summary>The client address of each spliced connection's access-log record, in order.</summary>
    public IReadOnlyCollection<EndPoint?> ClosedClients => _closedClients;

    public override void OnConnectionRejected(in ConnectionRejectedEvent rejection)
    {
        _rejectedNames.Enqueue((rejection.ServerName.ToArray(), rejection.ServerNameIssues));
        _rejections.Enqueue((rejection.Reason, Encoding.ASCII.GetString(rejection.ServerName), rejection.ClientEndPoint));
        _events.Release();
    }

    public override void OnConnectionClosed(in ConnectionClosedEvent connection)
    {
        _closedClients.Enqueue(connection.ClientEndPoint);
        _closed.Enqueue((Encoding.ASCII.GetString(connection.ServerName), connection.Route.Pattern, connection.UpstreamEndPoint, connection.BytesFromClient, connection.BytesFromUpstream, connection.CloseReason));
        _events.Release();
    }

    public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure) => _connectFailures.Enqueue((failure.UpstreamEndPoint, failure.TimedOut));

    /// <summary>Completes with the error of the first failed accept.</summary>
    public Task<SocketError> FirstAcceptFailure => _acceptFailed.Task;

    public override void OnAcceptFailed(IPEndPoint listener, SocketError socketError, TimeSpan retryDelay) => _acceptFailed.TrySetResult(socketError);

    public void Dispose() => _events.Dispose();

    /// <summary>Waits until at least <paramref name="count"/> rejections plus closes were recorded.</summary>
    public async Task WaitForEventsAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (_rejections.Count + _closed.Count < count)
        {
            await _events.WaitAsync(timeout.Token);
        }
    }
}

/// <summary>An <see cref="IMeterFactory"/> whose meters carry this instance as scope, so a test listens to its own gateway only.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();

    public TestMeterFactory()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, this))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            _sums.AddOrUpdate(instrument.Name, value, (_, v) => v + value);
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                string key = $"{instrument.Name}|{tag.Key}={tag.Value}";
                _sums.AddOrUpdate(key, value, (_, v) => v + value);
            }
        });
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            _sums.AddOrUpdate(instrument.Name + "|count", 1, (_, v) => v + 1));
        _listener.Start();
    }

    /// <summary>The sum of an instrument's measurements, optionally for one tag value (<c>name|tag=value</c>); histograms: <c>name|count</c>.</summary>
    public long Sum(string key) => _sums.TryGetValue(key, out long v) ? v : 0;

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(new MeterOptions(options.Name) { Version = options.Version, Tags = options.Tags, Scope = this });
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        _listener.Dispose();
        lock (_meters)
        {
            foreach (Meter meter in _meters)
            {
                meter.Dispose();
            }
        }
    }
}
