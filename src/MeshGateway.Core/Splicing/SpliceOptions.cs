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

    private static TimeSpan CheckTimeout(TimeSpan value)
    {
        if (value != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
        }

        return value;
    }
}
