using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

/// <summary>
/// Admin partitions (Consul Enterprise; no binary here): the hosted gateway of partition <c>part1</c> reads an in-repo
/// simulated agent over real HTTP that serves the Enterprise shapes it uses (<c>GET /v1/partitions</c> and <c>?partition=</c>,
/// api-docs/admin-partitions; agent <c>Config.Partition</c>), and routes real TLS connections (SslStream both ends) by the
/// partition SNI forms of docs/consul-behaviour.md §2: <c>*.&lt;ap&gt;.&lt;dc&gt;.internal-v1.&lt;TD&gt;</c> to that partition's gateways,
/// <c>*.&lt;dc&gt;.internal.&lt;TD&gt;</c> to the default partition's, its own services by exact form-3 names, and never its own
/// partition by wildcard.
/// </summary>
public sealed class AdminPartitionTests
{
    private const string Td = "11111111-2222-3333-4444-555555555555.consul";
    private const string ToPart2 = "web.default.part2.dc1.internal-v1." + Td;
    private const string ToDefault = "web.default.dc1.internal." + Td;
    private const string LocalApi = "api.default.part1.dc1.internal-v1." + Td;
    private const string OwnByWildcard = "nothere.default.part1.dc1.internal-v1." + Td;
    private const string UnknownPartition = "web.default.part9.dc1.internal-v1." + Td;
    private const string PartitionWithoutGateways = "web.default.part3.dc1.internal-v1." + Td;

    [Fact]
    public async Task PartitionGateway_RoutesOtherPartitionsToTheirGatewaysOwnServicesExactly_AndClosesWhatHasNoRoute()
    {
        using var certificates = new TestCertificates(ToPart2, ToDefault, LocalApi, OwnByWildcard, UnknownPartition, PartitionWithoutGateways);
        await using RawBackend part2Gateway = TlsBackend.Start(certificates, "part2-gateway");
        await using RawBackend defaultGateway = TlsBackend.Start(certificates, "default-gateway");
        await using RawBackend api = TlsBackend.Start(certificates, "api-in-part1");
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync("dc1", Td);
        foreach (string partition in new[] { "part1", "part2", "part3" })
        {
            agent.AddPartition(partition);
        }

        agent.AgentPartition = "part1";
        agent.RegisterInPartition(Gateway("gw-part2", part2Gateway.EndPoint), "part2");
        agent.RegisterInPartition(Gateway("gw-default", defaultGateway.EndPoint), "default");
        agent.RegisterInPartition(new SimInstance { Id = "web-1", Name = "web", Node = "n-part3", Address = "127.0.0.1", Port = 1, Native = true }, "part3");
        agent.RegisterInPartition(new SimInstance { Id = "api-1", Name = "api", Node = "n-api", Address = "127.0.0.1", Port = api.EndPoint.Port, Native = true }, "part1");

        using IHost host = HostFixture.Build(g => g.UseConsulCatalog(c =>
        {
            c.Address = agent.Address.ToString();
            c.Partition = "part1";
            c.Register = false;
        }));
        await host.StartAsync();
        try
        {
            MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
            using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
            {
                await runtime.Routes.WaitForAsync(t => t.TryMatch(ToPart2, out _) && t.TryMatch(ToDefault, out _) && t.TryMatch(LocalApi, out _), deadline.Token);
            }

            IPEndPoint gateway = HostFixture.GatewayEndPoint(host);

            Assert.Equal("hello from part2-gateway", await GreetingAsync(gateway, ToPart2, certificates));
            Assert.Equal("hello from default-gateway", await GreetingAsync(gateway, ToDefault, certificates));
            Assert.Equal("hello from api-in-part1", await GreetingAsync(gateway, LocalApi, certificates));

            long before = runtime.Counters!.GetRejected(RejectionReason.NoRoute);
            foreach (string sni in new[] { OwnByWildcard, UnknownPartition, PartitionWithoutGateways })
            {
                using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await client.ConnectAsync(gateway);
                await using var ssl = new SslStream(new NetworkStream(client, ownsSocket: false));
                Exception closed = await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = sni,
                    CertificateChainPolicy = certificates.ClientChainPolicy(),
                }).WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.True(closed is IOException or System.Security.Authentication.AuthenticationException, $"{sni}: {closed}");
            }

            Assert.Equal(before + 3, runtime.Counters.GetRejected(RejectionReason.NoRoute));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static SimInstance Gateway(string node, IPEndPoint endPoint) => new()
    {
        Id = "mesh-gateway",
        Name = "mesh-gateway",
        Kind = "mesh-gateway",
        Node = node,
        Address = "10.99.0.1", // its LAN address: another partition is dialled at its WAN address (docs/consul-behaviour.md §4)
        Port = 8443,
        WanAddress = endPoint.Address.ToString(),
        WanPort = endPoint.Port,
    };

    private static async Task<string> GreetingAsync(IPEndPoint gateway, string sni, TestCertificates certificates)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(gateway);
        await using var ssl = new SslStream(new NetworkStream(client, ownsSocket: false));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = sni, CertificateChainPolicy = certificates.ClientChainPolicy() }).WaitAsync(TimeSpan.FromSeconds(30));
        using var reader = new StreamReader(ssl, Encoding.ASCII, leaveOpen: true);
        return (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)))!;
    }
}
