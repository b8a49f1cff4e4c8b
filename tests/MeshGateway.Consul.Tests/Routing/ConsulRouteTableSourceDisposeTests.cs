using MeshGateway.Routing;

namespace MeshGateway.Consul.Tests.Routing;

/// <summary><see cref="ConsulRouteTableSource"/> can be disposed twice, and concurrently, without throwing (no agent needed: the client points at a closed port).</summary>
public sealed class ConsulRouteTableSourceDisposeTests
{
    private static ConsulClient DeadClient() => new(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") });

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
}
