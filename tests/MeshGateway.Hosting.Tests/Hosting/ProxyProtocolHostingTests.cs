using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

public sealed class ProxyProtocolHostingTests
{
    private const string Sni = "web.default.dc1.internal.p.consul";

    [Fact]
    public async Task ProxyProtocolListeners_Default_RequiresTheHeaderAndRoutesAfterIt()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Named("web", hello);
        using IHost host = HostFixture.Build(
            g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))),
            options: o => o.ProxyProtocolListeners.Add("default"));
        await host.StartAsync();
        try
        {
            IPEndPoint gateway = HostFixture.GatewayEndPoint(host);
            // PROXY v2: signature, version 2 + PROXY, TCP over IPv4, 12 address bytes: 203.0.113.9:1234 -> 127.0.0.1:443.
            byte[] header =
            [
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C,
                203, 0, 113, 9, 127, 0, 0, 1, 0x04, 0xD2, 0x01, 0xBB,
            ];
            using (Socket client = await HostFixture.ConnectAsync(gateway, [.. header, .. hello]))
            {
                Assert.Equal("web", await HostFixture.ReadNameAsync(client));
            }

            // Without the header the connection is refused and counted.
            using (Socket client = await HostFixture.ConnectAsync(gateway, hello))
            {
                try
                {
                    Assert.Empty(await RawBackend.ReadToEndAsync(client).WaitAsync(HostFixture.SafetyTimeout));
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
                {
                }
            }

            GatewayCounters counters = host.Services.GetRequiredService<MeshGatewayRuntime>().Counters!;
            Assert.Equal(1, counters.Routed);
            Assert.Equal(1, counters.GetRejected(RejectionReason.ProxyHeaderMissing));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task ProxyProtocolListeners_UnknownName_StartFailsNamingIt()
    {
        using IHost host = HostFixture.Build(
            g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(new IPEndPoint(IPAddress.Loopback, 9))]))),
            options: o => o.ProxyProtocolListeners.Add("wna"));
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains("'wna'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("default", ex.Message, StringComparison.Ordinal);
    }
}
