using System.Net;
using System.Net.Sockets;
using MeshGateway.Testing;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Tls;

namespace MeshGateway.IntegrationTests;

public sealed class ListenerTests
{
    private const string Name = "web.default.dc1.internal.td.consul";

    [Fact]
    public async Task Start_NoObserverNoMeterFactory_RoutesAndCounts()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("web", hello);
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        options.EndPoints.Add(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        await using var listener = new GatewayListener(options, new RouteTableSource(RouteTable.Create([TestGateway.Route(Name, backend.EndPoint)])));
        listener.Start();
        Assert.Equal(2, listener.LocalEndPoints.Count);
        foreach (IPEndPoint endPoint in listener.LocalEndPoints)
        {
            Assert.NotEqual(0, endPoint.Port);
            using var client = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
            await client.SendAsync(hello);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal("web"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        }

        Assert.Equal(2, listener.Counters.Accepted);
        Assert.Equal(2, listener.Counters.Routed);
    }

    [Fact]
    public async Task Engine_EventLoopRequested_RunsWhereSupportedAndFallsBackToSocketsWithKernelPipes()
    {
        bool supported = OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.Arm64;
        var options = new GatewayListenerOptions { Engine = GatewayIoEngine.EventLoop };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await using (var listener = new GatewayListener(options, new RouteTableSource()))
        {
            Assert.Equal(GatewayIoEngine.Sockets, listener.Engine); // not started yet
            listener.Start();
            Assert.Equal(supported ? GatewayIoEngine.EventLoop : GatewayIoEngine.Sockets, listener.Engine);
        }

        var piped = new GatewayListenerOptions { Engine = GatewayIoEngine.EventLoop, Splice = new MeshGateway.Splicing.SpliceOptions { MaxKernelPipes = 4 } };
        piped.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await using var pipedListener = new GatewayListener(piped, new RouteTableSource());
        pipedListener.Start();
        Assert.Equal(GatewayIoEngine.Sockets, pipedListener.Engine);
    }

    [Fact]
    public void Options_EngineAndLoopThreads_Validated()
    {
        Assert.Equal(GatewayIoEngine.Sockets, new GatewayListenerOptions().Engine);
        Assert.Equal(1, new GatewayListenerOptions().EventLoopThreads);
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { Engine = (GatewayIoEngine)7 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { EventLoopThreads = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { EventLoopThreads = 65 });
        Assert.Equal(64, new GatewayListenerOptions { EventLoopThreads = 64 }.EventLoopThreads);
    }

    [Fact]
    public void Options_EventLoopBulkPause_DefaultsTo100MicrosecondsAndIsBounded()
    {
        Assert.Equal(TimeSpan.FromMicroseconds(100), new GatewayListenerOptions().EventLoopBulkPause);
        Assert.Equal(TimeSpan.Zero, new GatewayListenerOptions { EventLoopBulkPause = TimeSpan.Zero }.EventLoopBulkPause);
        Assert.Equal(TimeSpan.FromMilliseconds(1), new GatewayListenerOptions { EventLoopBulkPause = TimeSpan.FromMilliseconds(1) }.EventLoopBulkPause);
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { EventLoopBulkPause = TimeSpan.FromTicks(-1) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { EventLoopBulkPause = TimeSpan.FromMilliseconds(1) + TimeSpan.FromTicks(1) });
    }

    /// <summary>
    /// Bulk transfers (64 KiB writes, so the loop reads full buffers) make the loop pause before its next turn, which
    /// delays bytes and never loses or reorders them: several connections each send 4 MiB through the echo backend while
    /// reading it back, and every byte returns in order; with the pause off the loop never pauses.
    /// </summary>
    [Theory]
    [InlineData(50)]
    [InlineData(0)]
    public async Task EventLoop_BulkPause_BulkTransfersPauseAndKeepEveryByteInOrder(int pauseMicroseconds)
    {
        const int Size = 4 * 1024 * 1024, Chunk = 64 * 1024;
        long pauses = await EchoThroughEventLoopAsync(TimeSpan.FromMicroseconds(pauseMicroseconds), clients: 4, async (client, c) =>
        {
            byte[] sent = new byte[Size];
            new Random(c + 1).NextBytes(sent);
            Task send = Task.Run(async () =>
            {
                for (int offset = 0; offset < Size; offset += Chunk)
                {
                    await client.SendAsync(sent.AsMemory(offset, Chunk));
                }
            });
            byte[] echo = new byte[Size];
            await RawBackend.ReadExactlyAsync(client, echo);
            await send;
            Assert.True(sent.AsSpan().SequenceEqual(echo), $"Connection {c}: the echo differs from what was sent.");
        });
        if (pauseMicroseconds > 0)
        {
            Assert.True(pauses > 0, "The loop never paused after a bulk read.");
        }
        else
        {
            Assert.Equal(0, pauses);
        }
    }

    /// <summary>
    /// Connections that carry only small messages (request and response under 16 KiB, as keep-alive traffic) never make
    /// the loop pause, so their latency is untouched by the bulk pause.
    /// </summary>
    [Fact]
    public async Task EventLoop_BulkPause_SmallMessagesNeverPause()
    {
        const int Messages = 50, Size = 700;
        long pauses = await EchoThroughEventLoopAsync(TimeSpan.FromMilliseconds(1), clients: 16, async (client, c) =>
        {
            byte[] sent = new byte[Size], echo = new byte[Size];
            for (int m = 0; m < Messages; m++)
            {
                for (int b = 0; b < Size; b++)
                {
                    sent[b] = (byte)((c * 31) + (m * 7) + b);
                }

                await client.SendAsync(sent);
                await RawBackend.ReadExactlyAsync(client, echo);
                Assert.Equal(sent, echo);
            }
        });
        Assert.Equal(0, pauses);
    }

    /// <summary>
    /// Runs <paramref name="exchange"/> on <paramref name="clients"/> connections at once through an event-loop gateway
    /// with the given bulk pause in front of the echo backend; once every connection ended, the loop's bulk pauses.
    /// </summary>
    private static async Task<long> EchoThroughEventLoopAsync(TimeSpan bulkPause, int clients, Func<Socket, int, Task> exchange)
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start(
            [TestGateway.Route(Name, backend.EndPoint)],
            () => new GatewayListenerOptions { Engine = GatewayIoEngine.EventLoop, EventLoopBulkPause = bulkPause });
        Assert.Equal(GatewayIoEngine.EventLoop, gateway.Listener.Engine);
        var sockets = new Socket[clients];
        try
        {
            for (int i = 0; i < clients; i++)
            {
                sockets[i] = await gateway.ConnectAsync();
                await sockets[i].SendAsync(hello);
            }

            // All connections talk at once, so turns carry events of several of them.
            await Task.WhenAll(sockets.Select(exchange)).WaitAsync(TimeSpan.FromSeconds(120));
        }
        finally
        {
            foreach (Socket? socket in sockets)
            {
                socket?.Dispose();
            }
        }

        await gateway.Listener.WhenActiveConnectionsAtMostAsync(0).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(clients, gateway.Listener.Counters.Routed);
        return gateway.Listener.EventLoopBulkPauses;
    }

    /// <summary>Several event loops share the listening socket: every connection is served, by whichever loop woke.</summary>
    [Fact]
    public async Task EventLoop_FourLoops_ServeConcurrentConnectionsAndStopCleanly()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], () => new GatewayListenerOptions { Engine = GatewayIoEngine.EventLoop, EventLoopThreads = 4 });
        const int Clients = 64;
        var clients = new Socket[Clients];
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                clients[i] = await gateway.ConnectAsync();
                await clients[i].SendAsync(hello);
            }

            for (int i = 0; i < Clients; i++)
            {
                // Each connection is spliced: a byte sent comes back through the echo backend.
                await clients[i].SendAsync(new[] { (byte)i });
                byte[] echo = new byte[1];
                await RawBackend.ReadExactlyAsync(clients[i], echo).WaitAsync(TimeSpan.FromSeconds(60));
                Assert.Equal((byte)i, echo[0]);
            }

            Assert.Equal(Clients, gateway.Listener.ActiveConnections);
            Assert.Equal(Clients, (await gateway.Listener.OpenSocketsAsync()).Count);
        }
        finally
        {
            foreach (Socket? client in clients)
            {
                client?.Dispose();
            }
        }

        await gateway.Listener.WhenActiveConnectionsAtMostAsync(0).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Clients, gateway.Listener.Counters.Routed);
        GatewayStopResult stopped = await gateway.Listener.StopAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, stopped.Cut);
    }

    [Fact]
    public async Task WhenActiveConnectionsAtMostAsync_ConnectionsEnd_CompletesAtEachBoundAndNotBefore()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        Assert.True(gateway.Listener.WhenActiveConnectionsAtMostAsync(0).IsCompletedSuccessfully);
        Assert.Throws<ArgumentOutOfRangeException>(() => { _ = gateway.Listener.WhenActiveConnectionsAtMostAsync(-1); });

        using Socket first = await gateway.ConnectAsync();
        using Socket second = await gateway.ConnectAsync();
        foreach (Socket socket in new[] { first, second })
        {
            // An echoed byte proves the connection is spliced, so it is counted as active.
            await socket.SendAsync(hello);
            await socket.SendAsync("x"u8.ToArray());
            await RawBackend.ReadExactlyAsync(socket, new byte[1]).WaitAsync(TimeSpan.FromSeconds(60));
        }

        Assert.Equal(2, gateway.Listener.ActiveConnections);
        Task atMostOne = gateway.Listener.WhenActiveConnectionsAtMostAsync(1);
        Task idle = gateway.Listener.WhenActiveConnectionsAtMostAsync(0);
        using var cancelled = new CancellationTokenSource();
        Task abandoned = gateway.Listener.WhenActiveConnectionsAtMostAsync(0, cancelled.Token);
        Assert.False(atMostOne.IsCompleted);
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned.WaitAsync(TimeSpan.FromSeconds(30)));

        first.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(first).WaitAsync(TimeSpan.FromSeconds(60));
        await atMostOne.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.False(idle.IsCompleted);
        Assert.Equal(1, gateway.Listener.ActiveConnections);

        second.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(second).WaitAsync(TimeSpan.FromSeconds(60));
        await idle.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, gateway.Listener.ActiveConnections);
    }

    [Fact]
    public async Task Metrics_RoutedConnection_RecordsHelloAndConnectionDurations()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Named("web", hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);
        using (Socket client = await gateway.ConnectAsync())
        {
            await client.SendAsync(hello);
            client.Shutdown(SocketShutdown.Send);
            await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60));
        }

        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.hello.duration|count"));
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.connection.duration|count"));
        Assert.Equal(1, gateway.Meters.Sum("meshgateway.connections.accepted"));
        await gateway.WaitIdleAsync();
        Assert.Equal(0, gateway.Meters.Sum("meshgateway.connections.active"));
    }

    [Fact]
    public async Task Start_AddressInUse_ThrowsAndLeavesNothingBound()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen(1);
        using var free = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        free.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var freeEndPoint = (IPEndPoint)free.LocalEndPoint!;
        free.Close();

        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(freeEndPoint);
        options.EndPoints.Add((IPEndPoint)taken.LocalEndPoint!);
        await using var listener = new GatewayListener(options, new RouteTableSource());
        SocketException ex = Assert.Throws<SocketException>(listener.Start);
        Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
        Assert.Empty(listener.LocalEndPoints);

        // The first address was released again.
        using var again = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        again.Bind(freeEndPoint);
    }

    [Fact]
    public async Task Start_Twice_Throws()
    {
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await using var listener = new GatewayListener(options, new RouteTableSource());
        listener.Start();
        Assert.Throws<InvalidOperationException>(listener.Start);
    }

    [Fact]
    public void Constructor_InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentException>(() => new GatewayListener(new GatewayListenerOptions { Engine = TestEngine.Current }, new RouteTableSource()));
        Assert.Throws<ArgumentNullException>(() => new GatewayListener(null!, new RouteTableSource()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { HelloTimeout = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { MaxHelloSize = 100 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize + 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new GatewayListenerOptions { MaxConnections = 0 });
        Assert.Equal(TimeSpan.FromSeconds(10), new GatewayListenerOptions { Engine = TestEngine.Current }.HelloTimeout);
        Assert.Equal(16 * 1024, new GatewayListenerOptions { Engine = TestEngine.Current }.MaxHelloSize);
    }

    [Fact]
    public async Task StopAsync_CalledTwice_ReturnsTheSameResult()
    {
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        await using var listener = new GatewayListener(options, new RouteTableSource());
        listener.Start();
        Task<GatewayStopResult> first = listener.StopAsync(TimeSpan.FromSeconds(1));
        Assert.Same(first, listener.StopAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(new GatewayStopResult(0, 0), await first.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
