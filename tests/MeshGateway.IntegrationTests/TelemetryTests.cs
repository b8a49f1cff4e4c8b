using System.Net;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>
/// Each connection event reaches all three of the gateway's telemetry sinks (<see cref="GatewayCounters"/>, the
/// <c>MeshGateway</c> meter and the <see cref="GatewayObserver"/>) through its one telemetry object, and an observer that
/// throws on every call is counted and changes nothing else.
/// </summary>
public sealed class TelemetryTests
{
    private const string Name = "web.default.dc1.internal.td.consul";

    private static async Task<byte[]> SendAndReadToEndAsync(IPEndPoint gateway, byte[] bytes)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(gateway).WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync(bytes);
        client.Shutdown(SocketShutdown.Send);
        try
        {
            return await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (SocketException)
        {
            // A rejection may reset: nothing was relayed.
            return [];
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EveryEvent_ReachesCountersMetricsAndObserver_ThrowingObserverCountedAndHarmless(bool observerThrows)
    {
        using var deadPort = new DeadPort();
        IPEndPoint dead = deadPort.EndPoint;
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("live", hello);

        // The healthy endpoint refuses, so the connection fails once, then picks the unhealthy one in panic mode.
        var cluster = new UpstreamCluster(Name, [new UpstreamEndpoint(dead), new UpstreamEndpoint(backend.EndPoint, isHealthy: false)]);
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var observer = new CountingObserver(observerThrows);
        using var meters = new TestMeterFactory();
        await using var listener = new GatewayListener(options, new RouteTableSource(RouteTable.Create([new Route(Name, cluster)])), observer, meters);
        listener.Start();
        IPEndPoint gateway = listener.LocalEndPoints[0];

        Assert.Empty(await SendAndReadToEndAsync(gateway, "GET / HTTP/1.1\r\n\r\n"u8.ToArray()));
        Assert.Empty(await SendAndReadToEndAsync(gateway, TestHello.Create("unknown.default.dc1.internal.td.consul")));
        Assert.Equal("live"u8.ToArray(), await SendAndReadToEndAsync(gateway, hello));
        await listener.WhenActiveConnectionsAtMostAsync(0).WaitAsync(TimeSpan.FromSeconds(60));
        GatewayStopResult stopped = await listener.StopAsync(TimeSpan.FromSeconds(5)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, stopped.Cut);

        GatewayCounters counters = listener.Counters;
        string listenerTag = $"meshgateway.listener={gateway}";

        // Accepted: counters and meter.
        Assert.Equal(3, counters.Accepted);
        Assert.Equal(3, meters.Sum("meshgateway.connections.accepted"));
        Assert.Equal(3, meters.Sum($"meshgateway.connections.accepted|{listenerTag}"));

        // Rejected, by reason: counters, meter and one observer call each.
        Assert.Equal(1, counters.GetRejected(RejectionReason.NotTls));
        Assert.Equal(1, counters.GetRejected(RejectionReason.NoRoute));
        Assert.Equal(2, counters.Rejected);
        Assert.Equal(1, meters.Sum("meshgateway.connections.rejected|error.type=not_tls"));
        Assert.Equal(1, meters.Sum("meshgateway.connections.rejected|error.type=no_route"));
        Assert.Equal(["NotTls:", "NoRoute:unknown.default.dc1.internal.td.consul"], observer.Rejections);

        // Connect failure and the panic choice after it.
        Assert.Equal(1, counters.UpstreamConnectFailures);
        Assert.Equal(1, meters.Sum("meshgateway.upstream.connect_failures|error.type=connection_refused"));
        Assert.Equal([$"{dead}:{Name}:1"], observer.ConnectFailures);
        Assert.Equal(1, counters.PanicSelections);
        Assert.Equal(1, meters.Sum("meshgateway.upstream.panic_selections"));

        // Routed, then closed: the access-log record and the duration and bytes measured (hello included).
        Assert.Equal(1, counters.Routed);
        Assert.Equal(1, meters.Sum("meshgateway.connections.routed|meshgateway.route.kind=exact"));
        Assert.Equal(1, meters.Sum("meshgateway.connection.duration|count"));
        Assert.Equal(hello.Length, meters.Sum("meshgateway.bytes|meshgateway.direction=upstream"));
        Assert.Equal(4, meters.Sum("meshgateway.bytes|meshgateway.direction=downstream"));
        Assert.Equal([$"{Name}:{backend.EndPoint}:{hello.Length}:4"], observer.Closed);
        Assert.Contains(Assert.Single(observer.CloseReasons), new[] { SpliceCloseReason.ClientClosed, SpliceCloseReason.UpstreamClosed });

        // Opened and ended: the up-down counter is back at zero after three opens.
        Assert.Equal(0, meters.Sum("meshgateway.connections.active"));
        Assert.Equal(1, observer.Stopped);

        // Every observer call that threw was counted, and nothing else was: 2 rejections + 1 connect failure + 1 close + stop.
        Assert.Equal(5, observer.Calls);
        Assert.Equal(observerThrows ? 5 : 0, counters.ObserverErrors);
    }

    /// <summary>Records every call (and then throws, when asked to: an observer breaking its no-throw contract).</summary>
    private sealed class CountingObserver(bool throws) : GatewayObserver
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _rejections = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _connectFailures = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _closed = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<SpliceCloseReason> _closeReasons = new();
        private int _calls;
        private int _stopped;

        public IReadOnlyCollection<string> Rejections => _rejections;

        public IReadOnlyCollection<string> ConnectFailures => _connectFailures;

        public IReadOnlyCollection<string> Closed => _closed;

        /// <summary>Both sides half-close: whichever FIN came first is the reason.</summary>
        public IReadOnlyCollection<SpliceCloseReason> CloseReasons => _closeReasons;

        public int Calls => Volatile.Read(ref _calls);

        public int Stopped => Volatile.Read(ref _stopped);

        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection)
        {
            _rejections.Enqueue($"{rejection.Reason}:{Encoding.ASCII.GetString(rejection.ServerName)}");
            Called();
        }

        public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure)
        {
            _connectFailures.Enqueue($"{failure.UpstreamEndPoint}:{failure.Route.Pattern}:{failure.Attempt}");
            Called();
        }

        public override void OnConnectionClosed(in ConnectionClosedEvent connection)
        {
            _closed.Enqueue($"{Encoding.ASCII.GetString(connection.ServerName)}:{connection.UpstreamEndPoint}:{connection.BytesFromClient}:{connection.BytesFromUpstream}");
            _closeReasons.Enqueue(connection.CloseReason);
            Called();
        }

        public override void OnStopped(GatewayStopResult result)
        {
            Interlocked.Increment(ref _stopped);
            Called();
        }

        private void Called()
        {
            Interlocked.Increment(ref _calls);
            if (throws)
            {
                throw new NotSupportedException("observer bug");
            }
        }
    }
}
