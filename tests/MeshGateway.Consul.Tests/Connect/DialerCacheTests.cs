using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Model;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Connect;

[CollectionDefinition("consul-dialer-cache")]
public sealed class DialerCacheGroup : ICollectionFixture<SingleDatacenterFixture>;

/// <summary>
/// The dialer reads the mode inputs, the local catalog and the gateways from its catalog watcher: after warm-up a dial to
/// a local upstream asks the agent nothing, and a config change reaches the next dial once the watcher has read it.
/// </summary>
[Collection("consul-dialer-cache")]
public sealed class DialerCacheTests(SingleDatacenterFixture fixture, ITestOutputHelper output)
{
    private const int Dials = 50;

    [Fact]
    public async Task DialAsync_LocalUpstreamAfterWarmUp_MakesNoAgentRequestPerDial()
    {
        var counter = new DialRequestCounter { InnerHandler = new SocketsHttpHandler() };
        using ConsulClient client = fixture.Agent.CreateClient(handler: counter);
        await using TestTlsServer server = await NativeServiceAsync(client, "count-api");
        await fixture.Agent.PutJsonAsync("/v1/agent/service/register", """{"ID": "count-web", "Name": "count-web", "Port": 9, "Connect": {"Native": true}}""");
        await using var dialer = new ConsulConnectDialer(client, new ConsulConnectDialerOptions { Service = "count-web" });
        await dialer.StartAsync();
        await ViewWaiter.WaitForAsync(dialer.CatalogWatcher!, v => v.Services.ContainsKey("count-api"), "count-api in the dialer's view");
        var upstream = new ConnectUpstream { Name = "count-api" };
        await using (await dialer.DialAsync(upstream))
        {
            // Warm-up: JIT and first-use costs.
        }

        var setups = new List<double>();
        using (counter.Count())
        {
            for (int i = 0; i < Dials; i++)
            {
                await using ConsulConnectConnection connection = await dialer.DialAsync(upstream);
                Assert.Equal((UpstreamDialKind.TargetInstances, server.Port), (connection.Path.DialKind, connection.Path.Endpoint!.Port));
                setups.Add(connection.Path.SetupTime.TotalMilliseconds);
            }
        }

        setups.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Dials} dials to a local upstream: set-up median {setups[Dials / 2]:0.00} ms, p90 {setups[Dials * 9 / 10]:0.00} ms, min {setups[0]:0.00} ms; " +
            $"agent requests made by the dials: {counter.Counted} ({string.Join(", ", counter.Paths.Distinct())})"));
        Assert.Equal(0, counter.Counted);
    }

    [Fact]
    public async Task DialAsync_ServiceDefaultsChanged_NextDialAfterTheWatcherReadItUsesTheNewMode()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        await using TestTlsServer server = await NativeServiceAsync(client, "mode-api");
        await fixture.Agent.PutJsonAsync("/v1/agent/service/register", """{"ID": "mode-web", "Name": "mode-web", "Port": 9, "Connect": {"Native": true}}""");
        await using var dialer = new ConsulConnectDialer(client, new ConsulConnectDialerOptions { Service = "mode-web" });
        await dialer.StartAsync();
        await ViewWaiter.WaitForAsync(dialer.CatalogWatcher!, v => v.Services.ContainsKey("mode-api"), "mode-api in the dialer's view");
        var upstream = new ConnectUpstream { Name = "mode-api" };
        MeshGatewayModeResolution before;
        await using (ConsulConnectConnection first = await dialer.DialAsync(upstream))
        {
            before = first.Path.Resolution;
        }

        await fixture.Agent.PutJsonAsync("/v1/config", """{"Kind": "service-defaults", "Name": "mode-web", "Protocol": "tcp", "MeshGateway": {"Mode": "remote"}}""");
        await ConsulWait.ConfigReadAsync(dialer.CatalogWatcher!, c => c.ServiceDefaults.TryGetValue("mode-web", out ConsulServiceDefaults? web) && web.MeshGateway?.Mode == "remote", "service-defaults mode-web mode remote");
        await using ConsulConnectConnection next = await dialer.DialAsync(upstream);

        Assert.Equal(MeshGatewayModeLevel.BuiltInDefault, before.DecidedBy);
        Assert.Equal((MeshGatewayModeLevel.ServiceDefaults, MeshGatewayModeKind.Remote), (next.Path.Resolution.DecidedBy, next.Path.Resolution.Mode.Kind));
        Assert.Equal(UpstreamDialKind.TargetInstances, next.Path.DialKind);   // same datacenter: the mode is resolved but not applied
    }

    /// <summary>Registers a Connect-native service and serves TLS with the leaf the agent issues for it.</summary>
    private async Task<TestTlsServer> NativeServiceAsync(ConsulClient client, string name)
    {
        ConsulLeafCertificate leaf = (await client.GetLeafCertificateAsync(name)).Value;
        using X509Certificate2 pem = X509Certificate2.CreateFromPem(leaf.CertPEM, leaf.PrivateKeyPEM);
        var server = new TestTlsServer(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
        await fixture.Agent.PutJsonAsync("/v1/agent/service/register",
            $$$"""{"ID": "{{{name}}}", "Name": "{{{name}}}", "Address": "127.0.0.1", "Port": {{{server.Port}}}, "Connect": {"Native": true}}""");
        return server;
    }
}

/// <summary>Counts the agent requests made in the execution context of a <see cref="Count"/> scope (the dials), not those of background loops started before.</summary>
internal sealed class DialRequestCounter : DelegatingHandler
{
    private readonly AsyncLocal<bool> _counting = new();
    private int _counted;

    public int Counted => Volatile.Read(ref _counted);

    public System.Collections.Concurrent.ConcurrentQueue<string> Paths { get; } = new();

    public IDisposable Count()
    {
        _counting.Value = true;
        return new Scope(_counting);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (_counting.Value)
        {
            Interlocked.Increment(ref _counted);
            Paths.Enqueue(request.RequestUri!.AbsolutePath);
        }

        return base.SendAsync(request, cancellationToken);
    }

    private sealed class Scope(AsyncLocal<bool> counting) : IDisposable
    {
        public void Dispose() => counting.Value = false;
    }
}
