using MeshGateway.Routing;
using static MeshGateway.Consul.Tests.Routing.RouteTableBuilderTests;

namespace MeshGateway.Consul.Tests.Routing;

public sealed class RouteTableSourceUnitTests
{
    [Fact]
    public async Task Apply_FailedConversion_KeepsLastGoodTableAndReportsWhy()
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") });
        var target = new RouteTableSource();
        await using var source = new ConsulRouteTableSource(client, target);
        var seen = new List<ConsulRouteConversion>();
        source.Converted = seen.Add;

        source.Apply(View([Service("api", null, SubsetFilterTests.Instance("a1"))]));
        RouteTable good = target.Current;
        source.Apply(View() with { TrustDomain = string.Empty });

        Assert.Same(good, target.Current);
        Assert.Equal(1, target.Version);
        Assert.True(good.TryMatch($"api.default.dc1.internal.{Td}".AsSpan(), out _));
        Assert.Equal((1, 1), (source.PublishedCount, source.FailedCount));
        Assert.Contains("trust domain", source.LastError, StringComparison.Ordinal);
        Assert.Equal([true, false], seen.Select(c => c.Succeeded).ToArray());

        source.Apply(View([Service("web", null, SubsetFilterTests.Instance("w1"))]));
        Assert.Null(source.LastError);
        Assert.True(target.Current.TryMatch($"web.default.dc1.internal.{Td}".AsSpan(), out _));
        Assert.False(target.Current.TryMatch($"api.default.dc1.internal.{Td}".AsSpan(), out _));
    }

    [Fact]
    public async Task StartAsync_Twice_Throws()
    {
        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") });
        await using var source = new ConsulRouteTableSource(client, new RouteTableSource(),
            new ConsulRouteTableSourceOptions { Watcher = new ConsulCatalogWatcherOptions { Datacenter = "dc1" }, StartupTimeout = TimeSpan.FromMilliseconds(50) });

        await Assert.ThrowsAsync<TimeoutException>(() => source.StartAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => source.StartAsync());
    }
}
