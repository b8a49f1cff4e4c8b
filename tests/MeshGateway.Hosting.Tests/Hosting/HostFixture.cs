using System.Net;
using System.Net.Sockets;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Tests.Hosting;

/// <summary>Builds small hosts around <c>AddMeshGateway</c> and talks to the gateway over loopback.</summary>
internal static class HostFixture
{
    public static readonly TimeSpan SafetyTimeout = TimeSpan.FromSeconds(60);

    public static IHost Build(Action<IMeshGatewayBuilder> configure, Dictionary<string, string?>? configuration = null, Action<MeshGatewayOptions>? options = null)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshGateway:Address"] = "127.0.0.1",
            ["MeshGateway:Port"] = "0",
        });
        if (configuration is not null)
        {
            builder.Configuration.AddInMemoryCollection(configuration);
        }

        builder.Services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = SafetyTimeout);
        IMeshGatewayBuilder gateway = options is null ? builder.Services.AddMeshGateway() : builder.Services.AddMeshGateway(options);
        configure(gateway);
        return builder.Build();
    }

    /// <summary>
    /// Registers a Connect-native service <c>api</c> on <paramref name="agent"/> whose instance is an echo backend expecting
    /// the ClientHello for its SNI name in the agent's datacenter; returns the name, that hello and the backend (dispose it).
    /// </summary>
    public static async Task<(string Sni, byte[] Hello, RawBackend Api)> RegisterEchoApiAsync(MeshGateway.Consul.Tests.Fixtures.ConsulAgent agent)
    {
        System.Text.Json.Nodes.JsonNode roots = (await agent.GetJsonAsync("/v1/connect/ca/roots"))!;
        string sni = $"api.default.{agent.Datacenter}.internal.{roots["TrustDomain"]!.GetValue<string>()}";
        byte[] hello = TestHello.Create(sni);
        RawBackend api = RawBackend.Echo(hello);
        try
        {
            await agent.PutJsonAsync("/v1/agent/service/register", $$$"""{"ID":"api-1","Name":"api","Address":"127.0.0.1","Port":{{{api.EndPoint.Port}}},"Connect":{"Native":true}}""");
        }
        catch
        {
            await api.DisposeAsync();
            throw;
        }

        return (sni, hello, api);
    }

    public static IPEndPoint GatewayEndPoint(IHost host) => host.Services.GetRequiredService<MeshGatewayRuntime>().Listeners[0].EndPoint;

    /// <summary>Connects, sends a ClientHello for <paramref name="sni"/> and returns the connected socket.</summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint gateway, byte[] hello)
    {
        var socket = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(gateway);
        await socket.SendAsync(hello, SocketFlags.None);
        return socket;
    }

    /// <summary>Sends <paramref name="payload"/> and expects it echoed back exactly.</summary>
    public static async Task EchoAsync(Socket socket, byte[] payload)
    {
        await socket.SendAsync(payload, SocketFlags.None);
        byte[] back = new byte[payload.Length];
        await RawBackend.ReadExactlyAsync(socket, back).WaitAsync(SafetyTimeout);
        Assert.Equal(payload, back);
    }

    /// <summary>Reads what a <see cref="RawBackend.Named"/> backend answers.</summary>
    public static async Task<string> ReadNameAsync(Socket socket)
    {
        byte[] all = await RawBackend.ReadToEndAsync(socket).WaitAsync(SafetyTimeout);
        return System.Text.Encoding.ASCII.GetString(all);
    }
}
