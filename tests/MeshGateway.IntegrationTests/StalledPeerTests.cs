using System.Net.Sockets;
using System.Threading.Channels;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>A peer that leaves while the gateway is stuck sending toward the other (non-reading) side is noticed, not held until the idle timeout.</summary>
/// <remarks>
/// The gateway checks the source of a stalled send every <see cref="SocketSplice.StallCheckInterval"/> (250 ms); without
/// that watch both sockets would be held until the idle timeout (1 h). The tests wait <see cref="s_released"/> for the
/// release: far below the idle timeout, so they fail without the watch, and far above the check interval, so a loaded CI
/// machine (every test project starting at once on two cores) does not fail them. A 1 s bound did, once in CI. How fast
/// the release comes is a timing claim, not asserted here.
/// </remarks>
public sealed class StalledPeerTests
{
    private const string Name = "stalled.default.dc1.internal.td.consul";
    private static readonly TimeSpan s_step = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan s_released = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task ClientsResetWhileUpstreamStalled_BothSocketsReleasedBeforeTheIdleTimeout(Relay relay)
    {
        const int Clients = 20;
        byte[] hello = TestHello.Create(Name);
        var upstreams = Channel.CreateUnbounded<Socket>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new RawBackend(async socket =>
        {
            // Reads the hello, then never reads again and never sends: a stalled upstream.
            await RawBackend.ExpectHelloAsync(socket, hello);
            socket.ReceiveBufferSize = 4096;
            await upstreams.Writer.WriteAsync(socket);
            await done.Task;
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        var clients = new List<Socket>();
        var stalledUpstreams = new List<Socket>();
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                Socket client = await gateway.ConnectAsync();
                clients.Add(client);
                await client.SendAsync(hello);
                stalledUpstreams.Add(await WithStateOnTimeoutAsync(upstreams.Reader.ReadAsync().AsTask(), gateway, backend, $"client {i + 1} of {Clients}: its upstream connection"));

                // Every buffer between the client and the upstream is full: the gateway's send toward the upstream is pending.
                ResetPropagationTests.FillPath(client);
            }

            Assert.Equal(Clients, gateway.Listener.ActiveConnections);
            Assert.Empty(gateway.Observer.Closed);

            // The clients leave (reset). Nothing else happens on the upstream side.
            Task allClosed = gateway.Observer.WaitForEventsAsync(Clients);
            foreach (Socket client in clients)
            {
                client.LingerState = new LingerOption(true, 0);
                client.Dispose();
            }

            await WithStateOnTimeoutAsync(allClosed, gateway, backend, $"{Clients} closes after the clients' resets");

            Assert.All(gateway.Observer.Closed, c => Assert.Equal(SpliceCloseReason.ClientError, c.Reason));
            TestGateway.AssertRelayed(relay, splice);

            // The gateway reset each upstream connection rather than leave it open (or end it as if complete): what
            // was queued is still readable, then the reset.
            foreach (Socket upstream in stalledUpstreams)
            {
                SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await RawBackend.ReadToEndAsync(upstream).WaitAsync(s_step));
                Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            }
        }
        finally
        {
            done.TrySetResult();
            foreach (Socket client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>
    /// Awaits <paramref name="task"/> for <see cref="s_released"/>; a timeout names what was awaited and the gateway's
    /// counts (a CI run once timed out here with nothing else to go on).
    /// </summary>
    private static async Task<T> WithStateOnTimeoutAsync<T>(Task<T> task, TestGateway gateway, RawBackend backend, string what)
    {
        await WithStateOnTimeoutAsync((Task)task, gateway, backend, what);
        return await task;
    }

    private static async Task WithStateOnTimeoutAsync(Task task, TestGateway gateway, RawBackend backend, string what)
    {
        try
        {
            await task.WaitAsync(s_released);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{what}: not within {s_released.TotalSeconds} s. {gateway.DescribeState()} Backend accepted {backend.Accepted}.", ex);
        }
    }

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task UpstreamResetsWhileClientStalled_BothSocketsReleasedBeforeTheIdleTimeout(Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        var upstreams = Channel.CreateUnbounded<Socket>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            await upstreams.Writer.WriteAsync(socket);
            await done.Task;
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        try
        {
            // The client stops reading; the upstream fills every buffer toward it, then resets.
            using Socket client = await gateway.ConnectAsync();
            client.ReceiveBufferSize = 4096;
            await client.SendAsync(hello);
            Socket upstream = await upstreams.Reader.ReadAsync().AsTask().WaitAsync(s_step);
            ResetPropagationTests.FillPath(upstream);

            Task closed = gateway.Observer.WaitForEventsAsync(1);
            upstream.LingerState = new LingerOption(true, 0);
            upstream.Dispose();
            await closed.WaitAsync(s_released);

            Assert.Equal(SpliceCloseReason.UpstreamError, Assert.Single(gateway.Observer.Closed).Reason);
            TestGateway.AssertRelayed(relay, splice);
            SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await RawBackend.ReadToEndAsync(client).WaitAsync(s_step));
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        }
        finally
        {
            done.TrySetResult();
        }
    }
}
