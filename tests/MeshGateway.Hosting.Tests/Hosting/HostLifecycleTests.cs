using System.Net;
using System.Net.Sockets;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using MeshGateway.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshGateway.Tests.Hosting;

public sealed class HostLifecycleTests
{
    private const string Sni = "web.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul";

    [Fact]
    public async Task Host_WithStaticRoutesInCode_RoutesAndStopsCleanly()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))));

        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        Assert.True(runtime.IsReady);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "ping"u8.ToArray());
        }

        await host.StopAsync();
        Assert.Equal(1, runtime.Counters!.Routed);
        Assert.Equal(0, runtime.Counters.Cut);
        Assert.False(runtime.IsReady);
    }

    [Fact]
    public async Task Host_WithStaticRoutesInConfiguration_Routes()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(_ => { }, new()
        {
            ["MeshGateway:Routes:0:Sni"] = Sni,
            ["MeshGateway:Routes:0:Endpoints:0"] = backend.EndPoint.ToString(),
            ["MeshGateway:Routes:0:ConnectAttempts"] = "1",
        });

        await host.StartAsync();
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "pong"u8.ToArray());
        }

        Route route = Assert.Single(host.Services.GetRequiredService<MeshGatewayRuntime>().Routes.Current.Routes);
        Assert.Equal(1, route.Cluster.MaxConnectAttempts);
        await host.StopAsync();
    }

    [Fact]
    public async Task Host_EventLoopEngineInConfiguration_BindsAndRoutes()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(_ => { }, new()
        {
            ["MeshGateway:Engine"] = "EventLoop",
            ["MeshGateway:EventLoopThreads"] = "2",
            ["MeshGateway:EventLoopBulkPause"] = "00:00:00.00025",
            ["MeshGateway:Routes:0:Sni"] = Sni,
            ["MeshGateway:Routes:0:Endpoints:0"] = backend.EndPoint.ToString(),
        });

        MeshGatewayOptions options = host.Services.GetRequiredService<IOptions<MeshGatewayOptions>>().Value;
        Assert.Equal(MeshGateway.Gateway.GatewayIoEngine.EventLoop, options.Engine);
        Assert.Equal(2, options.EventLoopThreads);
        Assert.Equal(TimeSpan.FromMicroseconds(250), options.EventLoopBulkPause);
        await host.StartAsync();
        Assert.Equal(TimeSpan.FromMicroseconds(250), host.Services.GetRequiredService<MeshGatewayRuntime>().ListenerOptions!.EventLoopBulkPause);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "loop"u8.ToArray());
        }

        await host.StopAsync();
        Assert.Equal(1, host.Services.GetRequiredService<MeshGatewayRuntime>().Counters!.Routed);
    }

    [Fact]
    public async Task Host_WithRoutesFile_RoutesAndStopsCleanly()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using var directory = new TempDirectory();
        string path = directory.Write("routes.json", $$"""{"routes":[{"sni":"{{Sni}}","endpoints":["{{backend.EndPoint}}"]}]}""");
        using IHost host = HostFixture.Build(g => g.UseRoutesFile(path));

        await host.StartAsync();
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "ping"u8.ToArray());
        }

        await host.StopAsync();
    }

    [Fact]
    public async Task Start_MissingRoutesFile_FailsNamingTheFile()
    {
        using var directory = new TempDirectory();
        string path = Path.Combine(directory.Path, "missing.json");
        using IHost host = HostFixture.Build(g => g.UseRoutesFile(path));

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains("missing.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RoutesFile", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MeshGateway:HelloTimeout", "00:00:00", "HelloTimeout")]
    [InlineData("MeshGateway:Port", "70000", "Port")]
    [InlineData("MeshGateway:MaxHelloSize", "100", "MaxHelloSize")]
    [InlineData("MeshGateway:ConnectAttempts", "17", "ConnectAttempts")]
    [InlineData("MeshGateway:DrainTimeout", "-00:00:01", "DrainTimeout")]
    [InlineData("MeshGateway:Address", "not-an-ip", "Address")]
    [InlineData("MeshGateway:BindAddresses:extra", "10.0.0.1", "BindAddresses:extra")]
    [InlineData("MeshGateway:MaxConnectionDuration", "00:00:00.5", "MaxConnectionDuration")]
    [InlineData("MeshGateway:SplicePipes", "-1", "SplicePipes")]
    [InlineData("MeshGateway:EventLoopThreads", "0", "EventLoopThreads")]
    [InlineData("MeshGateway:EventLoopBulkPause", "00:00:00.002", "EventLoopBulkPause")]
    [InlineData("MeshGateway:Consul:Address", "ftp://consul:8500", "Consul:Address")]
    [InlineData("MeshGateway:Consul:Meta:consul-version", "1", "consul-version")]
    [InlineData("MeshGateway:Routes:0:Endpoints:0", "127.0.0.1", "Routes:0:Endpoints:0")]
    public async Task Start_InvalidOption_FailsNamingOptionAndValue(string key, string value, string expectedName)
    {
        var configuration = new Dictionary<string, string?> { [key] = value };
        if (key.StartsWith("MeshGateway:Routes:", StringComparison.Ordinal))
        {
            configuration["MeshGateway:Routes:0:Sni"] = Sni;
        }

        using IHost host = HostFixture.Build(_ => { }, configuration);

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(expectedName, ex.Message, StringComparison.Ordinal);
        Assert.Contains(expectedName == "consul-version" ? "consul-version" : value, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_InvalidOptionInCode_Fails()
    {
        using IHost host = HostFixture.Build(_ => { }, options: o => o.NoDefaultBind = true);

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("NoDefaultBind", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_EndpointInUse_FailsNamingTheListener()
    {
        using var occupier = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupier.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupier.Listen();
        int port = ((IPEndPoint)occupier.LocalEndPoint!).Port;
        using IHost host = HostFixture.Build(g => g.UseStaticRoutes([]), new()
        {
            ["MeshGateway:NoDefaultBind"] = "true",
            ["MeshGateway:BindAddresses:free"] = "127.0.0.1:0",
            ["MeshGateway:BindAddresses:taken"] = $"127.0.0.1:{port}",
        });

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains("'taken'", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_OpenConnectionFinishesDuringDrain_IsNotCut()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(
            g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))),
            new() { ["MeshGateway:DrainTimeout"] = "00:01:00" });
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        using Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello);
        await HostFixture.EchoAsync(client, "before stop"u8.ToArray());

        Task stopping = host.StopAsync();
        Assert.False(stopping.IsCompleted);
        await HostFixture.EchoAsync(client, "during drain"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(client).WaitAsync(HostFixture.SafetyTimeout);
        await stopping.WaitAsync(HostFixture.SafetyTimeout);

        Assert.Equal(0, runtime.Counters!.Cut);
        Assert.Equal(0, runtime.ActiveConnections);
    }

    [Fact]
    public async Task Stop_ConnectionOutlivesDrainTimeout_IsCut()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(
            g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))),
            new() { ["MeshGateway:DrainTimeout"] = "00:00:00.200" });
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        using Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello);
        await HostFixture.EchoAsync(client, "idle after this"u8.ToArray());

        await host.StopAsync().WaitAsync(HostFixture.SafetyTimeout);

        Assert.Equal(1, runtime.Counters!.Cut);
    }

    [Fact]
    public async Task ReadinessCheck_FollowsTheLifecycle()
    {
        using IHost host = HostFixture.Build(g => g.UseStaticRoutes([]).AddReadinessHealthCheck().AddReadinessHealthCheck());
        HealthCheckService health = host.Services.GetRequiredService<HealthCheckService>();

        HealthReport before = await health.CheckHealthAsync();
        await host.StartAsync();
        HealthReport running = await health.CheckHealthAsync();
        await host.StopAsync();
        HealthReport after = await health.CheckHealthAsync();

        Assert.Equal(HealthStatus.Unhealthy, before.Status);
        Assert.Equal(HealthStatus.Healthy, running.Status);
        Assert.Equal(HealthStatus.Unhealthy, after.Status);
        Assert.Single(running.Entries);
    }

    [Fact]
    public void AddMeshGateway_CalledTwice_RegistersEachServiceOnce()
    {
        var services = new ServiceCollection();
        services.AddMeshGateway();
        services.AddMeshGateway(o => o.Port = 0);

        Assert.Single(services, d => d.ServiceType == typeof(IHostedService));
        Assert.Single(services, d => d.ServiceType == typeof(MeshGatewayRuntime));
        Assert.Single(services, d => d.ServiceType == typeof(IMeshGatewayRouteSource));
        Assert.Equal(2, services.Count(d => d.ServiceType == typeof(IValidateOptions<MeshGatewayOptions>)));
    }

    [Fact]
    public void AddMeshGateway_SameSectionTwice_BindsRoutesOnce()
    {
        IConfiguration section = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Routes:0:Sni"] = Sni,
            ["Routes:0:Endpoints:0"] = "127.0.0.1:9",
        }).Build();
        var services = new ServiceCollection();
        services.AddMeshGateway(section);
        services.AddMeshGateway(section);
        using ServiceProvider provider = services.BuildServiceProvider();

        MeshGatewayOptions options = provider.GetRequiredService<IOptions<MeshGatewayOptions>>().Value;

        Assert.Single(options.Routes);
    }

    [Fact]
    public void Options_NoConfiguration_HaveTheDocumentedDefaults()
    {
        var services = new ServiceCollection();
        services.AddMeshGateway();
        using ServiceProvider provider = services.BuildServiceProvider();

        MeshGatewayOptions options = provider.GetRequiredService<IOptions<MeshGatewayOptions>>().Value;

        Assert.Equal("0.0.0.0", options.Address);
        Assert.Equal(8443, options.Port);
        Assert.Equal(TimeSpan.FromSeconds(10), options.HelloTimeout);
        Assert.Equal(16384, options.MaxHelloSize);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ConnectTimeout);
        Assert.Equal(3, options.ConnectAttempts);
        Assert.Equal(TimeSpan.FromHours(1), options.IdleTimeout);
        Assert.Null(options.MaxConnectionDuration);
        Assert.Equal(0, options.SplicePipes);
        Assert.Equal(MeshGateway.Gateway.GatewayIoEngine.Sockets, options.Engine);
        Assert.Equal(1, options.EventLoopThreads);
        Assert.Equal(TimeSpan.FromMicroseconds(100), options.EventLoopBulkPause);
        Assert.Equal(50_000, options.MaxConnections);
        Assert.Equal(TimeSpan.FromSeconds(25), options.DrainTimeout);
        Assert.Null(options.Consul.Address); // CONSUL_HTTP_ADDR, else 127.0.0.1:8500
        Assert.Equal(8, options.Consul.MaxConnections);
        Assert.Equal("mesh-gateway", options.Consul.ServiceName);
    }
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mg-hosting-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
