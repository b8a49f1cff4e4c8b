namespace MeshGateway.Consul;

/// <summary>
/// One cancellable Consul blocking-query loop (docs/consul-behaviour.md §9), reusable for any endpoint.
/// </summary>
/// <remarks>
/// <para>Algorithm, per iteration:</para>
/// <list type="number">
/// <item>Take a token from a token bucket (burst <see cref="BlockingQueryOptions.RateLimitBurst"/>, one token per
/// <see cref="BlockingQueryOptions.RateLimitInterval"/>), so a result that changes all the time cannot make the loop spin.</item>
/// <item>Fetch: the first call carries no index (answered at once); later calls send <c>index</c> and <c>wait</c>.</item>
/// <item>On an error, wait <c>min(max, base·2^(n−1))</c> scaled by a random factor in [0.5, 1) ("equal jitter"),
/// report it, and retry with the same index; the last published value stays in force.</item>
/// <item>If the returned index is lower than the one sent, restart from index 0 (snapshot restore, agent restart);
/// otherwise keep it, clamped to at least 1 so the next call really blocks.</item>
/// <item>Publish only when the result differs from the last published one (a return is not proof of change): by
/// the supplied comparer, else by the hash of the raw body.</item>
/// </list>
/// Cancellation ends <see cref="RunAsync"/> quietly. Timers come from the injected <see cref="TimeProvider"/>.
/// </remarks>
/// <typeparam name="T">The decoded result.</typeparam>
public sealed class BlockingQuery<T>
{
    private readonly Func<ConsulQuery, CancellationToken, Task<ConsulResponse<T>>> _fetch;
    private readonly BlockingQueryOptions _options;
    private readonly IEqualityComparer<T>? _comparer;
    private readonly TimeProvider _time;
    private long _requests;
    private readonly CountSignal _errors = new();

    /// <summary>Creates a loop.</summary>
    /// <param name="fetch">Performs one request with the given index/wait, e.g. <c>(q, ct) =&gt; client.GetHealthConnectAsync("api", q with { Datacenter = "dc1" }, ct)</c>.</param>
    /// <param name="options">Wait, rate limit, backoff; defaults when null.</param>
    /// <param name="comparer">Decides whether a result changed; null compares raw body hashes.</param>
    /// <param name="timeProvider">Clock for the rate limit and backoff; <see cref="TimeProvider.System"/> when null.</param>
    public BlockingQuery(
        Func<ConsulQuery, CancellationToken, Task<ConsulResponse<T>>> fetch,
        BlockingQueryOptions? options = null,
        IEqualityComparer<T>? comparer = null,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        _fetch = fetch;
        _options = options ?? new BlockingQueryOptions();
        _options.Validate();
        _comparer = comparer;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Called after a failed request with the error and the delay before the retry. Must not throw.</summary>
    public Action<Exception, TimeSpan>? ErrorObserved { get; set; }

    /// <summary>The index the next request will send (0 = non-blocking).</summary>
    public ulong NextIndex { get; private set; }

    /// <summary>Requests made so far.</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Failed requests so far.</summary>
    public long ErrorCount => _errors.Value;

    /// <summary>Completes once <see cref="ErrorCount"/> is at least <paramref name="count"/>: a change signal, so a test awaits failures instead of polling the count.</summary>
    internal Task WhenErrorCountAtLeastAsync(long count, CancellationToken cancellationToken = default) => _errors.WhenAtLeastAsync(count, cancellationToken);

    /// <summary>
    /// Blocks by content hash (<c>?hash=</c>, the <c>X-Consul-ContentHash</c> of the last answer) instead of by index, as
    /// agent-local endpoints such as <c>/v1/agent/service/&lt;id&gt;</c> require. Without a hash the request does not block.
    /// </summary>
    internal bool ByContentHash { get; init; }

    /// <summary>The hash the next request sends when <see cref="ByContentHash"/> (null = non-blocking).</summary>
    internal string? NextHash { get; private set; }

    /// <summary>An answer the caller already has (and has acted on): the loop starts blocking on its index (or hash) instead
    /// of fetching it again, and publishes only answers that differ from it.</summary>
    public ConsulResponse<T>? Seed { get; init; }

    /// <summary>
    /// The non-blocking read that starts the watch, and every one that starts it again after a reset (an index that went
    /// backwards, an agent that could not be reached), is made in consistent mode (<see cref="ConsulQuery.Consistent"/>):
    /// a restarted server answers it only once its log is applied, so the baseline is never a half-replayed catalog.
    /// </summary>
    internal bool ConsistentBaseline { get; init; }

    /// <summary>Passes every answer on, keeping no previous one (for callers that compare answers themselves).</summary>
    internal bool AlwaysPublish { get; init; }

    /// <summary>Source of jitter in [0, 1); tests replace it to make backoff deterministic.</summary>
    internal Func<double> Jitter { get; set; } = Random.Shared.NextDouble;

    /// <summary>Runs the loop until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="onChange">Receives each changed result, in order; an exception from it ends the loop.</param>
    /// <param name="cancellationToken">Stops the loop.</param>
    /// <returns>A task that completes when the loop was cancelled (never faults on Consul errors).</returns>
    public async Task RunAsync(Func<ConsulResponse<T>, CancellationToken, ValueTask> onChange, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onChange);
        var bucket = new TokenBucket(_options.RateLimitBurst, _options.RateLimitInterval, _time);
        ConsulResponse<T>? last = Seed;
        ulong? lastHash = Seed?.BodyHash;
        if (Seed is { } seed)
        {
            // The caller already holds this answer: start blocking on its index (or hash) instead of fetching it again.
            NextIndex = Math.Max(seed.Index, 1);
            NextHash = seed.ContentHash;
        }

        int failures = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await bucket.TakeAsync(cancellationToken).ConfigureAwait(false);
                ulong sent = NextIndex;
                string? sentHash = NextHash;
                ConsulResponse<T> response;
                try
                {
                    Interlocked.Increment(ref _requests);
                    ConsulQuery query = ByContentHash
                        ? new ConsulQuery { Hash = sentHash, Wait = sentHash is not null ? _options.Wait : null }
                        : new ConsulQuery { Index = sent, Wait = sent > 0 ? _options.Wait : null, Consistent = sent == 0 && ConsistentBaseline };
                    response = await _fetch(query, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    _errors.Increment();
                    failures++;
                    if (ex is ConsulTransportException { IsTimeout: false })
                    {
                        // No answer at all: the agent may be restarting. A dev or rebuilt server comes back with a lower
                        // Raft index, and a query carrying the old, higher index would block for the whole wait before the
                        // reset rule (index went backwards) could apply. Start over without an index; the comparison before
                        // publishing keeps an unchanged result from being published again.
                        NextIndex = 0;
                        NextHash = null;
                    }

                    TimeSpan delay = BackoffDelay(failures);
                    ErrorObserved?.Invoke(ex, delay);
                    await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                failures = 0;
                if (ByContentHash)
                {
                    // Hashes are opaque (no ordering, docs/consul-behaviour.md §9): block on the last one the agent sent.
                    NextHash = response.ContentHash;
                }
                else
                {
                    NextIndex = response.Index < sent ? 0 : Math.Max(response.Index, 1);
                }

                if (AlwaysPublish)
                {
                    // The caller compares for itself: keep nothing (a catalog-wide answer can be megabytes).
                    await onChange(response, cancellationToken).ConfigureAwait(false);
                }
                else if (_comparer is null)
                {
                    // Only the body hash is needed to compare, so only the hash is kept, not the previous answer.
                    if (lastHash != response.BodyHash)
                    {
                        lastHash = response.BodyHash;
                        await onChange(response, cancellationToken).ConfigureAwait(false);
                    }
                }
                else if (last is null || !_comparer.Equals(last.Value, response.Value))
                {
                    last = response;
                    await onChange(response, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>The delay before retry number <paramref name="failures"/> (1-based), with equal jitter.</summary>
    internal TimeSpan BackoffDelay(int failures) => BackoffDelay(_options, failures, Jitter());

    /// <summary>min(max, base·2^(failures−1)) scaled into [0.5, 1] by <paramref name="jitter"/> in [0, 1].</summary>
    internal static TimeSpan BackoffDelay(BlockingQueryOptions options, int failures, double jitter)
    {
        double factor = Math.Pow(2, Math.Clamp(failures - 1, 0, 30));
        double ceiling = Math.Min(options.ErrorBackoffMax.Ticks, options.ErrorBackoffBase.Ticks * factor);
        return TimeSpan.FromTicks((long)(ceiling * (0.5 + (Math.Clamp(jitter, 0, 1) / 2))));
    }

}
