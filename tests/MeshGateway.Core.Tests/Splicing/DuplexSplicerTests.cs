using System.Net.Sockets;
using System.Security.Cryptography;
using MeshGateway.Splicing;
using MeshGateway.Testing;

namespace MeshGateway.Tests.Splicing;

public sealed class DuplexSplicerTests
{
    private sealed class Rig : IAsyncDisposable
    {
        public required Socket Client { get; init; }      // the application's client end
        public required Socket Upstream { get; init; }    // the application's server end
        public required Task<SpliceResult> Splice { get; init; }

        public static async Task<Rig> StartAsync(DuplexSplicer splicer, CancellationToken cancellationToken = default)
        {
            (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
            (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
            return new Rig { Client = client, Upstream = upstream, Splice = splicer.SpliceAsync(clientSide, upstreamSide, cancellationToken) };
        }

        public static async Task<Rig> StartStreamsAsync(DuplexSplicer splicer)
        {
            (Socket client, Socket clientSide) = await SocketPair.CreateAsync();
            (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
            return new Rig
            {
                Client = client,
                Upstream = upstream,
                Splice = splicer.SpliceAsync(new NetworkStream(clientSide, ownsSocket: true), new NetworkStream(upstreamSide, ownsSocket: true)),
            };
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Upstream.Dispose();
            await Splice.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static Task<TimerArmed> WhenTimerArmed(SignallingTimeProvider time)
    {
        var armed = new TaskCompletionSource<TimerArmed>(TaskCreationOptions.RunContinuationsAsynchronously);
        time.TimerChanged += () => armed.TrySetResult(default);
        return armed.Task;
    }

    private readonly struct TimerArmed;

    public static TheoryData<bool> Kinds => new() { false, true };

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task SpliceAsync_BothDirectionsThenFins_DeliversEveryByteAndCounts(bool streams)
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = streams ? await Rig.StartStreamsAsync(splicer) : await Rig.StartAsync(splicer);
        byte[] up = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 7);
        byte[] down = RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + 3);

        Task<byte[]> upstreamRead = SocketPair.ReadToEndAsync(rig.Upstream);
        Task<byte[]> clientRead = SocketPair.ReadToEndAsync(rig.Client);
        Task sendUp = Task.Run(async () =>
        {
            await rig.Client.SendAsync(up);
            rig.Client.Shutdown(SocketShutdown.Send);
        });

        // Half-close: the upstream sees the client's FIN while its own direction is still open.
        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await upstreamRead));
        await rig.Upstream.SendAsync(down);
        rig.Upstream.Shutdown(SocketShutdown.Send);
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await clientRead));
        await sendUp;

        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.ClientClosed, result.CloseReason);
        Assert.Equal(up.Length, result.BytesFromClient);
        Assert.Equal(down.Length, result.BytesFromUpstream);
        Assert.Equal(SocketError.Success, result.Error);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task SpliceAsync_UpstreamFinFirst_ClientKeepsSending(bool streams)
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = streams ? await Rig.StartStreamsAsync(splicer) : await Rig.StartAsync(splicer);
        await rig.Upstream.SendAsync("bye"u8.ToArray());
        rig.Upstream.Shutdown(SocketShutdown.Send);
        Assert.Equal("bye"u8.ToArray(), await SocketPair.ReadToEndAsync(rig.Client));

        byte[] late = RandomNumberGenerator.GetBytes(100_000);
        await rig.Client.SendAsync(late);
        byte[] got = new byte[late.Length];
        await SocketPair.ReadExactlyAsync(rig.Upstream, got);
        Assert.Equal(late, got);
        rig.Client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await SocketPair.ReadToEndAsync(rig.Upstream));

        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.UpstreamClosed, result.CloseReason);
        Assert.Equal(late.Length, result.BytesFromClient);
        Assert.Equal(3, result.BytesFromUpstream);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task SpliceAsync_ClientResets_UpstreamGetsReset(bool streams)
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = streams ? await Rig.StartStreamsAsync(splicer) : await Rig.StartAsync(splicer);
        await rig.Client.SendAsync("x"u8.ToArray());
        byte[] one = new byte[1];
        await SocketPair.ReadExactlyAsync(rig.Upstream, one);
        SocketPair.Reset(rig.Client);

        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.ClientError, result.CloseReason);
        Assert.Equal(SocketError.ConnectionReset, result.Error);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Upstream));
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task SpliceAsync_ClientHalfClosedThenUpstreamResets_RecordedAsUpstreamErrorAndClientReset(bool streams)
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = streams ? await Rig.StartStreamsAsync(splicer) : await Rig.StartAsync(splicer);
        rig.Client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await SocketPair.ReadToEndAsync(rig.Upstream));
        SocketPair.Reset(rig.Upstream);

        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.UpstreamError, result.CloseReason);
        Assert.Equal(SocketError.ConnectionReset, result.Error);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Client));
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
    }

    [Fact]
    public async Task SpliceAsync_UpstreamHalfClosedThenClientResets_RecordedAsClientError()
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = await Rig.StartAsync(splicer);
        rig.Upstream.Shutdown(SocketShutdown.Send);
        Assert.Empty(await SocketPair.ReadToEndAsync(rig.Client));
        SocketPair.Reset(rig.Client);

        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.ClientError, result.CloseReason);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Upstream));
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
    }

    [Fact]
    public async Task SpliceAsync_UpstreamResets_ClientGetsReset()
    {
        var splicer = new DuplexSplicer();
        await using Rig rig = await Rig.StartAsync(splicer);
        SocketPair.Reset(rig.Upstream);
        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.UpstreamError, result.CloseReason);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Client));
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
    }

    [Fact]
    public async Task SpliceAsync_Idle_ClosesAtIdleTimeoutMeasuredFromLastActivity()
    {
        var time = new SignallingTimeProvider();
        Task armed = WhenTimerArmed(time);
        var splicer = new DuplexSplicer(new SpliceOptions { IdleTimeout = TimeSpan.FromMinutes(10) }, time);
        await using Rig rig = await Rig.StartAsync(splicer);
        await armed.WaitAsync(TimeSpan.FromSeconds(30));

        time.Advance(TimeSpan.FromMinutes(6));
        await rig.Client.SendAsync("ping"u8.ToArray());
        await SocketPair.ReadExactlyAsync(rig.Upstream, new byte[4]);
        time.Advance(TimeSpan.FromMinutes(6));
        Assert.False(rig.Splice.IsCompleted);

        time.Advance(TimeSpan.FromMinutes(4));
        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.IdleTimeout, result.CloseReason);
        Assert.Equal(TimeSpan.FromMinutes(16), result.Duration);
        Assert.Empty(await SocketPair.ReadToEndAsync(rig.Client));
    }

    [Fact]
    public async Task SpliceAsync_HalfClosedThenSilent_EndsAtIdleTimeoutRecordedAsSuch()
    {
        var time = new SignallingTimeProvider();
        Task armed = WhenTimerArmed(time);
        var splicer = new DuplexSplicer(new SpliceOptions { IdleTimeout = TimeSpan.FromMinutes(1) }, time);
        await using Rig rig = await Rig.StartAsync(splicer);
        await armed.WaitAsync(TimeSpan.FromSeconds(30));
        rig.Client.Shutdown(SocketShutdown.Send);
        Assert.Empty(await SocketPair.ReadToEndAsync(rig.Upstream));

        time.Advance(TimeSpan.FromMinutes(1));
        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));

        // The client's FIN only half-closed it: the upstream never finished, the idle timeout ended it.
        Assert.Equal(SpliceCloseReason.IdleTimeout, result.CloseReason);
        Assert.Equal(TimeSpan.FromMinutes(1), result.Duration);
    }

    [Fact]
    public async Task SpliceAsync_Busy_ClosesAtMaxDuration()
    {
        var time = new SignallingTimeProvider();
        Task armed = WhenTimerArmed(time);
        var splicer = new DuplexSplicer(new SpliceOptions { MaxDuration = TimeSpan.FromSeconds(90) }, time);
        await using Rig rig = await Rig.StartAsync(splicer);
        await armed.WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 2; i++)
        {
            time.Advance(TimeSpan.FromSeconds(40));
            await rig.Client.SendAsync("a"u8.ToArray());
            await SocketPair.ReadExactlyAsync(rig.Upstream, new byte[1]);
        }

        Assert.False(rig.Splice.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(10));
        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.MaxDurationReached, result.CloseReason);
        Assert.Equal(2, result.BytesFromClient);
    }

    [Fact]
    public async Task SpliceAsync_Cancelled_AbortsWithResetBothWays()
    {
        using var cancel = new CancellationTokenSource();
        await using Rig rig = await Rig.StartAsync(new DuplexSplicer(), cancel.Token);
        await cancel.CancelAsync();
        SpliceResult result = await rig.Splice.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(SpliceCloseReason.Aborted, result.CloseReason);
        await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Client));
        await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(rig.Upstream));
    }

    [Fact]
    public async Task SpliceAsync_FaultingStream_ReportsThatSideAndClosesTheOther()
    {
        (Socket upstreamSide, Socket upstream) = await SocketPair.CreateAsync();
        using (upstream)
        {
            var failing = new FaultingStream();
            SpliceResult result = await new DuplexSplicer().SpliceAsync(failing, new NetworkStream(upstreamSide, ownsSocket: true)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(SpliceCloseReason.ClientError, result.CloseReason);
            Assert.True(failing.Disposed);
            await Assert.ThrowsAsync<SocketException>(async () => await SocketPair.ReadToEndAsync(upstream));
        }
    }

    [Fact]
    public async Task SpliceAsync_NullArguments_Throw()
    {
        var splicer = new DuplexSplicer();
        await Assert.ThrowsAsync<ArgumentNullException>(() => splicer.SpliceAsync(null!, new MemoryStream()));
        await Assert.ThrowsAsync<ArgumentNullException>(() => splicer.SpliceAsync((Socket)null!, null!));
    }

    [Fact]
    public void SpliceOptions_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpliceOptions { IdleTimeout = TimeSpan.Zero });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpliceOptions { MaxDuration = TimeSpan.FromSeconds(-5) });
        Assert.Throws<ArgumentOutOfRangeException>(() => new SpliceOptions { BufferSize = 100 });
        Assert.Equal(TimeSpan.FromHours(1), SpliceOptions.Default.IdleTimeout);
        Assert.Equal(Timeout.InfiniteTimeSpan, SpliceOptions.Default.MaxDuration);
    }

    private sealed class FaultingStream : Stream
    {
        public bool Disposed { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("boom");

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => buffer.IsEmpty ? ValueTask.FromResult(0) : ValueTask.FromException<int>(new IOException("boom"));

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
