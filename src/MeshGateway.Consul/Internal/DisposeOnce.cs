namespace MeshGateway.Consul;

/// <summary>
/// Makes an asynchronous dispose idempotent and safe to call concurrently: the first call runs the disposal, every other
/// call (earlier or later) awaits that same run instead of touching disposed state again.
/// </summary>
internal sealed class DisposeOnce
{
    private TaskCompletionSource? _done;

    /// <summary>Runs <paramref name="dispose"/> on the first call; later calls wait until that run has finished.</summary>
    /// <param name="dispose">The disposal.</param>
    /// <returns>A task that completes when the (single) disposal has finished.</returns>
    public async ValueTask RunAsync(Func<ValueTask> dispose)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _done, mine, null) is { } first)
        {
            await first.Task.ConfigureAwait(false);
            return;
        }

        try
        {
            await dispose().ConfigureAwait(false);
        }
        finally
        {
            mine.SetResult();
        }
    }
}
