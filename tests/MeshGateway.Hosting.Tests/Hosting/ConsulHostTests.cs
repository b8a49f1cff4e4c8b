using System.Net.Sockets;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using MeshGateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Tests.Hosting;

/// <summary>The hosted gateway against a real Consul dev agent: routes from the catalog, registration while listening.</summary>
public sealed class ConsulHostTests
{
    [Fact]
    public async Task UseConsulCatalog_RealAgent_RoutesCatalogServiceRegistersAndDeregisters()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        JsonNode roots = (await agent.GetJsonAsync("/v1/connect/ca/roots"))!;
        string trustDomain = roots["TrustDomain"]!.GetValue<string>();
        string sni = $"api.default.dc1.internal.{trustDomain}";
        byte[] hello = TestHello.Create(sni);
        await using RawBackend api = RawBackend.Echo(hello);
        await agent.PutJsonAsync("/v1/agent/service/register", $$$"""{"ID":"api-1","Name":"api","Address":"127.0.0.1","Port":{{{api.EndPoint.Port}}},"Connect":{"Native":true}}""");

        var logs = new ListLogger();
        using IHost host = HostFixture.Build(g =>
        {
            g.UseConsulCatalog(c => c.Address = agent.HttpAddress.ToString());
            g.Services.AddLogging(l => l.AddProvider(new ListLoggerProvider(logs)).SetMinimumLevel(LogLevel.Information));
        });
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();

        // The first catalog view arrives asynchronously (blocking queries); bounded wait on the table's change signal.
        Route? route;
        using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
        {
            RouteTable table = await runtime.Routes.WaitForAsync(t => t.TryMatch(sni, out _), deadline.Token);
            Assert.True(table.TryMatch(sni, out route));
        }

        Assert.True(runtime.IsReady);
        Assert.Equal(api.EndPoint, Assert.Single(route.Cluster.Endpoints).EndPoint);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, "through consul routes"u8.ToArray());
        }

        // Peering is auto-detected: 1.8.7 has none (/v1/peerings is a 404), which is said once at Information, never as an error.
        using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
        {
            await logs.WaitForAsync(e => e.EventName == "ConsulPeeringUnavailable", deadline.Token);
        }

        Assert.Single(logs.Entries, e => e.EventName == "ConsulPeeringUnavailable" && e.Level == LogLevel.Information);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning && (e.Message.Contains("peering", StringComparison.OrdinalIgnoreCase)
            || e.Message.Contains("exported-services", StringComparison.Ordinal) || e.Message.Contains("config/mesh", StringComparison.Ordinal)));

        JsonNode registered = (await agent.GetJsonAsync("/v1/agent/service/mesh-gateway"))!;
        Assert.Equal("mesh-gateway", registered["Kind"]!.GetValue<string>());
        Assert.Equal(HostFixture.GatewayEndPoint(host).Port, registered["Port"]!.GetValue<int>());

        await host.StopAsync();
        JsonNode services = (await agent.GetJsonAsync("/v1/agent/services"))!;
        Assert.Null(services["mesh-gateway"]);
        Assert.NotNull(services["api-1"]);
    }
}
