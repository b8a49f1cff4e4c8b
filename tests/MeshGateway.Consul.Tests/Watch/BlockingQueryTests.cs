using System.Net;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Watch;

public sealed class BlockingQueryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static (BlockingQuery<IReadOnlyDictionary<string, List<string>>> Query, FakeConsulHandler Handler, ConsulClient Client, SignallingTimeProvider Time) Create(TimeSpan rateLimitInterval, int burst = 2)
    {
        var handler = new FakeConsulHandler();
        var client = new ConsulClient(new ConsulClientOptions { Handler = handler });
        var time = new SignallingTimeProvider();
        var options = new BlockingQueryOptions { Wait = Wait, RateLimitBurst = burst, RateLimitInterval = rateLimitInterval, ErrorBackoffBase = TimeSpan.FromSeconds(1), ErrorBackoffMax = TimeSpan.FromSeconds(4) };
        var query = new BlockingQuery<IReadOnlyDictionary<string, List<string>>>((q, ct) => client.GetServicesAsync(q, ct), options, null, time) { Jitter = () => 0 };
        return (query, handler, client, time);
    }

    private static Task WaitForTimerAsync(SignallingTimeProvider time)
    {
        var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnChanged()
        {
            if (time.ActiveTimers > 0)
            {
                armed.TrySetResult();
            }
        }

        time.TimerChanged += OnChanged;
        OnChanged();
        return armed.Task.WaitAsync(TimeSpan.FromSeconds(20)).ContinueWith(t =>
        {
            time.TimerChanged -= OnChanged;
            t.GetAwaiter().GetResult();
        }, TaskScheduler.Default);
    }

    [Fact]
    public async Task RunAsync_IndexGoesBackwards_ResetsToZeroThenClampsToOne()
    {
        var (query, handler, client, _) = Create(TimeSpan.Zero);
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((_, _) => ValueTask.CompletedTask, cts.Token);

        Assert.Equal("/v1/catalog/services", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 10);
        Assert.Equal("/v1/catalog/services?index=10&wait=30s", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 5); // snapshot restore: index went backwards
        Assert.Equal("/v1/catalog/services", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 0); // index 0 must not make the next call non-blocking
        Assert.Equal("/v1/catalog/services?index=1&wait=30s", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_SameBodyAgain_PublishesOnlyRealChanges()
    {
        var (query, handler, client, _) = Create(TimeSpan.Zero);
        var published = new List<string>();
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((r, _) =>
        {
            published.Add(string.Join(',', r.Value.Keys));
            return ValueTask.CompletedTask;
        }, cts.Token);

        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 1);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 2); // timeout return / unrelated index bump
        handler.Enqueue(HttpStatusCode.OK, """{"a":[],"b":[]}""", index: 3);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[],"b":[]}""", index: 4);
        for (int i = 0; i < 5; i++)
        {
            await handler.NextRequestAsync();
        }

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(["a", "a,b"], published);
        Assert.Equal(5, query.RequestCount);
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_ConstantChurn_IsRateLimitedByTokenBucket()
    {
        var (query, handler, client, time) = Create(TimeSpan.FromSeconds(1), burst: 2);
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((_, _) => ValueTask.CompletedTask, cts.Token);

        await handler.NextRequestAsync();
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 1);
        await handler.NextRequestAsync();
        Task armed = WaitForTimerAsync(time);
        handler.Enqueue(HttpStatusCode.OK, """{"b":[]}""", index: 2);
        await armed; // burst of 2 spent: the loop waits for a token

        Assert.Equal(2, handler.Requests.Count);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(2, handler.Requests.Count);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await handler.NextRequestAsync();
        Assert.Equal(3, handler.Requests.Count);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_ServerErrors_BacksOffExponentiallyUpToMaxThenRecovers()
    {
        var (query, handler, client, time) = Create(TimeSpan.Zero);
        var delays = new List<TimeSpan>();
        var errors = new List<Exception>();
        query.ErrorObserved = (ex, d) =>
        {
            errors.Add(ex);
            delays.Add(d);
        };
        var published = 0;
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((_, _) =>
        {
            published++;
            return ValueTask.CompletedTask;
        }, cts.Token);

        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 7);
        await handler.NextRequestAsync();
        await handler.NextRequestAsync();
        for (int i = 0; i < 4; i++)
        {
            Task armed = WaitForTimerAsync(time);
            handler.Enqueue(HttpStatusCode.InternalServerError, "rpc error: leader lost");
            await armed;
            time.Advance(delays[^1]);
            HttpRequestMessage retry = await handler.NextRequestAsync();
            Assert.Equal("/v1/catalog/services?index=7&wait=30s", retry.RequestUri!.PathAndQuery); // index kept across errors
        }

        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 8);
        await handler.NextRequestAsync();

        // Jitter 0 → half of min(max 4 s, 1 s · 2^(n−1)).
        Assert.Equal([TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2)], delays);
        Assert.All(errors, e => Assert.IsType<ConsulHttpException>(e));
        Assert.Equal(1, published); // the errors did not replace the last result
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_CancelledWhileBlocking_CompletesWithoutError()
    {
        var (query, handler, client, _) = Create(TimeSpan.Zero);
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((_, _) => ValueTask.CompletedTask, cts.Token);
        await handler.NextRequestAsync(); // never answered

        await cts.CancelAsync();

        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(run.IsCompletedSuccessfully);
        Assert.Equal(0, query.ErrorCount);
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_CancelledDuringBackoff_CompletesWithoutError()
    {
        var (query, handler, client, time) = Create(TimeSpan.Zero);
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((_, _) => ValueTask.CompletedTask, cts.Token);
        await handler.NextRequestAsync();
        Task armed = WaitForTimerAsync(time);
        handler.EnqueueFailure(new HttpRequestException("connection refused"));
        await armed;

        await cts.CancelAsync();

        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(run.IsCompletedSuccessfully);
        Assert.Equal(1, query.ErrorCount);
        client.Dispose();
    }

    [Fact]
    public async Task RunAsync_ConnectionFailure_NextQueryStartsWithoutIndexButServerErrorKeepsIt()
    {
        var (query, handler, client, time) = Create(TimeSpan.Zero);
        using var cts = new CancellationTokenSource();
        int changes = 0;
        Task run = query.RunAsync((_, _) => { changes++; return ValueTask.CompletedTask; }, cts.Token);
        await handler.NextRequestAsync();
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 500);
        Assert.Equal("/v1/catalog/services?index=500&wait=30s", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);

        Task armed = WaitForTimerAsync(time);
        handler.Enqueue(HttpStatusCode.InternalServerError, "rpc error: leader lost"); // the agent answered: index stays
        await armed;
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal("/v1/catalog/services?index=500&wait=30s", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);

        armed = WaitForTimerAsync(time);
        handler.EnqueueFailure(new HttpRequestException("connection refused")); // agent down: it may return with lower indexes
        await armed;
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal("/v1/catalog/services", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);
        handler.Enqueue(HttpStatusCode.OK, """{"a":[]}""", index: 7); // same content after the restart
        Assert.Equal("/v1/catalog/services?index=7&wait=30s", (await handler.NextRequestAsync()).RequestUri!.PathAndQuery);

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, changes); // unchanged content is not published again
        client.Dispose();
    }

    [Property]
    public Property BackoffDelay_AnyFailureCountAndJitter_StaysWithinHalfAndFullCeilingAndMax()
    {
        var options = new BlockingQueryOptions { ErrorBackoffBase = TimeSpan.FromMilliseconds(250), ErrorBackoffMax = TimeSpan.FromSeconds(30) };
        return Prop.ForAll(
            Arb.From(Gen.Choose(1, 200)),
            Arb.From(Gen.Choose(0, 1000)),
            (failures, jitterPermille) =>
            {
                TimeSpan delay = BlockingQuery<int>.BackoffDelay(options, failures, jitterPermille / 1000.0);
                double ceiling = Math.Min(options.ErrorBackoffMax.Ticks, options.ErrorBackoffBase.Ticks * Math.Pow(2, Math.Min(failures - 1, 30)));
                return delay.Ticks >= (long)(ceiling / 2) - 1 && delay.Ticks <= (long)ceiling && delay <= options.ErrorBackoffMax;
            });
    }
}
