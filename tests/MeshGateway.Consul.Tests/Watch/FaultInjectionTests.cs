using System.Net;
using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Watch;

/// <summary>
/// A handler in front of the real agent that can fail requests with 5xx, rewrite <c>X-Consul-Index</c>, or refuse every
/// request as an unreachable agent would (<see cref="Refusing"/>: also the answers of requests already in flight).
/// </summary>
internal sealed class FaultInjectingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private int _failNext;
    private readonly CountSignal _requestCount = new();
    private long _rewriteIndexOnce = -1;
    private readonly TaskCompletionSource<int> _rewritten = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public List<string> Requests { get; } = [];

    /// <summary>The position in <see cref="Requests"/> of the request whose answer got the rewritten index.</summary>
    public Task<int> Rewritten => _rewritten.Task;

    /// <summary>Completes once at least <paramref name="count"/> requests went through (a signal, no polling of <see cref="Requests"/>).</summary>
    public Task WhenRequestsAtLeastAsync(int count, CancellationToken cancellationToken) => _requestCount.WhenAtLeastAsync(count, cancellationToken);

    public void FailNext(int count) => Volatile.Write(ref _failNext, count);

    private int _refusing;

    /// <summary>While set, requests fail as a refused connection does, and answers arriving meanwhile are dropped the same way.</summary>
    public bool Refusing
    {
        get => Volatile.Read(ref _refusing) == 1;
        set => Volatile.Write(ref _refusing, value ? 1 : 0);
    }

    private readonly List<(int From, Func<string, bool> Match, TaskCompletionSource<string> Seen)> _waiters = [];

    /// <summary>Completes with the first request at or after <paramref name="from"/> that <paramref name="match"/> accepts (a signal raised as requests are recorded).</summary>
    public Task<string> WhenRequestAsync(int from, Func<string, bool> match)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (Requests)
        {
            string? found = Requests.Skip(from).FirstOrDefault(match);
            if (found is not null)
            {
                seen.TrySetResult(found);
            }
            else
            {
                _waiters.Add((from, match, seen));
            }
        }

        return seen.Task;
    }

    /// <summary>The requests recorded from <paramref name="position"/> on.</summary>
    public string[] RequestsFrom(int position)
    {
        lock (Requests)
        {
            return [.. Requests.Skip(position)];
        }
    }

    private static HttpRequestException Refused() =>
        new(HttpRequestError.ConnectionError, "injected: connection refused", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused));

    public void RewriteNextIndex(ulong index) => Interlocked.Exchange(ref _rewriteIndexOnce, (long)index);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        int position;
        lock (Requests)
        {
            position = Requests.Count;
            string path = request.RequestUri!.PathAndQuery;
            Requests.Add(path);
            _waiters.RemoveAll(w =>
            {
                bool matched = position >= w.From && w.Match(path);
                if (matched)
                {
                    w.Seen.TrySetResult(path);
                }

                return matched;
            });
        }

        _requestCount.Increment();

        if (Refusing)
        {
            throw Refused();
        }

        if (Interlocked.Decrement(ref _failNext) >= 0)
        {
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { Content = new StringContent("injected: no leader") };
        }

        HttpResponseMessage response = await base.SendAsync(request, cancellationToken);
        if (Refusing)
        {
            response.Dispose();
            throw Refused();
        }
        long rewrite = Interlocked.Exchange(ref _rewriteIndexOnce, -1);
        if (rewrite >= 0)
        {
            response.Headers.Remove("X-Consul-Index");
            response.Headers.Add("X-Consul-Index", rewrite.ToString(System.Globalization.CultureInfo.InvariantCulture));
            _rewritten.TrySetResult(position);
        }

        return response;
    }
}

[Collection("consul-dc1")]
public sealed class FaultInjectionTests(SingleDatacenterFixture fixture)
{
    [Fact]
    public async Task BlockingQuery_RealAgentBehindFaults_ResetsOnIndexDropAndRecoversFrom5xx()
    {
        using var faults = new FaultInjectingHandler();
        using ConsulClient client = fixture.Agent.CreateClient(handler: faults);
        using ConsulClient direct = fixture.Agent.CreateClient();
        var options = new BlockingQueryOptions { Wait = TimeSpan.FromSeconds(30), RateLimitInterval = TimeSpan.FromMilliseconds(50), ErrorBackoffBase = TimeSpan.FromMilliseconds(50), ErrorBackoffMax = TimeSpan.FromMilliseconds(400) };
        var query = new BlockingQuery<IReadOnlyDictionary<string, List<string>>>((q, ct) => client.GetServicesAsync(q, ct), options);
        var errors = new List<Exception>();
        query.ErrorObserved = (ex, _) =>
        {
            lock (errors)
            {
                errors.Add(ex);
            }
        };
        var results = System.Threading.Channels.Channel.CreateUnbounded<IReadOnlyDictionary<string, List<string>>>();
        using var cts = new CancellationTokenSource();
        Task run = query.RunAsync((r, _) =>
        {
            results.Writer.TryWrite(r.Value);
            return ValueTask.CompletedTask;
        }, cts.Token);
        await results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        string a = "fi-a-" + Guid.NewGuid().ToString("N")[..6];
        string b = "fi-b-" + Guid.NewGuid().ToString("N")[..6];
        string c = "fi-c-" + Guid.NewGuid().ToString("N")[..6];

        // 1. The next answer (to the blocking request in flight, or about to be sent after the rate limit) claims index 1,
        //    below the last one: the request after that answer must carry no index.
        faults.RewriteNextIndex(1);
        await direct.RegisterServiceAsync(new ConsulServiceRegistration { ID = a, Name = a, Port = 1 });
        await ReadUntilAsync(results, r => r.ContainsKey(a));
        int rewritten = await faults.Rewritten.WaitAsync(TimeSpan.FromSeconds(60));
        await ConsulWait.SignalAsync(ct => faults.WhenRequestsAtLeastAsync(rewritten + 2, ct), "the request after the index drop");
        string afterDrop;
        lock (faults.Requests)
        {
            afterDrop = faults.Requests[rewritten + 1];
        }

        // 2. The three requests after the next answer get 5xx: the loop backs off, reports them, and picks up a later change.
        faults.FailNext(3);
        await direct.RegisterServiceAsync(new ConsulServiceRegistration { ID = b, Name = b, Port = 1 }); // wakes the request in flight
        await ReadUntilAsync(results, r => r.ContainsKey(b));
        await ConsulWait.SignalAsync(ct => query.WhenErrorCountAtLeastAsync(3, ct), "three injected failures");
        await direct.RegisterServiceAsync(new ConsulServiceRegistration { ID = c, Name = c, Port = 1 });
        await ReadUntilAsync(results, r => r.ContainsKey(c));

        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("/v1/catalog/services", afterDrop);
        Assert.Equal(3, errors.Count);
        Assert.Equal(3, query.ErrorCount);
        Assert.All(errors, e => Assert.Equal(HttpStatusCode.ServiceUnavailable, Assert.IsType<ConsulHttpException>(e).StatusCode));
        await direct.DeregisterServiceAsync(a);
        await direct.DeregisterServiceAsync(b);
        await direct.DeregisterServiceAsync(c);
    }

    private static async Task ReadUntilAsync(System.Threading.Channels.Channel<IReadOnlyDictionary<string, List<string>>> results, Func<IReadOnlyDictionary<string, List<string>>, bool> predicate)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!predicate(await results.Reader.ReadAsync(timeout.Token)))
        {
        }
    }
}
