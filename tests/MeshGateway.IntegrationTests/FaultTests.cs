using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>Bad input and failures end in a counted rejection or a clean teardown, never a hang, a crash or a dial.</summary>
public sealed class FaultTests
{
    private const string Name = "web.default.dc1.internal.td.consul";

    private static Task<TimerArmed> WhenTimerArmed(SignallingTimeProvider time)
    {
        var armed = new TaskCompletionSource<TimerArmed>(TaskCreationOptions.RunContinuationsAsynchronously);
        time.TimerChanged += () => armed.TrySetResult(default);
        return armed.Task;
    }

    private readonly struct TimerArmed;

    /// <summary>Reads until the gateway closes; returns whether it closed with a reset (otherwise a FIN).</summary>
    private static async Task<int> ReadUntilClosedAsync(Socket client, TestGateway? gateway = null)
    {
        byte[] buffer = new byte[1024];
        int total = 0;
        try
        {
            int n;
            while ((n = await client.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(60))) > 0)
            {
                total += n;
            }
        }
        catch (SocketException)
        {
            // A reset is a close too.
        }
        catch (TimeoutException ex) when (gateway is not null)
        {
            throw new TimeoutException($"The gateway did not close the connection within 60 s ({total} bytes read). {gateway.DescribeState()}", ex);
        }

        return total;
    }

    [Fact]
    public async Task Gateway_NotTls_ClosedAndCountedWithoutDial()
    {
        await using RawBackend backend = RawBackend.Named("web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync("GET / HTTP/1.1\r\nHost: web\r\n\r\n"u8.ToArray());
        Assert.Equal(0, await ReadUntilClosedAsync(client, gateway));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.NotTls, Assert.Single(gateway.Observer.Rejections).Reason);
        Assert.Equal(0, backend.Accepted);
    }

    [Fact]
    public async Task Gateway_ObserverThrowsOnRejection_ClientStillClosedAndConnectionEnded()
    {
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var routes = new RouteTableSource(RouteTable.Create([]));
        await using var listener = new GatewayListener(options, routes, new ThrowingObserver());
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoints[0]).WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync("GET / HTTP/1.1\r\nHost: web\r\n\r\n"u8.ToArray());

        // The observer breaks its no-throw contract; the gateway must still close the client rather than leave it open.
        Assert.Equal(0, await ReadUntilClosedAsync(client));
        Assert.Equal(1L, listener.Counters.Rejected);
    }

    [Fact]
    public async Task Gateway_ObserverThrowsOnLimitRejection_AcceptLoopKeepsRunning()
    {
        var options = new GatewayListenerOptions { MaxConnections = 1, Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var routes = new RouteTableSource(RouteTable.Create([]));
        await using var listener = new GatewayListener(options, routes, new ThrowingObserver());
        listener.Start();
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await holder.ConnectAsync(listener.LocalEndPoints[0]).WaitAsync(TimeSpan.FromSeconds(30)); // takes the only slot (no hello yet)

        // Each excess connection is rejected on the accept loop itself, where the observer throws; the loop must survive.
        for (int i = 1; i <= 3; i++)
        {
            using var excess = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await excess.ConnectAsync(listener.LocalEndPoints[0]).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(0, await ReadUntilClosedAsync(excess));
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
            }

            Assert.Equal(i, listener.Counters.GetRejected(RejectionReason.ConnectionLimit));
            Assert.Equal(i, listener.Counters.ObserverErrors);
        }
    }

    private sealed class ThrowingObserver : GatewayObserver
    {
        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection) => throw new NotSupportedException("observer bug");
    }

    [Fact]
    public async Task Gateway_ObserverThrowsOnEveryEvent_ConnectionStillSplicedAndStopCompletes()
    {
        using var deadPort = new DeadPort();
        IPEndPoint dead = deadPort.EndPoint;
        await using RawBackend backend = RawBackend.Named("live", TestHello.Create(Name));
        var cluster = new UpstreamCluster(Name, [new UpstreamEndpoint(dead), new UpstreamEndpoint(backend.EndPoint, isHealthy: false)]);
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var routes = new RouteTableSource(RouteTable.Create([new Route(Name, cluster)]));
        await using var listener = new GatewayListener(options, routes, new AlwaysThrowingObserver());
        listener.Start();

        // The connect failure (first endpoint refuses) and the access-log record both throw in the observer: the
        // connection still reaches the second endpoint, its bytes arrive, and the connection's accounting ends.
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoints[0]).WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync(TestHello.Create(Name));
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("live"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        await listener.WhenActiveConnectionsAtMostAsync(0).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, listener.Counters.UpstreamConnectFailures);
        Assert.Equal(2, listener.Counters.ObserverErrors);

        // OnStopped throws too: the stop still completes with its result.
        GatewayStopResult result = await listener.StopAsync(TimeSpan.FromSeconds(5)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, result.Cut);
        Assert.Equal(3, listener.Counters.ObserverErrors);
    }

    private sealed class AlwaysThrowingObserver : GatewayObserver
    {
        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection) => throw new NotSupportedException("observer bug");

        public override void OnConnectionClosed(in ConnectionClosedEvent connection) => throw new NotSupportedException("observer bug");

        public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure) => throw new NotSupportedException("observer bug");

        public override void OnStopped(GatewayStopResult result) => throw new NotSupportedException("observer bug");
    }

    [Fact]
    public async Task Gateway_TruncatedHelloThenSilence_ClosedAtHelloTimeoutWithoutDial()
    {
        var time = new SignallingTimeProvider();
        var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using RawBackend backend = RawBackend.Named("web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], timeProvider: time);

        // The connection's hello deadline counts from its accept on the clock (either engine): advance only after that.
        gateway.Listener.HelloDeadlineArmed = () => armed.TrySetResult();
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(TestHello.Create(Name).AsMemory(0, 20));
        await armed.Task.WaitAsync(TimeSpan.FromSeconds(30));

        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Empty(gateway.Observer.Rejections);
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(0, await ReadUntilClosedAsync(client, gateway));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.HelloTimeout, Assert.Single(gateway.Observer.Rejections).Reason);
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.connections.rejected|error.type=hello_timeout"));
        Assert.Equal(0, backend.Accepted);
    }

    [Theory]
    [InlineData(1024, 2000)]
    [InlineData(16 * 1024, 20_000)]
    public async Task Gateway_OversizedHello_ClosedAndCountedWithoutDial(int maxHelloSize, int padding)
    {
        await using RawBackend backend = RawBackend.Named("web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], () => new GatewayListenerOptions { MaxHelloSize = maxHelloSize });
        using Socket client = await gateway.ConnectAsync();
        try
        {
            await client.SendAsync(TestHello.Create(Name, padding));
        }
        catch (SocketException)
        {
            // The gateway may close before the client finished writing.
        }

        Assert.Equal(0, await ReadUntilClosedAsync(client, gateway));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.HelloTooLarge, Assert.Single(gateway.Observer.Rejections).Reason);
        Assert.Equal(0, backend.Accepted);
    }

    [Fact]
    public async Task Gateway_HelloOneBytePerWrite_RoutedAndReplayedExactly()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("web", hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        using Socket client = await gateway.ConnectAsync();
        for (int i = 0; i < hello.Length; i++)
        {
            await client.SendAsync(hello.AsMemory(i, 1));
            if (i % 16 == 0)
            {
                await Task.Yield();
            }
        }

        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("web"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(1, gateway.Listener.Counters.Routed);
    }

    [Fact]
    public async Task Gateway_OnlyHealthyEndpointDown_RetriesOnTheOtherInPanicMode()
    {
        using var deadPort = new DeadPort();
        IPEndPoint dead = deadPort.EndPoint;
        await using RawBackend backend = RawBackend.Named("live", TestHello.Create(Name));
        var cluster = new UpstreamCluster(Name, [new UpstreamEndpoint(dead), new UpstreamEndpoint(backend.EndPoint, isHealthy: false)]);
        await using TestGateway gateway = TestGateway.Start([new Route(Name, cluster)]);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(TestHello.Create(Name));
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal("live"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(dead, Assert.Single(gateway.Observer.ConnectFailures).Upstream);
        Assert.Equal(1, gateway.Listener.Counters.UpstreamConnectFailures);
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.upstream.connect_failures|error.type=connection_refused"));
        Assert.Equal(1, gateway.Listener.Counters.PanicSelections);

        // One failure is not an outlier (Envoy's default: 5 in a row), so the endpoint is counted, not ejected.
        Assert.Equal(1, cluster.GetState(0).ConsecutiveFailures);
        Assert.False(cluster.IsEjected(0, TimeProvider.System));
    }

    [Fact]
    public async Task Gateway_OneOfTwoEndpointsDown_EveryConnectionServedAndDeadOneEjected()
    {
        using var deadPort = new DeadPort();
        IPEndPoint dead = deadPort.EndPoint;
        await using RawBackend backend = RawBackend.Named("live");
        var cluster = new UpstreamCluster(Name, [new UpstreamEndpoint(dead, weight: 100), new UpstreamEndpoint(backend.EndPoint)]);
        await using TestGateway gateway = TestGateway.Start([new Route(Name, cluster)]);
        for (int i = 0; i < 20; i++)
        {
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(TestHello.Create(Name));
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal("live"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        }

        // The dead endpoint fails at most 5 times in a row (every connection retried on the live one): then it is ejected for 30 s.
        Assert.InRange(gateway.Listener.Counters.UpstreamConnectFailures, 0, OutlierDetection.DefaultConsecutiveFailures);
        Assert.Equal(gateway.Listener.Counters.UpstreamConnectFailures == OutlierDetection.DefaultConsecutiveFailures, cluster.IsEjected(0, TimeProvider.System));
        Assert.Equal(20, backend.Accepted);
        Assert.Equal(0, gateway.Listener.Counters.PanicSelections);
    }

    [Fact]
    public async Task Gateway_AllEndpointsDown_RejectedAsUnreachable()
    {
        using var dead1 = new DeadPort();
        using var dead2 = new DeadPort();
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, dead1.EndPoint, dead2.EndPoint)]);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(TestHello.Create(Name));
        Assert.Equal(0, await ReadUntilClosedAsync(client, gateway));
        await gateway.Observer.WaitForEventsAsync(1);
        var rejection = Assert.Single(gateway.Observer.Rejections);
        Assert.Equal(RejectionReason.UpstreamUnreachable, rejection.Reason);
        Assert.Equal(Name, rejection.ServerName);
        Assert.Equal(2, gateway.Listener.Counters.UpstreamConnectFailures);
    }

    [Fact]
    public async Task Gateway_RouteWithEmptyCluster_RejectedAsNoEndpoint()
    {
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name)]);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(TestHello.Create(Name));
        Assert.Equal(0, await ReadUntilClosedAsync(client, gateway));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.NoEndpoint, Assert.Single(gateway.Observer.Rejections).Reason);
    }

    [Fact]
    public async Task Gateway_ConnectionLimitReached_ExcessClosedAtOnceAndCounted()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], () => new GatewayListenerOptions { MaxConnections = 2 });
        using Socket first = await gateway.ConnectAsync();
        using Socket second = await gateway.ConnectAsync();
        foreach (Socket socket in new[] { first, second })
        {
            await socket.SendAsync(hello);
            await socket.SendAsync("1"u8.ToArray());
            await RawBackend.ReadExactlyAsync(socket, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));
        }

        // The excess connection is reset at once: the client sees it at connect or at its first read.
        try
        {
            using Socket third = await gateway.ConnectAsync();
            Assert.Equal(0, await ReadUntilClosedAsync(third, gateway));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        Assert.Equal(1, gateway.Listener.Counters.GetRejected(RejectionReason.ConnectionLimit));
        first.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(first).WaitAsync(TimeSpan.FromSeconds(60));
        first.Dispose();
        await gateway.WaitActiveAtMostAsync(1);

        using Socket fourth = await gateway.ConnectAsync();
        await fourth.SendAsync(hello);
        await fourth.SendAsync("4"u8.ToArray());
        byte[] echo = new byte[1];
        await RawBackend.ReadExactlyAsync(fourth, echo).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("4"u8.ToArray(), echo);
    }

    [Fact]
    public async Task StopAsync_OpenConnectionFinishesDuringDrain_CountedAsDrained()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        await using (gateway)
        {
            IPEndPoint endPoint = gateway.EndPoint;
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(hello);
            await client.SendAsync("a"u8.ToArray());
            await RawBackend.ReadExactlyAsync(client, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));

            Task<GatewayStopResult> stop = gateway.Listener.StopAsync(TimeSpan.FromMinutes(2));
            // The spliced connection still works during the drain, then ends cleanly.
            await client.SendAsync("b"u8.ToArray());
            byte[] echo = new byte[1];
            await RawBackend.ReadExactlyAsync(client, echo).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("b"u8.ToArray(), echo);
            Assert.False(stop.IsCompleted);
            client.Shutdown(SocketShutdown.Send);
            await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60));
            GatewayStopResult result = await stop.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(new GatewayStopResult(1, 0), result);

            // Accepting stopped: the address refuses connections.
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            SocketException refused = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
    }

    [Fact]
    public async Task StopAsync_ConnectionOutlivesDrainDeadline_CutWithReset()
    {
        var time = new SignallingTimeProvider();
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], timeProvider: time);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(hello);
        await client.SendAsync("a"u8.ToArray());
        await RawBackend.ReadExactlyAsync(client, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));

        Task armed = WhenTimerArmed(time);
        Task<GatewayStopResult> stop = gateway.Listener.StopAsync(TimeSpan.FromSeconds(30));
        await armed.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(stop.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(30));
        GatewayStopResult result = await stop.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(new GatewayStopResult(0, 1), result);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(SpliceCloseReason.Aborted, Assert.Single(gateway.Observer.Closed).Reason);
        Assert.Equal(1, gateway.Listener.Counters.Cut);
    }
}
