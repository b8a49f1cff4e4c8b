using System.Buffers;
using System.Net.Sockets;
using MeshGateway.Splicing;

namespace MeshGateway.Tests.Splicing;

public sealed class SplicerBufferTests
{
    /// <summary>Counts buffers handed out and not yet returned.</summary>
    private sealed class CountingPool : ArrayPool<byte>
    {
        private int _outstanding;
        private int _rented;

        public int Outstanding => Volatile.Read(ref _outstanding);

        public int Rented => Volatile.Read(ref _rented);

        public override byte[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref _outstanding);
            Interlocked.Increment(ref _rented);
            return new byte[minimumLength];
        }

        public override void Return(byte[] array, bool clearArray = false) => Interlocked.Decrement(ref _outstanding);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SpliceAsync_IdleAfterTraffic_HoldsNoBuffer(bool streams)
    {
        var pool = new CountingPool();
        var splicer = new DuplexSplicer(new SpliceOptions { BufferPool = pool, BufferSize = 4096 });
        (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (client)
        using (upstream)
        {
            Task<SpliceResult> splice = streams
                ? splicer.SpliceAsync(new NetworkStream(clientSide, ownsSocket: true), new NetworkStream(upstreamSide, ownsSocket: true))
                : splicer.SpliceAsync(clientSide, upstreamSide);

            // Idle from the start: nothing rented while both loops wait.
            await client.SendAsync(new byte[10]);
            await SocketPair.ReadExactlyAsync(upstream, new byte[10]);
            await upstream.SendAsync(new byte[20_000]);
            await SocketPair.ReadExactlyAsync(client, new byte[20_000]);

            // After the traffic, both loops are back to waiting without a buffer (bounded wait: the return follows the send).
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (pool.Outstanding != 0)
            {
                await Task.Delay(5, timeout.Token);
            }

            Assert.True(pool.Rented >= 2);
            client.Shutdown(SocketShutdown.Send);
            upstream.Shutdown(SocketShutdown.Send);
            SpliceResult result = await splice.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(10, result.BytesFromClient);
            Assert.Equal(20_000, result.BytesFromUpstream);
            Assert.Equal(0, pool.Outstanding);
        }
    }

    [Fact]
    public async Task SpliceAsync_OnlyFins_KeepsNoBufferRented()
    {
        var pool = new CountingPool();
        var splicer = new DuplexSplicer(new SpliceOptions { BufferPool = pool });
        (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (client)
        using (upstream)
        {
            Task<SpliceResult> splice = splicer.SpliceAsync(clientSide, upstreamSide);
            client.Shutdown(SocketShutdown.Send);
            Assert.Empty(await SocketPair.ReadToEndAsync(upstream));
            upstream.Shutdown(SocketShutdown.Send);
            await splice.WaitAsync(TimeSpan.FromSeconds(30));

            // A FIN wakes the loop, which then rents once to read the 0 bytes; nothing stays rented.
            Assert.Equal(0, pool.Outstanding);
        }
    }
}
