using System.Diagnostics;
using System.Text;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>
/// Consul's built-in proxy (<c>consul connect proxy -sidecar-for &lt;id&gt;</c>) as a child process, stopped by PID on
/// dispose. Its public listener, bind address and port come from the sidecar registration's proxy config.
/// </summary>
internal sealed class ConsulConnectProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly Lock _gate = new();

    private ConsulConnectProxy(Process process) => _process = process;

    public int Pid => _process.Id;

    public string Log
    {
        get
        {
            lock (_gate)
            {
                return _log.ToString();
            }
        }
    }

    public static ConsulConnectProxy StartSidecarFor(string serviceId, Uri agentHttp)
    {
        var psi = new ProcessStartInfo(ConsulBinary.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "connect", "proxy", "-sidecar-for", serviceId, "-http-addr", agentHttp.Authority, "-log-level", "debug" })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = psi };
        var proxy = new ConsulConnectProxy(process);
        process.OutputDataReceived += (_, e) => proxy.Append(e.Data);
        process.ErrorDataReceived += (_, e) => proxy.Append(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {ConsulBinary.Path} connect proxy.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return proxy;
    }

    public bool HasExited => _process.HasExited;

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            if (_log.Length < 256 * 1024)
            {
                _log.AppendLine(line);
            }
        }
    }
}
