using System.Buffers;
using System.Net.Sockets;
using MeshGateway.Splicing;

namespace MeshGateway.Tests.Splicing;

/// <summary>
/// The splice loops hold no buffer while a connection idles. Run alone (<see cref="SplicerBufferRunAlone"/>): under the
/// load of the other tests in this process a loop once in a while kept a buffer for the whole 30 s wait. Our reading (not
/// reproduced on demand): the sockets engine delivered an epoll event late, after the bytes it was for were read, and
/// the zero-byte wait it ended was followed by a read that waits holding the buffer. Both loops now check for that after
/// each wait (<c>SocketSplice.WokeWithNothingToRead</c>; the socket loop since a third clean-clone CI failure, at one
/// <c>FIONREAD</c> per message). Before, it failed clean-clone CI three times and one loaded local run of this suite in 8.
/// </summary>
[Collection(nameof(SplicerBufferRunAlone))]
public sealed class SplicerBufferTests
{
    /// <summary>Counts buffers handed out and not yet returned, and signals each time none is outstanding.</summary>
    private sealed class CountingPool : ArrayPool<byte>
    {
        private readonly Lock _gate = new();
        private int _outstanding;
        private int _rented;
        private TaskCompletionSource _none = NewSignal(completed: true);

        public int Outstanding
        {
            get
            {
                lock (_gate)
                {
                    return _outstanding;
                }
            }
        }

        public int Rented => Volatile.Read(ref _rented);

        /// <summary>Completes once no buffer is outstanding (at once if none is now).</summary>
        public Task WhenNoneOutstanding()
        {
            lock (_gate)
            {
                return _none.Task;
            }
        }

        public override byte[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref _rented);
            lock (_gate)
            {
                if (_outstanding++ == 0)
                {
                    _none = NewSignal(completed: false);
                }
            }

            return new byte[minimumLength];
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            lock (_gate)
            {
                if (--_outstanding == 0)
                {
                    _none.TrySetResult();
                }
            }
        }

        private static TaskCompletionSource NewSignal(bool completed)
        {
            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (completed)
            {
                signal.SetResult();
            }

            return signal;
        }
    }

    // 4,096 and 12,288 bytes end on a full read of the 4 KiB buffer: the loop must still give the buffer back once the
    // socket has nothing more queued (a clean-clone CI run once held one for 30 s after 20,000 bytes ended on a full read).
    [Theory]
    [InlineData(false, 20_000)]
    [InlineData(true, 20_000)]
    [InlineData(false, 4096)]
    [InlineData(true, 4096)]
    [InlineData(false, 3 * 4096)]
    [InlineData(true, 3 * 4096)]
    public async Task SpliceAsync_IdleAfterTraffic_HoldsNoBuffer(bool streams, int downstreamBytes)
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
            await upstream.SendAsync(new byte[downstreamBytes]);
            await SocketPair.ReadExactlyAsync(client, new byte[downstreamBytes]);

            // After the traffic, both loops are back to waiting without a buffer (the return follows the send, so await it).
            await pool.WhenNoneOutstanding().WaitAsync(TimeSpan.FromSeconds(30));

            Assert.True(pool.Rented >= 2);
            client.Shutdown(SocketShutdown.Send);
            upstream.Shutdown(SocketShutdown.Send);
            SpliceResult result = await splice.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(10, result.BytesFromClient);
            Assert.Equal(downstreamBytes, result.BytesFromUpstream);
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

/// <summary>Runs <see cref="SplicerBufferTests"/> after the parallel tests, alone (see its remarks).</summary>
[CollectionDefinition(nameof(SplicerBufferRunAlone), DisableParallelization = true)]
public sealed class SplicerBufferRunAlone
{
}
