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
}
