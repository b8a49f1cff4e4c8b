using System.Net.Sockets;
using MeshGateway.Splicing;

namespace MeshGateway.Tests.Splicing;

/// <summary>
/// <see cref="SocketSplice.EndOf"/>: what a receive of 0 bytes saw. The splice forwards a FIN only for
/// <see cref="StreamEnd.Fin"/>; anything else must end the other side with a reset (issue 16).
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
}
