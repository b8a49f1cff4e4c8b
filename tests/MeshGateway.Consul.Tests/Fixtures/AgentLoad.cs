using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace MeshGateway.Consul.Tests.Fixtures;

/// <summary>Bulk catalog writes through <c>/v1/catalog/register</c> over one kept-alive connection (as a config-management tool would).</summary>
internal sealed class CatalogWriter(ConsulAgent agent) : IDisposable
{
    private readonly HttpClient _http = new(FixtureSockets.Handler(maxConnectionsPerServer: 1)) { BaseAddress = agent.HttpAddress, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The node a service number lives on (50 nodes, like a small cluster of hosts).</summary>
    public static string NodeOf(int i) => "node-" + (i % 50).ToString(CultureInfo.InvariantCulture);

    public static string AddressOf(int i) => string.Create(CultureInfo.InvariantCulture, $"10.1.{i % 50}.{1 + (i % 200)}");

    public static int SidecarPortOf(int i) => 21000 + (i % 1000);

    /// <summary>Registers <c>&lt;prefix&gt;&lt;i&gt;</c> and its sidecar (each with a passing check) for i in [from, from+count).</summary>
    public async Task RegisterServicesAsync(string prefix, int from, int count)
    {
        for (int i = from; i < from + count; i++)
        {
            await RegisterServiceAsync(prefix + i.ToString(CultureInfo.InvariantCulture), i).ConfigureAwait(false);
        }
    }

    public async Task RegisterServiceAsync(string name, int i, int weight = 1, string status = "passing")
    {
        string node = NodeOf(i);
        string address = AddressOf(i);
        await PutAsync("v1/catalog/register", new JsonObject
        {
            ["Node"] = node,
            ["Address"] = "10.0.0." + (i % 50).ToString(CultureInfo.InvariantCulture),
            ["SkipNodeUpdate"] = true,
            ["Service"] = new JsonObject { ["ID"] = name + "-1", ["Service"] = name, ["Port"] = 8080, ["Address"] = address },
            ["Check"] = new JsonObject { ["CheckID"] = "c-" + name, ["Name"] = "app", ["Status"] = "passing", ["ServiceID"] = name + "-1" },
        }).ConfigureAwait(false);
        await RegisterSidecarAsync(name, i, weight, status).ConfigureAwait(false);
    }

    /// <summary>(Re-)registers the sidecar of <paramref name="name"/> with its check; a weight change is a re-registration.</summary>
    public Task RegisterSidecarAsync(string name, int i, int weight = 1, string status = "passing", bool withCheck = true)
    {
        var body = new JsonObject
        {
            ["Node"] = NodeOf(i),
            ["Address"] = "10.0.0." + (i % 50).ToString(CultureInfo.InvariantCulture),
            ["SkipNodeUpdate"] = true,
            ["Service"] = new JsonObject
            {
                ["Kind"] = "connect-proxy",
                ["ID"] = name + "-1-sidecar",
                ["Service"] = name + "-sidecar-proxy",
                ["Port"] = SidecarPortOf(i),
                ["Address"] = AddressOf(i),
                ["Weights"] = new JsonObject { ["Passing"] = weight, ["Warning"] = 1 },
                ["Proxy"] = new JsonObject { ["DestinationServiceName"] = name, ["DestinationServiceID"] = name + "-1" },
            },
        };
        if (withCheck)
        {
            body["Check"] = new JsonObject { ["CheckID"] = "c-" + name + "-sidecar", ["Name"] = "sidecar", ["Status"] = status, ["ServiceID"] = name + "-1-sidecar" };
        }

        return PutAsync("v1/catalog/register", body);
    }

    public Task SetSidecarCheckAsync(string name, int i, string status) => PutAsync("v1/catalog/register", new JsonObject
    {
        ["Node"] = NodeOf(i),
        ["Address"] = "10.0.0." + (i % 50).ToString(CultureInfo.InvariantCulture),
        ["SkipNodeUpdate"] = true,
        ["Check"] = new JsonObject { ["CheckID"] = "c-" + name + "-sidecar", ["Name"] = "sidecar", ["Status"] = status, ["ServiceID"] = name + "-1-sidecar" },
    });

    public async Task DeregisterServiceAsync(string name, int i)
    {
        await PutAsync("v1/catalog/deregister", new JsonObject { ["Node"] = NodeOf(i), ["ServiceID"] = name + "-1-sidecar" }).ConfigureAwait(false);
        await PutAsync("v1/catalog/deregister", new JsonObject { ["Node"] = NodeOf(i), ["ServiceID"] = name + "-1" }).ConfigureAwait(false);
    }

    public void Dispose() => _http.Dispose();

    private async Task PutAsync(string path, JsonObject body)
    {
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await _http.PutAsync(path, content).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT {path} → {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
        }
    }
}

/// <summary>
/// Another local client of the agent, like <c>curl /v1/status/leader</c> run now and then: a fresh connection per
/// request, every <c>interval</c>, each bounded by a 1 s timeout; records failures and the slowest answer.
/// </summary>
internal sealed class AgentProber : BackgroundLoop
{
    private readonly HttpClient _http;
    private readonly TaskCompletionSource _enough = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _probesWanted = int.MaxValue;
    private readonly ConcurrentQueue<string> _failures = new();
    private long _maxTicks;
    private int _probes;

    public AgentProber(Uri agent, TimeSpan interval)
    {
        SocketsHttpHandler handler = FixtureSockets.Handler(pooledConnectionLifetime: TimeSpan.Zero);
        _http = new HttpClient(handler) { BaseAddress = agent, Timeout = TimeSpan.FromSeconds(1) };
        Start(async stop =>
        {
            using var timer = new PeriodicTimer(interval);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                long start = Stopwatch.GetTimestamp();
                try
                {
                    using HttpResponseMessage response = await _http.GetAsync("v1/status/leader", stop).ConfigureAwait(false);
                    if (!response.IsSuccessStatusCode)
                    {
                        _failures.Enqueue($"HTTP {(int)response.StatusCode}");
                    }
                }
                catch (Exception ex) when (!stop.IsCancellationRequested)
                {
                    _failures.Enqueue(ex.GetType().Name + ": " + ex.Message);
                }

                long ticks = Stopwatch.GetElapsedTime(start).Ticks;
                long max;
                while (ticks > (max = Interlocked.Read(ref _maxTicks)) && Interlocked.CompareExchange(ref _maxTicks, ticks, max) != max)
                {
                }

                if (Interlocked.Increment(ref _probes) >= _probesWanted)
                {
                    _enough.TrySetResult();
                }
            }
        });
    }

    public int Probes => Volatile.Read(ref _probes);

    /// <summary>Completes once <paramref name="count"/> probes have been made (one waiter at a time).</summary>
    public Task ProbedAsync(int count)
    {
        Volatile.Write(ref _probesWanted, count);
        if (Probes >= count)
        {
            _enough.TrySetResult();
        }

        return _enough.Task;
    }

    public IReadOnlyCollection<string> Failures => _failures;

    public TimeSpan Slowest => TimeSpan.FromTicks(Interlocked.Read(ref _maxTicks));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
    }
}

/// <summary>A loop run in the background until disposed (cancelled, then awaited).</summary>
internal abstract class BackgroundLoop : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public virtual async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    protected void Start(Func<CancellationToken, Task> loop)
    {
        CancellationToken stop = _stop.Token;
        _loop = Task.Run(() => loop(stop));
    }
}

/// <summary>HTTP handlers of the test fixtures (the catalog writer, the prober): not the client under test.</summary>
internal static class FixtureSockets
{
    public static SocketsHttpHandler Handler(int maxConnectionsPerServer = int.MaxValue, TimeSpan? pooledConnectionLifetime = null) => new()
    {
        MaxConnectionsPerServer = maxConnectionsPerServer,
        PooledConnectionLifetime = pooledConnectionLifetime ?? Timeout.InfiniteTimeSpan,
    };
}

/// <summary>
/// The connections of one client under test to the agent, counted at the only place it opens them: the client is built
/// like production's (<see cref="ConsulAgentConnection.CreateHandler"/>: same connection bound, lifetimes, timeouts), only
/// its connect step counts each socket until its stream (which owns it) is disposed, and keeps the most open at once.
/// Exact and load-independent: a sampler of the kernel's socket tables (the earlier way) missed peaks between samples and
/// was starved of samples on a loaded machine, and counted sockets of the process that were not the client's.
/// </summary>
internal sealed class ClientSockets : IDisposable
{
    private readonly SocketRecorder _recorder = new();
    private readonly SocketsHttpHandler _handler;

    public ClientSockets(ConsulAgent agent)
    {
        var options = new ConsulClientOptions { Address = agent.HttpAddress, EnvironmentVariables = static _ => null };
        _handler = ConsulAgentConnection.Resolve(options).CreateHandler(options.MaxConnections);
        _handler.ConnectCallback = _recorder.ConnectAsync;
        Client = agent.CreateClient(handler: _handler);
    }

    /// <summary>The client under test (its handler is this object's).</summary>
    public ConsulClient Client { get; }

    /// <summary>Connections open now.</summary>
    public int Open => _recorder.Open;

    /// <summary>The most connections open at once so far.</summary>
    public int MaxOpen => _recorder.MaxOpen;

    /// <summary>Connections opened so far.</summary>
    public int Opened => _recorder.Opened;

    public void Dispose()
    {
        Client.Dispose();
        _handler.Dispose();
    }
}

/// <summary>A connect step that counts the sockets it opens while their streams are undisposed.</summary>
internal sealed class SocketRecorder
{
    private int _open;
    private int _maxOpen;
    private int _opened;

    public int Open => Volatile.Read(ref _open);

    public int MaxOpen => Volatile.Read(ref _maxOpen);

    public int Opened => Volatile.Read(ref _opened);

    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        // Counted from before the connection can exist until the stream that owns the socket is disposed.
        int open = Interlocked.Increment(ref _open);
        Interlocked.Increment(ref _opened);
        int max;
        while (open > (max = Volatile.Read(ref _maxOpen)) && Interlocked.CompareExchange(ref _maxOpen, open, max) != max)
        {
        }

        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
            return new CountedStream(socket, this);
        }
        catch
        {
            socket.Dispose();
            Interlocked.Decrement(ref _open);
            throw;
        }
    }

    private sealed class CountedStream(Socket socket, SocketRecorder recorder) : NetworkStream(socket, ownsSocket: true)
    {
        private int _disposed;

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref recorder._open);
            }
        }
    }
}
