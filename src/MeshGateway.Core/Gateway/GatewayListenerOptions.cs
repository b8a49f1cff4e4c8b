using System.Net;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>Settings of a <see cref="GatewayListener"/>.</summary>
public sealed class GatewayListenerOptions
{
    /// <summary>The default <see cref="HelloTimeout"/>: 10 s.</summary>
    public static readonly TimeSpan DefaultHelloTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The default <see cref="MaxConnections"/> (lowered to what the file-descriptor limit allows).</summary>
    public const int DefaultMaxConnections = 50_000;

    /// <summary>The default <see cref="FileDescriptorReserve"/>: 128 descriptors.</summary>
    public const int DefaultFileDescriptorReserve = 128;

    private readonly TimeSpan _helloTimeout = DefaultHelloTimeout;
    private readonly int _eventLoopThreads = 1;
    private readonly TimeSpan _eventLoopBulkPause = DefaultEventLoopBulkPause;
    private GatewayIoEngine _engine;
    private readonly int _maxHelloSize = ClientHelloReaderOptions.DefaultMaxHelloSize;
    private readonly int _maxConnections = DefaultMaxConnections;
    private readonly int _fileDescriptorReserve = DefaultFileDescriptorReserve;
    private readonly int _backlog = 1024;
    private readonly TimeSpan _acceptRetryDelay = TimeSpan.FromMilliseconds(50);
    private readonly SpliceOptions _splice = SpliceOptions.Default;

    /// <summary>
    /// The addresses to listen on (IPv4 and IPv6; port 0 picks a free port, see <see cref="GatewayListener.LocalEndPoints"/>).
    /// Consul's <c>default</c>, tagged and named bind addresses (docs/consul-behaviour.md §6.1) each become one entry.
    /// An IPv6 address listens on IPv6 only; add the IPv4 address too for both.
    /// </summary>
    public IList<IPEndPoint> EndPoints { get; } = new List<IPEndPoint>();

    /// <summary>
    /// Names of the <see cref="EndPoints"/> entries, by position (for example Consul's <c>default</c>, <c>lan</c>,
    /// <c>wan</c>), used as the <see cref="GatewayMetricNames.ListenerTag"/> of the connection metrics. An entry without a
    /// name is tagged with its bound <c>ip:port</c>. Default empty.
    /// </summary>
    public IList<string> EndPointNames { get; } = new List<string>();

    /// <summary>
    /// Whether the memory a wave of connections held is returned to the operating system once it has drained: when the
    /// open connections fall to a quarter of a peak of at least 1,024 and stay there for 2 s, one aggressive, compacting
    /// garbage collection runs (never on the accept or splice path). Without it a quiet gateway keeps a flood's peak
    /// resident, since the collector runs only on allocation. Default true.
    /// </summary>
    public bool ReturnMemoryAfterWaves { get; init; } = true;

    /// <summary>
    /// TCP keepalive on accepted client connections, or <see langword="null"/> for none (the default). Consul has no key
    /// for the listener side (its <c>envoy_gateway_remote_tcp_*</c> keys cover remote-gateway upstreams, see
    /// <see cref="Routing.UpstreamCluster.TcpKeepAlive"/>); Envoy sets it with listener socket options.
    /// </summary>
    public Routing.TcpKeepAlive? ClientTcpKeepAlive { get; init; }

    /// <summary>
    /// Entries of <see cref="EndPoints"/> (compared by value) behind a TCP load balancer that sends the PROXY protocol
    /// v2 header (HAProxy <c>send-proxy-v2</c>, AWS NLB proxy protocol v2): every connection there must start with one.
    /// The header's source address becomes the client address of the access log and rejections; a LOCAL header (the
    /// balancer's own health check) keeps the socket's. A missing or malformed header is rejected and counted
    /// (<see cref="RejectionReason.ProxyHeaderMissing"/>, <see cref="RejectionReason.ProxyHeaderInvalid"/>). It counts
    /// against <see cref="HelloTimeout"/>. Version 1 (text) is not accepted. Default empty.
    /// </summary>
    public IList<IPEndPoint> ProxyProtocolEndPoints { get; } = new List<IPEndPoint>();

    /// <summary>
    /// Whether each routed connection starts, toward the upstream, with a PROXY protocol v2 header carrying the client
    /// address (from the incoming header when there is one) and the address it connected to. Only for upstreams that
    /// expect it (a plain TLS server would fail the handshake). Default false.
    /// </summary>
    public bool SendProxyProtocol { get; init; }

    /// <summary>
    /// The absolute deadline, counted from accept, for a complete ClientHello; past it the connection is closed and
    /// counted as <see cref="RejectionReason.HelloTimeout"/>. Default <see cref="DefaultHelloTimeout"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public TimeSpan HelloTimeout
    {
        get => _helloTimeout;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _helloTimeout = value;
        }
    }

    /// <summary>The most bytes a ClientHello may occupy (record headers included). Default 16 KiB (see <see cref="ClientHelloReaderOptions.DefaultMaxHelloSize"/> for why); at most <see cref="ClientHelloReaderOptions.MaxAllowedHelloSize"/> (131,445: the largest legal hello).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 512 or above <see cref="ClientHelloReaderOptions.MaxAllowedHelloSize"/>.</exception>
    public int MaxHelloSize
    {
        get => _maxHelloSize;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 512);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, ClientHelloReaderOptions.MaxAllowedHelloSize);
            _maxHelloSize = value;
        }
    }

    /// <summary>
    /// The most connections open at once (reading a hello or spliced); more are reset at once and counted as
    /// <see cref="RejectionReason.ConnectionLimit"/>. Default <see cref="DefaultMaxConnections"/>.
    /// </summary>
    /// <remarks>
    /// The listener never allows more than the process's open-file limit can hold (<c>ulimit -n</c>, read at
    /// <see cref="GatewayListener.Start"/>): each connection holds two descriptors (client and upstream), and
    /// <see cref="FileDescriptorReserve"/> plus one per listening address are kept for everything else, so the
    /// effective limit (<see cref="GatewayListener.ConnectionLimit"/>) is
    /// <c>min(MaxConnections, (limit − reserve − listeners − 2 × pipes) / 2)</c>, where pipes is <see cref="SpliceOptions.MaxKernelPipes"/>
    /// on Linux (two descriptors each), else 0. With <c>ulimit -n 1024</c>, one listener and no pipes that is (1024 − 128 − 1) / 2 = 447.
    /// Running out of descriptors would make the runtime abort the whole process; a full gateway only refuses new connections.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public int MaxConnections
    {
        get => _maxConnections;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxConnections = value;
        }
    }

    /// <summary>
    /// File descriptors kept free for everything but the proxied connections when the connection limit is derived from
    /// the open-file limit (see <see cref="MaxConnections"/>): the runtime's own (about 30 to 60: epoll, event pipes,
    /// loaded files, standard streams; it needs a few more whenever it starts a thread), the 16 the listener holds to
    /// give the runtime should accept still run out, log files, the Consul agent client's connections. Default <see cref="DefaultFileDescriptorReserve"/>; 16 to 1,000,000.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 16 to 1,000,000.</exception>
    public int FileDescriptorReserve
    {
        get => _fileDescriptorReserve;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 16);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 1_000_000);
            _fileDescriptorReserve = value;
        }
    }

    /// <summary>The listen backlog. Default 1024.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public int ListenBacklog
    {
        get => _backlog;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _backlog = value;
        }
    }

    /// <summary>The first back-off after a failed accept (for example out of file descriptors); it doubles up to 1 s while accepts keep failing. Default 50 ms.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public TimeSpan AcceptRetryDelay
    {
        get => _acceptRetryDelay;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _acceptRetryDelay = value;
        }
    }

    /// <summary>
    /// Which I/O engine moves the connections: <see cref="GatewayIoEngine.Sockets"/> (the default: .NET's sockets on any
    /// system) or <see cref="GatewayIoEngine.EventLoop"/> (Linux: the gateway's own epoll loops over raw descriptors,
    /// fewer system calls and thread switches per connection and per message; docs/data-plane.md). Where the event loop
    /// cannot run, the sockets engine serves (<see cref="GatewayListener.Engine"/> tells which runs).
    /// </summary>
    public GatewayIoEngine Engine
    {
        get => _engine;
        init => _engine = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Not a GatewayIoEngine value.");
    }

    /// <summary>
    /// How many event-loop threads <see cref="GatewayIoEngine.EventLoop"/> runs; each accepts connections (one wakes per
    /// arrival) and drives the ones it accepted. Default 1; 1 to 64. One loop moves bytes for tens of thousands of
    /// connections; more help when one core is the limit and the machine has cores to spare for the gateway.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to 64.</exception>
    public int EventLoopThreads
    {
        get => _eventLoopThreads;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 64);
            _eventLoopThreads = value;
        }
    }

    /// <summary>
    /// How long an event loop (<see cref="GatewayIoEngine.EventLoop"/>) sleeps, after a turn in which a connection read a
    /// bulk amount (a read of at least 16 KiB, a full TLS record, or one that filled <see cref="SpliceOptions.BufferSize"/>),
    /// before it takes the next events without blocking. A TLS sender writes one 16 KiB record per call, and a loop that
    /// wakes for each record sleeps and wakes, and makes its sender wake it, once per record; after the pause it finds
    /// several records queued per socket and moves them with fewer, fuller reads and sends, as a network card's interrupt
    /// moderation does. Connections that carry only small messages never cause a pause, and other connections' events
    /// wait at most this long (plus the system's timer slack, 50 µs by default on Linux) while a bulk transfer runs on
    /// the same loop. Default 100 µs; <see cref="TimeSpan.Zero"/> turns the pause off; at most 1 ms. docs/data-plane.md
    /// has the measurements (about a fifth less CPU per GiB relayed).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or above 1 ms.</exception>
    public TimeSpan EventLoopBulkPause
    {
        get => _eventLoopBulkPause;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxEventLoopBulkPause);
            _eventLoopBulkPause = value;
        }
    }

    /// <summary>The default of <see cref="EventLoopBulkPause"/>: 100 µs.</summary>
    public static TimeSpan DefaultEventLoopBulkPause { get; } = TimeSpan.FromMicroseconds(100);

    /// <summary>The largest <see cref="EventLoopBulkPause"/>: 1 ms.</summary>
    public static TimeSpan MaxEventLoopBulkPause { get; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Tests: runs every listener of a test run on one engine (an environment switch of the test harness).</summary>
    internal void OverrideEngine(GatewayIoEngine engine) => _engine = engine;

    /// <summary>How routed connections are spliced (idle timeout, maximum duration, buffer size).</summary>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public SpliceOptions Splice
    {
        get => _splice;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            _splice = value;
        }
    }
}
