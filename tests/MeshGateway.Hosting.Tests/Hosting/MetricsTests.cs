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

    [Fact]
    public async Task Bytes_AreCountedWhileATunnelIsOpen_AndExactlyOnceInTotal()
    {
        const string sni = "tunnel.default.dc1.internal.m.consul";
        byte[] hello = TestHello.Create(sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        using IHost host = HostFixture.Build(g => g.UseStaticRoutes(new Route(sni, new UpstreamCluster("tunnel", [new UpstreamEndpoint(backend.EndPoint)]))));
        IMeterFactory factory = host.Services.GetRequiredService<IMeterFactory>();
        long upstream = 0, downstream = 0;
        var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name is GatewayMetricNames.Bytes or GatewayMetricNames.ConnectionDuration)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            Assert.Equal(new KeyValuePair<string, object?>(GatewayMetricNames.ListenerTag, "default"), tags[1]);
            if ((string?)tags[0].Value == "upstream")
            {
                Interlocked.Add(ref upstream, value);
            }
            else
            {
                Interlocked.Add(ref downstream, value);
            }

            if (Interlocked.Read(ref downstream) >= 256 * 1024)
            {
                flowing.TrySetResult();
            }
        });
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => closed.TrySetResult());
        listener.Start();
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();

        byte[] payload = new byte[512 * 1024];
        Random.Shared.NextBytes(payload);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, payload);

            // Counted while the tunnel is still open: not only when it closes.
            await flowing.Task.WaitAsync(HostFixture.SafetyTimeout);
            Assert.Equal(1, runtime.ActiveConnections);
            Assert.False(closed.Task.IsCompleted);
        }

        await closed.Task.WaitAsync(HostFixture.SafetyTimeout);
        Assert.Equal(hello.Length + payload.Length, Interlocked.Read(ref upstream));
        Assert.Equal(payload.Length, Interlocked.Read(ref downstream));
        await host.StopAsync();
    }
}
