using System.Net.Sockets;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

public sealed class RoutesFileReloadTests
{
    private const string Sni = "api.default.dc2.internal.11111111-2222-3333-4444-555555555555.consul";

    [Fact]
    public async Task RoutesFile_Changed_NewConnectionsUseNewRoutesAndEstablishedOnesKeepFlowing()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend echo = RawBackend.Echo(hello);
        await using RawBackend second = RawBackend.Named("second", hello);
        using var directory = new TempDirectory();
        string path = directory.Write("routes.json", RoutesJson(echo));
        using IHost host = HostFixture.Build(g => g.UseRoutesFile(path));
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        RoutesFileWatcher watcher = ((OptionsRouteSource)runtime.RouteSource).Watcher!;
        using Socket established = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello);
        await HostFixture.EchoAsync(established, "first"u8.ToArray());
        long version = runtime.Routes.Version;

        Task<bool> reloaded = NextReload(watcher);
        // Write-then-rename, as deployment tools do: the watcher sees the rename into place.
        string temp = directory.Write("routes.json.tmp", RoutesJson(second));
        File.Move(temp, path, overwrite: true);
        Assert.True(await reloaded.WaitAsync(HostFixture.SafetyTimeout));

        Assert.True(runtime.Routes.Version > version);
        using (Socket fresh = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            Assert.Equal("second", await HostFixture.ReadNameAsync(fresh));
        }

        await HostFixture.EchoAsync(established, "still flowing after the swap"u8.ToArray());
        established.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(established).WaitAsync(HostFixture.SafetyTimeout);
        await host.StopAsync();
        Assert.Equal(0, runtime.Counters!.Cut);
    }

    [Fact]
    public async Task RoutesFile_ChangedToInvalid_KeepsTheLastGoodRoutes()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend echo = RawBackend.Echo(hello);
        using var directory = new TempDirectory();
        string path = directory.Write("routes.json", RoutesJson(echo));
        using IHost host = HostFixture.Build(g => g.UseRoutesFile(path));
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        RoutesFileWatcher watcher = ((OptionsRouteSource)runtime.RouteSource).Watcher!;
        long version = runtime.Routes.Version;

        Task<bool> reloaded = NextReload(watcher);
        await File.WriteAllTextAsync(path, """{"routes":[{"sni":"*.*.bad","endpoints":["127.0.0.1:1"]}]}""");
        Assert.False(await reloaded.WaitAsync(HostFixture.SafetyTimeout));

        Assert.Equal(version, runtime.Routes.Version);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "old routes"u8.ToArray());
        }

        await host.StopAsync();
    }

    private static string RoutesJson(RawBackend backend) => $$"""{"routes":[{"sni":"{{Sni}}","endpoints":["{{backend.EndPoint}}"]}]}""";

    private static Task<bool> NextReload(RoutesFileWatcher watcher)
    {
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(bool ok)
        {
            watcher.Reloaded -= Handler;
            done.TrySetResult(ok);
        }

        watcher.Reloaded += Handler;
        return done.Task;
    }
}
