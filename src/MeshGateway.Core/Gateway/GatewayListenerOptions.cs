using System.Net;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>Settings of a <see cref="GatewayListener"/>.</summary>
public sealed class GatewayListenerOptions
{
    /// <summary>The default <see cref="HelloTimeout"/>: 10 s.</summary>
    public static readonly TimeSpan DefaultHelloTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The default <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 50_000;

    private readonly TimeSpan _helloTimeout = DefaultHelloTimeout;
    private readonly int _maxHelloSize = ClientHelloReaderOptions.DefaultMaxHelloSize;
    private readonly int _maxConnections = DefaultMaxConnections;
    private readonly int _backlog = 1024;
    private readonly TimeSpan _acceptRetryDelay = TimeSpan.FromMilliseconds(50);
    private readonly SpliceOptions _splice = SpliceOptions.Default;

    /// <summary>
    /// The addresses to listen on (IPv4 and IPv6; port 0 picks a free port, see <see cref="GatewayListener.LocalEndPoints"/>).
    /// Consul's <c>default</c>, tagged and named bind addresses (reference §6.1) each become one entry.
    /// An IPv6 address listens on IPv6 only; add the IPv4 address too for both.
    /// </summary>
    public IList<IPEndPoint> EndPoints { get; } = new List<IPEndPoint>();

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

    /// <summary>The most connections open at once (reading a hello or spliced); more are closed at once and counted. Default <see cref="DefaultMaxConnections"/>.</summary>
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
