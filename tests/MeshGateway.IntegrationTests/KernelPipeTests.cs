using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Splicing;

namespace MeshGateway.IntegrationTests;

/// <summary>Kernel pipes (<see cref="SpliceOptions.MaxKernelPipes"/>) come out of the descriptors the connection limit counts.</summary>
public sealed class KernelPipeTests
{
    [Fact]
    public async Task ConnectionLimit_SetsAsideTwoDescriptorsPerPipe()
    {
        const int Pipes = 100;
        await using TestGateway without = TestGateway.Start([], () => new GatewayListenerOptions { MaxConnections = 10_000_000 });
        await using TestGateway with = TestGateway.Start([], () => new GatewayListenerOptions { MaxConnections = 10_000_000, Splice = new SpliceOptions { MaxKernelPipes = Pipes } });
        if (with.Listener.FileDescriptorLimit is not long limit)
        {
            // No open-file limit to read (Windows): nothing is derived from it.
            Assert.Equal(10_000_000, with.Listener.ConnectionLimit);
            return;
        }

        long reserve = GatewayListenerOptions.DefaultFileDescriptorReserve + 1;
        Assert.Equal(Math.Min(10_000_000, (limit - reserve) / 2), without.Listener.ConnectionLimit);
        long pipes = OperatingSystem.IsLinux() ? Pipes : 0;
        Assert.Equal(Math.Min(10_000_000, (limit - reserve - (2 * pipes)) / 2), with.Listener.ConnectionLimit);
    }
}
