namespace MeshGateway.Tests.Internal;

public sealed class CountSignalTests
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(30);

    [Fact]
    public void WhenAtLeastAsync_BoundAlreadyMet_CompletesAtOnce()
    {
        var signal = new CountSignal();
        signal.Add(3);
        Assert.True(signal.WhenAtLeastAsync(3).IsCompletedSuccessfully);
        Assert.True(signal.WhenAtMostAsync(3).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task WhenAtLeastAsync_CountRises_CompletesOnlyAtTheBound()
    {
        var signal = new CountSignal();
        Task reached = signal.WhenAtLeastAsync(2);
        signal.Increment();
        Assert.False(reached.IsCompleted);
        Assert.Equal(2, signal.Increment());
        await reached.WaitAsync(s_bound);
    }

    [Fact]
    public async Task WhenAtMostAsync_CountFalls_CompletesOnlyAtTheBound()
    {
        var signal = new CountSignal();
        signal.Add(3);
        Task idle = signal.WhenAtMostAsync(0);
        Task one = signal.WhenAtMostAsync(1);
        signal.Decrement();
        Assert.False(one.IsCompleted);
        signal.Decrement();
        await one.WaitAsync(s_bound);
        Assert.False(idle.IsCompleted);
        Assert.Equal(0, signal.Decrement());
        await idle.WaitAsync(s_bound);
    }

    [Fact]
    public async Task WhenAtLeastAsync_Cancelled_TaskCancelledAndLaterChangesStillWork()
    {
        var signal = new CountSignal();
        using var cancel = new CancellationTokenSource();
        Task abandoned = signal.WhenAtLeastAsync(5, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned.WaitAsync(s_bound));
        Task kept = signal.WhenAtLeastAsync(1);
        signal.Increment();
        await kept.WaitAsync(s_bound);
        Assert.True(abandoned.IsCanceled);
    }

    [Fact]
    public void WhenAtLeastAsync_TokenAlreadyCancelled_CancelledAtOnce()
    {
        var signal = new CountSignal();
        Assert.True(signal.WhenAtLeastAsync(1, new CancellationToken(canceled: true)).IsCanceled);
    }

    [Fact]
    public async Task WhenAtLeastAsync_WaitersRegisterWhileOtherThreadsCount_NoneMissesItsBound()
    {
        // Registration races the increments: a waiter whose check and registration straddle an increment must still wake.
        const int Threads = 4;
        const int PerThread = 20_000;
        var signal = new CountSignal();
        var waiters = new List<Task>();
        Task[] counters = [.. Enumerable.Range(0, Threads).Select(_ => Task.Run(() =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                signal.Increment();
            }
        }))];
        for (int bound = 1; bound <= Threads * PerThread; bound += 997)
        {
            waiters.Add(signal.WhenAtLeastAsync(bound));
        }

        await Task.WhenAll(counters).WaitAsync(s_bound);
        await Task.WhenAll(waiters).WaitAsync(s_bound);
        Assert.Equal(Threads * PerThread, signal.Value);
    }
}
