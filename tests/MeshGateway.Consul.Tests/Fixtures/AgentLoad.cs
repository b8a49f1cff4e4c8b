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
    // Its sockets are the test's, not the client's under test: AgentConnectionSampler does not count them.
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
/// Counts, from the kernel's socket tables (<c>/proc/net/tcp</c>, <c>/proc/net/tcp6</c>) and this process's descriptors
/// (<c>/proc/self/fd</c>), the established TCP connections the client under test holds to the agent's port, sampled
/// until disposed; keeps the maximum. The client's sockets are known by their local ports (<see cref="ClientSockets"/>):
/// counting every socket of the process to the port once counted a writer's kept-alive connection (9 of 8), and a CI run
/// counted 13 of 8 with the client's own bound intact in every other run, so other sockets of the process to the port
/// are counted apart (<see cref="OtherMax"/>, with a description of the moment) and reported, not asserted.
/// </summary>
internal sealed class AgentConnectionSampler : BackgroundLoop
{
    private readonly int _port;
    private readonly ClientSockets _client;
    private int _max;
    private int _otherMax;
    private int _samples;
    private string _otherAtMax = "none";

    public AgentConnectionSampler(int port, ClientSockets client, TimeSpan interval)
    {
        _port = port;
        _client = client;
        Start(async stop =>
        {
            using var timer = new PeriodicTimer(interval);
            do
            {
                Sample();
            }
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false));
        });
    }

    /// <summary>The most connections the client under test held at once.</summary>
    public int Max => Volatile.Read(ref _max);

    /// <summary>The most other (non-fixture) connections of this process to the port at once.</summary>
    public int OtherMax => Volatile.Read(ref _otherMax);

    public int Samples => Volatile.Read(ref _samples);

    /// <summary>The client's and the other connections at <see cref="OtherMax"/>: local port, state of the sockets.</summary>
    public string Describe() => $"client max {Max}, other max {OtherMax} ({Volatile.Read(ref _otherAtMax)})";

    private (int Client, int Other, string? Others) Count()
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (string fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                string? target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    inodes.Add(target[8..^1]);
                }
            }
            catch (IOException)
            {
                // Closed while enumerating.
            }
        }

        int client = 0;
        List<string>? others = null;
        foreach (string table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (string line in File.ReadLines(table).Skip(1))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                if (f.Length < 10 || f[3] != "01" || !inodes.Contains(f[9]))
                {
                    continue;
                }

                int remotePort = int.Parse(f[2].AsSpan(f[2].IndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                int localPort = int.Parse(f[1].AsSpan(f[1].IndexOf(':') + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (remotePort != _port || FixtureSockets.IsFixture(localPort))
                {
                    continue;
                }

                if (_client.Contains(localPort))
                {
                    client++;
                }
                else
                {
                    (others ??= []).Add(string.Create(CultureInfo.InvariantCulture, $"{f[1]}->{f[2]} inode {f[9]}"));
                }
            }
        }

        return (client, others?.Count ?? 0, others is null ? null : string.Join(", ", others));
    }

    private void Sample()
    {
        (int client, int other, string? others) = Count();
        Interlocked.Increment(ref _samples);
        Raise(ref _max, client);
        if (Raise(ref _otherMax, other))
        {
            Volatile.Write(ref _otherAtMax, others ?? "none");
        }
    }

    private static bool Raise(ref int max, int now)
    {
        int seen;
        while (now > (seen = Volatile.Read(ref max)))
        {
            if (Interlocked.CompareExchange(ref max, now, seen) == seen)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// Another local client of the agent, like <c>curl /v1/status/leader</c> run now and then: a fresh connection per
/// request, every <c>interval</c>, each bounded by a 1 s timeout; records failures and the slowest answer. Its
/// sockets are <see cref="FixtureSockets"/>, so that they are not counted as the gateway's.
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

/// <summary>
/// HTTP clients of the test fixtures (not of the code under test) connect through here, which records each socket's
/// local port while it is open, so that <see cref="AgentConnectionSampler"/> can leave them out.
/// </summary>
internal static class FixtureSockets
{
    private static readonly SocketRecorder Recorder = new();

    public static bool IsFixture(int localPort) => Recorder.Contains(localPort);

    public static SocketsHttpHandler Handler(int maxConnectionsPerServer = int.MaxValue, TimeSpan? pooledConnectionLifetime = null) => new()
    {
        MaxConnectionsPerServer = maxConnectionsPerServer,
        PooledConnectionLifetime = pooledConnectionLifetime ?? Timeout.InfiniteTimeSpan,
        ConnectCallback = Recorder.ConnectAsync,
    };
}

/// <summary>
/// The sockets of one client under test, known by their local ports: the client is built like production's
/// (<see cref="ConsulAgentConnection.CreateHandler"/>: same connection bound, lifetimes, timeouts), only its connect step
/// records the port. What <see cref="AgentConnectionSampler"/> asserts on.
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

    public bool Contains(int localPort) => _recorder.Contains(localPort);

    public void Dispose()
    {
        Client.Dispose();
        _handler.Dispose();
    }
}

/// <summary>A connect step that binds first and records the local port (before the connection can be sampled) until the stream is disposed.</summary>
internal sealed class SocketRecorder
{
    private readonly ConcurrentDictionary<int, bool> _localPorts = new();

    public bool Contains(int localPort) => _localPorts.ContainsKey(localPort);

    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            _localPorts[port] = true;
            await socket.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
            return new RecordedStream(socket, port, _localPorts);
        }
        catch
        {
            if (socket.LocalEndPoint is IPEndPoint bound)
            {
                _localPorts.TryRemove(bound.Port, out _);
            }

            socket.Dispose();
            throw;
        }
    }

    private sealed class RecordedStream(Socket socket, int port, ConcurrentDictionary<int, bool> ports) : NetworkStream(socket, ownsSocket: true)
    {
        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            ports.TryRemove(port, out _);
        }
    }
}
