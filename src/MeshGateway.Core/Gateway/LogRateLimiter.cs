namespace MeshGateway.Gateway;

/// <summary>
/// Lets the first <see cref="Limit"/> events of each <see cref="Interval"/> through and counts the rest, so a flood of
/// rejected connections or failed upstream connects costs a few log lines per second instead of one per event, and the
/// number left out is still reported: the first event let through in a later interval carries it
/// (<see cref="TryAcquire(out long, out TimeSpan)"/>'s <c>suppressed</c>) for a "suppressed K" summary line.
/// </summary>
/// <remarks>
/// Metrics and <see cref="GatewayCounters"/> count every event; only the log is thinned. Thread-safe; one short lock
/// per event (events are per connection at most, never per byte). Written here rather than taken from a logging
/// library: Core has no logging dependency and the samples use it with plain console output.
/// </remarks>
/// <example>
/// <code>
/// private readonly LogRateLimiter _rejections = new(limit: 20, interval: TimeSpan.FromSeconds(1));
///
/// if (_rejections.TryAcquire(out long suppressed))
/// {
///     if (suppressed > 0) Console.Error.WriteLine($"{suppressed} rejections not logged (rate limit)");
///     Console.Error.WriteLine($"rejected {reason}");
/// }
/// </code>
/// </example>
public sealed class LogRateLimiter
{
    private readonly TimeProvider _time;
    private readonly long _intervalTicks;
    private readonly Lock _gate = new();
    private long _windowStart;
    private long _lastAcquired;
    private int _inWindow;
    private long _suppressed;
    private bool _started;

    /// <summary>Creates a limiter.</summary>
    /// <param name="limit">Events let through per interval; 0 lets none through (every event is only counted).</param>
    /// <param name="interval">The interval.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is negative or <paramref name="interval"/> is not positive.</exception>
    public LogRateLimiter(int limit, TimeSpan interval, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        Limit = limit;
        Interval = interval;
        _time = timeProvider ?? TimeProvider.System;
        _intervalTicks = Math.Max(1, (long)(interval.TotalSeconds * _time.TimestampFrequency));
        _lastAcquired = _time.GetTimestamp();
    }

    /// <summary>Events let through per interval.</summary>
    public int Limit { get; }

    /// <summary>The interval.</summary>
    public TimeSpan Interval { get; }

    /// <summary>Events held back and not yet reported through <see cref="TryAcquire(out long, out TimeSpan)"/>.</summary>
    public long PendingSuppressed
    {
        get
        {
            lock (_gate)
            {
                return _suppressed;
            }
        }
    }

    /// <summary>Asks whether to log one event.</summary>
    /// <param name="suppressed">
    /// When true is returned: how many events were held back since the last event let through (log a summary when
    /// it is not 0). Otherwise 0.
    /// </param>
    /// <returns>True to log the event; false when the interval's limit is used up (the event is counted).</returns>
    public bool TryAcquire(out long suppressed) => TryAcquire(out suppressed, out _);

    /// <summary>Asks whether to log one event, and how long the summary of the events held back covers.</summary>
    /// <param name="suppressed">
    /// When true is returned: how many events were held back since the last event let through (log a summary when
    /// it is not 0). Otherwise 0.
    /// </param>
    /// <param name="sinceLastAcquired">
    /// When true is returned: the time since the last event let through (since the limiter was created for the first),
    /// the period <paramref name="suppressed"/> covers. Otherwise <see cref="TimeSpan.Zero"/>.
    /// </param>
    /// <returns>True to log the event; false when the interval's limit is used up (the event is counted).</returns>
    public bool TryAcquire(out long suppressed, out TimeSpan sinceLastAcquired)
    {
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            if (!_started || now - _windowStart >= _intervalTicks)
            {
                _started = true;
                _windowStart = now;
                _inWindow = 0;
            }

            if (_inWindow < Limit)
            {
                _inWindow++;
                suppressed = _suppressed;
                _suppressed = 0;
                sinceLastAcquired = _time.GetElapsedTime(_lastAcquired, now);
                _lastAcquired = now;
                return true;
            }

            _suppressed++;
            suppressed = 0;
            sinceLastAcquired = TimeSpan.Zero;
            return false;
        }
    }
}
