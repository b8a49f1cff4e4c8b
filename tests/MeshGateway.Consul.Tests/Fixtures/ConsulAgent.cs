using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Fixtures;

/// <summary>Settings of a dev agent started by the tests.</summary>
internal sealed record ConsulAgentSettings(string Datacenter)
{
    public string? PrimaryDatacenter { get; init; }

    public int? JoinWanSerfPort { get; init; }

    public bool Acl { get; init; }

    /// <summary>Serve the HTTP API over HTTPS only (<c>ports { http = -1, https = HttpsPort }</c>) with this TLS material.</summary>
    public ConsulTlsMaterial? HttpsOnly { get; init; }

    /// <summary>Serve the HTTP API on this Unix domain socket (<c>addresses { http = "unix://…" }</c>) instead of TCP.</summary>
    public string? UnixSocket { get; init; }

    /// <summary>Extra top-level configuration merged over the generated file (e.g. <c>limits</c>).</summary>
    public JsonObject? ExtraConfig { get; init; }

    /// <summary>A real single-server agent (<c>-server -bootstrap-expect=1</c>) with its Raft state on disk, instead of
    /// <c>-dev</c> (whose state lives in memory): a restart on the same data dir keeps the catalog and its indexes.</summary>
    public bool Persistent { get; init; }
}

/// <summary>
/// A real <c>consul agent -dev</c> on loopback with test-chosen free ports, its output in a log file. Killed by PID on
/// dispose and, as a safety net, when the test process exits.
/// </summary>
internal sealed class ConsulAgent : IAsyncDisposable
{
    private static readonly List<ConsulAgent> s_live = [];
    private static int s_hooked;
    private readonly ConsulAgentSettings _settings;
    private readonly string _dir;
    private readonly string _configPath;
    private readonly Lock _logGate = new();
    private Process? _process;
    private StreamWriter? _log;
    private int _dataGeneration;

    private ConsulAgent(ConsulAgentSettings settings)
    {
        _settings = settings;
        _dir = Directory.CreateTempSubdirectory("mg-consul-" + settings.Datacenter + "-").FullName;
        _configPath = Path.Combine(_dir, "agent.json");
        LogPath = Path.Combine(_dir, "agent.log");
        NodeName = "node-" + settings.Datacenter + "-" + Guid.NewGuid().ToString("N")[..6];
        MasterToken = settings.Acl ? Guid.NewGuid().ToString() : null;
        HttpPort = FreePorts.Next();
        DnsPort = FreePorts.Next();
        SerfLanPort = FreePorts.Next();
        SerfWanPort = FreePorts.Next();
        ServerPort = FreePorts.Next();
        GrpcPort = FreePorts.Next();
        HttpsPort = settings.HttpsOnly is null ? -1 : FreePorts.Next();
    }

    public string Datacenter => _settings.Datacenter;

    public string NodeName { get; }

    public string? MasterToken { get; }

    public int HttpPort { get; }

    public int DnsPort { get; }

    public int SerfLanPort { get; }

    public int SerfWanPort { get; }

    public int ServerPort { get; }

    public int GrpcPort { get; }

    /// <summary>The HTTPS port, or -1 when HTTPS is off.</summary>
    public int HttpsPort { get; }

    public string LogPath { get; }

    public Uri HttpAddress => new($"http://127.0.0.1:{HttpPort}");

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public static async Task<ConsulAgent> StartAsync(ConsulAgentSettings settings)
    {
        var agent = new ConsulAgent(settings);
        agent.WriteConfig();
        try
        {
            await agent.StartProcessAsync().ConfigureAwait(false);
        }
        catch
        {
            await agent.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return agent;
    }

    /// <summary>A client for this agent (the master token on an ACL agent unless another token is given).</summary>
    /// <remarks>MaxConnections stays at its default (8), as a gateway would run: the catalog watch must fit in it.</remarks>
    public ConsulClient CreateClient(string? token = null, HttpMessageHandler? handler = null, string? datacenter = null) =>
        new(new ConsulClientOptions
        {
            Address = HttpAddress,
            Token = token ?? MasterToken,
            Handler = handler,
            Datacenter = datacenter,
            RequestTimeout = TimeSpan.FromSeconds(20),
            EnvironmentVariables = static _ => null,
        });

    /// <summary>A raw HTTP client for set-up calls the adapter does not offer (ACLs, TTL checks, config writes).</summary>
    public HttpClient CreateRawClient(string? token = null)
    {
        var http = new HttpClient { BaseAddress = HttpAddress, Timeout = TimeSpan.FromSeconds(30) };
        if ((token ?? MasterToken) is { } t)
        {
            http.DefaultRequestHeaders.Add("X-Consul-Token", t);
        }

        return http;
    }

    /// <summary>PUTs a JSON document (as text) and returns the JSON answer.</summary>
    public async Task<JsonNode?> PutJsonAsync(string path, string json, string? token = null)
    {
        using HttpClient http = CreateRawClient(token);
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await http.PutAsync(path, content).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT {path} → {(int)response.StatusCode}: {text}");
        }

        return text.Length == 0 ? null : JsonNode.Parse(text);
    }

    public async Task<JsonNode?> GetJsonAsync(string path, string? token = null)
    {
        using HttpClient http = CreateRawClient(token);
        string text = await http.GetStringAsync(path).ConfigureAwait(false);
        return JsonNode.Parse(text);
    }

    /// <summary>Kills the agent (by PID) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        Process? process = _process;
        _process = null;
        if (process is not null)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            finally
            {
                process.Dispose();
            }
        }

        lock (_logGate)
        {
            _log?.Dispose();
            _log = null;
        }
    }

    /// <summary>Starts the agent again on the same ports and configuration (dev mode: with empty state).</summary>
    public Task RestartAsync() => StartProcessAsync();

    /// <summary>Starts a <see cref="ConsulAgentSettings.Persistent"/> agent again on a new, empty data dir (a rebuilt server: new Raft history, lower indexes).</summary>
    public Task RestartWithNewDataDirAsync()
    {
        _dataGeneration++;
        return StartProcessAsync();
    }

    public string LogTail(int lines = 40)
    {
        lock (_logGate)
        {
            _log?.Flush();
        }

        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            string[] all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        lock (s_live)
        {
            s_live.Remove(this);
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Keep the folder (and its log) if the OS still holds it.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private void WriteConfig()
    {
        var config = new JsonObject
        {
            ["datacenter"] = _settings.Datacenter,
            ["node_name"] = NodeName,
            ["data_dir"] = Path.Combine(_dir, "data"),
            ["disable_update_check"] = true,
            ["enable_central_service_config"] = true,
            ["primary_datacenter"] = _settings.PrimaryDatacenter ?? _settings.Datacenter,
            ["connect"] = new JsonObject { ["enabled"] = true },
            ["ports"] = new JsonObject
            {
                ["http"] = _settings.HttpsOnly is null ? HttpPort : -1,
                ["https"] = HttpsPort,
                ["dns"] = DnsPort,
                ["serf_lan"] = SerfLanPort,
                ["serf_wan"] = SerfWanPort,
                ["server"] = ServerPort,
                ["grpc"] = GrpcPort,
            },
        };
        if (_settings.Persistent)
        {
            // As fast as -dev at electing itself and at anti-entropy.
            config["performance"] = new JsonObject { ["raft_multiplier"] = 1 };
        }

        if (_settings.JoinWanSerfPort is { } wan)
        {
            config["retry_join_wan"] = new JsonArray($"127.0.0.1:{wan}");
            config["retry_interval_wan"] = "1s";
        }

        if (_settings.Acl)
        {
            config["acl"] = new JsonObject
            {
                ["enabled"] = true,
                ["default_policy"] = "deny",
                ["enable_token_persistence"] = false,
                ["tokens"] = new JsonObject { ["master"] = MasterToken },
            };
        }

        if (_settings.HttpsOnly is { } tls)
        {
            config["verify_incoming"] = true;
            config["verify_outgoing"] = true;
            config["ca_file"] = tls.CaFile;
            config["cert_file"] = tls.ServerCertificateFile;
            config["key_file"] = tls.ServerKeyFile;
        }

        if (_settings.UnixSocket is { } socket)
        {
            config["addresses"] = new JsonObject { ["http"] = "unix://" + socket };
        }

        foreach (KeyValuePair<string, JsonNode?> extra in _settings.ExtraConfig ?? [])
        {
            config[extra.Key] = extra.Value?.DeepClone();
        }

        File.WriteAllText(_configPath, config.ToJsonString());
    }

    private async Task StartProcessAsync()
    {
        if (Interlocked.Exchange(ref s_hooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += static (_, _) => KillAll();
        }

        var psi = new ProcessStartInfo(ConsulBinary.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir,
        };
        string[] mode = _settings.Persistent
            ? ["-server", "-bootstrap-expect=1", "-data-dir", Path.Combine(_dir, "data" + _dataGeneration)]
            : ["-dev"];
        foreach (string arg in (string[])["agent", .. mode, "-bind", "127.0.0.1", "-client", "127.0.0.1", "-config-file", _configPath])
        {
            psi.ArgumentList.Add(arg);
        }

        lock (_logGate)
        {
            _log = new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }

        // Completed by the output reader when the dev server logs that it won its election, so start-up awaits the
        // event instead of polling /v1/status/leader (the HTTP server is already listening by then).
        var leader = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => OnOutput(e.Data, leader);
        process.ErrorDataReceived += (_, e) => OnOutput(e.Data, leader);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {ConsulBinary.Path}.");
        }

        _process = process;
        lock (s_live)
        {
            if (!s_live.Contains(this))
            {
                s_live.Add(this);
            }
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await WaitForLeaderAsync(process, leader.Task).ConfigureAwait(false);
    }

    private void OnOutput(string? line, TaskCompletionSource leader)
    {
        // Consul 1.8 logs "agent.server: cluster leadership acquired" then "agent.server: New leader elected".
        if (line is not null && (line.Contains("cluster leadership acquired", StringComparison.Ordinal) || line.Contains("New leader elected", StringComparison.Ordinal)))
        {
            leader.TrySetResult();
        }

        WriteLog(line);
    }

    private void WriteLog(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logGate)
        {
            _log?.WriteLine(line);
        }
    }

    private async Task WaitForLeaderAsync(Process process, Task leaderLogged)
    {
        Task exited = process.WaitForExitAsync();
        Task first = await Task.WhenAny(leaderLogged, exited, Task.Delay(TimeSpan.FromSeconds(90))).ConfigureAwait(false);
        if (first == exited || process.HasExited)
        {
            throw new InvalidOperationException($"consul agent ({Datacenter}) exited with {process.ExitCode} during start-up. Log {LogPath}:\n{LogTail()}");
        }

        if (first != leaderLogged)
        {
            throw new TimeoutException($"consul agent ({Datacenter}) elected no leader within 90 s. Log {LogPath}:\n{LogTail()}");
        }

        if (_settings.HttpsOnly is not null || _settings.UnixSocket is not null)
        {
            // No plain-TCP HTTP listener to confirm on: the tests' first request confirms through the client under test.
            return;
        }

        // Confirmation over HTTP: the log line follows raft's leader state, which /v1/status/leader reports.
        using var http = new HttpClient { BaseAddress = HttpAddress, Timeout = TimeSpan.FromSeconds(30) };
        string reported = await http.GetStringAsync("/v1/status/leader").ConfigureAwait(false);
        if (reported.Trim().Trim('"').Length == 0)
        {
            throw new InvalidOperationException($"consul agent ({Datacenter}) logged a leader but /v1/status/leader is empty. Log {LogPath}:\n{LogTail()}");
        }
    }

    private static void KillAll()
    {
        ConsulAgent[] live;
        lock (s_live)
        {
            live = [.. s_live];
        }

        foreach (ConsulAgent agent in live)
        {
            try
            {
                agent._process?.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}
