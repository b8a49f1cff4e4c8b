using System.Net;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Http;

public sealed class AgentConnectionTests
{
    private const string Secret = "9f0c6a3e-1b2d-4c5e-8f7a-0b1c2d3e4f5a";

    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;

    private static ConsulAgentConnection Resolve(ConsulClientOptions options)
    {
        options.Validate();
        return ConsulAgentConnection.Resolve(options);
    }

    [Theory]
    [InlineData("127.0.0.1:8500", false, "http://127.0.0.1:8500/")]
    [InlineData("127.0.0.1:8501", true, "https://127.0.0.1:8501/")]
    [InlineData("http://consul.local:8500", false, "http://consul.local:8500/")]
    [InlineData("http://consul.local:8500", true, "https://consul.local:8500/")] // api.go: never revert to http once TLS is asked for
    [InlineData("https://10.0.0.1:8501", false, "https://10.0.0.1:8501/")]
    [InlineData("https://10.0.0.1:8501/consul", false, "https://10.0.0.1:8501/consul")]
    [InlineData("unix:///var/run/consul.sock", false, "unix:///var/run/consul.sock")]
    public void ParseAddress_ConsulForms_AsGoApi(string text, bool ssl, string expected) =>
        Assert.Equal(expected, ConsulClientOptions.ParseAddress(text, ssl).AbsoluteUri);

    [Theory]
    [InlineData("ftp://host:21", "unknown protocol scheme 'ftp'")]
    [InlineData("", "empty")]
    [InlineData("unix://", "no socket path")]
    public void ParseAddress_Invalid_ThrowsNamingTheProblem(string text, string expected)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => ConsulClientOptions.ParseAddress(text));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Address_WithCredentials_RejectedWithoutRepeatingThem()
    {
        ArgumentException parsed = Assert.Throws<ArgumentException>(() => ConsulClientOptions.ParseAddress("http://admin:hunter2@127.0.0.1:8500"));
        var options = new ConsulClientOptions { Address = new Uri("http://admin:hunter2@127.0.0.1:8500"), EnvironmentVariables = _ => null };
        ArgumentException validated = Assert.Throws<ArgumentException>(() => new ConsulClient(options));
        ArgumentException fromEnv = Assert.Throws<ArgumentException>(() => new ConsulClient(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_HTTP_ADDR", "https://admin:hunter2@10.0.0.1:8501")) }));

        foreach (string message in new[] { parsed.Message, validated.Message, fromEnv.Message, options.ToString() })
        {
            Assert.DoesNotContain("hunter2", message);
            Assert.DoesNotContain("admin", message);
        }

        Assert.Contains("credentials", parsed.Message);
        Assert.Contains("***@127.0.0.1:8500", options.ToString());
    }

    [Fact]
    public void Resolve_NothingSet_IsGoDefault()
    {
        ConsulAgentConnection c = Resolve(new ConsulClientOptions { EnvironmentVariables = _ => null });

        Assert.Equal("http://127.0.0.1:8500/", c.BaseAddress.AbsoluteUri);
        Assert.False(c.UseTls);
        Assert.Null(c.Token);
        Assert.True(c.VerifyServerCertificate);
    }

    [Fact]
    public void Resolve_EveryVariable_IsHonoured()
    {
        string tokenFile = Path.GetTempFileName();
        File.WriteAllText(tokenFile, "  file-token \n");
        try
        {
            ConsulAgentConnection c = Resolve(new ConsulClientOptions
            {
                EnvironmentVariables = Env(
                    ("CONSUL_HTTP_ADDR", "10.1.2.3:8501"),
                    ("CONSUL_HTTP_SSL", "T"),
                    ("CONSUL_HTTP_TOKEN", "env-token"),
                    ("CONSUL_HTTP_TOKEN_FILE", tokenFile),
                    ("CONSUL_CACERT", "/etc/consul/ca.pem"),
                    ("CONSUL_CAPATH", "/etc/consul/cas"),
                    ("CONSUL_CLIENT_CERT", "/etc/consul/client.pem"),
                    ("CONSUL_CLIENT_KEY", "/etc/consul/client-key.pem"),
                    ("CONSUL_TLS_SERVER_NAME", "server.dc1.consul:8501"),
                    ("CONSUL_HTTP_SSL_VERIFY", "0")),
            });

            Assert.Equal("https://10.1.2.3:8501/", c.BaseAddress.AbsoluteUri);
            Assert.True(c.UseTls);
            Assert.Equal("file-token", c.Token); // api.go NewClient: the token file wins over CONSUL_HTTP_TOKEN
            Assert.Equal("CONSUL_HTTP_TOKEN_FILE", c.TokenSource);
            Assert.Equal("/etc/consul/ca.pem", c.CaFile);
            Assert.Null(c.CaPath); // go-rootcerts: a CA file wins over a CA path
            Assert.Equal(("/etc/consul/client.pem", "/etc/consul/client-key.pem"), c.ClientCertificate);
            Assert.Equal("server.dc1.consul", c.TlsServerName); // SetupTLSConfig drops the port
            Assert.False(c.VerifyServerCertificate);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public void Resolve_EmptyEnvironmentTokenFile_FallsBackToTokenVariable()
    {
        string tokenFile = Path.GetTempFileName();
        try
        {
            ConsulAgentConnection c = Resolve(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_HTTP_TOKEN_FILE", tokenFile), ("CONSUL_HTTP_TOKEN", "env-token")) });

            Assert.Equal("env-token", c.Token);
            Assert.Equal("CONSUL_HTTP_TOKEN", c.TokenSource);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public void Resolve_OptionsWinOverVariables_GroupByGroup()
    {
        Func<string, string?> env = Env(
            ("CONSUL_HTTP_ADDR", "10.9.9.9:1"),
            ("CONSUL_HTTP_SSL", "false"),
            ("CONSUL_HTTP_TOKEN", "env-token"),
            ("CONSUL_CACERT", "/env/ca.pem"),
            ("CONSUL_CLIENT_CERT", "/env/c.pem"),
            ("CONSUL_CLIENT_KEY", "/env/k.pem"),
            ("CONSUL_TLS_SERVER_NAME", "env.name"),
            ("CONSUL_HTTP_SSL_VERIFY", "false"));

        ConsulAgentConnection c = Resolve(new ConsulClientOptions
        {
            Address = new Uri("http://127.0.0.1:8600"),
            UseHttps = true,
            Token = "option-token",
            CaPath = "/opt/cas",
            ClientCertificateFile = "/opt/c.pem",
            ClientKeyFile = "/opt/k.pem",
            TlsServerName = "opt.name",
            VerifyServerCertificate = true,
            EnvironmentVariables = env,
        });

        Assert.Equal("https://127.0.0.1:8600/", c.BaseAddress.AbsoluteUri);
        Assert.Equal("option-token", c.Token);
        Assert.Null(c.CaFile); // the CA group comes from the options: CONSUL_CACERT must not override the option's CaPath
        Assert.Equal("/opt/cas", c.CaPath);
        Assert.Equal(("/opt/c.pem", "/opt/k.pem"), c.ClientCertificate);
        Assert.Equal("opt.name", c.TlsServerName);
        Assert.True(c.VerifyServerCertificate);
    }

    [Fact]
    public void Resolve_UnixSocketAddress_UsesLocalhostRequestUri()
    {
        ConsulAgentConnection c = Resolve(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_HTTP_ADDR", "unix:///run/consul/http.sock")) });

        Assert.Equal("/run/consul/http.sock", c.UnixSocketPath);
        Assert.Equal("http://localhost/", c.BaseAddress.AbsoluteUri);
        Assert.Equal("unix:///run/consul/http.sock", c.Display);
    }

    [Theory]
    [InlineData("CONSUL_HTTP_SSL", "yes")]
    [InlineData("CONSUL_HTTP_SSL_VERIFY", "nope")]
    public void Resolve_UnparsableBoolean_ThrowsNamingTheVariable(string variable, string value)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => Resolve(new ConsulClientOptions { EnvironmentVariables = Env((variable, value)) }));

        Assert.Contains(variable, error.Message);
        Assert.Contains($"'{value}'", error.Message);
    }

    [Fact]
    public void Resolve_ClientCertificateWithoutKey_Throws()
    {
        ArgumentException fromEnv = Assert.Throws<ArgumentException>(() => Resolve(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_CLIENT_CERT", "/c.pem")) }));
        ArgumentException fromOptions = Assert.Throws<ArgumentException>(() => Resolve(new ConsulClientOptions { ClientKeyFile = "/k.pem", EnvironmentVariables = _ => null }));

        Assert.Contains("CONSUL_CLIENT_KEY", fromEnv.Message);
        Assert.Contains("ClientCertificateFile", fromOptions.Message);
    }

    [Fact]
    public void VerificationDisabled_IsFlaggedOnTheClient()
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("https://127.0.0.1:8501"), EnvironmentVariables = Env(("CONSUL_HTTP_SSL_VERIFY", "false")) });
        using var plain = new ConsulClient(new ConsulClientOptions { Address = new Uri("https://127.0.0.1:8501"), EnvironmentVariables = _ => null });

        Assert.True(client.ServerCertificateVerificationDisabled);
        Assert.Contains("TLS-VERIFICATION-DISABLED", client.ToString());
        Assert.False(plain.ServerCertificateVerificationDisabled);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(65)]
    [InlineData(-3)]
    public void MaxConnections_OutOfRange_ThrowsNamingOptionAndValue(int value)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => new ConsulClient(new ConsulClientOptions { MaxConnections = value, EnvironmentVariables = _ => null }));

        Assert.Equal("MaxConnections", error.ParamName);
        Assert.Contains($"MaxConnections is {value}", error.Message);
        Assert.Contains("between 2 and 64", error.Message);
    }

    [Theory]
    [InlineData(8, 200)]
    [InlineData(50, 200)]
    [InlineData(64, null)]
    [InlineData(64, 0)]
    public void ValidateAgainstAgentLimit_WithinAQuarter_Passes(int max, int? limit) => ConsulClientOptions.ValidateAgainstAgentLimit(max, limit);

    [Fact]
    public void ValidateAgainstAgentLimit_AboveAQuarter_ThrowsNamingBothNumbersOptionAndSetting()
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => ConsulClientOptions.ValidateAgainstAgentLimit(51, 200));

        Assert.Contains("MaxConnections is 51", error.Message);
        Assert.Contains("200", error.Message);
        Assert.Contains("limits.http_max_conns_per_client", error.Message);
        Assert.Contains("(50)", error.Message);
    }

    [Fact]
    public async Task AgentSelf_HttpMaxConnsPerClient_ReadFromDebugConfig()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, """{"Config":{"Datacenter":"dc1"},"DebugConfig":{"HTTPMaxConnsPerClient":120}}""");
        handler.Enqueue(HttpStatusCode.OK, """{"Config":{"Datacenter":"dc1"}}""");
        using var client = new ConsulClient(new ConsulClientOptions { Handler = handler, EnvironmentVariables = _ => null });

        Assert.Equal(120, await client.GetAgentHttpMaxConnsPerClientAsync());
        Assert.Null(await client.GetAgentHttpMaxConnsPerClientAsync());
    }

    [Fact]
    public async Task Token_NeverInUrlToStringOrMessages()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, "\"127.0.0.1:8300\"");
        handler.Enqueue(HttpStatusCode.InternalServerError, "boom");
        handler.EnqueueFailure(new HttpRequestException($"simulated failure quoting {Secret}"));
        var options = new ConsulClientOptions { Handler = handler, Token = Secret, EnvironmentVariables = _ => null };
        using var client = new ConsulClient(options);

        await client.GetLeaderAsync();
        ConsulHttpException status = await Assert.ThrowsAsync<ConsulHttpException>(() => client.GetLeaderAsync());
        ConsulTransportException transport = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        Assert.Equal(Secret, handler.Tokens[0]); // sent, as a header
        Assert.All(handler.Requests, uri => Assert.DoesNotContain(Secret, uri.ToString()));
        Assert.DoesNotContain(Secret, client.ToString());
        Assert.DoesNotContain(Secret, options.ToString());
        Assert.DoesNotContain(Secret, status.Message);
        Assert.DoesNotContain(Secret, transport.Message);
        Assert.Contains("(token)", transport.Message);
    }

    [Fact]
    public async Task Token_FromEnvironment_NotInConnectionFailureMessages()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now: connection refused
        using var client = new ConsulClient(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_HTTP_ADDR", $"127.0.0.1:{port}"), ("CONSUL_HTTP_TOKEN", Secret)) });

        ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        Assert.True(client.HasToken);
        Assert.Equal("CONSUL_HTTP_TOKEN", client.TokenSource);
        Assert.Contains($"127.0.0.1:{port}", error.Message);
        Assert.DoesNotContain(Secret, error.ToString());
        Assert.DoesNotContain(Secret, client.ToString());
    }

    [Fact]
    public void Token_WithHeaderBreakingCharacter_RejectedWithoutShowingIt()
    {
        const string bad = "abc\r\nX-Evil: 1";
        ArgumentException error = Assert.Throws<ArgumentException>(() => new ConsulClient(new ConsulClientOptions { EnvironmentVariables = Env(("CONSUL_HTTP_TOKEN", bad)) }));

        Assert.Contains("CONSUL_HTTP_TOKEN", error.Message);
        Assert.DoesNotContain("abc", error.Message);
    }

    [Fact]
    public async Task MaxConnections_BoundsConnectionsToTheAgent()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int accepted = 0;
        int seen = 0;
        var twoHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        async Task ServeAsync(TcpClient tcp)
        {
            using (tcp)
            {
                NetworkStream stream = tcp.GetStream();
                var buffer = new byte[4096];
                for (int requests = 0; requests < 64; requests++)
                {
                    var head = new StringBuilder();
                    while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        int n = await stream.ReadAsync(buffer, stop.Token);
                        if (n == 0)
                        {
                            return;
                        }

                        head.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    if (Interlocked.Increment(ref seen) == 2)
                    {
                        twoHeld.TrySetResult();
                    }

                    await release.Task.WaitAsync(stop.Token);
                    await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n\"\""u8.ToArray(), stop.Token);
                }
            }
        }

        var servers = new List<Task>();
        Task acceptLoop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && accepted < 64)
            {
                TcpClient tcp = await listener.AcceptTcpClientAsync(stop.Token);
                Interlocked.Increment(ref accepted);
                lock (servers)
                {
                    servers.Add(ServeAsync(tcp));
                }
            }
        });
        using var client = new ConsulClient(new ConsulClientOptions
        {
            Address = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}"),
            MaxConnections = 2,
            EnvironmentVariables = _ => null,
        });

        Task<ConsulResponse<string>>[] calls = [.. Enumerable.Range(0, 10).Select(_ => client.GetLeaderAsync())];
        await twoHeld.Task.WaitAsync(TimeSpan.FromSeconds(30));
        release.TrySetResult();
        await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(30));
        listener.Stop();
        await stop.CancelAsync();

        Assert.Equal(2, Volatile.Read(ref accepted));
        Assert.Equal(10, Volatile.Read(ref seen));
        await Assert.ThrowsAnyAsync<Exception>(() => acceptLoop);
    }
}
