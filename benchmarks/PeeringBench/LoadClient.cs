using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace PeeringBench;

/// <summary>What the load client is asked to do.</summary>
internal sealed record LoadOptions(
    IPEndPoint Target,
    string Certs,
    int Connections,
    TimeSpan Warmup,
    TimeSpan Duration,
    TimeSpan RequestTimeout,
    string Path,
    IReadOnlyList<int> ProxyPids,
    IReadOnlyList<int> BackendPids);

/// <summary>
/// A closed-loop HTTP/1.1 keep-alive load client presenting the peer's client certificate: N connections, each sends
/// one GET, reads the whole response, sends the next. Counts the requests completed in the measured window (after a
/// warm-up on the same connections), their latency, and errors; samples the CPU ticks of the proxy's and the backend's
/// processes (/proc/PID/stat utime+stime), of this process and of the whole machine exactly at the window's edges.
/// </summary>
/// <remarks>
/// Written here because the usual load generators cannot present a client certificate (wrk has no option for it, and
/// h2load 1.52, Debian 12's, neither). Kept lean (one SslStream per connection, a prebuilt request, a minimal response
/// parser that needs Content-Length) so the client takes as little of the shared CPUs as it can; every row of a run
/// uses the same client, so its cost is the same for all of them.
/// </remarks>
internal sealed class LoadClient
{
    private const int Warming = 0;
    private const int Measuring = 1;
    private const int Stopped = 2;

    private readonly LoadOptions _options;
    private readonly byte[] _request;
    private readonly X509Certificate2 _clientCertificate;
    private readonly X509Certificate2 _localRoot;
    private int _phase;
    private long _errConnect;
    private long _errRead;
    private long _errStatus;
    private long _errTimeout;

    private LoadClient(LoadOptions options)
    {
        _options = options;
        _request = Encoding.ASCII.GetBytes($"GET {options.Path} HTTP/1.1\r\nHost: {Certificates.WebSni}\r\nUser-Agent: peering-bench\r\nAccept: */*\r\n\r\n");
        _clientCertificate = Certificates.LoadLeaf(options.Certs, "client");
        _localRoot = Certificates.LoadRoot(options.Certs, "local-ca");
    }

    public static async Task<int> RunAsync(LoadOptions options)
    {
        var client = new LoadClient(options);
        return await client.RunAsync();
    }

    private async Task<int> RunAsync()
    {
        TimeSpan total = _options.Warmup + _options.Duration + _options.RequestTimeout;

        // The hard bound of the whole run: whatever hangs is cut here and counted as a timeout.
        using var hard = new CancellationTokenSource(total + TimeSpan.FromSeconds(5));
        var workers = new Task<List<int>>[_options.Connections];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(() => RunConnectionAsync(hard.Token));
        }

        await Task.Delay(_options.Warmup);
        Sample start = Sample.Take(_options.ProxyPids, _options.BackendPids);
        Volatile.Write(ref _phase, Measuring);
        await Task.Delay(_options.Duration);
        Volatile.Write(ref _phase, Stopped);
        Sample end = Sample.Take(_options.ProxyPids, _options.BackendPids);
        long measuredUs = (end.Timestamp - start.Timestamp) * 1_000_000 / Stopwatch.Frequency;

        // Requests in flight finish (or time out) before the connections close.
        List<int>[] latencies = await Task.WhenAll(workers);
        int[] all = [.. latencies.SelectMany(l => l)];
        Array.Sort(all);
        int Percentile(double p) => all.Length == 0 ? 0 : all[Math.Clamp((int)Math.Ceiling(p * all.Length) - 1, 0, all.Length - 1)];

        var line = new StringBuilder("PEERING_RESULT");
        void Add(string key, long value) => line.Append(' ').Append(key).Append('=').Append(value.ToString(CultureInfo.InvariantCulture));
        Add("requests", all.Length);
        Add("duration_us", measuredUs);
        Add("err_connect", Interlocked.Read(ref _errConnect));
        Add("err_read", Interlocked.Read(ref _errRead));
        Add("err_status", Interlocked.Read(ref _errStatus));
        Add("err_timeout", Interlocked.Read(ref _errTimeout));
        Add("lat_p50_us", Percentile(0.50));
        Add("lat_p90_us", Percentile(0.90));
        Add("lat_p99_us", Percentile(0.99));
        Add("lat_p999_us", Percentile(0.999));
        Add("lat_max_us", all.Length == 0 ? 0 : all[^1]);
        Add("proxy_ticks", end.ProxyTicks - start.ProxyTicks);
        Add("backend_ticks", end.BackendTicks - start.BackendTicks);
        Add("client_cpu_us", (long)(end.ClientCpu - start.ClientCpu).TotalMicroseconds);
        Add("machine_busy_ticks", end.MachineBusy - start.MachineBusy);
        Add("machine_total_ticks", end.MachineTotal - start.MachineTotal);
        Console.WriteLine(line.ToString());
        return 0;
    }

    /// <summary>One connection's loop; reconnects after an error until the window ends. Returns the measured latencies (us).</summary>
    private async Task<List<int>> RunConnectionAsync(CancellationToken hard)
    {
        var latencies = new List<int>(1 << 16);
        byte[] buffer = new byte[64 * 1024];
        while (Volatile.Read(ref _phase) != Stopped && !hard.IsCancellationRequested)
        {
            SslStream? tls = null;
            try
            {
                tls = await ConnectAsync(hard);
            }
            catch (Exception ex) when (ex is SocketException or IOException or AuthenticationException or OperationCanceledException)
            {
                Count(ref _errConnect);
                if (!hard.IsCancellationRequested)
                {
                    // Bounded: the loop ends with the window.
                    await Task.Delay(50, CancellationToken.None);
                }

                continue;
            }

            try
            {
                while (true)
                {
                    int phase = Volatile.Read(ref _phase);
                    if (phase == Stopped)
                    {
                        break;
                    }

                    long t0 = Stopwatch.GetTimestamp();
                    await tls.WriteAsync(_request, hard);
                    (int status, bool close) = await ReadResponseAsync(tls, buffer, hard);
                    long t1 = Stopwatch.GetTimestamp();

                    // Counted when it started and ended inside the window.
                    if (phase == Measuring && Volatile.Read(ref _phase) == Measuring)
                    {
                        latencies.Add((int)Math.Min(int.MaxValue, (t1 - t0) * 1_000_000 / Stopwatch.Frequency));
                        if (status != 200)
                        {
                            Count(ref _errStatus);
                        }
                    }

                    if (close)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                Count(ref _errTimeout);
            }
            catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException or ObjectDisposedException)
            {
                if (Volatile.Read(ref _phase) != Stopped)
                {
                    Count(ref _errRead);
                }
            }
            finally
            {
                await tls.DisposeAsync();
            }
        }

        return latencies;
    }

    private void Count(ref long counter)
    {
        // Errors during warm-up are counted too: a proxy that fails then is worth seeing.
        Interlocked.Increment(ref counter);
    }

    private async Task<SslStream> ConnectAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(_options.Target, cancellationToken);
            var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            try
            {
                await tls.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions
                    {
                        TargetHost = Certificates.WebSni,
                        ApplicationProtocols = [SslApplicationProtocol.Http11],
                        ClientCertificates = [_clientCertificate],
                        LocalCertificateSelectionCallback = (_, _, _, _, _) => _clientCertificate,
                        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                        RemoteCertificateValidationCallback = (_, certificate, _, _) => Certificates.ChainsTo(certificate, _localRoot),
                    },
                    cancellationToken);
                return tls;
            }
            catch
            {
                await tls.DisposeAsync();
                throw;
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads one response (status line, headers, Content-Length body). Returns the status and whether the server closes.</summary>
    private static async ValueTask<(int Status, bool Close)> ReadResponseAsync(SslStream tls, byte[] buffer, CancellationToken cancellationToken)
    {
        int filled = 0;
        int headerEnd;
        while (true)
        {
            headerEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
            if (headerEnd >= 0)
            {
                break;
            }

            if (filled == buffer.Length)
            {
                throw new InvalidDataException("Response headers larger than the buffer.");
            }

            int n = await tls.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (n == 0)
            {
                throw new IOException("The server closed the connection before a response.");
            }

            filled += n;
        }

        (int status, long contentLength, bool close) = ParseHead(buffer.AsSpan(0, headerEnd + 2));
        long remaining = contentLength - (filled - (headerEnd + 4));
        while (remaining > 0)
        {
            int n = await tls.ReadAsync(buffer, cancellationToken);
            if (n == 0)
            {
                throw new IOException("The server closed the connection in a response body.");
            }

            remaining -= n;
        }

        if (remaining < 0)
        {
            throw new InvalidDataException("More bytes than Content-Length (a pipelined or malformed response).");
        }

        return (status, close);
    }

    private static (int Status, long ContentLength, bool Close) ParseHead(ReadOnlySpan<byte> head)
    {
        // "HTTP/1.1 200 OK\r\n"
        if (head.Length < 12 || !head.StartsWith("HTTP/1."u8) || !Utf8Parser.TryParse(head.Slice(9, 3), out int status, out _))
        {
            throw new InvalidDataException("Not an HTTP/1.x status line.");
        }

        long contentLength = -1;
        bool close = head[7] == (byte)'0';
        int lineEnd = head.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> rest = head[(lineEnd + 2)..];
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf("\r\n"u8);
            ReadOnlySpan<byte> line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? default : rest[(end + 2)..];
            int colon = line.IndexOf((byte)':');
            if (colon <= 0)
            {
                continue;
            }

            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                if (!Utf8Parser.TryParse(value, out contentLength, out _))
                {
                    throw new InvalidDataException("Bad Content-Length.");
                }
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                close = Ascii.EqualsIgnoreCase(value, "close"u8);
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                throw new InvalidDataException("Transfer-Encoding responses are not supported by this client (the backend sets Content-Length).");
            }
        }

        if (contentLength < 0)
        {
            throw new InvalidDataException("A response without Content-Length.");
        }

        return (status, contentLength, close);
    }

    /// <summary>CPU counters at one instant.</summary>
    private readonly record struct Sample(long Timestamp, long ProxyTicks, long BackendTicks, TimeSpan ClientCpu, long MachineBusy, long MachineTotal)
    {
        public static Sample Take(IReadOnlyList<int> proxyPids, IReadOnlyList<int> backendPids)
        {
            (long busy, long total) = MachineTicks();
            return new Sample(Stopwatch.GetTimestamp(), Ticks(proxyPids), Ticks(backendPids), Process.GetCurrentProcess().TotalProcessorTime, busy, total);
        }

        /// <summary>utime + stime (fields 14 and 15 of /proc/PID/stat) summed over the processes, in clock ticks.</summary>
        private static long Ticks(IReadOnlyList<int> pids)
        {
            long sum = 0;
            foreach (int pid in pids)
            {
                string stat;
                try
                {
                    stat = File.ReadAllText("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/stat");
                }
                catch (IOException)
                {
                    continue;
                }

                // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                sum += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }

            return sum;
        }

        /// <summary>Busy and total ticks over all CPUs (first line of /proc/stat), as peers.sh counts them.</summary>
        private static (long Busy, long Total) MachineTicks()
        {
            string first = File.ReadLines("/proc/stat").First();
            long[] v = [.. first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(s => long.Parse(s, CultureInfo.InvariantCulture))];
            long user = v[0], nice = v[1], system = v[2], idle = v[3], iowait = v[4], irq = v[5], softirq = v[6], steal = v[7];
            return (user + nice + system + irq + softirq + steal, user + nice + system + idle + iowait + irq + softirq + steal);
        }
    }
}
