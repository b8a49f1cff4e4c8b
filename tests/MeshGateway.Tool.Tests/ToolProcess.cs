using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace MeshGateway.Tool.Tests;

/// <summary>
/// <c>dotnet exec meshgateway.dll …</c> (or the native executable named by <c>MG_MESHGATEWAY_BINARY</c>) as a child process, with its standard output and error collected line by line.
/// The <c>CONSUL_*</c> and <c>MeshGateway__*</c> variables of the test host are not passed on. Killed by its PID on
/// dispose if still running.
/// </summary>
internal sealed class ToolProcess : IDisposable
{
    public static readonly TimeSpan SafetyTimeout = TimeSpan.FromSeconds(90);

    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _gate = new();
    private readonly List<(string Text, TaskCompletionSource<string> Seen)> _waiters = [];
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ToolProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
    {
        // MG_MESHGATEWAY_BINARY: the Native AOT executable (eng/aot-check.sh runs these same tests against it).
        string? native = Environment.GetEnvironmentVariable("MG_MESHGATEWAY_BINARY");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var info = new ProcessStartInfo(string.IsNullOrEmpty(native) ? dotnet : native)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (string.IsNullOrEmpty(native))
        {
            info.ArgumentList.Add("exec");
            info.ArgumentList.Add(ToolDll);
        }

        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (string name in info.Environment.Keys.ToList())
        {
            if (name.StartsWith("CONSUL_", StringComparison.Ordinal) || name.StartsWith("MeshGateway__", StringComparison.OrdinalIgnoreCase))
            {
                info.Environment.Remove(name);
            }
        }

        foreach (KeyValuePair<string, string> pair in environment ?? new Dictionary<string, string>())
        {
            info.Environment[pair.Key] = pair.Value;
        }

        Process = new Process { StartInfo = info };
        Process.OutputDataReceived += (_, e) => OnLine(_stdout, e.Data, _stdoutClosed);
        Process.ErrorDataReceived += (_, e) => OnLine(_stderr, e.Data, _stderrClosed);
        Process.Start();
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    public Process Process { get; }

    /// <summary>The built command in its own output folder (set by the project file).</summary>
    public static string ToolDll => typeof(ToolProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "MeshGatewayToolDll").Value is { Length: > 0 } path && File.Exists(path)
        ? path
        : throw new InvalidOperationException("The built meshgateway.dll was not found (AssemblyMetadata MeshGatewayToolDll).");

    public string StandardOutput
    {
        get
        {
            lock (_gate)
            {
                return _stdout.ToString();
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_gate)
            {
                return _stderr.ToString();
            }
        }
    }

    public string Output => $"stdout:\n{StandardOutput}\nstderr:\n{StandardError}";

    public static ToolProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) => new(args, environment);

    /// <summary>Runs the command to its exit (bounded by <see cref="SafetyTimeout"/>) and returns it for its exit code and output.</summary>
    public static async Task<ToolProcess> RunAsync(params string[] args)
    {
        ToolProcess tool = Start(args);
        try
        {
            await tool.WaitForExitAsync();
            return tool;
        }
        catch
        {
            tool.Dispose();
            throw;
        }
    }

    /// <summary>Completes with the first line (stdout or stderr, past or future) containing <paramref name="text"/>; fails if the process exits first.</summary>
    public Task<string> WaitForLineAsync(string text)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            string? line = (_stdout + "\n" + _stderr).Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                seen.SetResult(line);
            }
            else
            {
                _waiters.Add((text, seen));
            }
        }

        return WaitOrExitAsync(seen.Task, text);
    }

    /// <summary>Waits for the exit and for both output streams to be read to their end.</summary>
    public async Task<int> WaitForExitAsync()
    {
        await Task.WhenAll(Process.WaitForExitAsync(), _stdoutClosed.Task, _stderrClosed.Task).WaitAsync(SafetyTimeout);
        return Process.ExitCode;
    }

    /// <summary>Sends SIGTERM to the process by its PID (<c>kill -TERM</c>).</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", Process.Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(SafetyTimeout);
        Assert.Equal(0, kill.ExitCode);
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
        catch (InvalidOperationException)
        {
            // Exited in between.
        }

        Process.Dispose();
    }

    private async Task<string> WaitOrExitAsync(Task<string> seen, string text)
    {
        Task exited = Task.WhenAll(Process.WaitForExitAsync(), _stdoutClosed.Task, _stderrClosed.Task);
        Task first = await Task.WhenAny(seen, exited).WaitAsync(SafetyTimeout);
        if (first == seen || seen.IsCompleted)
        {
            return await seen;
        }

        throw new InvalidOperationException($"meshgateway exited ({Process.ExitCode}) before printing '{text}':\n{Output}");
    }

    private void OnLine(StringBuilder into, string? line, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }

        lock (_gate)
        {
            into.Append(line).Append('\n');
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (line.Contains(_waiters[i].Text, StringComparison.Ordinal))
                {
                    _waiters[i].Seen.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
