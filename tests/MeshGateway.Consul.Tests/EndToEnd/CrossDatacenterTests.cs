using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Testing;
using MeshGateway.Model;
using MeshGateway.Routing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.EndToEnd;

[CollectionDefinition("consul-e2e")]
public sealed class EndToEndGroup : ICollectionFixture<TwoDatacenterFixture>;

/// <summary>
/// Two WAN-joined real Consul datacenters, a MeshGateway in each (registered by the SDK with distinct LAN/WAN
/// addresses), <c>api</c> in dc2 behind Consul's built-in proxy, and <c>web</c> in dc1 dialling it with
/// <see cref="ConsulConnectDialer"/>: the gateways' byte counters prove which gateways each mode uses.
/// </summary>
[Collection("consul-e2e")]
public sealed class CrossDatacenterTests(TwoDatacenterFixture fixture, ITestOutputHelper output)
{
    private const int TransferBytes = 16 * 1024 * 1024;
    private const int MeasuredRuns = 3;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    // Byte i of a transfer is i % 251 (a prime, so chunk boundaries never line up with the pattern): slices of this
    // array starting at (offset % 251) are both what is written and what the echo must return.
    private static readonly byte[] s_pattern = [.. Enumerable.Range(0, 256 * 1024).Select(i => (byte)(i % 251))];

    [Fact]
    public async Task Dialer_ModesAtThreeLevels_BytesTakeTheMostSpecificModesPathAndDenyIsEnforcedBehindTheGateways()
    {
        string td = fixture.TrustDomain;
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        using ConsulClient dc2 = fixture.Dc2.CreateClient();

        // api in dc2: a plain TCP echo service behind Consul's own proxy, whose public listener is 127.0.0.1:sidecarPort.
        await using var echo = new EchoServer();
        int sidecarPort = FreePorts.Next();
        await fixture.Dc2.PutJsonAsync("/v1/agent/service/register", $$$"""
            {"ID": "api", "Name": "api", "Address": "127.0.0.1", "Port": {{{echo.Port}}},
             "Connect": {"SidecarService": {"Port": {{{sidecarPort}}},
               "Proxy": {"Config": {"bind_address": "127.0.0.1", "bind_port": {{{sidecarPort}}}}},
               "Checks": [{"Name": "proxy listening", "TCP": "127.0.0.1:{{{sidecarPort}}}", "Interval": "1s"}] } } }
            """);
        await using ConsulConnectProxy proxy = ConsulConnectProxy.StartSidecarFor("api", fixture.Dc2.HttpAddress);

        // web in dc1: Connect-native; its leaf comes from the dc1 agent.
        await fixture.Dc1.PutJsonAsync("/v1/agent/service/register", """{"ID": "web", "Name": "web", "Address": "127.0.0.1", "Port": 9, "Connect": {"Native": true}}""");
        await ConsulWait.UntilChangedAsync(q => dc1.GetHealthConnectAsync("api", q with { Datacenter = "dc2" }),
            entries => entries.Any(e => e.Service.Port == sidecarPort && e.WorstStatus == CatalogHealthStatus.Passing), "api's sidecar passing in dc2", fixture.Dc2);

        // The dialer's own client: its catalog watcher and long-polls (7 connections) must not starve those of the
        // registrar and route source sharing dc1 below (see "Agent connections" on ConsulConnectDialer).
        using ConsulClient dialerClient = fixture.Dc1.CreateClient();
        await using var dialer = new ConsulConnectDialer(dialerClient, new ConsulConnectDialerOptions { Service = "web" });
        await dialer.StartAsync();
        Assert.Equal(td, dialer.TrustDomain);
        var api = new ConnectUpstream { Name = "api", Datacenter = "dc2" };

        // No gateway registered yet: local needs one in dc1 and Consul would not fall back to dialling directly.
        ConnectNoGatewaysException noGateways = await Assert.ThrowsAsync<ConnectNoGatewaysException>(() => dialer.DialAsync(api with { MeshGateway = MeshGatewayMode.Local }));
        Assert.Equal((MeshGatewayModeKind.Local, MeshGatewayModeLevel.Upstream), (noGateways.Mode, noGateways.Path!.Resolution.DecidedBy));
        output.WriteLine("without gateways: " + noGateways.Message);

        // A MeshGateway per datacenter, LAN on 127.0.0.1 and WAN on 127.0.0.2, registered by the SDK. No key material.
        var gw1Lan = new IPEndPoint(IPAddress.Loopback, FreePorts.Next());
        var gw1Wan = new IPEndPoint(IPAddress.Parse("127.0.0.2"), FreePorts.Next());
        var gw2Lan = new IPEndPoint(IPAddress.Loopback, FreePorts.Next());
        var gw2Wan = new IPEndPoint(IPAddress.Parse("127.0.0.2"), FreePorts.Next());
        var routes1 = new RouteTableSource();
        var routes2 = new RouteTableSource();
        await using var gateway1 = new GatewayUnderTest("dc1", routes1, gw1Lan, gw1Wan);
        await using var gateway2 = new GatewayUnderTest("dc2", routes2, gw2Lan, gw2Wan);
        await using ConsulGatewayRegistrar registrar1 = new(dc1, GatewayRegistration(gw1Lan, gw1Wan));
        await using ConsulGatewayRegistrar registrar2 = new(dc2, GatewayRegistration(gw2Lan, gw2Wan));
        await registrar1.StartAsync();
        await registrar2.StartAsync();
        Assert.Null(registrar1.Registration.Connect);
        Assert.Null(registrar2.Registration.Connect);

        // Each gateway's routes come from the adapter: catalog watch → route table → the listener's RouteTableSource.
        await using var source1 = new ConsulRouteTableSource(dc1, routes1, new ConsulRouteTableSourceOptions { Watcher = ViewWaiter.FastOptions() });
        await using var source2 = new ConsulRouteTableSource(dc2, routes2, new ConsulRouteTableSourceOptions { Watcher = ViewWaiter.FastOptions() });
        await Task.WhenAll(source1.StartAsync(), source2.StartAsync());
        string apiSni = $"api.default.dc2.internal.{td}";
        await ConsulWait.SignalAsync(
            ct => Task.WhenAll(
                routes1.WaitForAsync(t => t.TryMatch(apiSni, out Route? viaDc1) && viaDc1.Kind == RouteKind.Wildcard && viaDc1.Cluster.Endpoints.Any(e => e.EndPoint!.Equals(gw2Wan)), ct),
                routes2.WaitForAsync(t => t.TryMatch(apiSni, out Route? inDc2) && inDc2.Kind == RouteKind.Exact
                    && inDc2.Cluster.Endpoints.Any(e => e.EndPoint!.Equals(new IPEndPoint(IPAddress.Loopback, sidecarPort)) && e.IsHealthy), ct)),
            "both gateways' route tables from the adapter",
            fixture.Dc2);
        output.WriteLine("dc1 gateway routes: " + string.Join("; ", gateway1.Routes.Routes.Select(r => $"{r.Pattern} -> {string.Join(",", r.Cluster.Endpoints.Select(e => e.EndPoint))}")));
        output.WriteLine("dc2 gateway routes: " + string.Join("; ", gateway2.Routes.Routes.Select(r => $"{r.Pattern} -> {string.Join(",", r.Cluster.Endpoints.Select(e => e.EndPoint))}")));

        try
        {
            await ModesAndDenyAsync(dialer, api, proxy, gateway1, gateway2, gw1Lan, gw2Wan, sidecarPort);
        }
        catch
        {
            output.WriteLine("dialer's watcher: " + dialer.CatalogWatcher?.Diagnostics() + " errors=" + dialer.CatalogWatcher?.ErrorCount);
            output.WriteLine($"dc1 gateway: routed {gateway1.Routed}, rejected {gateway1.Rejected} ({gateway1.LastRejection}); dc2 gateway: routed {gateway2.Routed}, rejected {gateway2.Rejected} ({gateway2.LastRejection})");
            output.WriteLine("consul connect proxy log:\n" + proxy.Log);
            throw;
        }
    }

    private async Task ModesAndDenyAsync(ConsulConnectDialer dialer, ConnectUpstream api, ConsulConnectProxy proxy, GatewayUnderTest gateway1, GatewayUnderTest gateway2, IPEndPoint gw1Lan, IPEndPoint gw2Wan, int sidecarPort)
    {
        string td = fixture.TrustDomain;

        // 1. proxy-defaults mode local: dc1's gateway (LAN), then dc2's gateway (WAN), then Consul's proxy.
        await fixture.Dc1.PutJsonAsync("/v1/config", """{"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "local"}}""");
        await ConsulWait.ConfigReadAsync(dialer.CatalogWatcher!, c => c.ProxyDefaults?.MeshGateway?.Mode == "local", "proxy-defaults mode local");
        Run local = await RunAsync(dialer, api, gateway1, gateway2, "proxy-defaults local");
        Assert.Equal((MeshGatewayModeLevel.ProxyDefaults, MeshGatewayModeKind.Local, UpstreamDialKind.LocalGateways), (local.Path.Resolution.DecidedBy, local.Path.Resolution.EffectiveMode, local.Path.DialKind));
        Assert.Equal(("127.0.0.1", gw1Lan.Port), (local.Path.Endpoint!.Address, local.Path.Endpoint.Port));
        Assert.True(local.Gateway1Bytes >= TransferBytes, $"dc1 gateway carried {local.Gateway1Bytes} B");
        Assert.True(local.Gateway2Bytes >= TransferBytes, $"dc2 gateway carried {local.Gateway2Bytes} B");

        // 2. service-defaults for web mode remote (more specific than proxy-defaults): only dc2's gateway, at its WAN address.
        await fixture.Dc1.PutJsonAsync("/v1/config", """{"Kind": "service-defaults", "Name": "web", "Protocol": "tcp", "MeshGateway": {"Mode": "remote"}}""");
        await ConsulWait.ConfigReadAsync(dialer.CatalogWatcher!, c => c.ServiceDefaults.TryGetValue("web", out ConsulServiceDefaults? web) && web.MeshGateway?.Mode == "remote", "service-defaults web mode remote");
        Run remote = await RunAsync(dialer, api, gateway1, gateway2, "service-defaults remote");
        Assert.Equal((MeshGatewayModeLevel.ServiceDefaults, MeshGatewayModeKind.Remote, UpstreamDialKind.TargetGateways), (remote.Path.Resolution.DecidedBy, remote.Path.Resolution.EffectiveMode, remote.Path.DialKind));
        Assert.Equal(("127.0.0.2", gw2Wan.Port), (remote.Path.Endpoint!.Address, remote.Path.Endpoint.Port));
        Assert.Equal(0, remote.Gateway1Bytes);
        Assert.True(remote.Gateway2Bytes >= TransferBytes, $"dc2 gateway carried {remote.Gateway2Bytes} B");

        // 3. the upstream definition says none (the most specific level): straight to the proxy, no gateway carries a byte.
        Run none = await RunAsync(dialer, api with { MeshGateway = MeshGatewayMode.None }, gateway1, gateway2, "upstream none");
        Assert.Equal((MeshGatewayModeLevel.Upstream, MeshGatewayModeKind.None, UpstreamDialKind.TargetInstances), (none.Path.Resolution.DecidedBy, none.Path.Resolution.EffectiveMode, none.Path.DialKind));
        Assert.Equal(("127.0.0.1", sidecarPort), (none.Path.Endpoint!.Address, none.Path.Endpoint.Port));
        Assert.Equal((0L, 0L), (none.Gateway1Bytes, none.Gateway2Bytes));

        // 4. An intention denying web → api: Consul's proxy in dc2 refuses web's certificate after it crossed both gateways untouched.
        using (HttpClient raw = fixture.Dc1.CreateRawClient())
        {
            using HttpResponseMessage created = await raw.PostAsync("/v1/connect/intentions", JsonContent.Create(new JsonObject { ["SourceName"] = "web", ["DestinationName"] = "api", ["Action"] = "deny" }));
            Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        }

        string webId = ConsulSpiffeId.ForService(td, null, "dc1", "web");
        using (HttpClient raw2 = fixture.Dc2.CreateRawClient())
        {
            // Polled: the authorize endpoint has no blocking query, and the intention travels between the agents (external).
            await ConsulWait.UntilAsync(async () =>
            {
                using HttpResponseMessage answer = await raw2.PostAsync("/v1/agent/connect/authorize", JsonContent.Create(new JsonObject { ["Target"] = "api", ["ClientCertURI"] = webId }));
                JsonNode? body = JsonNode.Parse(await answer.Content.ReadAsStringAsync());
                return body?["Authorized"]?.GetValue<bool>() == false;
            }, "the deny intention to reach dc2's agent", fixture.Dc2);
        }

        (long g1, long g2) = (gateway1.BytesFromClient, gateway2.BytesFromClient);
        Exception refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using ConsulConnectConnection connection = await dialer.DialAsync(api with { MeshGateway = MeshGatewayMode.Local });
            Assert.Equal(UpstreamDialKind.LocalGateways, connection.Path.DialKind);
            await ExchangeAsync(connection.Stream, 1024);
        });
        output.WriteLine($"deny intention: {refused.GetType().Name}: {refused.Message}");
        // TLS 1.3 lets the client finish before the server judges its certificate, so the refusal may also surface on the first read.
        Assert.True(refused is ConnectTlsException { ServerRejectedClient: true } or IOException or EndOfStreamException, refused.ToString());
        await WaitIdleAsync(gateway1, gateway2);
        Assert.True(gateway1.BytesFromClient > g1 && gateway2.BytesFromClient > g2, "the refused handshake crossed both gateways");
        // Polled: the log of Consul's built-in proxy, a child process with no other signal.
        await ConsulWait.UntilAsync(() => Task.FromResult(proxy.Log.Contains("authz call denied", StringComparison.Ordinal)), "Consul's proxy to log the denial", timeout: s_wait);
        Assert.False(proxy.HasExited, proxy.Log);
    }

    private static ConsulGatewayRegistrationOptions GatewayRegistration(IPEndPoint lan, IPEndPoint wan) => new()
    {
        LanAddress = lan.Address.ToString(),
        LanPort = lan.Port,
        WanAddress = wan.Address.ToString(),
        WanPort = wan.Port,
        BindTaggedAddresses = true,
        CheckInterval = TimeSpan.FromSeconds(1),
    };

    private async Task<Run> RunAsync(ConsulConnectDialer dialer, ConnectUpstream upstream, GatewayUnderTest gateway1, GatewayUnderTest gateway2, string label)
    {
        await WaitIdleAsync(gateway1, gateway2);
        (long g1, long g2) = (gateway1.BytesFromClient, gateway2.BytesFromClient);

        // One short exchange first so that the measured dial does not pay for JIT and first-use costs on this path.
        await using (ConsulConnectConnection warmUp = await dialer.DialAsync(upstream))
        {
            await ExchangeAsync(warmUp.Stream, 64 * 1024);
        }

        // Three measured connections; the medians are reported (one run on a shared 2-core machine is noisy).
        var setups = new List<double>();
        var rates = new List<double>();
        ConnectDialPath? path = null;
        for (int i = 0; i < MeasuredRuns; i++)
        {
            ConsulConnectConnection connection = await dialer.DialAsync(upstream);
            await using (connection)
            {
                TimeSpan transfer = await ExchangeAsync(connection.Stream, TransferBytes);
                await connection.Stream.ShutdownAsync();
                setups.Add(connection.Path.SetupTime.TotalMilliseconds);
                rates.Add(TransferBytes / (1024.0 * 1024.0) / transfer.TotalSeconds);
                path = connection.Path;
            }
        }

        await WaitIdleAsync(gateway1, gateway2);
        var run = new Run(path!, gateway1.BytesFromClient - g1, gateway2.BytesFromClient - g2);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}: mode \"{run.Path.Resolution.Mode}\" from {run.Path.Resolution.DecidedBy}, {run.Path.DialKind} at {run.Path.Endpoint!.Address}:{run.Path.Endpoint.Port}, SNI {run.Path.Sni}, {run.Path.Protocol}; " +
            $"set-up median {Median(setups):0.0} ms [{string.Join(", ", setups.Select(v => v.ToString("0.0", CultureInfo.InvariantCulture)))}]; " +
            $"16 MiB echo median {Median(rates):0} MiB/s each way [{string.Join(", ", rates.Select(v => v.ToString("0", CultureInfo.InvariantCulture)))}]; " +
            $"dc1 gateway +{run.Gateway1Bytes} B, dc2 gateway +{run.Gateway2Bytes} B from the client"));
        output.WriteLine("  " + run.Path.Resolution.Explanation);
        return run;
    }

    /// <summary>Writes <paramref name="count"/> patterned bytes while reading the echo back, checking every byte.</summary>
    private static async Task<TimeSpan> ExchangeAsync(SslStream stream, int count)
    {
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(s_wait);
        Task writer = Task.Run(async () =>
        {
            const int Chunk = 64 * 1024;
            for (int sent = 0; sent < count; sent += Chunk)
            {
                await stream.WriteAsync(s_pattern.AsMemory(sent % 251, Math.Min(Chunk, count - sent)), timeout.Token);
            }

            await stream.FlushAsync(timeout.Token);
        });

        byte[] buffer = new byte[64 * 1024];
        int received = 0;
        while (received < count)
        {
            int read = await stream.ReadAsync(buffer, timeout.Token);
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
        return clock.Elapsed;
    }

    private static Task WaitIdleAsync(GatewayUnderTest gateway1, GatewayUnderTest gateway2) =>
        ConsulWait.SignalAsync(ct => Task.WhenAll(gateway1.WhenIdleAsync(ct), gateway2.WhenIdleAsync(ct)), "the gateways to finish their connections", timeout: s_wait);

    private static double Median(List<double> values)
    {
        List<double> sorted = [.. values.Order()];
        return sorted[sorted.Count / 2];
    }

    private sealed record Run(ConnectDialPath Path, long Gateway1Bytes, long Gateway2Bytes);
}
