using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Testing;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that also tells a test when the code under test arms a timer: the one thing
/// <see cref="FakeTimeProvider"/> does not expose (its timers are private), and what a test needs to advance the clock
/// only once a timeout is really waiting (a signal instead of a sleep). Everything else (the clock, <c>Advance</c>, timers
/// firing in due-time order inside <c>Advance</c>) is the library's. Tests that need no such signal use
/// <see cref="FakeTimeProvider"/> itself.
/// </summary>
internal sealed class SignallingTimeProvider : FakeTimeProvider
{
    private readonly Lock _gate = new();
    private readonly HashSet<SignalledTimer> _armed = [];

    /// <summary>Starts at <paramref name="start"/>, or at <see cref="FakeTimeProvider"/>'s default start (2000-01-01 UTC).</summary>
    public SignallingTimeProvider(DateTimeOffset? start = null)
        : base(start ?? new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    /// <summary>Raised whenever a timer is created or changed; lets a test await "the code under test armed its timer".</summary>
    public event Action? TimerChanged;

    /// <summary>Timers scheduled now: not disposed, with a finite due time, and (one-shot) not yet fired.</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_gate)
            {
                return _armed.Count;
            }
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new SignalledTimer(this, callback, state);
        timer.Inner = base.CreateTimer(static s => ((SignalledTimer)s!).Fire(), timer, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        timer.Change(dueTime, period);
        return timer;
    }

    private void SetArmed(SignalledTimer timer, bool armed)
    {
        lock (_gate)
        {
            if (armed)
            {
                _armed.Add(timer);
            }
            else
            {
                _armed.Remove(timer);
            }
        }
    }

    private sealed class SignalledTimer(SignallingTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        private bool _periodic;

        public ITimer Inner { get; set; } = null!;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            _periodic = period != Timeout.InfiniteTimeSpan && period != TimeSpan.Zero;

            // Marked before the inner change: a due time of zero fires inside it (and unmarks a one-shot timer).
            owner.SetArmed(this, dueTime != Timeout.InfiniteTimeSpan);
            bool changed = Inner.Change(dueTime, period);
            owner.TimerChanged?.Invoke();
            return changed;
        }

        public void Fire()
        {
            if (!_periodic)
            {
                owner.SetArmed(this, false);
            }

            callback(state);
        }

        public void Dispose()
        {
            owner.SetArmed(this, false);
            Inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
