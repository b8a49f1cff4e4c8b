using System.Buffers;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Splicing;

namespace MeshGateway.Tests.Splicing;

/// <summary>
/// <see cref="SocketSplice.EndOf"/>: what a receive of 0 bytes saw. The splice forwards a FIN only for
/// <see cref="StreamEnd.Fin"/>; anything else must end the other side with a reset (issue 16). And the replayed prefix
/// the splice owns (<see cref="ReplayPrefix"/>).
/// </summary>
public sealed class SocketSpliceTests
{
    [Fact]
    public async Task EndOf_PeerSentFin_IsFin()
    {
        (Socket local, Socket peer) = await SocketPair.CreateAsync();
        using (local)
        using (peer)
        {
            peer.Shutdown(SocketShutdown.Send);
            Assert.Empty(await SocketPair.ReadToEndAsync(local));

            Assert.Equal(StreamEnd.Fin, SocketSplice.EndOf(local));
        }
    }

    [Fact]
    public async Task EndOf_PeerResetAndTheErrorWentToAnotherCall_IsReset()
    {
        (Socket local, Socket peer) = await SocketPair.CreateAsync();
        using (local)
        {
            SocketPair.Reset(peer);
            // The reset's error is reported to one call only: this receive takes it (in a splice, the other loop's send).
            SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(local));
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            Assert.Equal(0, await local.ReceiveAsync(new byte[16].AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

            Assert.Equal(StreamEnd.Reset, SocketSplice.EndOf(local));
        }
    }

    [Fact]
    public async Task EndOf_SocketClosedUnderTheReadByTheTeardown_IsClosedHereNotFin()
    {
        // The race behind 1 of 100 client resets reaching the upstream as FIN: the loop whose send took the reset closes
        // this socket (the teardown) between the other loop's receive of 0 and its state check. Read as a FIN, the
        // reading loop shut down its send on the other socket ahead of the teardown's RST.
        (Socket local, Socket peer) = await SocketPair.CreateAsync();
        using (peer)
        {
            SocketPair.Reset(peer);
            SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(local));
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            SocketSplice.Close(local, reset: true);

            Assert.Equal(StreamEnd.ClosedHere, SocketSplice.EndOf(local));
        }
    }

    [Fact]
    public async Task RunAsync_WithPrefix_SendsItFirstAndCountsOnlyTheClientsPart()
    {
        (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (client)
        using (upstream)
        {
            // Bytes 2..10 of a pooled buffer: a 3-byte header of the gateway's own, then the client's "hello".
            byte[] pooled = ArrayPool<byte>.Shared.Rent(32);
            "..HDRhello"u8.CopyTo(pooled);
            var splice = new SocketSplice(clientSide, upstreamSide, SpliceOptions.Default, TimeProvider.System, prefix: new ReplayPrefix(pooled, 2, 10, 3));
            Task<SpliceResult> run = splice.RunAsync();

            await client.SendAsync("more"u8.ToArray());
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal("HDRhellomore", Encoding.ASCII.GetString(await SocketPair.ReadToEndAsync(upstream)));
            upstream.Shutdown(SocketShutdown.Send);

            SpliceResult result = await run.WaitAsync(TimeSpan.FromSeconds(60));
            splice.Dispose();
            Assert.Equal(5 + 4, result.BytesFromClient);
            Assert.Equal(0, result.BytesFromUpstream);
            Assert.Contains(result.CloseReason, new[] { SpliceCloseReason.ClientClosed, SpliceCloseReason.UpstreamClosed });
        }
    }

    [Fact]
    public async Task RunAsync_PrefixCannotBeSent_UpstreamErrorAndClientReset()
    {
        (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (client)
        using (upstream)
        {
            // The upstream leg can no longer send: the replay fails like any later send would.
            upstreamSide.Shutdown(SocketShutdown.Send);
            byte[] pooled = ArrayPool<byte>.Shared.Rent(16);
            "hello"u8.CopyTo(pooled);
            var splice = new SocketSplice(clientSide, upstreamSide, SpliceOptions.Default, TimeProvider.System, prefix: new ReplayPrefix(pooled, 0, 5, 0));

            SpliceResult result = await splice.RunAsync().WaitAsync(TimeSpan.FromSeconds(60));
            splice.Dispose();
            Assert.Equal(SpliceCloseReason.UpstreamError, result.CloseReason);
            Assert.Equal(0, result.BytesFromClient);
            SocketException reset = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(client));
            Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        }
    }

    [Fact]
    public async Task RunAsync_KernelPipes_SlowReaders_EveryByteInOrderBothWaysAndPipesClosed()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // splice(2) is Linux's; elsewhere the option copies, which the other tests cover.
        }

        // 8 MiB each way; the readers start only once a destination was full (the budget's room-wait signal: how fast they
        // read otherwise decides whether it ever is, and a loaded CI machine once had none), then take 1 KiB at a time,
        // slower than the gateway moves 64 KiB, so the destinations fill again and again (a small receive buffer would make
        // TCP itself the bottleneck, at delayed-ACK pace): a pipe's first bytes then go through the runtime's send
        // (RoomWaits), the rest by splice.
        var options = new SpliceOptions { MaxKernelPipes = 2 };
        byte[] up = System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 * 1024 * 1024);
        byte[] down = System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 * 1024 * 1024 + 1);
        (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (client)
        using (upstream)
        {
            var splice = new SocketSplice(clientSide, upstreamSide, options, TimeProvider.System);
            Task<SpliceResult> run = splice.RunAsync();

            Task sendUp = SendAndFinishAsync(client, up);
            Task sendDown = SendAndFinishAsync(upstream, down);
            await options.PipeBudget.WhenRoomWaitsAtLeastAsync(1).WaitAsync(TimeSpan.FromSeconds(120));
            Task<byte[]> atUpstream = ReadSlowlyToEndAsync(upstream);
            Task<byte[]> atClient = ReadSlowlyToEndAsync(client);
            await Task.WhenAll(sendUp, sendDown).WaitAsync(TimeSpan.FromSeconds(120));

            Assert.Equal(up, await atUpstream.WaitAsync(TimeSpan.FromSeconds(120)));
            Assert.Equal(down, await atClient.WaitAsync(TimeSpan.FromSeconds(120)));
            SpliceResult result = await run.WaitAsync(TimeSpan.FromSeconds(60));
            splice.Dispose();
            Assert.Equal(up.Length, result.BytesFromClient);
            Assert.Equal(down.Length, result.BytesFromUpstream);
        }

        // Bulk bursts went through the pipes (the first read of each burst is a copy), and none is left open.
        Assert.True(options.PipeBudget.SplicedBytes > (up.Length + down.Length) / 2, $"spliced {options.PipeBudget.SplicedBytes}");
        Assert.True(options.PipeBudget.RoomWaits > 0);
        Assert.Equal(0, options.PipeBudget.Open);
    }

    [Fact]
    public void KernelPipeBudget_TakesUpToItsCap_AndAgainAfterAGive()
    {
        var budget = new KernelPipeBudget(2);
        Assert.True(budget.TryTake());
        Assert.True(budget.TryTake());
        Assert.False(budget.TryTake());
        Assert.Equal(2, budget.Open);
        budget.Give();
        Assert.True(budget.TryTake());
        budget.Disable();
        budget.Give();
        Assert.False(budget.TryTake());
    }

    [Fact]
    public async Task KernelPipe_OverTheCap_IsNotCreated_AndAClosedSocketFailsTheCall()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(KernelPipe.TryCreate(new KernelPipeBudget(1)));
            return;
        }

        var budget = new KernelPipeBudget(1);
        using KernelPipe? pipe = KernelPipe.TryCreate(budget);
        Assert.NotNull(pipe);
        Assert.Null(KernelPipe.TryCreate(budget));

        (Socket left, Socket right) = await SocketPair.CreateAsync();
        using (right)
        {
            Assert.Equal(KernelSpliceStatus.WouldBlock, pipe.Fill(left, out _, out _));
            await right.SendAsync("abc"u8.ToArray());
            await left.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
            Assert.Equal(KernelSpliceStatus.Moved, pipe.Fill(left, out int moved, out _));
            Assert.Equal(3, moved);
            byte[] read = new byte[8];
            Assert.Equal(3, pipe.Read(read, 8));
            Assert.Equal("abc"u8.ToArray(), read[..3]);

            left.Dispose();
            Assert.Equal(KernelSpliceStatus.Failed, pipe.Fill(left, out _, out SocketError error));
            Assert.Equal(SocketError.OperationAborted, error);
        }

        pipe.Dispose();
        Assert.Equal(0, budget.Open);
        pipe.Dispose(); // once only
        Assert.Equal(0, budget.Open);
    }

    private static async Task SendAndFinishAsync(Socket socket, byte[] data)
    {
        for (int sent = 0; sent < data.Length;)
        {
            sent += await socket.SendAsync(data.AsMemory(sent, Math.Min(256 * 1024, data.Length - sent)), SocketFlags.None);
        }

        socket.Shutdown(SocketShutdown.Send);
    }

    private static async Task<byte[]> ReadSlowlyToEndAsync(Socket socket)
    {
        var output = new MemoryStream();
        byte[] buffer = new byte[1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
            if (n == 0)
            {
                return output.ToArray();
            }

            output.Write(buffer, 0, n);
        }
    }
}
