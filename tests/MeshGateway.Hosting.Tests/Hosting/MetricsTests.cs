using System.Diagnostics.Metrics;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using MeshGateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

public sealed class MetricsTests
{
    [Fact]
    public async Task Gateway_Metrics_ComeFromTheHostsMeterFactory()
    {
        const string sni = "web.default.dc1.internal.m.consul";
        byte[] hello = TestHello.Create(sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(g => g.UseStaticRoutes(new Route(sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))));
        IMeterFactory factory = host.Services.GetRequiredService<IMeterFactory>();
        long routed = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == GatewayMetricNames.MeterName && ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == GatewayMetricNames.RoutedConnections)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref routed, value));
        listener.Start();

        await host.StartAsync();
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "m"u8.ToArray());
        }

        await host.StopAsync();
        Assert.Equal(1, Interlocked.Read(ref routed));
    }
}
