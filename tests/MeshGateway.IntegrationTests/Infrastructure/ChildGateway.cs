using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests.Infrastructure;

/// <summary>
/// samples/SniGateway as a child process (<c>bash -c '[ulimit -n N &amp;&amp;] exec dotnet SniGateway.dll …'</c>, so the
/// child's PID is the one started). Process-wide limits (open files) are properties of a process: tests change the
/// child's, never the test host's. Killed by its PID on dispose whatever happened.
/// </summary>
internal sealed partial class ChildGateway : IDisposable
{
    private const int SigTerm = 15;
    private readonly TaskCompletionSource<(IPEndPoint, int, long)> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Text.StringBuilder _output = new();
    private readonly object _gate = new();
    private TaskCompletionSource? _closedTarget;
    private LineTarget? _lineTarget;
    private int _closedWanted;
    private int _closed;

    /// <summary>Starts the gateway on 127.0.0.1:0 with <paramref name="routesFile"/> and the access log on.</summary>
    /// <param name="routesFile">The routes file (see samples/SniGateway/README.md).</param>
    /// <param name="openFileLimit">The child's <c>ulimit -n</c>; null: the test host's limits, inherited.</param>
    /// <param name="helloTimeoutMs">The gateway's hello timeout.</param>
    public ChildGateway(string routesFile, int? openFileLimit, int helloTimeoutMs = 60_000)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        string dll = Path.Combine(AppContext.BaseDirectory, "SniGateway.dll");
        var info = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string limit = openFileLimit is { } n ? $"ulimit -n {n.ToString(CultureInfo.InvariantCulture)} && " : "";
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"{limit}exec \"$0\" \"$1\" --listen 127.0.0.1:0 --routes \"$2\" --hello-timeout-ms {helloTimeoutMs.ToString(CultureInfo.InvariantCulture)} --engine {TestEngine.CommandLineName} --access-log");
        info.ArgumentList.Add(dotnet);
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add(routesFile);
        Process = new Process { StartInfo = info };
        Process.OutputDataReceived += (_, e) => OnLine(e.Data);
        Process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        Process.Exited += (_, _) =>
        {
            _ready.TrySetException(new InvalidOperationException($"The gateway exited: {Output}"));
            _exited.TrySetResult();
        };
        Process.EnableRaisingEvents = true;
        Process.Start();
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    public Process Process { get; }

    /// <summary>The bound address, the connection limit and the open-file limit the gateway reported.</summary>
    public Task<(IPEndPoint EndPoint, int Limit, long Files)> Ready => _ready.Task;

    /// <summary>Completes when the process has exited (for whatever reason).</summary>
    public Task Exited => _exited.Task;

    /// <summary>Everything the gateway wrote so far (stdout and stderr, the first 64 KiB).</summary>
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

    /// <summary>Descriptors the child holds now (<c>/proc/&lt;pid&gt;/fd</c>).</summary>
    public int OpenFiles => Directory.GetFiles($"/proc/{Process.Id.ToString(CultureInfo.InvariantCulture)}/fd").Length;

    /// <summary>Completes when the gateway next writes a line starting with <paramref name="prefix"/>.</summary>
    public Task WaitForLineAsync(string prefix) => WaitForLinesAsync(prefix, 1);

    /// <summary>The next <paramref name="count"/> lines the gateway writes that start with <paramref name="prefix"/>.</summary>
    public Task<IReadOnlyList<string>> WaitForLinesAsync(string prefix, int count)
    {
        lock (_gate)
        {
            var target = new LineTarget(prefix, count);
            _lineTarget = target;
            return target.Done.Task;
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

    /// <summary>Sets the child's open-file limit (soft:hard) from outside with util-linux <c>prlimit</c>.</summary>
    public async Task SetOpenFileLimitAsync(long soft, long hard)
    {
        var info = new ProcessStartInfo("prlimit")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("--pid");
        info.ArgumentList.Add(Process.Id.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add($"--nofile={soft.ToString(CultureInfo.InvariantCulture)}:{hard.ToString(CultureInfo.InvariantCulture)}");
        using Process prlimit = Process.Start(info)!;
        Task<string> error = prlimit.StandardError.ReadToEndAsync();
        try
        {
            await prlimit.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            if (!prlimit.HasExited)
            {
                prlimit.Kill();
            }
        }

        if (prlimit.ExitCode != 0)
        {
            throw new InvalidOperationException($"prlimit --nofile={soft}:{hard} failed ({prlimit.ExitCode}): {await error}");
        }
    }

    /// <summary>The child's open-file limit (soft, hard) from <c>/proc/&lt;pid&gt;/limits</c>.</summary>
    public (long Soft, long Hard) OpenFileLimit
    {
        get
        {
            string[] fields = File.ReadLines($"/proc/{Process.Id.ToString(CultureInfo.InvariantCulture)}/limits")
                .First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return (long.Parse(fields[3], CultureInfo.InvariantCulture), long.Parse(fields[4], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Asks the gateway to stop (SIGTERM: stop accepting, drain, exit) and waits for it to exit; returns its exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (kill(Process.Id, SigTerm) != 0)
        {
            throw new InvalidOperationException($"kill(SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        }

        await Process.WaitForExitAsync().WaitAsync(timeout);
        return Process.ExitCode;
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

    [GeneratedRegex(@"listening on (?<endpoint>\S+) with \d+ routes, connection limit (?<limit>\d+) \(open-file limit (?<files>\d+)\)")]
    private static partial Regex ListeningLine();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

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
                target.Lines.Add(line);
                if (target.Lines.Count == target.Count)
                {
                    target.Done.TrySetResult(target.Lines);
                    _lineTarget = null;
                }
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

    private sealed class LineTarget(string prefix, int count)
    {
        public string Prefix { get; } = prefix;

        public int Count { get; } = count;

        public List<string> Lines { get; } = [];

        public TaskCompletionSource<IReadOnlyList<string>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
