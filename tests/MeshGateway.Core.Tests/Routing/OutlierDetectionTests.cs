using System.Net;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Tests.Routing;

/// <summary>Consecutive-failure ejection with Envoy's defaults (<see cref="OutlierDetection"/>), on fake time.</summary>
public sealed class OutlierDetectionTests
{
    private static UpstreamEndpoint Endpoint(int port) => new(new IPEndPoint(IPAddress.Loopback, port));

    private static UpstreamCluster Cluster(int endpoints, OutlierDetection? detection = null)
        => new("c", Enumerable.Range(1, endpoints).Select(Endpoint)) { OutlierDetection = detection ?? OutlierDetection.Default };

    private static bool Fail(UpstreamCluster cluster, int index, FakeTimeProvider time) => cluster.OnConnectFailed(index, time.GetTimestamp(), time.TimestampFrequency);

    private static void FailTimes(UpstreamCluster cluster, int index, FakeTimeProvider time, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Fail(cluster, index, time);
        }
    }

    [Fact]
    public void Defaults_AreEnvoys()
    {
        OutlierDetection d = OutlierDetection.Default;
        Assert.Equal(5, d.ConsecutiveFailures);
        Assert.Equal(TimeSpan.FromSeconds(30), d.BaseEjectionTime);
        Assert.Equal(TimeSpan.FromSeconds(300), d.MaxEjectionTime);
        Assert.Equal(10, d.MaxEjectionPercent);
        Assert.Equal(TimeSpan.FromSeconds(10), d.Interval);
        Assert.True(d.IsEnabled);
        Assert.False(OutlierDetection.Disabled.IsEnabled);
    }

    [Fact]
    public void OnConnectFailed_FourInARow_NotEjectedFifthEjects()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2);
        for (int i = 1; i < 5; i++)
        {
            Assert.False(Fail(cluster, 0, time));
            Assert.False(cluster.IsEjected(0, time));
            Assert.Equal(i, cluster.GetState(0).ConsecutiveFailures);
        }

        Assert.True(Fail(cluster, 0, time));
        Assert.True(cluster.IsEjected(0, time));
        EndpointState state = cluster.GetState(0);
        Assert.Equal(0, state.ConsecutiveFailures);
        Assert.Equal(5, state.ConnectFailures);
        Assert.Equal(1, state.Ejections);
    }

    [Fact]
    public void OnConnected_BetweenFailures_ResetsTheCount()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2);
        FailTimes(cluster, 0, time, 4);
        cluster.OnConnected(0).OnDisconnected();
        Assert.Equal(0, cluster.GetState(0).ConsecutiveFailures);
        FailTimes(cluster, 0, time, 4);
        Assert.False(cluster.IsEjected(0, time));
        Assert.Equal(8, cluster.GetState(0).ConnectFailures);
        Assert.True(Fail(cluster, 0, time));
    }

    [Fact]
    public void Eject_InARow_TimeGrowsWithCountUpToMax()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2, OutlierDetection.Default with { MaxEjectionTime = TimeSpan.FromSeconds(100) });

        // 30 s, 60 s, 90 s, then capped at 100 s: each ejection starts the moment the previous one ends (no healthy interval).
        foreach (int seconds in new[] { 30, 60, 90, 100, 100 })
        {
            FailTimes(cluster, 0, time, 5);
            Assert.True(cluster.IsEjected(0, time));
            time.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromTicks(1));
            Assert.True(cluster.IsEjected(0, time), $"ejection of {seconds} s ended early");
            time.Advance(TimeSpan.FromTicks(1));
            Assert.False(cluster.IsEjected(0, time), $"ejection of {seconds} s lasted longer");
        }

        Assert.Equal(5, cluster.GetState(0).Ejections);
    }

    [Fact]
    public void Eject_AfterHealthyIntervals_MultiplierDecays()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2);
        for (int i = 0; i < 3; i++)
        {
            FailTimes(cluster, 0, time, 5);
            time.Advance(TimeSpan.FromSeconds(30 * (i + 1)));
        }

        Assert.Equal(3, cluster.GetState(0).EjectionMultiplier);

        // Two whole 10 s intervals outside an ejection take the multiplier from 3 to 1, so the next ejection is the 2nd: 60 s.
        time.Advance(TimeSpan.FromSeconds(25));
        FailTimes(cluster, 0, time, 5);
        Assert.Equal(2, cluster.GetState(0).EjectionMultiplier);
        time.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.True(cluster.IsEjected(0, time));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.False(cluster.IsEjected(0, time));

        // A long healthy spell brings it back to the base time.
        time.Advance(TimeSpan.FromMinutes(10));
        FailTimes(cluster, 0, time, 5);
        Assert.Equal(1, cluster.GetState(0).EjectionMultiplier);
    }

    [Fact]
    public void Eject_TenPercentCap_AtLeastOneAndTenPercentOfTwenty()
    {
        var time = new FakeTimeProvider();

        // 3 endpoints: 10 % is 0.3, rounded down 0, but one may always be ejected.
        UpstreamCluster small = Cluster(3);
        FailTimes(small, 0, time, 5);
        FailTimes(small, 1, time, 5);
        Assert.True(small.IsEjected(0, time));
        Assert.False(small.IsEjected(1, time));
        Assert.Equal(5, small.GetState(1).ConsecutiveFailures);

        // Once the first ejection ends, the endpoint still failing is ejected at its next failure.
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.True(Fail(small, 1, time));
        Assert.False(small.IsEjected(0, time));

        // 20 endpoints: two at once.
        UpstreamCluster large = Cluster(20);
        for (int i = 0; i < 5; i++)
        {
            FailTimes(large, i, time, 5);
        }

        Assert.Equal([true, true, false, false, false], Enumerable.Range(0, 5).Select(i => large.IsEjected(i, time)));
    }

    [Fact]
    public void Eject_CapHundredPercent_EveryEndpointThenPanic()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2, OutlierDetection.Default with { MaxEjectionPercent = 100 });
        FailTimes(cluster, 0, time, 5);
        FailTimes(cluster, 1, time, 5);
        Assert.True(cluster.IsEjected(0, time) && cluster.IsEjected(1, time));
        Assert.InRange(cluster.Select([], time.GetTimestamp(), out bool panic), 0, 1);
        Assert.True(panic);
    }

    [Fact]
    public void Disabled_CountsButNeverEjects()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(2, OutlierDetection.Disabled);
        FailTimes(cluster, 0, time, 50);
        Assert.False(cluster.IsEjected(0, time));
        Assert.Equal(50, cluster.GetState(0).ConnectFailures);
        Assert.Equal(0, cluster.GetState(0).Ejections);
    }

    [Fact]
    public void Eject_StateSurvivesTableSwap_CountAndMultiplierCarryOver()
    {
        var time = new FakeTimeProvider();
        var source = new RouteTableSource(RouteTable.Create([new Route("a.td.consul", Cluster(2))]));
        FailTimes(source.Current.Routes[0].Cluster, 0, time, 3);
        source.Update(RouteTable.Create([new Route("a.td.consul", Cluster(2))]));
        UpstreamCluster cluster = source.Current.Routes[0].Cluster;
        Assert.Equal(3, cluster.GetState(0).ConsecutiveFailures);
        FailTimes(cluster, 0, time, 2);
        Assert.True(cluster.IsEjected(0, time));
    }

    [Fact]
    public void Select_WithCountersAndEjections_AllocatesNothing()
    {
        var time = new FakeTimeProvider();
        UpstreamCluster cluster = Cluster(8);
        FailTimes(cluster, 0, time, 5);
        ReadOnlySpan<int> exclude = [3];
        cluster.Select(exclude, time.GetTimestamp(), out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            cluster.Select(exclude, time.GetTimestamp(), out _);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Settings_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { ConsecutiveFailures = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { ConsecutiveFailures = 1001 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { BaseEjectionTime = TimeSpan.FromTicks(-1) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { MaxEjectionTime = TimeSpan.FromTicks(-1) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { MaxEjectionPercent = 101 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new OutlierDetection { Interval = TimeSpan.Zero });
    }
}
