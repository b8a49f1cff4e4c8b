using System.Net;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Tests.Routing;

public sealed class UpstreamClusterTests
{
    private static UpstreamEndpoint Endpoint(int port, int weight = 1, bool healthy = true) => new(new IPEndPoint(IPAddress.Loopback, port), weight, healthy);

    [Fact]
    public void Select_EmptyCluster_ReturnsMinusOne()
    {
        var cluster = new UpstreamCluster("c", []);
        Assert.Equal(-1, cluster.Select([], 0, out bool panic));
        Assert.False(panic);
    }

    [Fact]
    public void Select_SomeUnhealthy_OnlyHealthyChosen()
    {
        var cluster = new UpstreamCluster("c", [Endpoint(1, healthy: false), Endpoint(2), Endpoint(3, healthy: false), Endpoint(4)]);
        for (int i = 0; i < 500; i++)
        {
            int index = cluster.Select([], 0, out bool panic);
            Assert.False(panic);
            Assert.Contains(index, new[] { 1, 3 });
        }
    }

    [Fact]
    public void Select_NoneHealthy_PanicsAcrossAll()
    {
        var cluster = new UpstreamCluster("c", [Endpoint(1, healthy: false), Endpoint(2, healthy: false)]);
        var seen = new HashSet<int>();
        for (int i = 0; i < 500; i++)
        {
            seen.Add(cluster.Select([], 0, out bool panic));
            Assert.True(panic);
        }

        Assert.Equal([0, 1], seen.Order());
    }

    [Fact]
    public void Select_Excluded_NeverChosen_AndAllExcludedReturnsMinusOne()
    {
        var cluster = new UpstreamCluster("c", [Endpoint(1), Endpoint(2), Endpoint(3)]);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(2, cluster.Select([0, 1], 0, out _));
        }

        Assert.Equal(-1, cluster.Select([0, 1, 2], 0, out _));
    }

    [Fact]
    public void Select_IdleEndpoints_FollowsWeights()
    {
        var cluster = new UpstreamCluster("c", [Endpoint(1, weight: 1), Endpoint(2, weight: 9)]);
        int heavy = 0;
        for (int i = 0; i < 10_000; i++)
        {
            heavy += cluster.Select([], 0, out _) == 1 ? 1 : 0;
        }

        // Expected 9,000; P2C with equal load keeps the weighted first draw. 8,500 is > 15 standard deviations away.
        Assert.InRange(heavy, 8_500, 9_500);
    }

    [Fact]
    public void Select_LoadedEndpoint_LeastConnectionsWins()
    {
        var cluster = new UpstreamCluster("c", [Endpoint(1), Endpoint(2)]);
        var held = new List<EndpointState>();
        for (int i = 0; i < 5; i++)
        {
            held.Add(cluster.OnConnected(0));
        }

        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, cluster.Select([], 0, out _));
        }

        Assert.Equal(5, cluster.GetActiveConnections(0));
        Assert.All(held, state => Assert.Same(cluster.GetState(0), state));
        foreach (EndpointState state in held)
        {
            state.OnDisconnected();
        }

        Assert.Equal(0, cluster.GetActiveConnections(0));
    }

    [Fact]
    public void OnConnectFailed_EjectsUntilCoolDownEnds()
    {
        var time = new FakeTimeProvider();
        var cluster = new UpstreamCluster("c", [Endpoint(1), Endpoint(2)]) { OutlierDetection = OutlierDetection.Default with { ConsecutiveFailures = 1 } };
        cluster.OnConnectFailed(0, time.GetTimestamp(), time.TimestampFrequency);
        Assert.True(cluster.IsEjected(0, time));
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, cluster.Select([], time.GetTimestamp(), out bool panic));
            Assert.False(panic);
        }

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.False(cluster.IsEjected(0, time));
        var seen = new HashSet<int>();
        for (int i = 0; i < 200; i++)
        {
            seen.Add(cluster.Select([], time.GetTimestamp(), out _));
        }

        Assert.Equal([0, 1], seen.Order());
    }

    [Fact]
    public void OnConnectFailed_EveryEndpointEjected_PanicUsesThemAnyway()
    {
        var time = new FakeTimeProvider();
        var cluster = new UpstreamCluster("c", [Endpoint(1)]) { OutlierDetection = OutlierDetection.Default with { ConsecutiveFailures = 1 } };
        cluster.OnConnectFailed(0, time.GetTimestamp(), time.TimestampFrequency);
        Assert.Equal(0, cluster.Select([], time.GetTimestamp(), out bool panic));
        Assert.True(panic);
    }

    [Fact]
    public void OnConnected_ClearsEjection()
    {
        var time = new FakeTimeProvider();
        var cluster = new UpstreamCluster("c", [Endpoint(1), Endpoint(2)]) { OutlierDetection = OutlierDetection.Default with { ConsecutiveFailures = 1 } };
        cluster.OnConnectFailed(0, time.GetTimestamp(), time.TimestampFrequency);
        Assert.True(cluster.IsEjected(0, time));
        cluster.OnConnected(0);
        Assert.False(cluster.IsEjected(0, time));
    }

    [Fact]
    public void Settings_Defaults_MatchConsulAndEnvoy()
    {
        var cluster = new UpstreamCluster("c", []);
        Assert.Equal(TimeSpan.FromMilliseconds(5000), cluster.ConnectTimeout);
        Assert.Equal(UpstreamCluster.DefaultMaxConnectAttempts, cluster.MaxConnectAttempts);
        Assert.Same(OutlierDetection.Default, cluster.OutlierDetection);
    }

    [Fact]
    public void Settings_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamCluster("c", []) { ConnectTimeout = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamCluster("c", []) { MaxConnectAttempts = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamCluster("c", []) { MaxConnectAttempts = 17 });
        Assert.Throws<ArgumentNullException>(() => new UpstreamCluster("c", []) { OutlierDetection = null! });
        Assert.Throws<ArgumentOutOfRangeException>(() => Endpoint(1, weight: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Endpoint(1, weight: 129));
        Assert.Throws<ArgumentOutOfRangeException>(() => Endpoint(0));
        Assert.Throws<ArgumentException>(() => new UpstreamCluster("", []));
    }
}
