using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MeshGateway.Consul;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Preflight;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace MeshGateway.Tests.Hosting;

/// <summary>
/// WAN federation through our gateways on two real Consul 1.8.7 servers (docs/consul-watch.md, "WAN federation"): TLS from
/// <c>consul tls</c>, <c>enable_mesh_gateway_wan_federation</c>, dc2 given only <c>primary_gateways</c> (no WAN join) and both
/// advertising an unreachable WAN address (192.0.2.1, TEST-NET-1), so that every server-to-server byte between the
/// datacenters must cross the two gateways.
/// </summary>
public sealed class WanFederationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Federation = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task TwoDatacenters_FederateOnlyThroughOurGateways_CarryRpcAndConnectTraffic_AndRecoverAfterAGatewayRestart()
    {
        using ConsulTlsMaterial tls = await ConsulTlsMaterial.CreateForWanFederationAsync("dc1", "dc2");
        int port1 = FreePorts.Next();
        int port2 = FreePorts.Next();
        await using ConsulAgent dc1 = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1") { ExtraConfig = ServerConfig(tls, "dc1", primaryGateway: null) });
        using IHost gateway1 = Gateway(dc1, port1);
        await gateway1.StartAsync();
        await using ConsulAgent dc2 = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc2") { PrimaryDatacenter = "dc1", ExtraConfig = ServerConfig(tls, "dc2", primaryGateway: $"127.0.0.1:{port1}") });
        IHost gateway2 = Gateway(dc2, port2);
        try
        {
            await gateway2.StartAsync();

            // Federation: both servers in dc1's WAN pool, then RPC across it both ways.
            await EventuallyAsync(async () => (await dc1.GetJsonAsync("/v1/agent/members?wan=1"))!.AsArray().Count(m => m!["Status"]!.GetValue<int>() == 1) == 2, "both servers alive in dc1's WAN pool");
            await EventuallyAsync(() => SucceedsAsync(() => dc1.GetJsonAsync("/v1/catalog/services?dc=dc2")), "a catalog read from dc1 with ?dc=dc2");
            string value = "through-gateways-" + Guid.NewGuid().ToString("N")[..8];
            await EventuallyAsync(() => SucceedsAsync(() => dc2.PutJsonAsync("/v1/kv/mg-wan-fed?dc=dc1", $"\"{value}\"")), "a KV write from dc2 with ?dc=dc1");
            Assert.Equal($"\"{value}\"", (await dc1.GetJsonAsync("/v1/kv/mg-wan-fed"))![0]!["Value"] is { } v ? System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(v.GetValue<string>())) : null);

            // The preflight of this mode finds every server setting right (TLS, the flag, primary_gateways on the secondary).
            foreach (ConsulAgent agent in new[] { dc1, dc2 })
            {
                using ConsulClient client = agent.CreateClient();
                ConsulPreflightReport preflight = await ConsulPreflight.RunAsync(client, new ConsulPreflightOptions { WanFederation = true });
                Assert.DoesNotContain(preflight.Findings, f => f.Check == PreflightCheck.WanFederation);
                Assert.Equal(true, preflight.Facts.MeshGatewayWanFederation);
            }

            // The servers' traffic crossed our gateways on the server routes, in both directions.
            RouteTable table1 = Runtime(gateway1).Routes.Current;
            RouteTable table2 = Runtime(gateway2).Routes.Current;
            output.WriteLine($"dc1 gateway: {Describe(table1)}");
            output.WriteLine($"dc2 gateway: {Describe(table2)}");
            Assert.True(ServerConnections(table1, "dc1") > 0, "no connection reached dc1's servers through dc1's gateway");
            Assert.True(ServerConnections(table2, "dc2") > 0, "no connection reached dc2's servers through dc2's gateway");
            Assert.True(Connections(table1, "*.server.dc2.consul") + Connections(table2, "*.server.dc1.consul") > 0, "no server connection went from one gateway to the other");

            // Connect data across the datacenters: local mode (client → dc1 gateway → dc2 gateway → instance) and remote
            // mode (client → dc2 gateway → instance). A Connect-native echo instance in dc2 stands in for a sidecar.
            string trustDomain = (await dc1.GetJsonAsync("/v1/connect/ca/roots"))!["TrustDomain"]!.GetValue<string>();
            string sni = $"api.default.dc2.internal.{trustDomain}";
            byte[] hello = TestHello.Create(sni);
            await using RawBackend api = RawBackend.Echo(hello);
            await dc2.PutJsonAsync("/v1/agent/service/register", $$$"""{"ID":"api-1","Name":"api","Address":"127.0.0.1","Port":{{{api.EndPoint.Port}}},"Connect":{"Native":true}}""");
            await Task.WhenAll(
                Runtime(gateway1).Routes.WaitForAsync(t => t.TryMatch(sni, out _)),
                Runtime(gateway2).Routes.WaitForAsync(t => t.TryMatch(sni, out _))).WaitAsync(Federation);
            foreach ((string mode, int port) in new[] { ("local", port1), ("remote", port2) })
            {
                using Socket client = await HostFixture.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), hello);
                await HostFixture.EchoAsync(client, System.Text.Encoding.UTF8.GetBytes("connect data in " + mode + " mode"));
            }

            // Without dc2's gateway, dc1 cannot reach dc2 (no direct path exists) ...
            await gateway2.StopAsync();
            gateway2.Dispose();
            await EventuallyAsync(async () => !await SucceedsAsync(() => dc1.GetJsonAsync("/v1/catalog/services?dc=dc2")), "cross-datacenter RPC to fail without dc2's gateway");

            // ... and with it back on the same address, federation recovers without restarting Consul.
            gateway2 = Gateway(dc2, port2);
            await gateway2.StartAsync();
            await EventuallyAsync(() => SucceedsAsync(() => dc1.GetJsonAsync("/v1/catalog/services?dc=dc2")), "cross-datacenter RPC after dc2's gateway restarted");
            await EventuallyAsync(() => SucceedsAsync(() => dc2.PutJsonAsync("/v1/kv/mg-wan-fed-again?dc=dc1", "\"again\"")), "a KV write from dc2 with ?dc=dc1 after the restart");
        }
        finally
        {
            await gateway2.StopAsync();
            gateway2.Dispose();
            await gateway1.StopAsync();
        }
    }

    private static JsonObject ServerConfig(ConsulTlsMaterial tls, string dc, string? primaryGateway)
    {
        var config = new JsonObject
        {
            ["connect"] = new JsonObject { ["enabled"] = true, ["enable_mesh_gateway_wan_federation"] = true },
            ["ca_file"] = tls.CaFile,
            ["cert_file"] = tls.ServerCertificateFileOf(dc),
            ["key_file"] = tls.ServerKeyFileOf(dc),
            ["verify_incoming"] = true,
            ["verify_outgoing"] = true,
            ["verify_server_hostname"] = true,
            // Unreachable: a direct server-to-server dial across the datacenters would fail.
            ["advertise_addr_wan"] = "192.0.2.1",
        };
        if (primaryGateway is not null)
        {
            config["primary_gateways"] = new JsonArray(primaryGateway);
        }

        return config;
    }

    private static IHost Gateway(ConsulAgent agent, int port) => HostFixture.Build(
        g => g.UseConsulCatalog(c =>
        {
            c.Address = agent.HttpAddress.ToString();
            c.WanFederation = true;
        }),
        new Dictionary<string, string?>
        {
            ["MeshGateway:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["MeshGateway:WanAddress"] = $"127.0.0.1:{port}",
            ["MeshGateway:PropagationDelay"] = "00:00:00",
            // Servers keep their pooled connections open for good: a stop would wait out the whole drain for nothing.
            ["MeshGateway:DrainTimeout"] = "00:00:01",
        });

    private static MeshGatewayRuntime Runtime(IHost host) => host.Services.GetRequiredService<MeshGatewayRuntime>();

    private static long Connections(RouteTable table, string pattern)
    {
        Route? route = table.Routes.FirstOrDefault(r => r.Pattern == pattern);
        return route is null ? 0 : Enumerable.Range(0, route.Cluster.Endpoints.Count).Sum(i => route.Cluster.GetState(i).Connections);
    }

    /// <summary>Connections through the local server routes: by node name and the bare <c>server.&lt;dc&gt;.consul</c>.</summary>
    private static long ServerConnections(RouteTable table, string dc) =>
        table.Routes.Where(r => r.Kind == RouteKind.Exact && r.Pattern.EndsWith($"server.{dc}.consul", StringComparison.Ordinal)).Sum(r => Connections(table, r.Pattern));

    private static string Describe(RouteTable table) =>
        string.Join(", ", table.Routes.Where(r => r.Pattern.Contains("server.", StringComparison.Ordinal)).Select(r => $"{r.Pattern} ({Connections(table, r.Pattern)} connections)"));

    private static async Task<bool> SucceedsAsync(Func<Task> call)
    {
        try
        {
            await call();
            return true;
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Polls <paramref name="probe"/> every 250 ms until it holds, for at most <see cref="Federation"/>: the Consul servers
    /// federate, replicate and retry on their own schedules and signal none of it to the test.
    /// </summary>
    private async Task EventuallyAsync(Func<Task<bool>> probe, string what)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        await PollAsync(probe, what);
        output.WriteLine($"{System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds,6:0.0} s until {what}");
    }

    private static async Task PollAsync(Func<Task<bool>> probe, string what)
    {
        using var deadline = new CancellationTokenSource(Federation);
        while (!await probe())
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Waited {Federation.TotalSeconds:0} s for {what}.");
            }
        }
    }
}
