using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.Tests.Routing;

/// <summary>Host-name endpoints: validation, selection while unresolved, and the background <see cref="HostNameRefresher"/>.</summary>
public sealed class HostNameEndpointTests
{
    private const string Sni = "web.default.dc1.internal.td.consul";

    [Fact]
    public void Constructor_HostName_KeyLowerCasedAndNoFixedAddress()
    {
        var endpoint = new UpstreamEndpoint("LB-1.Example.COM", 8443, weight: 3, isHealthy: false);
        Assert.Equal("lb-1.example.com", endpoint.HostName);
        Assert.Equal("lb-1.example.com:8443", endpoint.Key);
        Assert.Null(endpoint.EndPoint);
        Assert.Equal((8443, 3, false), (endpoint.Port, endpoint.Weight, endpoint.IsHealthy));
        Assert.Equal("10.0.0.1:443", new UpstreamEndpoint(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 443)).Key);
    }

    [Theory]
    [InlineData("10.0.0.1", "IP address")]
    [InlineData("::1", "IP address")]
    [InlineData("", "not a DNS host name")]
    [InlineData("a b.example", "not a DNS host name")]
    [InlineData("lb.example.", "not a DNS host name")]
    public void Constructor_BadHostName_ThrowsWithReason(string hostName, string reason)
    {
        ArgumentException ex = Assert.Throws<ArgumentException>(() => new UpstreamEndpoint(hostName, 443));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65536)]
    public void Constructor_BadPort_Throws(int port)
        => Assert.Throws<ArgumentOutOfRangeException>(() => new UpstreamEndpoint("lb.example", port));

    [Fact]
    public void Select_UnresolvedHostName_NeverChosenEvenInPanic()
    {
        var mixed = new UpstreamCluster("c", [new UpstreamEndpoint("lb.example", 443), new UpstreamEndpoint(new IPEndPoint(IPAddress.Loopback, 1), isHealthy: false)]);
        Assert.True(mixed.HasHostNames);
        Assert.Null(mixed.GetState(0).Address);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, mixed.Select([], 0, out bool panic));
            Assert.True(panic);
        }

        var only = new UpstreamCluster("c", [new UpstreamEndpoint("lb.example", 443)]);
        Assert.Equal(-1, only.Select([], 0, out _));
    }

    [Fact]
    public async Task RefreshAsync_Resolves_FirstIPv4AddressWithEachPort()
    {
        var resolver = new FakeResolver(_ => [IPAddress.IPv6Loopback, IPAddress.Parse("198.51.100.7"), IPAddress.Parse("198.51.100.8")]);
        var source = new RouteTableSource(Table(new UpstreamEndpoint("lb.example", 443), new UpstreamEndpoint("lb.example", 8443)));
        await using var refresher = new HostNameRefresher(source, new HostNameRefresherOptions { Resolver = resolver });
        await refresher.RefreshAsync();

        UpstreamCluster cluster = source.Current.Routes[0].Cluster;
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 443), cluster.GetState(0).Address);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 8443), cluster.GetState(1).Address);
        Assert.Equal(["lb.example"], resolver.Calls); // one lookup per name
        Assert.Equal((1, 0), (refresher.Resolutions, refresher.Failures));
        Assert.InRange(cluster.Select([], 0, out bool panic), 0, 1);
        Assert.False(panic);
    }

    [Fact]
    public async Task RefreshAsync_Failure_UnavailableCountedReportedThenRecovers_LaterFailureKeepsLastGoodAddress()
    {
        bool fail = true;
        var resolver = new FakeResolver(_ => fail ? throw new SocketException((int)SocketError.HostNotFound) : [IPAddress.Parse("203.0.113.5")]);
        var failures = new List<HostNameResolutionFailure>();
        var source = new RouteTableSource(Table(new UpstreamEndpoint("lb.example", 443)));
        await using var refresher = new HostNameRefresher(source, new HostNameRefresherOptions { Resolver = resolver }) { ResolutionFailed = failures.Add };
        EndpointState state = source.Current.Routes[0].Cluster.GetState(0);

        await refresher.RefreshAsync();
        await refresher.RefreshAsync();
        Assert.Null(state.Address);
        Assert.Equal(2, state.ResolutionFailures);
        Assert.Contains("HostNotFound", state.LastResolutionError, StringComparison.Ordinal);
        Assert.Equal([true, false], failures.Select(f => f.IsFirst));
        Assert.All(failures, f => Assert.Equal("lb.example", f.HostName));
        Assert.Equal(-1, source.Current.Routes[0].Cluster.Select([], 0, out _));

        fail = false;
        await refresher.RefreshAsync();
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 443), state.Address);
        Assert.Null(state.LastResolutionError);

        fail = true;
        await refresher.RefreshAsync();
        // A failed re-resolution keeps the last good address (Envoy LOGICAL_DNS), counted and reported.
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 443), state.Address);
        Assert.Contains("HostNotFound", state.LastResolutionError, StringComparison.Ordinal);
        Assert.Equal(0, source.Current.Routes[0].Cluster.Select([], 0, out _));
        Assert.True(failures[^1].IsFirst);
        Assert.Equal((1, 3), (refresher.Resolutions, refresher.Failures));
    }

    [Fact]
    public async Task RefreshAsync_NoAnswerInTime_FailsWithTimeout()
    {
        var time = new SignallingTimeProvider();
        var never = new TaskCompletionSource<IPAddress[]>();
        var resolver = new FakeResolver(_ => never.Task);
        var source = new RouteTableSource(Table(new UpstreamEndpoint("lb.example", 443)));
        await using var refresher = new HostNameRefresher(source, new HostNameRefresherOptions { Resolver = resolver, ResolveTimeout = TimeSpan.FromSeconds(2) }, time);
        Task armed = TimerArmed(time);
        Task pass = refresher.RefreshAsync();
        await armed.WaitAsync(TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(2));
        await pass.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("no answer within 2 s", source.Current.Routes[0].Cluster.GetState(0).LastResolutionError);
    }

    [Fact]
    public async Task Start_ResolvesNow_AgainEachInterval_NewNamesAtOnce_StopsOnDispose()
    {
        var time = new SignallingTimeProvider();
        int round = 0;
        var resolver = new FakeResolver(name => [IPAddress.Parse(name == "a.example" ? $"192.0.2.{++round}" : "192.0.2.200")]);
        var source = new RouteTableSource(Table(new UpstreamEndpoint("a.example", 443)));
        var refresher = new HostNameRefresher(source, new HostNameRefresherOptions { Resolver = resolver, RefreshInterval = TimeSpan.FromSeconds(10) }, time);
        try
        {
            Task armed = TimerArmed(time);
            refresher.Start();
            Assert.Equal("a.example", await resolver.NextCallAsync());
            await armed.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(IPAddress.Parse("192.0.2.1"), source.Current.Routes[0].Cluster.GetState(0).Address?.Address);

            // A swap resolves only the new name, at once; the known one keeps its address (its state carried over).
            armed = TimerArmed(time);
            source.Update(Table(new UpstreamEndpoint("a.example", 443), new UpstreamEndpoint("b.example", 443)));
            Assert.Equal("b.example", await resolver.NextCallAsync());
            await armed.WaitAsync(TimeSpan.FromSeconds(30));
            UpstreamCluster cluster = source.Current.Routes[0].Cluster;
            Assert.Equal(IPAddress.Parse("192.0.2.1"), cluster.GetState(0).Address?.Address);
            Assert.Equal(IPAddress.Parse("192.0.2.200"), cluster.GetState(1).Address?.Address);

            // The interval passes: every name is resolved again.
            armed = TimerArmed(time);
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(["a.example", "b.example"], new[] { await resolver.NextCallAsync(), await resolver.NextCallAsync() }.Order());
            await armed.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(IPAddress.Parse("192.0.2.2"), cluster.GetState(0).Address?.Address);
        }
        finally
        {
            await refresher.DisposeAsync();
        }

        Assert.Equal(0, time.ActiveTimers);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(4, resolver.Calls.Count);
        Assert.Throws<ObjectDisposedException>(refresher.Start);
    }

    private static RouteTable Table(params UpstreamEndpoint[] endpoints) => RouteTable.Create([new Route(Sni, new UpstreamCluster("web", endpoints))]);

    /// <summary>Completes when a timer of <paramref name="time"/> is armed (subscribe before the action that arms it).</summary>
    private static Task TimerArmed(SignallingTimeProvider time)
    {
        var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnChanged()
        {
            if (time.ActiveTimers > 0 && armed.TrySetResult())
            {
                time.TimerChanged -= OnChanged;
            }
        }

        time.TimerChanged += OnChanged;
        return armed.Task;
    }

    private sealed class FakeResolver(Func<string, Task<IPAddress[]>> answer) : IHostNameResolver
    {
        private readonly Channel<string> _calls = Channel.CreateUnbounded<string>();

        public FakeResolver(Func<string, IPAddress[]> answer)
            : this(name => Task.FromResult(answer(name)))
        {
        }

        public List<string> Calls { get; } = [];

        public Task<IPAddress[]> ResolveAsync(string hostName, CancellationToken cancellationToken)
        {
            lock (Calls)
            {
                Calls.Add(hostName);
            }

            _calls.Writer.TryWrite(hostName);
            return answer(hostName);
        }

        public async Task<string> NextCallAsync() => await _calls.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
    }
}
