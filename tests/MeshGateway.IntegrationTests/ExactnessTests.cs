using System.Net.Sockets;
using System.Security.Cryptography;
using MeshGateway.Testing;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Gateway;
using MeshGateway.Splicing;

namespace MeshGateway.IntegrationTests;

/// <summary>Every byte arrives, in order, in both directions, whatever the chunking; FIN and RST cross the gateway.</summary>
public sealed class ExactnessTests
{
    private const string Name = "bulk.default.dc1.internal.td.consul";

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.BulkKernelPipes)]
    public async Task Splice_ConcurrentRandomStreams_Sha256EqualOnBothEnds(Relay relay)
    {
        // 12 streams, 64 MiB in total each way, random sizes and random write chunking (1 B to 64 KiB).
        const int Streams = 12;
        const long Total = 64L * 1024 * 1024;
        var random = new Random(20261121);
        long[] up = Split(Total, Streams, random);
        long[] down = Split(Total, Streams, random);
        byte[] hello = TestHello.Create(Name);
        byte[] pattern = RandomNumberGenerator.GetBytes(4 * 1024 * 1024 + 17);

        var upstreamHashes = new System.Collections.Concurrent.ConcurrentDictionary<int, byte[]>();
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            byte[] id = new byte[4];
            await RawBackend.ReadExactlyAsync(socket, id);
            int index = BitConverter.ToInt32(id);
            Task<(long Bytes, byte[] Hash)> receive = RawBackend.HashToEndAsync(socket);
            await RawBackend.SendChunkedAsync(socket, Stream(pattern, down[index]), new Random(index));
            socket.Shutdown(SocketShutdown.Send);
            (long bytes, byte[] hash) = await receive;
            upstreamHashes[index] = bytes == up[index] ? hash : [];
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);

        var clients = Enumerable.Range(0, Streams).Select(index => Task.Run(async () =>
        {
            using Socket socket = await gateway.ConnectAsync();
            await socket.SendAsync(hello);
            await socket.SendAsync(BitConverter.GetBytes(index));
            Task<(long Bytes, byte[] Hash)> receive = RawBackend.HashToEndAsync(socket);
            await RawBackend.SendChunkedAsync(socket, Stream(pattern, up[index]), new Random(1000 + index));
            socket.Shutdown(SocketShutdown.Send);
            (long bytes, byte[] hash) = await receive;
            Assert.Equal(down[index], bytes);
            Assert.Equal(SHA256.HashData(Stream(pattern, down[index]).Span), hash);
        })).ToArray();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromMinutes(3));
        await gateway.Observer.WaitForEventsAsync(Streams);

        for (int i = 0; i < Streams; i++)
        {
            Assert.Equal(SHA256.HashData(Stream(pattern, up[i]).Span), upstreamHashes[i]);
        }

        Assert.Equal(Streams, gateway.Observer.Closed.Count);
        Assert.Equal(Total + Streams * (hello.Length + 4L), gateway.Observer.Closed.Sum(c => c.Up));
        Assert.Equal(Total, gateway.Observer.Closed.Sum(c => c.Down));
        Assert.Equal(Total + Streams * (hello.Length + 4L), gateway.Meters.Sum("meshgateway.bytes|meshgateway.direction=upstream"));
        Assert.Equal(Total, gateway.Meters.Sum("meshgateway.bytes|meshgateway.direction=downstream"));
        await gateway.WaitIdleAsync();

        // 12 streams, 4 pipes: bursts splice while a pipe is free and copy otherwise, and every pipe is closed after.
        TestGateway.AssertRelayed(relay, splice, atLeast: 1024 * 1024);
    }

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task Splice_ClientHalfCloses_UpstreamGetsEverythingThenAnswers(Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        byte[] request = RandomNumberGenerator.GetBytes(1_000_003);
        byte[] answer = RandomNumberGenerator.GetBytes(777_777);
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            byte[] got = await RawBackend.ReadToEndAsync(socket);   // waits for the client's FIN
            if (got.AsSpan().SequenceEqual(request))
            {
                await socket.SendAsync(answer);                      // this direction still flows
            }

            socket.Shutdown(SocketShutdown.Send);
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(hello);
        await client.SendAsync(request);
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(answer, await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(SpliceCloseReason.ClientClosed, Assert.Single(gateway.Observer.Closed).Reason);
        // Request bytes that arrived with the hello are replayed from the hello's buffer (at most MaxHelloSize), not piped.
        TestGateway.AssertRelayed(relay, splice, atLeast: request.Length + answer.Length - new GatewayListenerOptions().MaxHelloSize);
    }

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task Splice_UpstreamHalfCloses_ClientKeepsSending(Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        byte[] late = RandomNumberGenerator.GetBytes(500_001);
        var received = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            await socket.SendAsync("done"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            received.TrySetResult(await RawBackend.ReadToEndAsync(socket));
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(hello);
        Assert.Equal("done"u8.ToArray(), await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60)));
        await client.SendAsync(late);
        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(late, await received.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(SpliceCloseReason.UpstreamClosed, Assert.Single(gateway.Observer.Closed).Reason);
        TestGateway.AssertRelayed(relay, splice, atLeast: late.Length + 4);
    }

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task Splice_ClientResets_BackendSeesReset(Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        var outcome = new TaskCompletionSource<SocketError>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            await socket.SendAsync("ready"u8.ToArray());
            try
            {
                await RawBackend.ReadToEndAsync(socket);
                outcome.TrySetResult(SocketError.Success);
            }
            catch (SocketException ex)
            {
                outcome.TrySetResult(ex.SocketErrorCode);
            }
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        Socket client = await gateway.ConnectAsync();
        await client.SendAsync(hello);
        await RawBackend.ReadExactlyAsync(client, new byte[5]);
        client.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        client.Dispose();
        Assert.Equal(SocketError.ConnectionReset, await outcome.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(SpliceCloseReason.ClientError, Assert.Single(gateway.Observer.Closed).Reason);
        TestGateway.AssertRelayed(relay, splice, atLeast: 5);
    }

    [Theory]
    [InlineData(Relay.Copy)]
    [InlineData(Relay.KernelPipesOnly)]
    public async Task Splice_BackendDiesMidStream_ClientSeesReset(Relay relay)
    {
        byte[] hello = TestHello.Create(Name);
        await using var backend = new RawBackend(async socket =>
        {
            await RawBackend.ExpectHelloAsync(socket, hello);
            await socket.SendAsync(new byte[100_000]);
            socket.LingerState = new System.Net.Sockets.LingerOption(true, 0);
            socket.Close();
        });
        SpliceOptions splice = TestGateway.SpliceFor(relay);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name, backend.EndPoint)], splice);
        using Socket client = await gateway.ConnectAsync();
        await client.SendAsync(hello);
        SocketException ex = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            // Keep the client sending too: the reset must reach it whichever direction notices first.
            byte[] buffer = new byte[64 * 1024];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (await client.ReceiveAsync(buffer.AsMemory(), SocketFlags.None, timeout.Token) > 0)
            {
            }
        });
        Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(SpliceCloseReason.UpstreamError, Assert.Single(gateway.Observer.Closed).Reason);
        // How much crossed before the reset is up to the kernel; every pipe must be closed after.
        TestGateway.AssertRelayed(relay, splice, atLeast: 0);
    }

    private static long[] Split(long total, int parts, Random random)
    {
        double[] weights = Enumerable.Range(0, parts).Select(_ => 0.1 + random.NextDouble()).ToArray();
        double sum = weights.Sum();
        long[] sizes = weights.Select(w => (long)(total * w / sum)).ToArray();
        sizes[^1] += total - sizes.Sum();
        return sizes;
    }

    /// <summary>The first <paramref name="length"/> bytes of an endless repetition of <paramref name="pattern"/> (offset by length so streams differ).</summary>
    private static ReadOnlyMemory<byte> Stream(byte[] pattern, long length)
    {
        int offset = (int)(length % 4096);
        if (length + offset <= pattern.Length)
        {
            return pattern.AsMemory(offset, (int)length);
        }

        byte[] data = new byte[length];
        for (long i = 0; i < length; i += pattern.Length - offset)
        {
            int take = (int)Math.Min(pattern.Length - offset, length - i);
            Array.Copy(pattern, offset, data, i, take);
        }

        return data;
    }
}
