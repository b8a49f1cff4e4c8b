using MeshGateway.Routing;

namespace MeshGateway.Consul.Tests.Lifecycle;

/// <summary>Every disposable of the Consul package can be disposed twice, and concurrently, without throwing.</summary>
public sealed class DisposeTests
{
    private static ConsulClient DeadClient() => new(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") });

    [Fact]
    public async Task WatcherDisposeAsync_CalledTwiceAfterStart_DoesNotThrowAndCompletesViews()
    {
        using ConsulClient client = DeadClient();
        var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { Datacenter = "dc1" });
        await watcher.StartAsync();

        await watcher.DisposeAsync();
        await watcher.DisposeAsync();

        Assert.True(watcher.Views.Completion.IsCompleted);
    }

    [Fact]
    public async Task WatcherDisposeAsync_ConcurrentCalls_AllComplete()
    {
        using ConsulClient client = DeadClient();
        var watcher = new ConsulCatalogWatcher(client, new ConsulCatalogWatcherOptions { Datacenter = "dc1" });
        await watcher.StartAsync();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () => await watcher.DisposeAsync())));

        Assert.True(watcher.Views.Completion.IsCompleted);
    }

    [Fact]
    public async Task WatcherDisposeAsync_NeverStarted_TwiceDoesNotThrow()
    {
        using ConsulClient client = DeadClient();
        var watcher = new ConsulCatalogWatcher(client);

        await watcher.DisposeAsync();
        await watcher.DisposeAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watcher.WaitForFirstViewAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task RouteTableSourceDisposeAsync_CalledTwiceAndConcurrently_DoesNotThrowAndKeepsTable()
    {
        using ConsulClient client = DeadClient();
        var target = new RouteTableSource();
        RouteTable before = target.Current;
        var source = new ConsulRouteTableSource(client, target,
            new ConsulRouteTableSourceOptions { Watcher = new ConsulCatalogWatcherOptions { Datacenter = "dc1" }, StartupTimeout = TimeSpan.FromMilliseconds(50) });
        await Assert.ThrowsAsync<TimeoutException>(() => source.StartAsync());

        await Task.WhenAll(source.DisposeAsync().AsTask(), source.DisposeAsync().AsTask());
        await source.DisposeAsync();

        Assert.Same(before, target.Current);
        Assert.True(source.Watcher.Views.Completion.IsCompleted);
    }

    [Fact]
    public async Task RegistrarDisposeAsync_CalledTwice_DoesNotThrowAndStopStaysANoOp()
    {
        using ConsulClient client = DeadClient();
        var registrar = new ConsulGatewayRegistrar(client, new ConsulGatewayRegistrationOptions { LanAddress = "127.0.0.1", LanPort = 8443 });
        var errors = new List<Exception>();
        registrar.ErrorObserved = errors.Add;

        await registrar.DisposeAsync();
        await registrar.DisposeAsync();
        await registrar.StopAsync();

        Assert.Empty(errors);
        Assert.Equal(0, registrar.RegistrationCount);
    }
}
