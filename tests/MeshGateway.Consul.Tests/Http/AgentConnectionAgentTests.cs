using System.Net;
using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Http;

/// <summary>An HTTPS-only 1.8.7 agent with <c>verify_incoming</c>, certificates from <c>consul tls</c>.</summary>
public sealed class HttpsAgentFixture : IAsyncLifetime
{
    internal ConsulTlsMaterial Tls { get; private set; } = null!;

    internal ConsulAgent Agent { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Tls = await ConsulTlsMaterial.CreateAsync();
        Agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1") { HttpsOnly = Tls });
    }

    public async Task DisposeAsync()
    {
        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }

        Tls?.Dispose();
    }
}

public sealed class AgentConnectionAgentTests(HttpsAgentFixture fixture) : IClassFixture<HttpsAgentFixture>
{
    private static Func<string, string?> Env(Dictionary<string, string> values) => name => values.GetValueOrDefault(name);

    private ConsulClientOptions TlsOptions() => new()
    {
        Address = new Uri($"https://127.0.0.1:{fixture.Agent.HttpsPort}"),
        CaFile = fixture.Tls.CaFile,
        ClientCertificateFile = fixture.Tls.ClientCertificateFile,
        ClientKeyFile = fixture.Tls.ClientKeyFile,
        EnvironmentVariables = _ => null,
    };

    [Fact]
    public async Task HttpsAgent_CaFileAndClientCertificateOptions_ConnectOverHttp2AndReadLimit()
    {
        using var client = new ConsulClient(TlsOptions());

        string leader = (await client.GetLeaderAsync()).Value;
        int? limit = await client.GetAgentHttpMaxConnsPerClientAsync();

        Assert.Equal($"127.0.0.1:{fixture.Agent.ServerPort}", leader);
        Assert.Equal(HttpVersion.Version20, client.LastResponseVersion); // measured: Consul 1.8.7 negotiates h2 over TLS
        Assert.Equal(200, limit); // Consul's default limits.http_max_conns_per_client
        ConsulClientOptions.ValidateAgainstAgentLimit(client.Options.MaxConnections, limit);
    }

    [Fact]
    public async Task HttpsAgent_EnvironmentRoute_ConnectsWithSchemelessAddressSslCaAndClientCertificate()
    {
        var env = new Dictionary<string, string>
        {
            ["CONSUL_HTTP_ADDR"] = $"127.0.0.1:{fixture.Agent.HttpsPort}",
            ["CONSUL_HTTP_SSL"] = "true",
            ["CONSUL_CACERT"] = fixture.Tls.CaFile,
            ["CONSUL_CLIENT_CERT"] = fixture.Tls.ClientCertificateFile,
            ["CONSUL_CLIENT_KEY"] = fixture.Tls.ClientKeyFile,
            ["CONSUL_TLS_SERVER_NAME"] = "server.dc1.consul:8501",
        };
        using var client = new ConsulClient(new ConsulClientOptions { EnvironmentVariables = Env(env) });

        IReadOnlyList<string> dcs = (await client.GetDatacentersAsync()).Value;

        Assert.Equal(["dc1"], dcs);
        Assert.Equal($"https://127.0.0.1:{fixture.Agent.HttpsPort}/", client.Address);
        Assert.False(client.ServerCertificateVerificationDisabled);
    }

    [Fact]
    public async Task HttpsAgent_CaPathDirectory_IsTrusted()
    {
        string caDir = Directory.CreateTempSubdirectory("mg-capath-").FullName;
        try
        {
            File.Copy(fixture.Tls.CaFile, Path.Combine(caDir, "ca.pem"));
            var env = new Dictionary<string, string>
            {
                ["CONSUL_HTTP_ADDR"] = $"https://127.0.0.1:{fixture.Agent.HttpsPort}",
                ["CONSUL_CAPATH"] = caDir,
                ["CONSUL_CLIENT_CERT"] = fixture.Tls.ClientCertificateFile,
                ["CONSUL_CLIENT_KEY"] = fixture.Tls.ClientKeyFile,
            };
            using var client = new ConsulClient(new ConsulClientOptions { EnvironmentVariables = Env(env) });

            Assert.Equal(["dc1"], (await client.GetDatacentersAsync()).Value);
        }
        finally
        {
            Directory.Delete(caDir, recursive: true);
        }
    }

    [Fact]
    public async Task HttpsAgent_NoClientCertificate_FailsNamingTheRefusalAndTheOptionsThatFixIt()
    {
        ConsulClientOptions options = TlsOptions();
        options.ClientCertificateFile = null;
        options.ClientKeyFile = null;
        options.Token = "5bd0f0f5-2a4d-4a4e-9a8e-2c1b4a4f0c1d";
        using var client = new ConsulClient(options);

        ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        Assert.False(error.IsTimeout);
        Assert.Contains("no client certificate was presented", error.Message);
        Assert.Contains("verify_incoming", error.Message);
        Assert.Contains("ClientCertificateFile", error.Message);
        Assert.Contains("CONSUL_CLIENT_CERT", error.Message);
        Assert.DoesNotContain(options.Token, error.ToString());
    }

    [Fact]
    public async Task HttpsAgent_TlsServerNameNotInCertificate_IsRefused()
    {
        ConsulClientOptions options = TlsOptions();
        options.TlsServerName = "wrong.dc1.consul";
        using var client = new ConsulClient(options);

        await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());
    }

    [Fact]
    public async Task HttpsAgent_ConcurrentRequestsUnderTheBound_AllSucceed()
    {
        ConsulClientOptions options = TlsOptions();
        options.MaxConnections = 2;
        using var client = new ConsulClient(options);

        Task<ConsulResponse<string>>[] calls = [.. Enumerable.Range(0, 32).Select(_ => client.GetLeaderAsync())];
        ConsulResponse<string>[] answers = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(answers, a => Assert.Equal($"127.0.0.1:{fixture.Agent.ServerPort}", a.Value));
    }
}

public sealed class UnixSocketAgentTests
{
    [Fact]
    public async Task UnixSocketAgent_OptionAndEnvironmentAddress_Connect()
    {
        string socket = Path.Combine(Path.GetTempPath(), "mg-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1") { UnixSocket = socket });
        try
        {
            using var byOption = new ConsulClient(new ConsulClientOptions { Address = new Uri("unix://" + socket), EnvironmentVariables = _ => null });
            using var byEnv = new ConsulClient(new ConsulClientOptions { EnvironmentVariables = n => n == "CONSUL_HTTP_ADDR" ? "unix://" + socket : null });

            string leader = (await byOption.GetLeaderAsync()).Value;
            IReadOnlyList<string> dcs = (await byEnv.GetDatacentersAsync()).Value;

            Assert.Equal($"127.0.0.1:{agent.ServerPort}", leader);
            Assert.Equal(["dc1"], dcs);
            Assert.Equal("unix://" + socket, byEnv.Address);
            Assert.Equal(HttpVersion.Version11, byOption.LastResponseVersion);
        }
        finally
        {
            File.Delete(socket);
        }
    }

    [Fact]
    public async Task UnixSocket_Missing_FailsAsTransportNamingTheSocket()
    {
        string socket = Path.Combine(Path.GetTempPath(), "mg-missing-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("unix://" + socket), EnvironmentVariables = _ => null });

        ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        Assert.Contains("unix://" + socket, error.Message);
    }
}
