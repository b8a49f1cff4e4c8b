using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Testing;
using Xunit.Abstractions;

namespace MeshGateway.IntegrationTests;

/// <summary>
/// Memory per pending ClientHello is bounded by the bytes received, and a wave of stalled hellos is given back. Runs
/// alone (the process-wide allocation counter would count other tests' allocations too).
/// </summary>
[Collection(nameof(ProcessLimits))]
public sealed class HelloMemoryTests(ITestOutputHelper output)
{
    private const string Name = "web.default.dc1.internal.td.consul";

    [Fact]
    public async Task HalfSentHellos_CutAtHelloTimeout_FewHundredBytesEachAndMemoryReturned()
    {
        const int Wave = 1000;
        byte[] hello = TestHello.Create(Name);
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Name)], () => new GatewayListenerOptions { HelloTimeout = TimeSpan.FromSeconds(3) });

        async Task<long> WaveAsync(int round, int headerBytes)
        {
            var clients = new Socket[Wave];
            try
            {
                long before = GC.GetTotalAllocatedBytes(precise: true);
                Task rejected = gateway.Observer.WaitForEventsAsync(round * Wave);
                using var parallel = new SemaphoreSlim(64);
                await Task.WhenAll(Enumerable.Range(0, Wave).Select(async i =>
                {
                    await parallel.WaitAsync();
                    try
                    {
                        clients[i] = await gateway.ConnectAsync();

                        // The record header and no more (or nothing at all): the client then goes quiet.
                        if (headerBytes > 0)
                        {
                            await clients[i].SendAsync(hello.AsMemory(0, headerBytes));
                        }
                    }
                    finally
                    {
                        parallel.Release();
                    }
                })).WaitAsync(TimeSpan.FromMinutes(2));

                // Every one of them is cut at the hello deadline.
                await rejected.WaitAsync(TimeSpan.FromMinutes(2));
                return (GC.GetTotalAllocatedBytes(precise: true) - before) / Wave;
            }
            finally
            {
                foreach (Socket? client in clients)
                {
                    client?.Dispose();
                }
            }
        }

        await WaveAsync(1, 5); // warm-up: pools, JIT
        long baseline = HeapAfterCollect();
        long silent = await WaveAsync(2, 0);
        long halfSent = await WaveAsync(3, 5);
        long partial = await WaveAsync(4, 40);
        await gateway.WaitIdleAsync();
        long after = HeapAfterCollect();
        output.WriteLine($"allocated per connection (gateway and test client together): silent {silent} B, 5-byte hello {halfSent} B, 40-byte hello {partial} B; heap {baseline / 1024} KiB -> {after / 1024} KiB");

        Assert.Equal(4 * Wave, gateway.Listener.Counters.GetRejected(RejectionReason.HelloTimeout));

        // A pending hello costs about what a silent connection costs: no MaxHelloSize (16 KiB) buffer per connection.
        Assert.InRange(halfSent - silent, long.MinValue, 1024);
        Assert.InRange(partial - silent, long.MinValue, 1024);

        // The waves leave nothing behind.
        Assert.InRange(after - baseline, long.MinValue, 4L * 1024 * 1024);
    }

    private static long HeapAfterCollect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
