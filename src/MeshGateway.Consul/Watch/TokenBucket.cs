namespace MeshGateway.Consul;

/// <summary>
/// A token bucket on a <see cref="TimeProvider"/>: starts full with <c>capacity</c> tokens and gains one token per
/// <c>interval</c>, up to the capacity. <see cref="TakeAsync"/> waits (on the provider's timers) for a token.
/// Single consumer: one watch loop owns one bucket.
/// </summary>
internal sealed class TokenBucket
{
    private readonly TimeProvider _time;
    private readonly double _capacity;
    private readonly TimeSpan _interval;
    private double _tokens;
    private long _last;

    public TokenBucket(int capacity, TimeSpan interval, TimeProvider time)
    {
        _time = time;
        _capacity = capacity;
        _interval = interval;
        _tokens = capacity;
        _last = time.GetTimestamp();
    }

    public async ValueTask TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Refill();
            if (_tokens >= 1 || _interval <= TimeSpan.Zero)
            {
                _tokens = Math.Max(0, _tokens - 1);
                return;
            }

            TimeSpan missing = _interval * (1 - _tokens);
            await Task.Delay(missing < TimeSpan.FromTicks(1) ? TimeSpan.FromTicks(1) : missing, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Refill()
    {
        long now = _time.GetTimestamp();
        if (_interval > TimeSpan.Zero)
        {
            TimeSpan elapsed = _time.GetElapsedTime(_last, now);
            _tokens = Math.Min(_capacity, _tokens + (elapsed / _interval));
        }

        _last = now;
    }
}
