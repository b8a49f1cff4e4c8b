using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>Tests that change process-wide limits run alone (no other test runs in parallel with this collection).</summary>
[CollectionDefinition(nameof(ProcessLimits), DisableParallelization = true)]
public sealed class ProcessLimits;

[Collection(nameof(ProcessLimits))]
public sealed class ResourceExhaustionTests
{
    private const string Name = "web.default.dc1.internal.td.consul";
    private const int RlimitNofile = 7; // Linux RLIMIT_NOFILE

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limit);

    [DllImport("libc", SetLastError = true)]
    private static extern int setrlimit(int resource, in RLimit limit);

    [Fact]
    public async Task Accept_OutOfFileDescriptors_BacksOffReportsAndRecovers()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)]);

        // Client sockets are created before the limit drops, so only the gateway (and the backend) run out.
        const int Clients = 24;
        var clients = Enumerable.Range(0, Clients).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }).ToArray();
        Assert.Equal(0, getrlimit(RlimitNofile, out RLimit original));
        try
        {
            int open = Directory.GetFiles("/proc/self/fd").Length;
            Assert.Equal(0, setrlimit(RlimitNofile, new RLimit { Current = (ulong)open + 6, Maximum = original.Maximum }));
            try
            {
                foreach (Socket client in clients)
                {
                    // The kernel completes the handshake from the backlog even when the gateway cannot accept.
                    await client.ConnectAsync(gateway.EndPoint).WaitAsync(TimeSpan.FromSeconds(30));
                }

                // The observer's accept-failure event ends the window: the limit is restored as soon as the gateway has
                // hit it, so the rest of the test host (which shares the limit) is starved for as short a time as possible.
                Assert.Equal(SocketError.TooManyOpenSockets, await gateway.Observer.FirstAcceptFailure.WaitAsync(TimeSpan.FromSeconds(60)));
            }
            finally
            {
                Assert.Equal(0, setrlimit(RlimitNofile, original));
            }

            // With descriptors back, every queued connection is accepted after the back-off and works end to end.
            await Task.WhenAll(clients.Select(async (client, i) =>
            {
                try
                {
                    await client.SendAsync(hello);
                    await client.SendAsync(BitConverter.GetBytes(i));
                    byte[] echo = new byte[4];
                    await RawBackend.ReadExactlyAsync(client, echo).WaitAsync(TimeSpan.FromSeconds(60));
                    return BitConverter.ToInt32(echo) == i;
                }
                catch (Exception ex) when (ex is SocketException or EndOfStreamException)
                {
                    // A connection accepted while descriptors ran out may have been closed (counted as a rejection); retry it once.
                    using Socket again = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await again.ConnectAsync(gateway.EndPoint);
                    await again.SendAsync(hello);
                    await again.SendAsync(BitConverter.GetBytes(i));
                    byte[] echo = new byte[4];
                    await RawBackend.ReadExactlyAsync(again, echo).WaitAsync(TimeSpan.FromSeconds(60));
                    return BitConverter.ToInt32(echo) == i;
                }
            })).WaitAsync(TimeSpan.FromMinutes(2));
        }
        finally
        {
            foreach (Socket client in clients)
            {
                client.Dispose();
            }
        }

        Assert.True(gateway.Listener.Counters.AcceptErrors > 0);
        Assert.True(gateway.Meters.Sum("meshgateway.accept.errors") > 0);
        await gateway.WaitIdleAsync();
    }

    [Fact]
    public async Task Connect_EndpointNeverAnswers_TimesOutOnTheInjectedClockAndUsesTheNext()
    {
        // A listener whose accept queue is full drops further SYNs, so a connect to it hangs.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(1);
        var fillers = new List<Socket>();
        try
        {
            for (int i = 0; i < 16; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                Task connect = filler.ConnectAsync(silent.LocalEndPoint!);
                if (await Task.WhenAny(connect, Task.Delay(TimeSpan.FromMilliseconds(500))) != connect)
                {
                    break; // this one hangs: the queue is full
                }
            }

            var time = new ManualTimeProvider();
            int timerChanges = 0;
            var connectArmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            time.TimerChanged += () =>
            {
                // 1: the hello deadline is created; 2: it is re-armed for the first connect attempt.
                if (Interlocked.Increment(ref timerChanges) == 2)
                {
                    connectArmed.TrySetResult();
                }
            };

            byte[] hello = TestHello.Create(Name);
            await using RawBackend live = RawBackend.Named("live", hello);
            var cluster = new MeshGateway.Routing.UpstreamCluster(Name, [new((IPEndPoint)silent.LocalEndPoint!), new(live.EndPoint, isHealthy: false)]);
            await using TestGateway gateway = TestGateway.Start([new MeshGateway.Routing.Route(Name, cluster)], timeProvider: time);
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(hello);
            client.Shutdown(SocketShutdown.Send);
            await connectArmed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            time.Advance(cluster.ConnectTimeout);

            Assert.Equal("live"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
            var failure = Assert.Single(gateway.Observer.ConnectFailures);
            Assert.True(failure.TimedOut);
            Assert.Equal(silent.LocalEndPoint, failure.Upstream);
            Assert.Equal(1, gateway.Meters.Sum("meshgateway.upstream.connect_failures|timed_out=true"));
        }
        finally
        {
            foreach (Socket filler in fillers)
            {
                filler.Dispose();
            }
        }
    }
}
