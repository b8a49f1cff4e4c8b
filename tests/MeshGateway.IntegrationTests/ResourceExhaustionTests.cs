using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>
/// Tests that change a process's limits (a child gateway's, never the test host's), hold many of the test host's
/// descriptors or measure process-wide memory run alone (no other test runs in parallel with this collection).
/// </summary>
[CollectionDefinition(nameof(ProcessLimits), DisableParallelization = true)]
public sealed class ProcessLimits;

[Collection(nameof(ProcessLimits))]
public sealed partial class ResourceExhaustionTests
{
    private const string Name = "web.default.dc1.internal.td.consul";

    [GeneratedRegex(@"^accept-failed listener=\S+ error=(?<error>\w+) retry_ms=(?<retry>[0-9.]+)$")]
    private static partial Regex AcceptFailedLine();

    [GeneratedRegex(@"^SniGateway stopped: \d+ drained, \d+ cut, (?<routed>\d+) routed, (?<rejected>\d+) rejected, (?<failed>\d+) failed accepts$")]
    private static partial Regex StoppedLine();

    /// <summary>
    /// A gateway process (samples/SniGateway) runs out of descriptors: its open-file limit is lowered from outside
    /// (<c>prlimit --pid</c>) to what it holds plus 6, so only a few queued connections can be accepted. The listener must
    /// stop accepting, report it as out of descriptors and back off (50 ms, then doubling) without starving the runtime
    /// (which aborts the process when it cannot start a thread), and accept every queued connection once the limit is
    /// raised again; the process must stay up. The limit belongs to the child: the test host's own
    /// limit never changes (lowering it once starved the runtime of the test host, which aborted with "Out of memory.").
    /// </summary>
    [Fact]
    public async Task Accept_OutOfFileDescriptors_BacksOffReportsAndRecovers()
    {
        byte[] hello = TestHello.Create(Name);
        await using RawBackend backend = RawBackend.Echo(hello);
        string routes = Path.Combine(Path.GetTempPath(), $"mg-emfile-routes-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(routes, $$"""{"routes":[{"sni":"{{Name}}","endpoints":["{{backend.EndPoint}}"]}]}""");
        using var gateway = new ChildGateway(routes, openFileLimit: null);
        const int Clients = 24;
        var clients = new Socket[Clients];
        try
        {
            (IPEndPoint endPoint, _, _) = await gateway.Ready.WaitAsync(TimeSpan.FromSeconds(60));

            // One connection end to end first: whatever the accept, connect and splice paths open lazily is open before
            // the descriptors are counted. Its two sockets are closed once its access-log line is written.
            Task warmedUp = gateway.WaitForClosedAsync(1);
            using (Socket warmUp = await ConnectAsync(endPoint))
            {
                Assert.True(await EchoesAsync(warmUp, hello, -1));
            }

            await warmedUp.WaitAsync(TimeSpan.FromSeconds(60));

            (long soft, long hard) = gateway.OpenFileLimit;
            Task<IReadOnlyList<string>> failures = gateway.WaitForLinesAsync("accept-failed", 2);
            await gateway.SetOpenFileLimitAsync(gateway.OpenFiles + 6, hard);
            try
            {
                // The kernel completes each handshake from the backlog whether or not the gateway accepts it: a few are
                // accepted (and wait for their hello), then the listener stops (within 8 descriptors of the limit, or at
                // EMFILE) and the rest stay queued.
                for (int i = 0; i < Clients; i++)
                {
                    clients[i] = await ConnectAsync(endPoint);
                }

                // Two failed accepts in a row, nothing accepted between them: the second waited twice as long. The
                // process must live through it (the runtime aborts it when it cannot start a thread for lack of descriptors).
                await Task.WhenAny(failures, gateway.Exited).WaitAsync(TimeSpan.FromSeconds(60));
                Assert.False(gateway.Process.HasExited, $"the gateway exited when it ran out of descriptors: {gateway.Output}");
                IReadOnlyList<string> lines = await failures;
                var parsed = lines.Select(l => AcceptFailedLine().Match(l)).ToArray();
                Assert.All(parsed, m => Assert.True(m.Success, $"unexpected line: {m.Value}"));
                Assert.All(parsed, m => Assert.Equal(nameof(SocketError.TooManyOpenSockets), m.Groups["error"].Value));
                double first = double.Parse(parsed[0].Groups["retry"].Value, CultureInfo.InvariantCulture);
                double second = double.Parse(parsed[1].Groups["retry"].Value, CultureInfo.InvariantCulture);
                Assert.Equal(50, first);
                Assert.Equal(2 * first, second);
            }
            finally
            {
                try
                {
                    await gateway.SetOpenFileLimitAsync(soft, hard);
                }
                catch (InvalidOperationException) when (gateway.Process.HasExited)
                {
                    // It died: the assertion above (or the timeout) says so.
                }
            }

            // With descriptors back, the listener accepts every queued connection after its back-off, and each one
            // (accepted before or after the failures) is served end to end: none was dropped.
            bool[] echoed = await Task.WhenAll(clients.Select((client, i) => EchoesAsync(client, hello, i))).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.All(echoed, Assert.True);

            Task closed = gateway.WaitForClosedAsync(Clients);
            foreach (Socket client in clients)
            {
                client.Dispose();
            }

            await closed.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.False(gateway.Process.HasExited, $"the gateway exited: {gateway.Output}");
            Assert.DoesNotContain("Out of memory", gateway.Output, StringComparison.Ordinal);

            // It still stops cleanly, and its counters agree: every connection routed, none refused, the failed accepts counted.
            Task<IReadOnlyList<string>> stopped = gateway.WaitForLinesAsync("SniGateway stopped:", 1);
            Assert.Equal(0, await gateway.StopAsync(TimeSpan.FromSeconds(60)));
            Match summary = StoppedLine().Match((await stopped.WaitAsync(TimeSpan.FromSeconds(60)))[0]);
            Assert.True(summary.Success, gateway.Output);
            Assert.Equal(Clients + 1, int.Parse(summary.Groups["routed"].Value, CultureInfo.InvariantCulture));
            Assert.Equal(0, int.Parse(summary.Groups["rejected"].Value, CultureInfo.InvariantCulture));
            Assert.True(int.Parse(summary.Groups["failed"].Value, CultureInfo.InvariantCulture) >= 2, summary.Value);
        }
        finally
        {
            foreach (Socket? client in clients)
            {
                client?.Dispose();
            }

            File.Delete(routes);
        }
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint).WaitAsync(TimeSpan.FromSeconds(30));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends the hello and <paramref name="value"/>; true when the backend's echo of the value comes back.</summary>
    private static async Task<bool> EchoesAsync(Socket socket, byte[] hello, int value)
    {
        await socket.SendAsync(hello);
        await socket.SendAsync(BitConverter.GetBytes(value));
        byte[] echo = new byte[4];
        await RawBackend.ReadExactlyAsync(socket, echo).WaitAsync(TimeSpan.FromSeconds(60));
        return BitConverter.ToInt32(echo) == value;
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
                // Not a wait for a state change: the kernel gives no signal for a dropped SYN, so a connect still pending
                // after 500 ms is taken as the one that hangs (a queued one completes in microseconds on loopback).
                if (await Task.WhenAny(connect, Task.Delay(TimeSpan.FromMilliseconds(500))) != connect)
                {
                    break; // this one hangs: the queue is full
                }
            }

            var time = new FakeTimeProvider();
            var connectArmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            byte[] hello = TestHello.Create(Name);
            await using RawBackend live = RawBackend.Named("live", hello);
            var cluster = new MeshGateway.Routing.UpstreamCluster(Name, [new((IPEndPoint)silent.LocalEndPoint!), new(live.EndPoint, isHealthy: false)]);
            await using TestGateway gateway = TestGateway.Start([new MeshGateway.Routing.Route(Name, cluster)], timeProvider: time);

            // The first attempt's timeout is armed (on either engine) when the gateway reports the attempt started.
            gateway.Listener.ConnectStarted = endPoint => _ = endPoint.Equals(silent.LocalEndPoint) && connectArmed.TrySetResult();
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(hello);
            client.Shutdown(SocketShutdown.Send);
            await connectArmed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            time.Advance(cluster.ConnectTimeout);

            Assert.Equal("live"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
            var failure = Assert.Single(gateway.Observer.ConnectFailures);
            Assert.True(failure.TimedOut);
            Assert.Equal(silent.LocalEndPoint, failure.Upstream);
            Assert.Equal(1, gateway.Meters.Sum("meshgateway.upstream.connect_failures|error.type=timeout"));
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
