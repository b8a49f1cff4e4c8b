using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Peering.Tests;

/// <summary>
/// Issue 14 end to end in a hosted gateway: <c>AddMeshGateway</c> + <c>UseConsulCatalog</c> + <c>AddMeshGatewayPeering</c>
/// against the simulated 1.13+ agent (no peering-capable Consul installs here), which serves the peering with the peer
/// CA's PEM, <c>web</c> exported as <c>http</c>, the gateway's leaf and the local roots (CA made in-test), and the real
/// 1.8.7 discovery chain of <c>web</c> (Fixtures/README.md). Real TLS: a Kestrel sidecar per chain target with a SPIFFE
/// leaf of the local CA, HttpClient as the peer with a SPIFFE leaf of the peer CA, connecting by the form-8 SNI.
/// </summary>
public sealed class HostedPeeringTests
{
    private const string Td = PeeringHarness.LocalTrustDomain;
    private const string PeerTd = PeeringHarness.PeerBTrustDomain;
    private const string WebSni = "web.default.default.peer-b.external." + Td;
    private static readonly TimeSpan s_safety = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task HostedGateway_TerminatesPeerHttpExport_FromConsul_AppliesChain_RefusesUnknownTrustDomain()
    {
        using var local = new SpiffeAuthority(Td);
        using var peer = new SpiffeAuthority(PeerTd);
        using var stranger = new SpiffeAuthority(PeeringHarness.StrangerTrustDomain);

        // What /v1/agent/connect/ca/leaf/mesh-gateway issues: the gateway service's identity (agent/leafcert, ServiceURI).
        string gatewayId = local.ServiceId("mesh-gateway", "dc1");
        using X509Certificate2 gatewayLeaf = local.Issue(gatewayId);
        using X509Certificate2 peerClient = peer.Issue(peer.ServiceId("frontend", "dc2"));
        using X509Certificate2 strangerClient = stranger.Issue(stranger.ServiceId("frontend", "dc2"));
        await using Sidecar v2 = await Sidecar.StartAsync("web-v2", local.Issue(local.ServiceId("web", "dc1")), local.Root, gatewayId);
        await using Sidecar canary = await Sidecar.StartAsync("web-canary", local.Issue(local.ServiceId("web-canary", "dc1")), local.Root, gatewayId);

        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync("dc1", Td);
        ServePeeringBasics(agent, local, peer, gatewayLeaf, gatewayId);
        agent.Register(new SimInstance
        {
            Id = "web-2", Name = "web", Node = "n-web", Address = "127.0.0.1", Port = v2.EndPoint.Port, Native = true,
            Meta = new Dictionary<string, string> { ["version"] = "v2" },
        });
        agent.Register(new SimInstance { Id = "web-canary-1", Name = "web-canary", Node = "n-web", Address = "127.0.0.1", Port = canary.EndPoint.Port, Native = true });
        await ExportToPeerBAsync(agent, "web", "discovery-chain-web.json");

        using IHost host = BuildHost(agent);
        await host.StartAsync();
        try
        {
            MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
            var feed = host.Services.GetRequiredService<ConsulPeeringFeed>();
            using var deadline = new CancellationTokenSource(s_safety);
            RouteTable table = await runtime.Routes.WaitForAsync(t => t.TryMatch(WebSni, out _), deadline.Token);
            Assert.True(table.TryMatch(WebSni, out Route? route));
            Assert.Same(feed, route!.Terminator);
            PeeringSnapshot snapshot = await feed.WaitForSnapshotAsync(s => s.Services.Count == 1, deadline.Token);

            // The snapshot as read from Consul: leaf, roots, the peer's bundle, the chain's targets with their sidecars.
            Assert.Equal(gatewayLeaf.Thumbprint, snapshot.Leaf.Thumbprint);
            Assert.Equal(Td, snapshot.TrustDomain);
            PeerTrustBundle bundle = Assert.Single(snapshot.TrustBundles);
            Assert.Equal(("peer-b", PeerTd), (bundle.PeerName, bundle.TrustDomain));
            ExportedHttpService web = Assert.Single(snapshot.Services);
            Assert.Equal(new ServiceConsumer("peer-b", WebSni), Assert.Single(web.Consumers));
            ChainTargetEndpoints v2Target = Assert.Single(web.Targets, t => t.Id == "v2.web.default.dc1");
            Assert.Equal([v2.EndPoint], v2Target.Endpoints);
            Assert.Equal(local.ServiceId("web", "dc1"), v2Target.SpiffeId);
            // The chain's own target SNI has this form (Fixtures/discovery-chain-web.json, "SNI"), with the local trust domain.
            Assert.Equal("v2.web.default.dc1.internal." + Td, v2Target.ServerName);
            Assert.Equal("web-canary.default.dc1.internal." + Td, Assert.Single(web.Targets, t => t.Id == "web-canary.default.dc1").ServerName);
            Assert.Empty(Assert.Single(web.Targets, t => t.Id == "v1.web.default.dc1").Endpoints);
            Assert.Equal([canary.EndPoint], Assert.Single(web.Targets, t => t.Id == "web-canary.default.dc1").Endpoints);

            IPEndPoint gateway = runtime.Listeners[0].EndPoint;
            using (HttpClient client = CreateClient(gateway, peerClient, local.Root, gatewayId))
            {
                // service-router: PathExact /v2 + query beta -> subset v2; /admin + x-debug: 1 + GET -> web-canary, prefix rewritten.
                using HttpResponseMessage toV2 = await client.GetAsync("https://" + WebSni + "/v2?beta=1", deadline.Token);
                Assert.Equal(HttpStatusCode.OK, toV2.StatusCode);
                Assert.Equal("web-v2 /v2?beta=1", await toV2.Content.ReadAsStringAsync(deadline.Token));
                Assert.Equal("v2.web.default.dc1.internal." + Td, Assert.Single(v2.Seen).ServerName);

                using var admin = new HttpRequestMessage(HttpMethod.Get, "https://" + WebSni + "/admin/users");
                admin.Headers.Add("x-debug", "1");
                using HttpResponseMessage toCanary = await client.SendAsync(admin, deadline.Token);
                Assert.Equal(HttpStatusCode.OK, toCanary.StatusCode);
                Assert.Equal("web-canary //users", await toCanary.Content.ReadAsStringAsync(deadline.Token));
            }

            SeenRequest seen = Assert.Single(v2.Seen);
            Assert.Equal(gatewayId, seen.ClientSpiffeId);
            Assert.Contains(peer.ServiceId("frontend", "dc2"), seen.ForwardedClientCert[0], StringComparison.Ordinal);

            // A client of a trust domain no peering names: refused at the handshake, counted, nothing forwarded.
            PeeringTerminator terminator = feed.Current!;
            long refusedBefore = terminator.Counters.GetRefused(HandshakeRefusal.UnknownTrustDomain);
            using (HttpClient client = CreateClient(gateway, strangerClient, local.Root, gatewayId))
            {
                await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("https://" + WebSni + "/v2?beta=1", deadline.Token));
            }

            // At least one: under TLS 1.3 the client learns of the refusal only after sending its request, and HttpClient
            // retries a request that failed on a fresh connection before any response (each retry is refused again).
            Assert.True(terminator.Counters.GetRefused(HandshakeRefusal.UnknownTrustDomain) > refusedBefore, "the stranger's handshake was not refused as UnknownTrustDomain");
            Assert.Single(v2.Seen);
            Assert.Single(canary.Seen);

            // The counters are instruments of the gateway's meter, as the listener's are (the admin endpoint's Prometheus
            // page and OpenTelemetry read them from the host's meter factory).
            Dictionary<string, long> metrics = ObservePeeringMetrics(host.Services.GetRequiredService<IMeterFactory>());
            Assert.Equal(2, metrics["meshgateway.peering.requests|routed"]);
            Assert.Equal(0, metrics["meshgateway.peering.requests|unrouted"]);
            Assert.Equal(terminator.Counters.HandshakesAccepted, metrics["meshgateway.peering.handshakes|accepted"]);
            Assert.Equal(terminator.Counters.GetRefused(HandshakeRefusal.UnknownTrustDomain), metrics["meshgateway.peering.handshakes|unknown_trust_domain"]);
            Assert.Equal(terminator.Counters.Connections, metrics["meshgateway.peering.connections"]);
            Assert.Equal(0, metrics["meshgateway.peering.upstream_failures"]);
            Assert.Equal(0, metrics["meshgateway.peering.retries"]);
            Assert.Equal(0, metrics["meshgateway.peering.timeouts"]);
            Assert.Equal(terminator.Counters.SidecarConnections, metrics["meshgateway.peering.sidecar_connections|opened"]);
            Assert.True(metrics["meshgateway.peering.sidecar_connections|opened"] >= 1);
            Assert.Equal(0, metrics["meshgateway.peering.sidecar_connections|failed"]);

            // Leaf rotation: the agent renews the leaf; the feed's blocking watch of the leaf endpoint wakes (no catalog
            // change is needed), and new handshakes get the new leaf while the terminator stays the same.
            using X509Certificate2 renewed = local.Issue(gatewayId);
            agent.ServeJson("/v1/agent/connect/ca/leaf/mesh-gateway", LeafJson(renewed, gatewayId));
            await feed.WaitForSnapshotAsync(s => s.Leaf.Thumbprint == renewed.Thumbprint, deadline.Token);
            Assert.Same(terminator, feed.Current);
            string? presented = null;
            using (HttpClient client = CreateClient(gateway, peerClient, local.Root, gatewayId, server => presented = server.Thumbprint))
            {
                using HttpResponseMessage again = await client.GetAsync("https://" + WebSni + "/v2?beta=1", deadline.Token);
                Assert.Equal("web-v2 /v2?beta=1", await again.Content.ReadAsStringAsync(deadline.Token));
            }

            Assert.Equal(renewed.Thumbprint, presented);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task HostedGateway_ResolverFailover_PrimaryWithoutHealthyInstances_RequestsReachTheFailoverService()
    {
        await using ApiFailoverScene scene = await ApiFailoverScene.StartAsync();
        using IHost host = BuildHost(scene.Agent);
        await host.StartAsync();
        try
        {
            using var deadline = new CancellationTokenSource(s_safety);
            (ConsulPeeringFeed feed, PeeringSnapshot snapshot) = await ApiFailoverScene.WaitForApiAsync(host, deadline.Token);
            ExportedHttpService api = Assert.Single(snapshot.Services);
            ChainTargetEndpoints primary = Assert.Single(api.Targets, t => t.Id == "api.default.dc1");
            Assert.Empty(primary.Endpoints);
            Assert.Equal(["api-backup.default.dc1"], primary.FailoverTargetIds);
            Assert.Equal(scene.Local.ServiceId("api-backup", "dc1"), Assert.Single(api.Targets, t => t.Id == "api-backup.default.dc1").SpiffeId);

            Assert.Equal("api-backup /orders", await scene.GetAsync(host, "/orders", deadline.Token));
            Assert.Equal(0, scene.Backup.RefusedClients);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task HostedGateway_OneServiceWithARouteTheTerminatorCannotApply_IsLeftOut_TheOthersAreServed()
    {
        await using ApiFailoverScene scene = await ApiFailoverScene.StartAsync();
        SimulatedConsulAgent agent = scene.Agent;
        agent.Register(new SimInstance { Id = "web-1", Name = "web", Node = "n-web", Address = "127.0.0.1", Port = 9, Native = true });
        agent.SetConfigEntry("service-defaults", "web", """{"Protocol":"http"}""");
        agent.SetConfigEntry("exported-services", "default", """{"Services":[{"Name":"api","Consumers":[{"Peer":"peer-b"}]},{"Name":"web","Consumers":[{"Peer":"peer-b"}]}]}""");
        // web's real 1.8.7 chain with a route regex under RE2's ungreedy flag, which Consul and Envoy take and .NET's
        // regular expressions cannot express: web cannot be terminated as Consul would, api still can.
        string webChain = (await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", "discovery-chain-web.json")))
            .Replace("\"PathExact\": \"/v2\"", "\"PathRegex\": \"(?U)/v2.*\"", StringComparison.Ordinal);
        Assert.Contains("(?U)", webChain, StringComparison.Ordinal);
        agent.ServeJson("/v1/discovery-chain/web", webChain);

        var logs = new RecordingLoggerProvider();
        using IHost host = BuildHost(agent, logs);
        await host.StartAsync();
        try
        {
            using var deadline = new CancellationTokenSource(s_safety);
            (ConsulPeeringFeed feed, PeeringSnapshot snapshot) = await ApiFailoverScene.WaitForApiAsync(host, deadline.Token);

            Assert.Equal("api", Assert.Single(snapshot.Services).Name);
            Assert.Null(feed.LastError);
            Assert.Equal("api-backup /orders", await scene.GetAsync(host, "/orders", deadline.Token));

            // A catalog change builds again (api-backup gets a second instance): web is still left out, and its warning,
            // logged by the first build, is not repeated.
            agent.Register(new SimInstance { Id = "api-backup-2", Name = "api-backup", Node = "n-api", Address = "127.0.0.1", Port = 10, Native = true });
            await feed.WaitForSnapshotAsync(s => s.Services.Count == 1 && s.Services[0].Targets.Any(t => t.Endpoints.Count == 2), deadline.Token);
            Assert.Single(logs.Entries, e => e.EventId == 4006 && e.Message.Contains("'web' cannot be applied", StringComparison.Ordinal));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    /// <summary>
    /// The simulated 1.13+ agent with <c>api</c> exported to peer-b under the real 1.8.7 failover chain: api's one instance
    /// is critical (an exported service needs an instance in the catalog to be exported at all), api-backup has a healthy
    /// one, a real sidecar (the chain fails over to api-backup in dc1 and dc2).
    /// </summary>
    private sealed class ApiFailoverScene : IAsyncDisposable
    {
        public const string ApiSni = "api.default.default.peer-b.external." + Td;

        private ApiFailoverScene(SpiffeAuthority local, SpiffeAuthority peer, string gatewayId, X509Certificate2 gatewayLeaf, X509Certificate2 peerClient)
        {
            Local = local;
            Peer = peer;
            GatewayId = gatewayId;
            GatewayLeaf = gatewayLeaf;
            PeerClient = peerClient;
        }

        public SpiffeAuthority Local { get; }

        public SpiffeAuthority Peer { get; }

        public string GatewayId { get; }

        public X509Certificate2 GatewayLeaf { get; }

        public X509Certificate2 PeerClient { get; }

        public Sidecar Backup { get; private set; } = null!;

        public SimulatedConsulAgent Agent { get; private set; } = null!;

        public static async Task<ApiFailoverScene> StartAsync()
        {
            var local = new SpiffeAuthority(Td);
            var peer = new SpiffeAuthority(PeerTd);
            string gatewayId = local.ServiceId("mesh-gateway", "dc1");
            var scene = new ApiFailoverScene(local, peer, gatewayId, local.Issue(gatewayId), peer.Issue(peer.ServiceId("frontend", "dc2")));
            try
            {
                scene.Backup = await Sidecar.StartAsync("api-backup", local.Issue(local.ServiceId("api-backup", "dc1")), local.Root, gatewayId);
                scene.Agent = await SimulatedConsulAgent.StartAsync("dc1", Td);
                ServePeeringBasics(scene.Agent, local, peer, scene.GatewayLeaf, gatewayId);
                scene.Agent.Register(new SimInstance { Id = "api-1", Name = "api", Node = "n-api", Address = "127.0.0.1", Port = 9, Native = true }, checkStatus: "critical");
                scene.Agent.Register(new SimInstance { Id = "api-backup-1", Name = "api-backup", Node = "n-api", Address = "127.0.0.1", Port = scene.Backup.EndPoint.Port, Native = true });
                await ExportToPeerBAsync(scene.Agent, "api", "discovery-chain-api-failover.json");
                return scene;
            }
            catch
            {
                await scene.DisposeAsync();
                throw;
            }
        }

        /// <summary>Waits for api's route and a snapshot that serves it.</summary>
        public static async Task<(ConsulPeeringFeed Feed, PeeringSnapshot Snapshot)> WaitForApiAsync(IHost host, CancellationToken cancellationToken)
        {
            MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
            var feed = host.Services.GetRequiredService<ConsulPeeringFeed>();
            await runtime.Routes.WaitForAsync(t => t.TryMatch(ApiSni, out _), cancellationToken);
            PeeringSnapshot snapshot = await feed.WaitForSnapshotAsync(s => s.Services.Any(x => x.Name == "api"), cancellationToken);
            return (feed, snapshot);
        }

        /// <summary>A GET through the hosted gateway as peer-b's frontend; the body.</summary>
        public async Task<string> GetAsync(IHost host, string path, CancellationToken cancellationToken)
        {
            IPEndPoint gateway = host.Services.GetRequiredService<MeshGatewayRuntime>().Listeners[0].EndPoint;
            using HttpClient client = CreateClient(gateway, PeerClient, Local.Root, GatewayId);
            using HttpResponseMessage response = await client.GetAsync("https://" + ApiSni + path, cancellationToken);
            return await response.Content.ReadAsStringAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            if (Agent is not null)
            {
                await Agent.DisposeAsync();
            }

            if (Backup is not null)
            {
                await Backup.DisposeAsync();
            }

            PeerClient.Dispose();
            GatewayLeaf.Dispose();
            Peer.Dispose();
            Local.Dispose();
        }
    }

    [Theory]
    [InlineData("server.dc2.peering." + PeerTd, PeerTd)]
    [InlineData("server.dc2.peering.", null)]
    [InlineData("peering.example", null)]
    [InlineData(null, null)]
    public void PeerTrustDomain_IsReadFromThePeerServerName(string? serverName, string? expected) =>
        Assert.Equal(expected, ConsulPeeringFeed.PeerTrustDomain(serverName));

    /// <summary>Peering on, the peering with peer-b, the gateway's leaf and the local roots, as the simulated 1.13+ agent serves them.</summary>
    private static void ServePeeringBasics(SimulatedConsulAgent agent, SpiffeAuthority local, SpiffeAuthority peer, X509Certificate2 gatewayLeaf, string gatewayId)
    {
        agent.PeeringSupported = true;

        // api/peering.go Peering: PeerCAPems and PeerServerName = server.<dc>.peering.<peer TD> (connect.PeeringServerSAN).
        agent.AddPeering(new SimPeering { Name = "peer-b", PeerCaPems = [peer.Root.ExportCertificatePem()], PeerServerName = "server.dc2.peering." + PeerTd });

        // api/agent.go LeafCert and api/connect_ca.go CARootList (the fields the gateway reads).
        agent.ServeJson("/v1/agent/connect/ca/leaf/mesh-gateway", LeafJson(gatewayLeaf, gatewayId));
        agent.ServeJson("/v1/agent/connect/ca/roots", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["ActiveRootID"] = "local-root",
            ["TrustDomain"] = Td,
            ["Roots"] = new[] { new Dictionary<string, object> { ["ID"] = "local-root", ["Name"] = "Consul CA Root Cert", ["RootCert"] = local.Root.ExportCertificatePem(), ["Active"] = true } },
        }));
    }

    /// <summary><paramref name="service"/> as <c>http</c> (service-defaults), exported to peer-b, with the discovery chain of <paramref name="chainFixture"/>.</summary>
    private static async Task ExportToPeerBAsync(SimulatedConsulAgent agent, string service, string chainFixture)
    {
        agent.SetConfigEntry("service-defaults", service, """{"Protocol":"http"}""");
        agent.SetConfigEntry("exported-services", "default", $$"""{"Services":[{"Name":"{{service}}","Consumers":[{"Peer":"peer-b"}]}]}""");
        agent.ServeJson("/v1/discovery-chain/" + service, await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Fixtures", chainFixture)));
    }

    /// <summary>The answer of <c>/v1/agent/connect/ca/leaf/&lt;svc&gt;</c> (api/agent.go <c>LeafCert</c>).</summary>
    private static string LeafJson(X509Certificate2 leaf, string serviceUri) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["SerialNumber"] = leaf.SerialNumber,
        ["CertPEM"] = leaf.ExportCertificatePem(),
        ["PrivateKeyPEM"] = leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem(),
        ["Service"] = "mesh-gateway",
        ["ServiceURI"] = serviceUri,
        ["ValidAfter"] = leaf.NotBefore.ToUniversalTime().ToString("O"),
        ["ValidBefore"] = leaf.NotAfter.ToUniversalTime().ToString("O"),
        ["CreateIndex"] = 1,
        ["ModifyIndex"] = 1,
    });

    private static IHost BuildHost(SimulatedConsulAgent agent, ILoggerProvider? logs = null)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["MeshGateway:Address"] = "127.0.0.1", ["MeshGateway:Port"] = "0" });
        builder.Services.AddLogging(logging =>
        {
            logging.SetMinimumLevel(LogLevel.Warning);
            if (logs is not null)
            {
                logging.AddProvider(logs);
            }
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = s_safety);
        builder.Services.AddMeshGateway()
            .UseConsulCatalog(c =>
            {
                c.Address = agent.Address.ToString();
                c.Register = false;
                c.Peering = true;
            })
            .AddMeshGatewayPeering();
        return builder.Build();
    }

    /// <summary>The <c>meshgateway.peering.*</c> instruments of <paramref name="factory"/>'s meters, collected once: name|tag values → value.</summary>
    private static Dictionary<string, long> ObservePeeringMetrics(IMeterFactory factory)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name.StartsWith("meshgateway.peering.", StringComparison.Ordinal) && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = instrument.Name;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                key += "|" + tag.Value;
            }

            values[key] = value;
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    /// <summary>A peer's sidecar: dials the gateway whatever the host, sends the URI host as SNI, presents <paramref name="certificate"/>, trusts the local CA's gateway only.</summary>
    private static HttpClient CreateClient(IPEndPoint gateway, X509Certificate2 certificate, X509Certificate2 localRoot, string gatewayId, Action<X509Certificate2>? onServer = null) =>
        new(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(gateway, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = new SslClientAuthenticationOptions
            {
                LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, server, _, _) =>
                {
                    onServer?.Invoke((X509Certificate2)server!);
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    chain.ChainPolicy.CustomTrustStore.Add(localRoot);
                    return chain.Build((X509Certificate2)server!) && Sidecar.SpiffeIdOf((X509Certificate2)server!) == gatewayId;
                },
            },
        })
        { Timeout = s_safety };
}
