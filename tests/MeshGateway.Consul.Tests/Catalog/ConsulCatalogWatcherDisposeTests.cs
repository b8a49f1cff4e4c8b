namespace MeshGateway.Consul.Tests.Catalog;

/// <summary><see cref="ConsulCatalogWatcher"/> can be disposed twice, and concurrently, without throwing (no agent needed: the client points at a closed port).</summary>
public sealed class ConsulCatalogWatcherDisposeTests
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
}
