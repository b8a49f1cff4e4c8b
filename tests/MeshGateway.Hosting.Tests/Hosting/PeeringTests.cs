using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Consul;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Tests.Hosting;

/// <summary>
/// Cluster peering in the running gateway (Consul 1.13+; no such binary here): the hosted gateway reads an in-repo simulated
/// agent over real HTTP that serves the 1.13+ shapes (<c>/v1/peerings</c>, <c>/v1/config/exported-services/default</c>,
/// <c>/v1/config/mesh/mesh</c>, <c>?peer=</c> health and catalog; see <see cref="SimulatedConsulAgent.PeeringSupported"/>),
/// and routes real connections by the SNI forms of docs/consul-behaviour.md §2: an exported TCP service by its form-8 name (byte-exact
/// passthrough), the peering control plane (<c>server.&lt;dc&gt;.peering.&lt;TD&gt;</c> to the servers' gRPC TLS port, a dialed
/// peer's <c>PeerServerName</c> to its addresses) and an imported service by its <c>PeerMeta.SNI</c> (local mode outgoing).
/// </summary>
public sealed class PeeringTests
{
    private const string Td = "11111111-2222-3333-4444-555555555555.consul";
    private const string PeerTd = "99999999-8888-7777-6666-555555555555.consul";

    // Form 8 on the exporting side: <svc>.<ns>.<ap>.<peer>.external.<exporter TD> (agent/connect/sni.go PeeredServiceSNI).
    private const string DbToPeer = "db.default.default.cluster-02.external." + Td;
    private const string WebToPeer = "web.default.default.cluster-02.external." + Td;

    // connect.PeeringServerSAN (agent/connect/uri_server.go): server.<dc>.peering.<TD>.
    private const string LocalControlPlane = "server.dc1.peering." + Td;
    private const string PeerControlPlane = "server.dc2.peering." + PeerTd;

    // What the exporter (the peer) computed for us and shipped in PeerMeta.SNI[0]: its own TD, its name for us.
    private const string ImportedApi = "api.default.default.dc1-peer.external." + PeerTd;

    [Fact]
    public async Task Exporter_TcpExportPassesThroughByteExact_ControlPlaneAndImportsRouted_HttpExportAbsentWithOneWarning()
    {
        using var certificates = new TestCertificates(LocalControlPlane, PeerControlPlane, ImportedApi, WebToPeer);
        byte[] dbHello = TestHello.Create(DbToPeer);
        await using RawBackend db = RawBackend.Echo(dbHello);
        await using RawBackend serverGrpcTls = TlsBackend.Start(certificates, "server-grpc-tls");
        await using RawBackend peerServers = TlsBackend.Start(certificates, "dc2-servers");
        await using RawBackend peerGateway = TlsBackend.Start(certificates, "peer-gateway");
        await using SimulatedConsulAgent agent = await PeeringAgentAsync(db, serverGrpcTls, peerServers, peerGateway);

        var logs = new ListLogger();
        using IHost host = HostFixture.Build(g =>
        {
            g.UseConsulCatalog(c =>
            {
                c.Address = agent.Address.ToString();
                c.Register = false;
            });
            g.Services.AddLogging(l => l.AddProvider(new ListLoggerProvider(logs)).SetMinimumLevel(LogLevel.Information));
        });
        await host.StartAsync();
        try
        {
            MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
            RouteTable table;
            using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
            {
                table = await runtime.Routes.WaitForAsync(t => t.TryMatch(DbToPeer, out _) && t.TryMatch(LocalControlPlane, out _)
                    && t.TryMatch(PeerControlPlane, out _) && t.TryMatch(ImportedApi, out _), deadline.Token);
            }

            IPEndPoint gateway = HostFixture.GatewayEndPoint(host);

            // TCP export: the hello and every byte after it reach the local instance unchanged (RawBackend.Echo checks the hello).
            using (Socket client = await HostFixture.ConnectAsync(gateway, dbHello))
            {
                await HostFixture.EchoAsync(client, Encoding.ASCII.GetBytes("rows, byte for byte"));
            }

            Assert.Equal("exported~db.default.dc1.internal." + Td, Route(table, DbToPeer).Cluster.Name);
            Assert.Equal("hello from server-grpc-tls", await GreetingAsync(gateway, LocalControlPlane, certificates));
            Assert.Equal("hello from dc2-servers", await GreetingAsync(gateway, PeerControlPlane, certificates));
            Assert.Equal("hello from peer-gateway", await GreetingAsync(gateway, ImportedApi, certificates));

            // HTTP-like export without a terminator: no route (Consul builds no chain without its leaf), marked, one warning.
            Assert.False(table.TryMatch(WebToPeer, out _));
            long before = runtime.Counters!.GetRejected(RejectionReason.NoRoute);
            await Assert.ThrowsAnyAsync<Exception>(() => GreetingAsync(gateway, WebToPeer, certificates));
            Assert.Equal(before + 1, runtime.Counters.GetRejected(RejectionReason.NoRoute));

            ConsulRouteConversion conversion = ((ConsulCatalogRouteSource)runtime.RouteSource).Source!.LastConversion!;
            ConsulTerminatedExport web = Assert.Single(conversion.TerminatedExports);
            Assert.Equal(("web", "cluster-02", WebToPeer, "http", false), (web.Service, web.Peer, web.Sni, web.Protocol, web.Routed));
            Assert.Equal("web.default.dc1.internal." + Td, web.LocalCluster);
            using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
            {
                // The source logs a conversion's warnings just after it published the table.
                await logs.WaitForAsync(e => e.EventName == "ConsulRouteWarning" && e.Message.Contains("needs HTTP termination", StringComparison.Ordinal), deadline.Token);
            }

            var warnings = logs.Entries.Where(e => e.EventName == "ConsulRouteWarning" && e.Message.Contains("needs HTTP termination", StringComparison.Ordinal)).ToList();
            Assert.Single(warnings);
            Assert.Contains("'web'", warnings[0].Message, StringComparison.Ordinal);
            Assert.DoesNotContain(logs.Entries, e => e.EventName == "ConsulPeeringUnavailable");
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Exporter_HttpExportWithTerminatorConfigured_IsRoutedStillEncryptedToTheTerminator(bool pluggedIn)
    {
        using var certificates = new TestCertificates(WebToPeer);
        await using RawBackend db = RawBackend.Echo(TestHello.Create(DbToPeer));
        await using RawBackend terminator = TlsBackend.Start(certificates, "l7-terminator");
        await using RawBackend unused = TlsBackend.Start(certificates, "unused");
        await using SimulatedConsulAgent agent = await PeeringAgentAsync(db, unused, unused, unused);
        var plugIn = new RecordingTerminator(terminator.EndPoint);

        using IHost host = HostFixture.Build(g =>
        {
            g.UseConsulCatalog(c =>
            {
                c.Address = agent.Address.ToString();
                c.Register = false;
                c.Peering = true;
                c.PeeringHttpTerminator = pluggedIn ? null : terminator.EndPoint.ToString();
            });
            if (pluggedIn)
            {
                // What a terminator package registers (IMeshGatewayPeeringTerminator): its endpoint wins over the option.
                g.Services.AddSingleton<IMeshGatewayPeeringTerminator>(plugIn);
            }
        });
        await host.StartAsync();
        try
        {
            MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
            using (var deadline = new CancellationTokenSource(HostFixture.SafetyTimeout))
            {
                await runtime.Routes.WaitForAsync(t => t.TryMatch(WebToPeer, out _), deadline.Token);
            }

            Assert.Equal("hello from l7-terminator", await GreetingAsync(HostFixture.GatewayEndPoint(host), WebToPeer, certificates));
            ConsulRouteConversion conversion = ((ConsulCatalogRouteSource)runtime.RouteSource).Source!.LastConversion!;
            Assert.True(Assert.Single(conversion.TerminatedExports).Routed);
            Assert.DoesNotContain(conversion.Warnings, w => w.Contains("needs HTTP termination", StringComparison.Ordinal));
            if (pluggedIn)
            {
                (IReadOnlyList<ConsulTerminatedExport> exports, ConsulPeeringView? peering) = await plugIn.Told.Task.WaitAsync(HostFixture.SafetyTimeout);
                Assert.Equal(WebToPeer, Assert.Single(exports).Sni);
                Assert.Contains(peering!.Peerings, p => p.Name == "cluster-02");
            }
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private sealed class RecordingTerminator(IPEndPoint endPoint) : IMeshGatewayPeeringTerminator
    {
        public TaskCompletionSource<(IReadOnlyList<ConsulTerminatedExport>, ConsulPeeringView?)> Told { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IPEndPoint EndPoint { get; } = endPoint;

        public void ExportsChanged(IReadOnlyList<ConsulTerminatedExport> exports, ConsulPeeringView? peering)
        {
            if (exports.Count > 0)
            {
                Told.TrySetResult((exports, peering));
            }
        }
    }

    /// <summary>
    /// A 1.13+ agent in dc1 (trust domain <see cref="Td"/>) exporting <c>db</c> (tcp) and <c>web</c> (http, by service-defaults)
    /// to peer <c>cluster-02</c>, peering through mesh gateways, dialing peer <c>dc2-peer</c>'s servers and importing <c>api</c> from it.
    /// </summary>
    private static async Task<SimulatedConsulAgent> PeeringAgentAsync(RawBackend db, RawBackend serverGrpcTls, RawBackend peerServers, RawBackend peerGateway)
    {
        SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync("dc1", Td);
        agent.PeeringSupported = true;
        agent.Register(new SimInstance { Id = "db-1", Name = "db", Node = "n-db", Address = "127.0.0.1", Port = db.EndPoint.Port, Native = true });
        agent.Register(new SimInstance { Id = "web-1", Name = "web", Node = "n-web", Address = "127.0.0.1", Port = 1, Native = true });

        // Shapes: api-docs/config-entry exported-services, service-defaults and mesh (docs/consul-behaviour.md §8.4).
        agent.SetConfigEntry("service-defaults", "web", """{"Protocol":"http"}""");
        agent.SetConfigEntry("exported-services", "default", """{"Services":[{"Name":"db","Consumers":[{"Peer":"cluster-02"}]},{"Name":"web","Consumers":[{"Peer":"cluster-02"}]}]}""");
        agent.SetConfigEntry("mesh", "mesh", """{"Peering":{"PeerThroughMeshGateways":true}}""");

        // A 1.14+ server's catalog entry carries its gRPC TLS port as meta (agent/consul/leader.go, server metadata "grpc_tls_port").
        agent.Update("consul", i => i with { Meta = new Dictionary<string, string> { ["grpc_tls_port"] = serverGrpcTls.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), ["non_voter"] = "false" } });

        // cluster-02 established with our token (no addresses: we do not dial it); dc2-peer we dialed with its token.
        agent.AddPeering(new SimPeering { Name = "cluster-02" });
        agent.AddPeering(new SimPeering
        {
            Name = "dc2-peer", PeerServerName = PeerControlPlane, PeerServerAddresses = [$"127.0.0.1:{peerServers.EndPoint.Port}"],
        });

        // What the importer's catalog holds (docs/consul-behaviour.md §11): the real instance, and per exporter gateway a synthesised
        // connect-proxy whose address is the gateway's and whose PeerMeta carries the exporter's SNI and SPIFFE ID.
        agent.Import("dc2-peer", new SimInstance { Id = "api-1", Name = "api", Node = "peer-node", Address = "10.9.9.10", Port = 8080 });
        agent.Import("dc2-peer", new SimInstance
        {
            Id = "api-sidecar-proxy", Name = "api-sidecar-proxy", Kind = "connect-proxy", DestinationService = "api", Node = "peer-gateway-node",
            Address = "10.9.9.9", Port = 8443, WanAddress = "127.0.0.1", WanPort = peerGateway.EndPoint.Port,
            PeerSni = [ImportedApi], PeerSpiffeIds = ["spiffe://" + PeerTd + "/ns/default/dc/dc2/svc/api"],
        });
        return agent;
    }

    private static Route Route(RouteTable table, string sni)
    {
        Assert.True(table.TryMatch(sni, out Route? route), sni);
        return route!;
    }

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

/// <summary>Routes a host's log entries into a <see cref="ListLogger"/>.</summary>
internal sealed class ListLoggerProvider(ListLogger logger) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => logger;

    public void Dispose()
    {
    }
}
