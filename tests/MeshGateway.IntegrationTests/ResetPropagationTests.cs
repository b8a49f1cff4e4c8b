using System.Net.Sockets;
using System.Threading.Channels;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>
/// A reset on one side reaches the other side as a reset (never a FIN that makes a cut stream look complete), in every
/// interleaving, and the access log records who reset. Each case runs 100 times with real sockets: a race shows up as a
/// FIN in some of them.
/// </summary>
public sealed class ResetPropagationTests
{
    private const string Name = "reset.default.dc1.internal.td.consul";
    private const int Rounds = 100;
    private static readonly TimeSpan s_step = TimeSpan.FromSeconds(20);

    /// <summary>Where the surviving peer stands when the other side resets.</summary>
    public enum Interleaving
    {
        /// <summary>
        /// The survivor sent more than the other side reads: every buffer on the way is full, so the gateway holds unread
        /// bytes from the survivor and has a send pending toward the other side when that side resets.
        /// </summary>
        Sending,

        /// <summary>The survivor had half-closed (sent FIN) before the other side reset.</summary>
        HalfClosed,

        /// <summary>Nothing moves when the other side resets.</summary>
        Idle,
    }

    /// <summary>Every interleaving, with bytes copied and with every byte moved through kernel pipes.</summary>
    public static TheoryData<Interleaving, Relay> Cases { get; } = new()
    {
        { Interleaving.Sending, Relay.Copy },
        { Interleaving.HalfClosed, Relay.Copy },
        { Interleaving.Idle, Relay.Copy },
        { Interleaving.Sending, Relay.KernelPipesOnly },
        { Interleaving.HalfClosed, Relay.KernelPipesOnly },
        { Interleaving.Idle, Relay.KernelPipesOnly },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public Task UpstreamResets_ClientSeesResetEveryTime(Interleaving interleaving, Relay relay) => RunAsync(upstreamResets: true, interleaving, relay);

    [Theory]
    [MemberData(nameof(Cases))]
    public Task ClientResets_UpstreamSeesResetEveryTime(Interleaving interleaving, Relay relay) => RunAsync(upstreamResets: false, interleaving, relay);

    private static async Task RunAsync(bool upstreamResets, Interleaving interleaving, Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        // The backend hands each upstream socket to the test and keeps it open until the test is done with it.
        var upstreams = Channel.CreateUnbounded<(Socket Socket, TaskCompletionSource Done)>();
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await upstreams.Writer.WriteAsync((socket, done));
            await done.Task;
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);

        int resets = 0;
        var finRounds = new List<int>();
        for (int round = 0; round < Rounds; round++)
        {
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(hello);
            (Socket upstream, TaskCompletionSource done) = await upstreams.Reader.ReadAsync().AsTask().WaitAsync(s_step);
            try
            {
                Socket resetter = upstreamResets ? upstream : client;
                Socket survivor = upstreamResets ? client : upstream;
                Socket survivorsPeer = upstreamResets ? upstream : client; // the resetter reads what the survivor sends
                switch (interleaving)
                {
                    case Interleaving.Sending:
                        // The survivor has no send of its own in progress when the reset comes: a pending send would
                        // take the reset error itself (Linux reports it to one call only) and leave the receive reading
                        // 0, which would look like a FIN here though the application did see the reset.
                        survivorsPeer.ReceiveBufferSize = 4096;
                        await survivor.SendAsync(new byte[1024]);
                        Assert.True(await survivorsPeer.ReceiveAsync(new byte[1024].AsMemory(), SocketFlags.None).AsTask().WaitAsync(s_step) > 0);
                        FillPath(survivor);
                        break;
                    case Interleaving.HalfClosed:
                        survivor.Shutdown(SocketShutdown.Send);
                        // The FIN crossed the gateway: the resetter reads end of stream.
                        Assert.Equal(0, await survivorsPeer.ReceiveAsync(new byte[16].AsMemory(), SocketFlags.None).AsTask().WaitAsync(s_step));
                        break;
                }

                resetter.LingerState = new LingerOption(true, 0);
                resetter.Dispose();

                if (await EndsWithResetAsync(survivor))
                {
                    resets++;
                }
                else
                {
                    finRounds.Add(round);
                }
            }
            finally
            {
                done.TrySetResult();
            }

            // The access log names the side that reset, whatever happened before (a half-close is not the end).
            await gateway.Observer.WaitForEventsAsync(round + 1);
        }

        Assert.True(resets == Rounds, $"{Rounds - resets} of {Rounds} ended with FIN instead of RST (rounds {string.Join(", ", finRounds)})");
        SpliceCloseReason expected = upstreamResets ? SpliceCloseReason.UpstreamError : SpliceCloseReason.ClientError;
        var reasons = gateway.Observer.Closed.GroupBy(c => c.Reason).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(reasons.Count == 1 && reasons.ContainsKey(expected), $"close reasons: {string.Join(", ", reasons.Select(r => $"{r.Key}={r.Value}"))}");
        Assert.Empty(gateway.Observer.Rejections);
        TestGateway.AssertRelayed(relay, splice, atLeast: interleaving == Interleaving.Sending ? Rounds * 1024 : 0);
    }

    /// <summary>
    /// Sends until nothing more fits: the socket stays unwritable for 100 ms (the reader is not reading, so the gateway's
    /// buffers and the survivor's are full). Bounded: 64 MiB at most.
    /// </summary>
    internal static void FillPath(Socket socket)
    {
        byte[] chunk = new byte[64 * 1024];
        socket.Blocking = false;
        try
        {
            for (int i = 0; i < 1024; i++)
            {
                try
                {
                    socket.Send(chunk);
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.WouldBlock)
                {
                    if (!socket.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectWrite))
                    {
                        return;
                    }
                }
            }

            throw new InvalidOperationException("64 MiB went through although nobody reads.");
        }
        finally
        {
            socket.Blocking = true;
        }
    }

    /// <summary>Reads until the connection ends: true for a reset, false for a FIN.</summary>
    private static async Task<bool> EndsWithResetAsync(Socket socket)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            for (int i = 0; i < 100_000; i++)
            {
                if (await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(s_step) == 0)
                {
                    return false;
                }
            }

            throw new InvalidOperationException("The connection did not end.");
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }
}
