using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Testing;

namespace MeshGateway.Tool.Tests;

/// <summary>The command against a real Consul 1.8.7 dev agent: the dry-run plan, registration, traffic, SIGTERM.</summary>
public sealed class ConsulCommandTests
{
    [Fact]
    public async Task DryRun_RealAgent_PrintsListenersRegistrationRoutesAclAndPreflightWritingNothing()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        (string sni, _) = await RegisterApiAsync(agent, new IPEndPoint(IPAddress.Loopback, 9999));
        int lanPort = FreePorts.Next(), wanPort = FreePorts.Next();

        using ToolProcess tool = await ToolProcess.RunAsync(
            "-gateway=mesh", "-register", "-service", "edge-gw", "-address", $"127.0.0.1:{lanPort}", "-wan-address", $"127.0.0.2:{wanPort}",
            "-http-addr", agent.HttpAddress.ToString(), "--dry-run");
        Assert.True(tool.Process.ExitCode == 0, tool.Output);
        JsonNode plan = JsonNode.Parse(tool.StandardOutput)!;

        Assert.Equal("consul", plan["mode"]!.GetValue<string>());

        // Both addresses are bindable here, so (as Consul's -register) the tagged addresses are bound instead of the default.
        Assert.Equal(
            [("lan", $"127.0.0.1:{lanPort}"), ("wan", $"127.0.0.2:{wanPort}")],
            plan["listeners"]!.AsArray().Select(l => (l!["name"]!.GetValue<string>(), l["address"]!.GetValue<string>())));

        JsonNode registration = plan["registration"]!;
        Assert.Equal("mesh-gateway", registration["Kind"]!.GetValue<string>());
        Assert.Equal("edge-gw", registration["Name"]!.GetValue<string>());
        Assert.Equal("127.0.0.2", registration["TaggedAddresses"]!["wan"]!["Address"]!.GetValue<string>());
        Assert.Equal(wanPort, registration["TaggedAddresses"]!["wan"]!["Port"]!.GetValue<int>());
        Assert.True(registration["Proxy"]!["Config"]!["envoy_gateway_bind_tagged_addresses"]!.GetValue<bool>());

        JsonNode route = Assert.Single(plan["routes"]!.AsArray(), r => r!["sni"]!.GetValue<string>() == sni)!;
        Assert.Equal("127.0.0.1:9999", Assert.Single(route["endpoints"]!.AsArray())!["address"]!.GetValue<string>());

        string hcl = plan["acl"]!["hcl"]!.GetValue<string>();
        Assert.Contains("service \"edge-gw\"", hcl, StringComparison.Ordinal);
        Assert.Contains("write", hcl, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Object, JsonSerializer.SerializeToElement(plan["acl"]!["rules"]).ValueKind);
        Assert.Equal("dc1", plan["preflight"]!["datacenter"]!.GetValue<string>());
        Assert.Equal("1.8.7", plan["preflight"]!["version"]!.GetValue<string>());

        // A dry run writes nothing.
        JsonNode services = (await agent.GetJsonAsync("/v1/agent/services"))!;
        Assert.Null(services["edge-gw"]);
        Assert.NotNull(services["api-1"]);
    }

    [Fact]
    public async Task Register_RealAgent_TaggedAddressesMetaTrafficThenSigtermDeregistersAndDrains()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        string trustDomain = (await agent.GetJsonAsync("/v1/connect/ca/roots"))!["TrustDomain"]!.GetValue<string>();
        byte[] hello = TestHello.Create($"api.default.dc1.internal.{trustDomain}");
        await using RawBackend api = RawBackend.Echo(hello);
        await RegisterApiAsync(agent, api.EndPoint);
        int lanPort = FreePorts.Next(), wanPort = FreePorts.Next();

        // The configuration file carries what has no flag (meta, the stop timings); the flags carry the rest.
        string config = Path.Combine(Path.GetTempPath(), $"mg-tool-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, """{"MeshGateway":{"PropagationDelay":"00:00:00","DrainTimeout":"00:00:30","Consul":{"Meta":{"team":"edge"}}}}""");
        try
        {
            using ToolProcess tool = ToolProcess.Start(
                ["-register", "-address", $"127.0.0.1:{lanPort}", "-wan-address", $"127.0.0.2:{wanPort}", "--config", config],
                new Dictionary<string, string> { ["CONSUL_HTTP_ADDR"] = agent.HttpAddress.ToString() });
            string ready = await tool.WaitForLineAsync("meshgateway: ready");
            Assert.Contains($"lan:127.0.0.1:{lanPort}", ready, StringComparison.Ordinal);
            Assert.Contains($"wan:127.0.0.2:{wanPort}", ready, StringComparison.Ordinal);

            // The agent's own view (the catalog follows through the agent's anti-entropy sync).
            JsonNode entry = (await agent.GetJsonAsync("/v1/agent/service/mesh-gateway"))!;
            Assert.Equal("mesh-gateway", entry["Kind"]!.GetValue<string>());
            Assert.Equal("127.0.0.1", entry["TaggedAddresses"]!["lan"]!["Address"]!.GetValue<string>());
            Assert.Equal(lanPort, entry["TaggedAddresses"]!["lan"]!["Port"]!.GetValue<int>());
            Assert.Equal("127.0.0.2", entry["TaggedAddresses"]!["wan"]!["Address"]!.GetValue<string>());
            Assert.Equal(wanPort, entry["TaggedAddresses"]!["wan"]!["Port"]!.GetValue<int>());
            Assert.Equal("edge", entry["Meta"]!["team"]!.GetValue<string>());

            // Traffic through both listeners; one connection is held open across the SIGTERM.
            using (Socket viaWan = await ConnectAsync(new IPEndPoint(IPAddress.Parse("127.0.0.2"), wanPort), hello))
            {
                await EchoAsync(viaWan, "through the wan listener"u8.ToArray());
            }

            using Socket held = await ConnectAsync(new IPEndPoint(IPAddress.Loopback, lanPort), hello);
            await EchoAsync(held, "before the stop"u8.ToArray());

            await tool.TerminateAsync();
            await tool.WaitForLineAsync("Deregistered mesh gateway mesh-gateway");
            JsonNode services = (await agent.GetJsonAsync("/v1/agent/services"))!;
            Assert.Null(services["mesh-gateway"]);
            Assert.NotNull(services["api-1"]);

            // Draining: the open connection is still served, and the process waits for it to finish.
            await EchoAsync(held, "during the drain"u8.ToArray());
            Assert.False(tool.Process.HasExited, tool.Output);
            held.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await tool.WaitForExitAsync());
            Assert.Contains("1 connections finished during the drain, 0 were cut", tool.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static async Task<(string Sni, string TrustDomain)> RegisterApiAsync(ConsulAgent agent, IPEndPoint endPoint)
    {
        string trustDomain = (await agent.GetJsonAsync("/v1/connect/ca/roots"))!["TrustDomain"]!.GetValue<string>();
        await agent.PutJsonAsync("/v1/agent/service/register", $$$"""{"ID":"api-1","Name":"api","Address":"{{{endPoint.Address}}}","Port":{{{endPoint.Port}}},"Connect":{"Native":true}}""");
        return ($"api.default.dc1.internal.{trustDomain}", trustDomain);
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint gateway, byte[] hello)
    {
        var socket = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(gateway).WaitAsync(ToolProcess.SafetyTimeout);
        await socket.SendAsync(hello, SocketFlags.None);
        return socket;
    }

    private static async Task EchoAsync(Socket socket, byte[] payload)
    {
        await socket.SendAsync(payload, SocketFlags.None);
        byte[] back = new byte[payload.Length];
        await RawBackend.ReadExactlyAsync(socket, back).WaitAsync(ToolProcess.SafetyTimeout);
        Assert.Equal(payload, back);
    }
}
