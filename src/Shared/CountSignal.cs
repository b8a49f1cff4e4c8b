namespace MeshGateway;

/// <summary>
/// A counter whose changes can be awaited: <see cref="WhenAtLeastAsync"/> / <see cref="WhenAtMostAsync"/> complete once
/// the value reaches a bound (a change signal, so no one polls the value). Compiled into each package that needs it
/// (linked source, internal), so no public helper type is added for it.
/// </summary>
/// <remarks>
/// <para>Costs nothing extra while no one waits: <see cref="Add"/> is one interlocked add and one read of the waiter
/// count, with no lock and no allocation, so it can sit on the per-connection path. Only with a waiter registered does a
/// change take the lock and check the waiters.</para>
/// <para>No missed wake-up: a waiter registers (an interlocked increment of the waiter count) before it reads the value
/// again, and <see cref="Add"/> changes the value (interlocked) before it reads the waiter count. Both are full fences, so
/// either the change sees the waiter or the waiter's second read sees the change.</para>
/// <para>Written here rather than taken from a library: the BCL has no awaitable counter (<see cref="CountdownEvent"/>
/// and <see cref="SemaphoreSlim"/> wait for one fixed value or consume counts), and Core takes no dependencies.</para>
/// </remarks>
internal sealed class CountSignal
{
    private readonly List<Waiter> _waiters = [];
    private long _value;
    private int _waiterCount;

    /// <summary>The current value.</summary>
    public long Value => Interlocked.Read(ref _value);

    /// <summary>Adds one; returns the new value.</summary>
    public long Increment() => Add(1);

    /// <summary>Subtracts one; returns the new value.</summary>
    public long Decrement() => Add(-1);

    /// <summary>Adds <paramref name="delta"/> and wakes the waiters whose bound the new value meets; returns the new value.</summary>
    public long Add(long delta)
    {
        long value = Interlocked.Add(ref _value, delta);
        if (Volatile.Read(ref _waiterCount) != 0)
        {
            Signal(value);
        }

        return value;
    }

    /// <summary>Completes once the value is at least <paramref name="minimum"/> (at once when it is now).</summary>
    /// <param name="minimum">The bound.</param>
    /// <param name="cancellationToken">Ends the wait (the task is then cancelled).</param>
    /// <returns>A task that completes when the bound is met.</returns>
    public Task WhenAtLeastAsync(long minimum, CancellationToken cancellationToken = default) => WhenAsync(minimum, atLeast: true, cancellationToken);

    /// <summary>Completes once the value is at most <paramref name="maximum"/> (at once when it is now).</summary>
    /// <param name="maximum">The bound.</param>
    /// <param name="cancellationToken">Ends the wait (the task is then cancelled).</param>
    /// <returns>A task that completes when the bound is met.</returns>
    public Task WhenAtMostAsync(long maximum, CancellationToken cancellationToken = default) => WhenAsync(maximum, atLeast: false, cancellationToken);

    private Task WhenAsync(long bound, bool atLeast, CancellationToken cancellationToken)
    {
        if (Waiter.Holds(Value, bound, atLeast))
        {
            return Task.CompletedTask;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var waiter = new Waiter(this, bound, atLeast);
        lock (_waiters)
        {
            _waiters.Add(waiter);
            Interlocked.Increment(ref _waiterCount);
        }

        if (cancellationToken.CanBeCanceled)
        {
            CancellationTokenRegistration registration = cancellationToken.UnsafeRegister(static (state, token) => ((Waiter)state!).Cancel(token), waiter);
            lock (_waiters)
            {
                // Under the lock, where Signal reads it; a waiter already woken unregisters here instead.
                waiter.Registration = registration;
            }

            if (waiter.Task.IsCompleted)
            {
                registration.Unregister();
            }
        }

        // Registered first, read again now: a change that ran before the registration is visible to this read.
        Signal(Value);
        return waiter.Task;
    }

    private void Signal(long value)
    {
        lock (_waiters)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                Waiter waiter = _waiters[i];
                if (Waiter.Holds(value, waiter.Bound, waiter.AtLeast))
                {
                    _waiters.RemoveAt(i);
                    Interlocked.Decrement(ref _waiterCount);

                    // Continuations run asynchronously (see Waiter), so completing under the lock runs no caller code here.
                    waiter.TrySetResult();
                    waiter.Registration.Unregister();
                }
            }
        }
    }

    private bool Remove(Waiter waiter)
    {
        lock (_waiters)
        {
            if (!_waiters.Remove(waiter))
            {
                return false;
            }

            Interlocked.Decrement(ref _waiterCount);
            return true;
        }
    }

    private sealed class Waiter(CountSignal owner, long bound, bool atLeast) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long Bound { get; } = bound;

        public bool AtLeast { get; } = atLeast;

        public CancellationTokenRegistration Registration { get; set; }

        public static bool Holds(long value, long bound, bool atLeast) => atLeast ? value >= bound : value <= bound;

        public void Cancel(CancellationToken token)
        {
            if (owner.Remove(this))
            {
                TrySetCanceled(token);
            }
        }
    }
}
