using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>
/// A real gateway process (samples/SniGateway) under a low open-file limit (<c>ulimit -n</c>): the limit is a property of
/// the process, so it is tested on a child, never on the test host. The child is killed by its PID whatever happens.
/// </summary>
[Collection(nameof(ProcessLimits))]
public sealed partial class GatewayProcessTests
{
    private const string Name = "web.default.dc1.internal.td.consul";
    private const int OpenFileLimit = 256;

    [GeneratedRegex(@"listening on (?<endpoint>\S+) with \d+ routes, connection limit (?<limit>\d+) \(open-file limit (?<files>\d+)\)")]
    private static partial Regex ListeningLine();

    [Fact]
    public async Task FloodPastOpenFileLimit_ProcessStaysUpRefusesTheExcessAndServesAfterwards()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        string routes = Path.Combine(Path.GetTempPath(), $"mg-fd-routes-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(routes, $$"""{"routes":[{"sni":"{{Name}}","endpoints":["{{backend.EndPoint}}"]}]}""");
        using var gateway = new ChildGateway(routes, OpenFileLimit);
        try
        {
            (IPEndPoint endPoint, int limit, long files) = await gateway.Ready.WaitAsync(TimeSpan.FromSeconds(60));

            // (256 − 128 reserved − 1 listener) / 2 descriptors per connection.
            Assert.Equal(OpenFileLimit, files);
            Assert.Equal((OpenFileLimit - 128 - 1) / 2, limit);

            // The flood: far more connections than the process has descriptors, all at once, each sending a hello and
            // waiting for its echo. Those past the limit are refused (reset); the routed ones stay open until released.
            const int Flood = 600;
            var held = new List<Socket>();
            int routed = 0, refused = 0;
            using var parallel = new SemaphoreSlim(128);
            await Task.WhenAll(Enumerable.Range(0, Flood).Select(async i =>
            {
                await parallel.WaitAsync();
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await socket.ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
                    await socket.SendAsync(hello);
                    await socket.SendAsync(BitConverter.GetBytes(i));
                    byte[] echo = new byte[4];
                    await RawBackend.ReadExactlyAsync(socket, echo).WaitAsync(TimeSpan.FromSeconds(30));
                    Assert.Equal(i, BitConverter.ToInt32(echo));
                    Interlocked.Increment(ref routed);
                    lock (held)
                    {
                        held.Add(socket);
                    }
                }
                catch (Exception ex) when (ex is SocketException or EndOfStreamException)
                {
                    Interlocked.Increment(ref refused);
                    socket.Dispose();
                }
                finally
                {
                    parallel.Release();
                }
            })).WaitAsync(TimeSpan.FromMinutes(3));

            Assert.False(gateway.Process.HasExited, $"the gateway exited during the flood: {gateway.Output}");
            Assert.Equal(Flood, routed + refused);
            Assert.InRange(routed, 1, limit);
            Assert.InRange(refused, Flood - limit, Flood);

            // The flood ends: every held connection closes, and the gateway logs each (access log) as it releases it.
            Task released = gateway.WaitForClosedAsync(routed);
            foreach (Socket socket in held)
            {
                socket.Dispose();
            }

            await released.WaitAsync(TimeSpan.FromSeconds(60));

            // Good connections are served again, up to the full limit at once.
            var good = new Socket[limit];
            try
            {
                for (int i = 0; i < good.Length; i++)
                {
                    good[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await good[i].ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
                    await good[i].SendAsync(hello);
                    await good[i].SendAsync(BitConverter.GetBytes(i));
                    byte[] echo = new byte[4];
                    await RawBackend.ReadExactlyAsync(good[i], echo).WaitAsync(TimeSpan.FromSeconds(30));
                    Assert.Equal(i, BitConverter.ToInt32(echo));
                }
            }
            finally
            {
                foreach (Socket? socket in good)
                {
                    socket?.Dispose();
                }
            }

            Assert.False(gateway.Process.HasExited, $"the gateway exited: {gateway.Output}");
            Assert.DoesNotContain("Out of memory", gateway.Output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(routes);
        }
    }

    [Fact]
    public async Task SilentWavesOfTenThousand_CutAtTheHelloTimeout_ResidentMemoryBackNearItsBaseline()
    {
        if (OpenFileLimitOfThisProcess() < 20_000)
        {
            throw new InvalidOperationException("This test needs an open-file limit of at least 20,000 (ulimit -n).");
        }

        await SilentWavesAsync();
    }

    private static long OpenFileLimitOfThisProcess() =>
        long.Parse(File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], CultureInfo.InvariantCulture);

    private static async Task SilentWavesAsync()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        string routes = Path.Combine(Path.GetTempPath(), $"mg-wave-routes-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(routes, $$"""{"routes":[{"sni":"{{Name}}","endpoints":["{{backend.EndPoint}}"]}]}""");
        // Room for a wave of 10,000 (two descriptors each, 128 reserved); the test host's own limit holds the client side.
        using var gateway = new ChildGateway(routes, openFileLimit: 20_000, helloTimeoutMs: 2_000);
        try
        {
            (IPEndPoint endPoint, int limit, _) = await gateway.Ready.WaitAsync(TimeSpan.FromSeconds(60));
            // 10,000 less what the fd-derived cap keeps back: this machine's hard open-file limit is 20,000, and the cap
            // counts two descriptors per connection ((20,000 − 128 − 1) / 2 = 9,935).
            int wave = Math.Min(10_000, limit - 20);
            Assert.True(wave >= 9_000, $"connection limit {limit}");

            // A first, small wave warms the accept and timeout paths up (JIT, pools), then the baseline is read.
            await SilentWaveAsync(endPoint, 200);
            long baseline = ResidentKiB(gateway.Process.Id);
            long peak = 0;
            long after = 0;
            for (int round = 0; round < 2; round++)
            {
                Task returned = gateway.WaitForLineAsync("memory returned after a wave");
                peak = Math.Max(peak, await SilentWaveAsync(endPoint, wave, () => ResidentKiB(gateway.Process.Id)));
                await returned.WaitAsync(TimeSpan.FromSeconds(30));
                after = ResidentKiB(gateway.Process.Id);
            }

            Assert.False(gateway.Process.HasExited, $"the gateway exited: {gateway.Output}");
            string report = $"RSS baseline {baseline / 1024.0:0.0} MiB, with {wave:N0} pending hellos {peak / 1024.0:0.0} MiB, after two waves {after / 1024.0:0.0} MiB";
            Console.WriteLine(report);

            // Near its baseline: within 16 MiB (less than 1.7 KiB per connection of the wave), whatever the wave held.
            Assert.True(after - baseline < 16 * 1024, report);

            // And it still serves.
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
            await socket.SendAsync(hello);
            await socket.SendAsync(BitConverter.GetBytes(7));
            byte[] echo = new byte[4];
            await RawBackend.ReadExactlyAsync(socket, echo).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(7, BitConverter.ToInt32(echo));
        }
        finally
        {
            File.Delete(routes);
        }
    }

    /// <summary>Opens <paramref name="count"/> connections that send nothing and waits until the gateway has cut every one
    /// (each socket's read ends); returns what <paramref name="sample"/> read once all were open (0 without it).</summary>
    private static async Task<long> SilentWaveAsync(IPEndPoint endPoint, int count, Func<long>? sample = null)
    {
        var sockets = new Socket[count];
        try
        {
            using var parallel = new SemaphoreSlim(256);
            await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                await parallel.WaitAsync();
                try
                {
                    sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await sockets[i].ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
                }
                finally
                {
                    parallel.Release();
                }
            })).WaitAsync(TimeSpan.FromMinutes(2));
            long sampled = sample?.Invoke() ?? 0;
            byte[] one = new byte[1];
            await Task.WhenAll(sockets.Select(async s =>
            {
                try
                {
                    // The gateway closes (or resets) each at the hello timeout: the read ends either way.
                    await s.ReceiveAsync(one);
                }
                catch (SocketException)
                {
                }
            })).WaitAsync(TimeSpan.FromMinutes(2));
            return sampled;
        }
        finally
        {
            foreach (Socket? s in sockets)
            {
                s?.Dispose();
            }
        }
    }

    private static long ResidentKiB(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan("VmRSS:".Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException("No VmRSS in /proc/<pid>/status.");
    }

    /// <summary>samples/SniGateway started through <c>bash -c 'ulimit -n N; exec dotnet SniGateway.dll …'</c>.</summary>
    private sealed class ChildGateway : IDisposable
    {
        private readonly TaskCompletionSource<(IPEndPoint, int, long)> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Text.StringBuilder _output = new();
        private readonly object _gate = new();
        private TaskCompletionSource? _closedTarget;
        private (string Prefix, TaskCompletionSource Done)? _lineTarget;
        private int _closedWanted;
        private int _closed;

        public ChildGateway(string routesFile, int openFileLimit, int helloTimeoutMs = 60_000)
        {
            string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            string dll = Path.Combine(AppContext.BaseDirectory, "SniGateway.dll");
            var info = new ProcessStartInfo("bash")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"ulimit -n {openFileLimit.ToString(CultureInfo.InvariantCulture)} && exec \"$0\" \"$1\" --listen 127.0.0.1:0 --routes \"$2\" --hello-timeout-ms {helloTimeoutMs.ToString(CultureInfo.InvariantCulture)} --access-log");
            info.ArgumentList.Add(dotnet);
            info.ArgumentList.Add(dll);
            info.ArgumentList.Add(routesFile);
            Process = new Process { StartInfo = info };
            Process.OutputDataReceived += (_, e) => OnLine(e.Data);
            Process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            Process.Exited += (_, _) => _ready.TrySetException(new InvalidOperationException($"The gateway exited: {Output}"));
            Process.EnableRaisingEvents = true;
            Process.Start();
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public Process Process { get; }

        /// <summary>The bound address, the connection limit and the open-file limit the gateway reported.</summary>
        public Task<(IPEndPoint EndPoint, int Limit, long Files)> Ready => _ready.Task;

        public string Output
        {
            get
            {
                lock (_gate)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>Completes when the gateway next writes a line starting with <paramref name="prefix"/>.</summary>
        public Task WaitForLineAsync(string prefix)
        {
            lock (_gate)
            {
                _lineTarget = (prefix, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                return _lineTarget.Value.Done.Task;
            }
        }

        /// <summary>Completes once <paramref name="count"/> more spliced connections have been logged as closed.</summary>
        public Task WaitForClosedAsync(int count)
        {
            lock (_gate)
            {
                _closedWanted = _closed + count;
                _closedTarget = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                if (_closed >= _closedWanted)
                {
                    _closedTarget.TrySetResult();
                }

                return _closedTarget.Task;
            }
        }

        public void Dispose()
        {
            try
            {
                if (!Process.HasExited)
                {
                    Process.Kill(entireProcessTree: true);
                    Process.WaitForExit(30_000);
                }
            }
            finally
            {
                Process.Dispose();
            }
        }

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_gate)
            {
                if (_output.Length < 64 * 1024)
                {
                    _output.AppendLine(line);
                }

                if (_lineTarget is { } target && line.StartsWith(target.Prefix, StringComparison.Ordinal))
                {
                    target.Done.TrySetResult();
                }

                if (line.StartsWith("conn ", StringComparison.Ordinal) && ++_closed >= _closedWanted)
                {
                    _closedTarget?.TrySetResult();
                }
            }

            Match match = ListeningLine().Match(line);
            if (match.Success)
            {
                _ready.TrySetResult((
                    IPEndPoint.Parse(match.Groups["endpoint"].Value),
                    int.Parse(match.Groups["limit"].Value, CultureInfo.InvariantCulture),
                    long.Parse(match.Groups["files"].Value, CultureInfo.InvariantCulture)));
            }
        }
    }
}
