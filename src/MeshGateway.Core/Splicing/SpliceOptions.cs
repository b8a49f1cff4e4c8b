namespace MeshGateway.Splicing;

/// <summary>Settings of a <see cref="DuplexSplicer"/>.</summary>
public sealed class SpliceOptions
{
    /// <summary>The default <see cref="IdleTimeout"/>: 1 hour, Envoy <c>tcp_proxy</c>'s default <c>idle_timeout</c>.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromHours(1);

    /// <summary>The default <see cref="BufferSize"/>: 32 KiB, two full TLS records per receive.</summary>
    public const int DefaultBufferSize = 32 * 1024;

    private readonly TimeSpan _idleTimeout = DefaultIdleTimeout;
    private readonly TimeSpan _maxDuration = Timeout.InfiniteTimeSpan;
    private readonly int _bufferSize = DefaultBufferSize;
    private readonly int _maxKernelPipes;
    private KernelPipeBudget? _pipeBudget;

    /// <summary>The options used when none are given.</summary>
    public static SpliceOptions Default { get; } = new();

    /// <summary>
    /// How long both directions may stay without moving a byte before the connection is closed, including while one
    /// direction is half-closed. <see cref="Timeout.InfiniteTimeSpan"/> disables it. Default <see cref="DefaultIdleTimeout"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan IdleTimeout
    {
        get => _idleTimeout;
        init => _idleTimeout = CheckTimeout(value);
    }

    /// <summary>The longest a connection may last. Default <see cref="Timeout.InfiniteTimeSpan"/> (no limit).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan MaxDuration
    {
        get => _maxDuration;
        init => _maxDuration = CheckTimeout(value);
    }

    /// <summary>
    /// The size of the buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> while data flows in one direction.
    /// An idle direction holds no buffer. Default <see cref="DefaultBufferSize"/>; 1 KiB to 1 MiB.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 KiB to 1 MiB.</exception>
    public int BufferSize
    {
        get => _bufferSize;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1024);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 1024 * 1024);
            _bufferSize = value;
        }
    }

    /// <summary>
    /// Linux: the most pipes open at once for moving bulk bytes with <c>splice(2)</c> (socket to pipe to socket, no copy
    /// through user space), as HAProxy's <c>option splice-auto</c>. A direction takes a pipe when a read filled the whole
    /// buffer with more queued behind it, and gives it back when the source has nothing more queued, so idle
    /// connections hold none. Each pipe is two descriptors, which the listener sets aside from its connection limit;
    /// past the cap, and on other systems, bytes are copied as usual. Default 0: off. 0 to 100,000.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 0 to 100,000.</exception>
    public int MaxKernelPipes
    {
        get => _maxKernelPipes;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100_000);
            _maxKernelPipes = value;
        }
    }

    /// <summary>Whether bulk bytes may move by <c>splice(2)</c> here: <see cref="MaxKernelPipes"/> set, on Linux.</summary>
    internal bool UsesKernelPipes => _maxKernelPipes > 0 && OperatingSystem.IsLinux();

    /// <summary>The count of open pipes against <see cref="MaxKernelPipes"/>, shared by every splice with these options.</summary>
    internal KernelPipeBudget PipeBudget =>
        Volatile.Read(ref _pipeBudget) ?? Interlocked.CompareExchange(ref _pipeBudget, new KernelPipeBudget(_maxKernelPipes), null) ?? _pipeBudget!;

    /// <summary>Tests: splice from the first byte instead of after a full read (so small exchanges take the kernel path).</summary>
    internal bool KernelPipeFromFirstRead { get; init; }

    /// <summary>Where buffers come from; <see cref="System.Buffers.ArrayPool{T}.Shared"/> except in tests that count rentals.</summary>
    internal System.Buffers.ArrayPool<byte> BufferPool { get; init; } = System.Buffers.ArrayPool<byte>.Shared;

    private static TimeSpan CheckTimeout(TimeSpan value)
    {
        if (value != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
        }

        return value;
    }
}
