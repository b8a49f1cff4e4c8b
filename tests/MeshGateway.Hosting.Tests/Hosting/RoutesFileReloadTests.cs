using System.Net.Sockets;
using System.Runtime.InteropServices;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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

        Task<RoutesFileReload> reloaded = NextReload(watcher);
        // Write-then-rename, as deployment tools do: the watcher sees the rename into place.
        string temp = directory.Write("routes.json.tmp", RoutesJson(second));
        File.Move(temp, path, overwrite: true);
        Assert.Equal(RoutesFileReload.Updated, await reloaded.WaitAsync(HostFixture.SafetyTimeout));

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

        Task<RoutesFileReload> reloaded = NextReload(watcher);
        await File.WriteAllTextAsync(path, """{"routes":[{"sni":"*.*.bad","endpoints":["127.0.0.1:1"]}]}""");
        Assert.Equal(RoutesFileReload.Failed, await reloaded.WaitAsync(HostFixture.SafetyTimeout));

        Assert.Equal(version, runtime.Routes.Version);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "old routes"u8.ToArray());
        }

        await host.StopAsync();
    }

    [Fact]
    public async Task RoutesFile_ConfigMapSymlinkSwap_NewConnectionsUseNewRoutes()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend first = RawBackend.Named("first", hello);
        await using RawBackend second = RawBackend.Named("second", hello);
        using var directory = new TempDirectory();
        var mount = new ConfigMapMount(directory.Path, "routes.json");
        mount.Publish(RoutesJson(first));
        using IHost host = HostFixture.Build(g => g.UseRoutesFile(mount.FilePath));
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        RoutesFileWatcher watcher = ((OptionsRouteSource)runtime.RouteSource).Watcher!;
        Assert.Equal("first", await RoundTripAsync(host, hello));

        // What the kubelet does on a ConfigMap update: a new timestamped directory, ..data renamed over atomically.
        Task<RoutesFileReload> reloaded = NextReload(watcher);
        // Nothing polls the file: only the directory's change notification can lead to this reload (how soon after the
        // swap is a timing claim, the debounce's 100 ms plus scheduling, and not asserted on a shared CI machine).
        mount.Publish(RoutesJson(second));
        Assert.Equal(RoutesFileReload.Updated, await reloaded.WaitAsync(HostFixture.SafetyTimeout));
        Assert.Equal("second", await RoundTripAsync(host, hello));
        await host.StopAsync();
    }

    [Fact]
    public async Task Watcher_UnrelatedChangeDeletionAndReturn_TableKeptDeletionLoggedOnce()
    {
        using var directory = new TempDirectory();
        var mount = new ConfigMapMount(directory.Path, "routes.json");
        mount.Publish("""{"routes":[{"sni":"a.example","endpoints":["127.0.0.1:1001"]}]}""");
        var routes = new RouteTableSource();
        var logger = new ListLogger();
        using var watcher = new RoutesFileWatcher(mount.FilePath, TimeSpan.FromSeconds(5), 3, OutlierDetection.Default, routes, logger, TimeProvider.System);
        watcher.Start();
        RouteTable loaded = routes.Current;
        Assert.Equal("a.example", Assert.Single(loaded.Routes).Pattern);

        // Another file in the directory: read, found identical, nothing published or logged.
        Task<RoutesFileReload> next = NextReload(watcher, includeUnchanged: true);
        directory.Write("unrelated.txt", "x");
        Assert.Equal(RoutesFileReload.Unchanged, await next.WaitAsync(HostFixture.SafetyTimeout));
        Assert.Same(loaded, routes.Current);

        // The key removed from the ConfigMap: the link is deleted. Logged once, table kept, also through later events.
        next = NextReload(watcher, includeUnchanged: true);
        File.Delete(mount.FilePath);
        Assert.Equal(RoutesFileReload.Missing, await next.WaitAsync(HostFixture.SafetyTimeout));
        next = NextReload(watcher, includeUnchanged: true);
        directory.Write("unrelated.txt", "y");
        Assert.Equal(RoutesFileReload.Missing, await next.WaitAsync(HostFixture.SafetyTimeout));
        Assert.Same(loaded, routes.Current);
        var missing = Assert.Single(logger.Entries, e => e.EventName == "RoutesFileMissing");
        Assert.Equal(LogLevel.Warning, missing.Level);
        Assert.Contains(mount.FilePath, missing.Message, StringComparison.Ordinal);

        // It comes back (through the symlink again) with other routes: loaded.
        next = NextReload(watcher);
        mount.Publish("""{"routes":[{"sni":"b.example","endpoints":["127.0.0.1:1002"]}]}""");
        Assert.Equal(RoutesFileReload.Updated, await next.WaitAsync(HostFixture.SafetyTimeout));
        Assert.Equal("b.example", Assert.Single(routes.Current.Routes).Pattern);
        Assert.Single(logger.Entries, e => e.EventName == "RoutesFileMissing");
    }

    [Fact]
    public void ResolveFully_ConfigMapChain_ReachesTheTimestampedFile()
    {
        using var directory = new TempDirectory();
        var mount = new ConfigMapMount(directory.Path, "routes.json");
        string first = mount.Publish("{}");
        Assert.Equal(first, RoutesFileWatcher.ResolveFully(mount.FilePath));
        string second = mount.Publish("{}");
        Assert.NotEqual(first, second);
        Assert.Equal(second, RoutesFileWatcher.ResolveFully(mount.FilePath));

        // A loop and a dangling link resolve to nothing.
        string loop = Path.Combine(directory.Path, "loop");
        File.CreateSymbolicLink(loop, loop);
        Assert.Null(RoutesFileWatcher.ResolveFully(loop));
        File.CreateSymbolicLink(Path.Combine(directory.Path, "dangling"), Path.Combine(directory.Path, "nowhere"));
        Assert.Null(RoutesFileWatcher.ResolveFully(Path.Combine(directory.Path, "dangling")));
    }

    private static async Task<string> RoundTripAsync(IHost host, byte[] hello)
    {
        using Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello);
        return await HostFixture.ReadNameAsync(client);
    }

    private static string RoutesJson(RawBackend backend) => $$"""{"routes":[{"sni":"{{Sni}}","endpoints":["{{backend.EndPoint}}"]}]}""";

    /// <summary>The next reload's outcome; by default the next one that was not <see cref="RoutesFileReload.Unchanged"/> (a write in the directory may reload before the change a test waits for).</summary>
    private static Task<RoutesFileReload> NextReload(RoutesFileWatcher watcher, bool includeUnchanged = false)
    {
        var done = new TaskCompletionSource<RoutesFileReload>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(RoutesFileReload outcome)
        {
            if (outcome == RoutesFileReload.Unchanged && !includeUnchanged)
            {
                return;
            }

            watcher.Reloaded -= Handler;
            done.TrySetResult(outcome);
        }

        watcher.Reloaded += Handler;
        return done.Task;
    }

    /// <summary>
    /// A directory laid out as the kubelet mounts a ConfigMap: <c>name → ..data/name</c>, <c>..data → ..&lt;n&gt;</c>;
    /// each <see cref="Publish"/> writes a new <c>..&lt;n&gt;</c> and renames a new <c>..data</c> link over the old one
    /// (rename(2) is atomic), then deletes the old directory.
    /// </summary>
    private sealed class ConfigMapMount(string directory, string name)
    {
        private int _generation;
        private string? _current;

        public string FilePath { get; } = Path.Combine(directory, name);

        /// <summary>Publishes <paramref name="content"/> and returns the real path of the new file.</summary>
        public string Publish(string content)
        {
            string generation = Path.Combine(directory, $"..2026_12_06_{++_generation:D2}");
            Directory.CreateDirectory(generation);
            File.WriteAllText(Path.Combine(generation, name), content);
            string temp = Path.Combine(directory, "..data_tmp");
            File.CreateSymbolicLink(temp, Path.GetFileName(generation));
            NativeMethods.Rename(temp, Path.Combine(directory, "..data"));
            if (!Path.Exists(FilePath) && new FileInfo(FilePath).LinkTarget is null)
            {
                File.CreateSymbolicLink(FilePath, Path.Combine("..data", name));
            }

            if (_current is not null)
            {
                Directory.Delete(_current, recursive: true);
            }

            _current = generation;
            return Path.Combine(generation, name);
        }
    }
}

/// <summary>rename(2): .NET's File.Move refuses a symbolic link to a directory, and the kubelet's swap is a plain rename.</summary>
internal static class NativeMethods
{
    public static void Rename(string from, string to)
    {
        if (rename(from, to) != 0)
        {
            throw new IOException($"rename('{from}', '{to}') failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int rename(string oldpath, string newpath);
}
