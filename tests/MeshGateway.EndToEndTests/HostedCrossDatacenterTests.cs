using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MeshGateway.Consul;
using MeshGateway.Consul.Tests.EndToEnd;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Testing;
using MeshGateway.Hosting;
using MeshGateway.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace MeshGateway.EndToEndTests;

[CollectionDefinition("hosted-e2e")]
public sealed class HostedEndToEndGroup : ICollectionFixture<TwoDatacenterFixture>;

/// <summary>
/// The hosted gateway as users run it (<c>AddMeshGateway().UseConsulCatalog()</c> in a Generic Host per datacenter:
/// it binds LAN 127.0.0.1 and WAN 127.0.0.2, registers itself with both tagged addresses and routes from the catalog)
/// between two WAN-joined real Consul datacenters; <c>web</c> dials <c>api</c> (behind <c>consul connect proxy</c>)
/// with <see cref="ConsulConnectDialer"/>. The gateways' own <c>meshgateway.bytes</c> counters prove each mode's path.
/// </summary>
[Collection("hosted-e2e")]
public sealed class HostedCrossDatacenterTests(TwoDatacenterFixture fixture, ITestOutputHelper output)
{
    private const int TransferBytes = 16 * 1024 * 1024;
    private static readonly byte[] s_pattern = [.. Enumerable.Range(0, 256 * 1024).Select(i => (byte)(i % 251))];

    [Fact]
    public async Task HostedGateways_ModesAtThreeLevels_CarryTheBytesOfTheMostSpecificModeOnly()
    {
        string td = fixture.TrustDomain;
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        await using var echo = new EchoServer();
        int sidecarPort = FreePorts.Next();
        await fixture.Dc2.PutJsonAsync("/v1/agent/service/register", $$$"""
            {"ID": "api", "Name": "api", "Address": "127.0.0.1", "Port": {{{echo.Port}}},
             "Connect": {"SidecarService": {"Port": {{{sidecarPort}}},
               "Proxy": {"Config": {"bind_address": "127.0.0.1", "bind_port": {{{sidecarPort}}} } },
               "Checks": [{"Name": "proxy listening", "TCP": "127.0.0.1:{{{sidecarPort}}}", "Interval": "1s"}] } } }
            """);
        await using ConsulConnectProxy proxy = ConsulConnectProxy.StartSidecarFor("api", fixture.Dc2.HttpAddress);
        await fixture.Dc1.PutJsonAsync("/v1/agent/service/register", """{"ID": "web", "Name": "web", "Address": "127.0.0.1", "Port": 9, "Connect": {"Native": true}}""");

        using var bytes = new GatewayBytes();
        (IHost gateway1, int gw1Lan, int gw1Wan) = await StartGatewayAsync(fixture.Dc1, bytes);
        try
        {
            (IHost gateway2, int gw2Lan, int gw2Wan) = await StartGatewayAsync(fixture.Dc2, bytes);
            try
            {
                MeshGatewayRuntime runtime1 = gateway1.Services.GetRequiredService<MeshGatewayRuntime>();
                MeshGatewayRuntime runtime2 = gateway2.Services.GetRequiredService<MeshGatewayRuntime>();
                IMeterFactory meters1 = gateway1.Services.GetRequiredService<IMeterFactory>();
                IMeterFactory meters2 = gateway2.Services.GetRequiredService<IMeterFactory>();
                string apiSni = $"api.default.dc2.internal.{td}";
                await ConsulWait.SignalAsync(
                    ct => Task.WhenAll(
                        runtime1.Routes.WaitForAsync(t => t.TryMatch(apiSni, out _), ct),
                        runtime2.Routes.WaitForAsync(t => t.TryMatch(apiSni, out Routing.Route? inDc2) && inDc2.Cluster.Endpoints.Any(e => e.Port == sidecarPort && e.IsHealthy), ct)),
                    "both hosted gateways routing api",
                    fixture.Dc2);

                await using var dialer = new ConsulConnectDialer(dc1, new ConsulConnectDialerOptions { Service = "web" });
                var api = new ConnectUpstream { Name = "api", Datacenter = "dc2" };
                var start = Stopwatch.StartNew();
                await dialer.StartAsync();
                output.WriteLine($"dialer start (agent self, first leaf signed by Consul, roots): {start.Elapsed.TotalMilliseconds:0} ms");

                async Task<(ConnectDialPath Path, long Dc1, long Dc2)> RunAsync(ConnectUpstream upstream, string label)
                {
                    await IdleAsync(runtime1, runtime2);
                    (long b1, long b2) = (bytes.Upstream(meters1), bytes.Upstream(meters2));
                    await using (ConsulConnectConnection warmUp = await dialer.DialAsync(upstream))
                    {
                        await ExchangeAsync(warmUp, 64 * 1024);   // JIT and first-use costs stay out of the measured dial
                    }

                    ConsulConnectConnection connection = await dialer.DialAsync(upstream);
                    var clock = Stopwatch.StartNew();
                    await using (connection)
                    {
                        await ExchangeAsync(connection, TransferBytes);
                        await connection.Stream.ShutdownAsync();
                    }

                    TimeSpan transfer = clock.Elapsed;
                    await IdleAsync(runtime1, runtime2);
                    var result = (connection.Path, bytes.Upstream(meters1) - b1, bytes.Upstream(meters2) - b2);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{label}: mode \"{result.Path.Resolution.Mode}\" from {result.Path.Resolution.DecidedBy}, {result.Path.DialKind} at {result.Path.Endpoint!.Address}:{result.Path.Endpoint.Port}; set-up {result.Path.SetupTime.TotalMilliseconds:0.0} ms; " +
                        $"16 MiB echoed at {TransferBytes / 1048576.0 / transfer.TotalSeconds:0} MiB/s each way; meshgateway.bytes upstream: dc1 +{result.Item2}, dc2 +{result.Item3}"));
                    return result;
                }

                await fixture.Dc1.PutJsonAsync("/v1/config", """{"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "local"}}""");
                await ConsulWait.ConfigReadAsync(dialer.CatalogWatcher!, c => c.ProxyDefaults?.MeshGateway?.Mode == "local", "proxy-defaults mode local");
                var local = await RunAsync(api, "proxy-defaults local");
                Assert.Equal((MeshGatewayModeLevel.ProxyDefaults, UpstreamDialKind.LocalGateways, gw1Lan), (local.Path.Resolution.DecidedBy, local.Path.DialKind, local.Path.Endpoint!.Port));
                Assert.True(local.Dc1 >= TransferBytes && local.Dc2 >= TransferBytes, $"dc1 +{local.Dc1}, dc2 +{local.Dc2}");

                await fixture.Dc1.PutJsonAsync("/v1/config", """{"Kind": "service-defaults", "Name": "web", "Protocol": "tcp", "MeshGateway": {"Mode": "remote"}}""");
                await ConsulWait.ConfigReadAsync(dialer.CatalogWatcher!, c => c.ServiceDefaults.TryGetValue("web", out ConsulServiceDefaults? web) && web.MeshGateway?.Mode == "remote", "service-defaults web mode remote");
                var remote = await RunAsync(api, "service-defaults remote");
                Assert.Equal((MeshGatewayModeLevel.ServiceDefaults, UpstreamDialKind.TargetGateways, "127.0.0.2", gw2Wan), (remote.Path.Resolution.DecidedBy, remote.Path.DialKind, remote.Path.Endpoint!.Address, remote.Path.Endpoint.Port));
                Assert.True(remote.Dc1 == 0 && remote.Dc2 >= TransferBytes, $"dc1 +{remote.Dc1}, dc2 +{remote.Dc2}");

                var none = await RunAsync(api with { MeshGateway = MeshGatewayMode.None }, "upstream none");
                Assert.Equal((MeshGatewayModeLevel.Upstream, UpstreamDialKind.TargetInstances, sidecarPort), (none.Path.Resolution.DecidedBy, none.Path.DialKind, none.Path.Endpoint!.Port));
                Assert.Equal((0L, 0L), (none.Dc1, none.Dc2));

                // Deny web → api: Consul's proxy refuses web's certificate after it crossed both hosted gateways.
                using (HttpClient raw = fixture.Dc1.CreateRawClient())
                {
                    using HttpResponseMessage created = await raw.PostAsync("/v1/connect/intentions", JsonContent.Create(new JsonObject { ["SourceName"] = "web", ["DestinationName"] = "api", ["Action"] = "deny" }));
                    Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
                }

                using (HttpClient raw2 = fixture.Dc2.CreateRawClient())
                {
                    string webId = ConsulSpiffeId.ForService(td, null, "dc1", "web");
                    // Polled: the authorize endpoint has no blocking query, and the intention travels between the agents (external).
                    await ConsulWait.UntilAsync(async () =>
                    {
                        using HttpResponseMessage answer = await raw2.PostAsync("/v1/agent/connect/authorize", JsonContent.Create(new JsonObject { ["Target"] = "api", ["ClientCertURI"] = webId }));
                        return JsonNode.Parse(await answer.Content.ReadAsStringAsync())?["Authorized"]?.GetValue<bool>() == false;
                    }, "the deny intention in dc2", fixture.Dc2);
                }

                await IdleAsync(runtime1, runtime2);
                (long d1, long d2) = (bytes.Upstream(meters1), bytes.Upstream(meters2));
                Exception refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
                {
                    await using ConsulConnectConnection connection = await dialer.DialAsync(api with { MeshGateway = MeshGatewayMode.Local });
                    await ExchangeAsync(connection, 1024);
                });
                output.WriteLine($"deny intention: {refused.GetType().Name}: {refused.Message}");
                Assert.True(refused is ConnectTlsException or IOException or EndOfStreamException, refused.ToString());
                await IdleAsync(runtime1, runtime2);
                Assert.True(bytes.Upstream(meters1) > d1 && bytes.Upstream(meters2) > d2, "the refused handshake crossed both gateways");
                // Polled: the log of Consul's built-in proxy, a child process with no other signal.
                await ConsulWait.UntilAsync(() => Task.FromResult(proxy.Log.Contains("authz call denied", StringComparison.Ordinal)), "Consul's proxy to log the denial", timeout: TimeSpan.FromSeconds(60));
            }
            finally
            {
                await gateway2.StopAsync();
                gateway2.Dispose();
            }
        }
        finally
        {
            await gateway1.StopAsync();
            gateway1.Dispose();
        }
    }

    private static async Task<(IHost Host, int Lan, int Wan)> StartGatewayAsync(ConsulAgent agent, GatewayBytes bytes)
    {
        int lan = FreePorts.Next();
        int wan = FreePorts.Next();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddMetrics();
        builder.Services.AddMeshGateway(o =>
        {
            o.Address = "127.0.0.1";
            o.Port = lan;
            o.LanAddress = $"127.0.0.1:{lan}";
            o.WanAddress = $"127.0.0.2:{wan}";
            o.NoDefaultBind = true;
            o.BindTaggedAddresses = true;
            o.DrainTimeout = TimeSpan.FromSeconds(2);
            o.Consul.Address = agent.HttpAddress.ToString();
        }).UseConsulCatalog();
        IHost host = builder.Build();
        bytes.Track(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync();
        return (host, lan, wan);
    }

    private static Task IdleAsync(MeshGatewayRuntime a, MeshGatewayRuntime b) =>
        ConsulWait.SignalAsync(ct => Task.WhenAll(a.WhenActiveConnectionsAtMostAsync(0, ct), b.WhenActiveConnectionsAtMostAsync(0, ct)), "the gateways to finish their connections", timeout: TimeSpan.FromSeconds(60));

    private static async Task ExchangeAsync(ConsulConnectConnection connection, int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Task writer = Task.Run(async () =>
        {
            for (int sent = 0; sent < count; sent += 64 * 1024)
            {
                await connection.Stream.WriteAsync(s_pattern.AsMemory(sent % 251, Math.Min(64 * 1024, count - sent)), timeout.Token);
            }
        });
        byte[] buffer = new byte[64 * 1024];
        for (int received = 0; received < count;)
        {
            int read = await connection.Stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                throw new EndOfStreamException($"The connection ended after {received} of {count} echoed bytes.");
            }

            if (!buffer.AsSpan(0, read).SequenceEqual(s_pattern.AsSpan(received % 251, read)))
            {
                throw new InvalidDataException($"Echoed bytes differ within [{received}, {received + read}).");
            }

            received += read;
        }

        await writer;
    }

    /// <summary>Sums each gateway host's <c>meshgateway.bytes</c> (direction <c>upstream</c>: client to upstream), told apart by the host's meter factory.</summary>
    private sealed class GatewayBytes : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<object, long> _upstream = [];
        private readonly HashSet<object> _factories = [];

        public GatewayBytes()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                lock (_upstream)
                {
                    if (instrument.Name == "meshgateway.bytes" && instrument.Meter.Scope is { } scope && _factories.Contains(scope))
                    {
                        listener.EnableMeasurementEvents(instrument);
                    }
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            {
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    if (tag.Key == "meshgateway.direction" && (string?)tag.Value == "upstream")
                    {
                        lock (_upstream)
                        {
                            _upstream[instrument.Meter.Scope!] = _upstream.GetValueOrDefault(instrument.Meter.Scope!) + value;
                        }
                    }
                }
            });
            _listener.Start();
        }

        public void Track(IMeterFactory factory)
        {
            lock (_upstream)
            {
                _factories.Add(factory);
            }

            _listener.RecordObservableInstruments();
        }

        public long Upstream(IMeterFactory factory)
        {
            lock (_upstream)
            {
                return _upstream.GetValueOrDefault(factory);
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
