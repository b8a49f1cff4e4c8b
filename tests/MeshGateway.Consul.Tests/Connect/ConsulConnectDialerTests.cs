using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MeshGateway.Model;
using MeshGateway.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Consul.Tests.Connect;

public sealed class ConsulConnectDialerTests : IDisposable
{
    private readonly TestCa _ca = new();
    private readonly X509Certificate2 _web;
    private readonly X509Certificate2 _api;

    public ConsulConnectDialerTests()
    {
        _web = _ca.Issue(TestCa.SpiffeFor("web"));
        _api = _ca.Issue(TestCa.SpiffeFor("api", "dc2"), dnsName: "not-the-sni.example");
    }

    public void Dispose()
    {
        _web.Dispose();
        _api.Dispose();
        _ca.Dispose();
    }

    [Fact]
    public async Task DialAsync_ExpectedServer_AuthenticatesBothSidesAndEchoes()
    {
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        await using var dialer = Dialer(agent);

        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" });
        byte[] reply = new byte[5];
        await connection.Stream.WriteAsync("hello"u8.ToArray());
        await connection.Stream.ReadExactlyAsync(reply);

        Assert.Equal("hello", Encoding.ASCII.GetString(reply));
        Assert.Equal((UpstreamDialKind.TargetInstances, MeshGatewayModeLevel.BuiltInDefault), (connection.Path.DialKind, connection.Path.Resolution.DecidedBy));
        Assert.Equal($"api.default.dc2.internal.{TestCa.TrustDomain}", connection.Path.Sni);
        Assert.Equal(TestCa.SpiffeFor("api", "dc2"), connection.Path.ExpectedIdentity);
        Assert.Equal(connection.Path.Sni, Assert.Single(server.ServerNames));
        Assert.Contains(TestCa.SpiffeFor("web"), Assert.Single(server.ClientIdentities), StringComparison.Ordinal);
        Assert.Contains("dc=dc2", string.Join(' ', agent.Requests.Where(r => r.StartsWith("/v1/health/connect/api", StringComparison.Ordinal))), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DialAsync_ServerOfAnotherService_ThrowsIdentityMismatchNamingBoth()
    {
        using X509Certificate2 other = _ca.Issue(TestCa.SpiffeFor("other", "dc2"));
        await using var server = new TestTlsServer(other);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        await using var dialer = Dialer(agent);

        ConnectIdentityMismatchException error = await Assert.ThrowsAsync<ConnectIdentityMismatchException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal(ConnectDialFailure.IdentityMismatch, error.Failure);
        Assert.Equal(TestCa.SpiffeFor("api", "dc2"), error.Expected);
        Assert.Equal([TestCa.SpiffeFor("other", "dc2")], error.Presented);
        Assert.Contains(TestCa.SpiffeFor("other", "dc2"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DialAsync_ServerChainsToAnotherCa_ThrowsTlsFailureNotIdentityMismatch()
    {
        using var rogueCa = new TestCa("Rogue CA");
        using X509Certificate2 rogue = rogueCa.Issue(TestCa.SpiffeFor("api", "dc2"));
        await using var server = new TestTlsServer(rogue);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        await using var dialer = Dialer(agent);

        ConnectTlsException error = await Assert.ThrowsAsync<ConnectTlsException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal(ConnectDialFailure.TlsFailure, error.Failure);
        Assert.Contains("does not chain to the Consul CA roots", error.Message, StringComparison.Ordinal);
        Assert.Equal(server.Port, error.Path!.Endpoint!.Port);
    }

    [Fact]
    public async Task DialAsync_ServerAnswersWithBadCertificateAlert_ThrowsTlsFailureSayingTheClientWasRefused()
    {
        // What Go's TLS stack (Consul's proxy) sends when VerifyPeerCertificate fails: a fatal bad_certificate alert.
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task server = Task.Run(async () =>
        {
            using System.Net.Sockets.TcpClient peer = await listener.AcceptTcpClientAsync();
            System.Net.Sockets.NetworkStream stream = peer.GetStream();
            NetworkStreamReadHello(stream);
            await stream.WriteAsync(new byte[] { 21, 3, 3, 0, 2, 2, 42 }); // alert record: fatal, bad_certificate (RFC 8446 §6)
            peer.Client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            byte[] rest = new byte[1024];
            using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (await stream.ReadAsync(rest, bounded.Token) > 0)
            {
            }
        });
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", ((IPEndPoint)listener.LocalEndpoint).Port)}]");
        await using var dialer = Dialer(agent);

        ConnectTlsException error = await Assert.ThrowsAsync<ConnectTlsException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));
        await server.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(error.ServerRejectedClient, error.Message);
        Assert.Contains("refused the client certificate of 'web'", error.Message, StringComparison.Ordinal);
    }

    private static void NetworkStreamReadHello(Stream stream)
    {
        byte[] header = new byte[5];
        stream.ReadExactly(header);
        stream.ReadExactly(new byte[(header[3] << 8) | header[4]]);
    }

    [Fact]
    public async Task DialAsync_NoInstances_ThrowsNoHealthyInstances()
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", "[]");
        await using var dialer = Dialer(agent);

        ConnectNoHealthyInstancesException error = await Assert.ThrowsAsync<ConnectNoHealthyInstancesException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal(UpstreamDialKind.Unroutable, error.Path!.DialKind);
        Assert.Contains("no Connect-capable instance in dc2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DialAsync_OnlyCriticalInstances_ThrowsNoHealthyInstancesWithoutConnecting()
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", 1, status: "critical")}]");
        await using var dialer = Dialer(agent);

        ConnectNoHealthyInstancesException error = await Assert.ThrowsAsync<ConnectNoHealthyInstancesException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Null(error.Path!.Endpoint);
        Assert.Equal(UpstreamDialKind.TargetInstances, error.Path.DialKind);
    }

    [Fact]
    public async Task DialAsync_RemoteModeWithoutTargetGateways_ThrowsNoGatewaysNamingTheMode()
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", 1)}]");
        agent.Set("/v1/config/proxy-defaults/global", """{"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "remote"}}""");
        agent.Set("/v1/catalog/services", "{}");
        await using var dialer = Dialer(agent);

        ConnectNoGatewaysException error = await Assert.ThrowsAsync<ConnectNoGatewaysException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal((MeshGatewayModeKind.Remote, MeshGatewayModeLevel.ProxyDefaults), (error.Mode, error.Path!.Resolution.DecidedBy));
        Assert.Contains("mesh gateways of dc2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DialAsync_UpstreamConfigOverride_BeatsDefaultsAndRegistrationAndDialsTargetGatewayWan()
    {
        // The TLS server stands in for dc2's gateway + api (the bytes it sees are what a gateway would splice).
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", 1)}]");
        agent.Set("/v1/config/proxy-defaults/global", """{"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "none"}}""");
        agent.Set("/v1/config/service-defaults/web", """
            {"Kind": "service-defaults", "Name": "web", "MeshGateway": {"Mode": "local"},
             "UpstreamConfig": {"Defaults": {"MeshGateway": {"Mode": "local"}},
                                "Overrides": [{"Name": "api", "MeshGateway": {"Mode": "remote"}}, {"Name": "db", "MeshGateway": {"Mode": "none"}}]}}
            """);
        agent.Set("/v1/agent/service/web", """{"ID": "web", "Service": "web", "Port": 9, "Proxy": {"MeshGateway": {"Mode": "local"}}}""");
        agent.Set("/v1/catalog/services", """{"mgw": []}""");
        agent.Set("/v1/health/service/mgw", $"[{FakeAgent.Instance("mgw", "dc2", 1, kind: "mesh-gateway", wanAddress: "127.0.0.1", wanPort: server.Port)}]");
        await using var dialer = Dialer(agent);

        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" });

        Assert.Equal((MeshGatewayModeLevel.UpstreamOverride, 0), (connection.Path.Resolution.DecidedBy, connection.Path.Resolution.MatchedOverrideIndex));
        Assert.Equal((UpstreamDialKind.TargetGateways, server.Port), (connection.Path.DialKind, connection.Path.Endpoint!.Port));
        Assert.Contains("dc=dc2", string.Join(' ', agent.Requests.Where(r => r.StartsWith("/v1/health/service/mgw", StringComparison.Ordinal))), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DialAsync_RegistrationUpstreamDefinition_IsTheMostSpecificLevel()
    {
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        agent.Set("/v1/config/service-defaults/web", """{"Kind": "service-defaults", "Name": "web", "UpstreamConfig": {"Overrides": [{"Name": "api", "MeshGateway": {"Mode": "remote"}}]}}""");
        agent.Set("/v1/agent/service/web", """
            {"ID": "web", "Service": "web", "Port": 9,
             "Proxy": {"Upstreams": [{"DestinationName": "api", "Datacenter": "dc2", "MeshGateway": {"Mode": "none"}}]}}
            """);
        await using var dialer = Dialer(agent);

        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" });

        Assert.Equal((MeshGatewayModeLevel.Upstream, UpstreamDialKind.TargetInstances), (connection.Path.Resolution.DecidedBy, connection.Path.DialKind));
    }

    [Fact]
    public async Task DialAsync_OptionsForConnectNativeApp_SupplyRegistrationAndUpstreamLevels()
    {
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        agent.Set("/v1/catalog/services", "{}");
        await using var byRegistration = Dialer(agent, o => o.ProxyMeshGateway = MeshGatewayMode.Remote);
        await using var byUpstream = Dialer(agent, o =>
        {
            o.ProxyMeshGateway = MeshGatewayMode.Remote;
            o.Upstreams.Add(new ConnectUpstream { Name = "api", Datacenter = "dc2", MeshGateway = MeshGatewayMode.None });
        });

        ConnectNoGatewaysException noGateways = await Assert.ThrowsAsync<ConnectNoGatewaysException>(() => byRegistration.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));
        await using ConsulConnectConnection direct = await byUpstream.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" });

        Assert.Equal(MeshGatewayModeLevel.ProxyRegistration, noGateways.Path!.Resolution.DecidedBy);
        Assert.Equal((MeshGatewayModeLevel.Upstream, UpstreamDialKind.TargetInstances), (direct.Path.Resolution.DecidedBy, direct.Path.DialKind));
    }

    [Fact]
    public async Task DialAsync_DestinationServiceDefaults_CountOnlyWhenCallerLevelsAreUnset()
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", 1)}]");
        agent.Set("/v1/config/service-defaults/api", """{"Kind": "service-defaults", "Name": "api", "MeshGateway": {"Mode": "local"}}""");
        agent.Set("/v1/catalog/services", "{}");
        await using var dialer = Dialer(agent);

        ConnectNoGatewaysException error = await Assert.ThrowsAsync<ConnectNoGatewaysException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal((MeshGatewayModeLevel.DestinationServiceDefaults, MeshGatewayModeKind.Local), (error.Path!.Resolution.DecidedBy, error.Mode));
    }

    [Fact]
    public async Task DialAsync_UnreachableEndpoint_ThrowsUnreachableListingIt()
    {
        int closedPort = ClosedPort();
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", closedPort)}]");
        await using var dialer = Dialer(agent);

        ConnectDialException error = await Assert.ThrowsAsync<ConnectDialException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal(ConnectDialFailure.Unreachable, error.Failure);
        Assert.Contains("127.0.0.1:" + closedPort, error.Message, StringComparison.Ordinal);
    }

    private const string PeerTd = "99999999-8888-7777-6666-555555555555.consul";
    private const string PeerSni = "api.default.default.dc1-peer.external." + PeerTd;
    private static readonly string s_peerApi = $"spiffe://{PeerTd}/ns/default/dc/dc2/svc/api";

    [Theory]
    [InlineData(null, MeshGatewayModeLevel.BuiltInDefault)]
    [InlineData("none", MeshGatewayModeLevel.ProxyDefaults)]
    [InlineData("remote", MeshGatewayModeLevel.ProxyDefaults)]
    public async Task DialAsync_PeeredUpstream_DialsTheExportersGatewayAtWanWithThePeerSniAndThePeerCa(string? mode, MeshGatewayModeLevel decidedBy)
    {
        // The TLS server stands in for the exporter's mesh gateway (+ api behind it): a leaf of the peer's own CA and trust domain.
        using var peerCa = new TestCa("Peer Connect CA");
        using X509Certificate2 peerApi = peerCa.Issue(s_peerApi);
        await using var exporterGateway = new TestTlsServer(peerApi);
        FakeAgent agent = PeerAgent(peerCa, exporterGateway.Port);
        if (mode is not null)
        {
            agent.Set("/v1/config/proxy-defaults/global", $$$"""{"Kind": "proxy-defaults", "Name": "global", "MeshGateway": {"Mode": "{{{mode}}}"}}""");
        }

        await using var dialer = Dialer(agent);

        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Peer = "other" });
        byte[] reply = new byte[4];
        await connection.Stream.WriteAsync("ping"u8.ToArray());
        await connection.Stream.ReadExactlyAsync(reply);

        Assert.Equal("ping", Encoding.ASCII.GetString(reply));
        Assert.Equal((UpstreamDialKind.PeerGateways, exporterGateway.Port, decidedBy), (connection.Path.DialKind, connection.Path.Endpoint!.Port, connection.Path.Resolution.DecidedBy));
        Assert.Equal(mode == "none", connection.Path.Explanation.Contains("Consul treats as remote", StringComparison.Ordinal));
        Assert.Equal(PeerSni, Assert.Single(exporterGateway.ServerNames));
        Assert.Equal(s_peerApi, connection.Path.ExpectedIdentity);
        Assert.Contains(agent.Requests, r => r.StartsWith("/v1/health/connect/api", StringComparison.Ordinal) && r.Contains("peer=other", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DialAsync_PeeredUpstreamInLocalMode_DialsTheLocalGatewayAtLanWithThePeerSni()
    {
        using var peerCa = new TestCa("Peer Connect CA");
        using X509Certificate2 peerApi = peerCa.Issue(s_peerApi);
        await using var localGateway = new TestTlsServer(peerApi);
        FakeAgent agent = PeerAgent(peerCa, exporterGatewayPort: 1);
        agent.Set("/v1/catalog/services", """{"mgw": []}""");
        agent.Set("/v1/health/service/mgw", $"[{FakeAgent.Instance("mgw", "dc1", localGateway.Port, kind: "mesh-gateway", wanAddress: "198.51.100.1", wanPort: 443)}]");
        await using var dialer = Dialer(agent);

        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Peer = "other", MeshGateway = MeshGatewayMode.Local });
        byte[] reply = new byte[4];
        await connection.Stream.WriteAsync("ping"u8.ToArray()); // an echo: the server has finished its side of the handshake
        await connection.Stream.ReadExactlyAsync(reply);

        Assert.Equal((UpstreamDialKind.LocalGateways, localGateway.Port), (connection.Path.DialKind, connection.Path.Endpoint!.Port));
        Assert.Equal(PeerSni, Assert.Single(localGateway.ServerNames));
    }

    [Fact]
    public async Task DialAsync_PeeredUpstreamWithThePeeringWatched_TakesThePeerCaFromTheViewNotPerDial()
    {
        using var peerCa = new TestCa("Peer Connect CA");
        using X509Certificate2 peerApi = peerCa.Issue(s_peerApi);
        await using var exporterGateway = new TestTlsServer(peerApi);
        FakeAgent agent = PeerAgent(peerCa, exporterGateway.Port);
        // The list the watcher reads with each gateway poll (api/peering.go Peering, PeerCAPems included).
        agent.Set("/v1/peerings", "[" + new System.Text.Json.Nodes.JsonObject
        {
            ["Name"] = "other",
            ["State"] = "ACTIVE",
            ["PeerCAPems"] = new System.Text.Json.Nodes.JsonArray(peerCa.RootPem),
        }.ToJsonString() + "]");
        await using var dialer = Dialer(agent);
        await dialer.StartAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (ConsulCatalogView view in dialer.CatalogWatcher!.Views.ReadAllAsync(deadline.Token))
        {
            if (view.Peering?.Peerings.Any(p => p.Name == "other") == true)
            {
                break;
            }
        }

        for (int i = 0; i < 2; i++)
        {
            await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Peer = "other" });
            byte[] reply = new byte[4];
            await connection.Stream.WriteAsync("ping"u8.ToArray());
            await connection.Stream.ReadExactlyAsync(reply);
            Assert.Equal("ping", Encoding.ASCII.GetString(reply));
        }

        Assert.Equal(0, agent.Count("/v1/peering/other"));
    }

    [Fact]
    public async Task DialAsync_PeeredUpstreamServedByALeafOfTheLocalCa_FailsTheHandshake()
    {
        // The peer's gateway must chain to the peer's CA (PeerCAPems), not to the local roots.
        using var peerCa = new TestCa("Peer Connect CA");
        using X509Certificate2 impostor = _ca.Issue(s_peerApi);
        await using var server = new TestTlsServer(impostor);
        FakeAgent agent = PeerAgent(peerCa, server.Port);
        await using var dialer = Dialer(agent);

        ConnectTlsException error = await Assert.ThrowsAsync<ConnectTlsException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Peer = "other" }));

        Assert.Contains("does not chain", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A 1.13+ agent importing <c>api</c> from peer <c>other</c>: <c>/v1/health/connect/api?peer=other</c> answers the synthesised
    /// connect-proxy of the exporter's gateway (docs/consul-behaviour.md §11; <c>Connect.PeerMeta</c> shape of api/agent.go
    /// <c>PeeringServiceMeta</c>), <c>/v1/peering/other</c> its CA (api/peering.go <c>PeerCAPems</c>).
    /// </summary>
    private FakeAgent PeerAgent(TestCa peerCa, int exporterGatewayPort)
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        string imported = $$$"""
            {"Node": {"Node": "peer-gw-node", "Address": "10.9.9.9", "Datacenter": "dc2"},
             "Service": {"Kind": "connect-proxy", "ID": "api-sidecar-proxy", "Service": "api-sidecar-proxy", "Address": "10.9.9.9", "Port": 8443,
                         "TaggedAddresses": {"lan": {"Address": "10.9.9.9", "Port": 8443}, "wan": {"Address": "127.0.0.1", "Port": {{{exporterGatewayPort}}}}},
                         "Proxy": {"DestinationServiceName": "api"}, "PeerName": "other",
                         "Connect": {"PeerMeta": {"SNI": ["{{{PeerSni}}}"], "SpiffeID": ["{{{s_peerApi}}}"], "Protocol": "tcp"} } },
             "Checks": [{"CheckID": "api-sidecar-proxy:overall-check", "Status": "passing"}]}
            """;
        agent.Set("/v1/health/connect/api", request => request.RequestUri!.Query.Contains("peer=other", StringComparison.Ordinal)
            ? (HttpStatusCode.OK, "[" + imported + "]")
            : (HttpStatusCode.OK, "[]"));
        agent.Set("/v1/peering/other", new System.Text.Json.Nodes.JsonObject
        {
            ["Name"] = "other",
            ["State"] = "ACTIVE",
            ["PeerCAPems"] = new System.Text.Json.Nodes.JsonArray(peerCa.RootPem),
        }.ToJsonString());
        return agent;
    }

    [Fact]
    public async Task DialAsync_LeafWithinRenewalMargin_FetchesAFreshLeafFirst()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        await using var dialer = Dialer(agent, o => o.TimeProvider = clock);
        await dialer.StartAsync();
        Assert.Equal(1, dialer.LeafUpdates);

        using X509Certificate2 renewed = _ca.Issue(TestCa.SpiffeFor("web"), DateTimeOffset.UtcNow.AddDays(10));
        agent.SetLeaf(renewed);
        clock.Advance(_web.NotAfter.ToUniversalTime() - clock.GetUtcNow() - TimeSpan.FromSeconds(30));
        await using ConsulConnectConnection connection = await dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" });

        Assert.Equal(2, dialer.LeafUpdates);
        Assert.Equal(renewed.SerialNumber, dialer.Certificate!.SerialNumber);
    }

    [Fact]
    public async Task DialAsync_RemoteTargetAgain_ReusesItsInstancesForTheCacheDurationOnly()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new TestTlsServer(_api);
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/health/connect/api", $"[{FakeAgent.Instance("api", "dc2", server.Port)}]");
        await using var dialer = Dialer(agent, o =>
        {
            o.TimeProvider = clock;
            o.RemoteInstancesCacheDuration = TimeSpan.FromSeconds(5);
        });
        var api = new ConnectUpstream { Name = "api", Datacenter = "dc2" };
        int Asked() => agent.Requests.Count(r => r.StartsWith("/v1/health/connect/api?", StringComparison.Ordinal) && r.Contains("dc=dc2", StringComparison.Ordinal));

        await using (await dialer.DialAsync(api))
        {
        }

        await using (await dialer.DialAsync(api))
        {
        }

        int withinDuration = Asked();
        clock.Advance(TimeSpan.FromSeconds(6));
        await using (await dialer.DialAsync(api))
        {
        }

        Assert.Equal((1, 2), (withinDuration, Asked()));
    }

    [Fact]
    public async Task DialAsync_CatalogNeverComplete_FailsWithCatalogUnavailableNamingWhatIsMissing()
    {
        FakeAgent agent = FakeAgent.Standard(_ca, _web);
        agent.Set("/v1/catalog/datacenters", _ => (HttpStatusCode.InternalServerError, "no leader"));
        await using var dialer = Dialer(agent, o => o.CatalogTimeout = TimeSpan.FromSeconds(1));

        ConnectDialException error = await Assert.ThrowsAsync<ConnectDialException>(() => dialer.DialAsync(new ConnectUpstream { Name = "api", Datacenter = "dc2" }));

        Assert.Equal(ConnectDialFailure.CatalogUnavailable, error.Failure);
        Assert.Contains("/v1/catalog/datacenters", error.Message, StringComparison.Ordinal);
        Assert.Contains("CatalogTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_Invalid_ThrowNamingTheOption()
    {
        using var client = new ConsulClient(new ConsulClientOptions());
        Assert.Contains("Service", Assert.Throws<ArgumentException>(() => new ConsulConnectDialer(client, new ConsulConnectDialerOptions { Service = " " })).Message, StringComparison.Ordinal);
        Assert.Contains("ConnectTimeout", Assert.Throws<ArgumentException>(() => new ConsulConnectDialer(client, new ConsulConnectDialerOptions { Service = "web", ConnectTimeout = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        var options = new ConsulConnectDialerOptions { Service = "web" };
        options.Upstreams.Add(new ConnectUpstream { Name = "" });
        Assert.Contains("Upstreams", Assert.Throws<ArgumentException>(() => new ConsulConnectDialer(client, options)).Message, StringComparison.Ordinal);
        Assert.Contains("CatalogTimeout", Assert.Throws<ArgumentException>(() => new ConsulConnectDialer(client, new ConsulConnectDialerOptions { Service = "web", CatalogTimeout = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        using var small = new ConsulClient(new ConsulClientOptions { MaxConnections = 4 });
        Assert.Contains("MaxConnections", Assert.Throws<ArgumentException>(() => new ConsulConnectDialer(small, new ConsulConnectDialerOptions { Service = "web" })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SpiffeUriSan_ReadsUriEntriesOnly()
    {
        using X509Certificate2 leaf = _ca.Issue(TestCa.SpiffeFor("api"), dnsName: "api.example");

        Assert.Equal([TestCa.SpiffeFor("api")], SpiffeUriSan.Read(leaf));
        Assert.Empty(SpiffeUriSan.Read(_ca.Root));
        Assert.True(SpiffeUriSan.Matches(TestCa.SpiffeFor("api").ToUpperInvariant().Replace("SPIFFE", "spiffe", StringComparison.Ordinal), TestCa.SpiffeFor("api")));
        Assert.False(SpiffeUriSan.Matches(TestCa.SpiffeFor("api2"), TestCa.SpiffeFor("api")));
    }

    private static ConsulConnectDialer Dialer(FakeAgent agent, Action<ConsulConnectDialerOptions>? configure = null)
    {
        var client = new ConsulClient(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:8500"), Handler = agent });
        var options = new ConsulConnectDialerOptions { Service = "web", ConnectTimeout = TimeSpan.FromSeconds(5), HandshakeTimeout = TimeSpan.FromSeconds(20) };
        configure?.Invoke(options);
        return new ConsulConnectDialer(client, options);
    }

    private static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
