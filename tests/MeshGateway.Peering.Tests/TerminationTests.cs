using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Gateway;
using MeshGateway.Routing;

namespace MeshGateway.Peering.Tests;

/// <summary>The terminating path end to end: peer client → gateway listener → Kestrel/YARP → sidecar, over real mTLS.</summary>
public sealed class TerminationTests
{
    public static TheoryData<string> Versions => ["1.1", "2.0"];

    [Theory]
    [MemberData(nameof(Versions))]
    public async Task Request_FromPeer_IsForwardedToSidecarOverNewMtlsAndAnswered(string version)
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/hello", Version.Parse(version)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Version.Parse(version), response.Version);
        Assert.Equal("web-a /hello", await response.Content.ReadAsStringAsync());
        SeenRequest seen = Assert.Single(harness.SidecarA.Seen);
        Assert.Equal(harness.GatewaySpiffeId, seen.ClientSpiffeId);
        Assert.Equal("HTTP/1.1", seen.Protocol);
        Assert.Equal(0, harness.SidecarB.Requests);
        Assert.Equal(1, harness.Terminator.Counters.HandshakesAccepted);
        Assert.Equal(0, harness.Terminator.Counters.HandshakesRefused);
        Assert.Equal(1, harness.Gateway.Counters.Terminated);
        Assert.Equal(0, harness.Gateway.Counters.Rejected);
    }

    [Theory]
    [InlineData("http2")]
    [InlineData("grpc")]
    public async Task Request_ForHttp2LikeService_GoesToTheSidecarOverHttp2(string protocol)
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync(protocol: protocol);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/h2", HttpVersion.Version11));

        Assert.Equal("web-a /h2", await response.Content.ReadAsStringAsync());
        Assert.Equal("HTTP/2", Assert.Single(harness.SidecarA.Seen).Protocol);
    }

    public static TheoryData<string, string, bool> Uploads => new()
    {
        { "http", "1.1", true },
        { "http", "1.1", false },
        { "http", "2.0", true },
        { "grpc", "2.0", false },
    };

    [Theory]
    [MemberData(nameof(Uploads))]
    public async Task RequestBody_OfSeveralMegabytes_ReachesTheSidecarByteExact(string protocol, string clientVersion, bool withLength)
    {
        // 3 MiB and 1 byte of random data: several TLS records, HTTP/2 flow-control windows and YARP copy buffers on the
        // way. The sidecar answers with the length and SHA-256 it read.
        byte[] body = new byte[(3 * 1024 * 1024) + 1];
        Random.Shared.NextBytes(body);
        await using PeeringHarness harness = await PeeringHarness.StartAsync(protocol: protocol);
        using HttpClient client = harness.CreateClient(harness.PeerClient);
        using HttpRequestMessage request = PeeringHarness.Get("/body", Version.Parse(clientVersion));
        request.Method = HttpMethod.Post;
        // A stream that cannot seek has no length: HTTP/1.1 sends it chunked, HTTP/2 without content-length.
        request.Content = withLength ? new ByteArrayContent(body) : new StreamContent(System.IO.Pipelines.PipeReader.Create(new System.Buffers.ReadOnlySequence<byte>(body)).AsStream());

        using HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"web-a {body.Length} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(body))}", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, harness.SidecarA.Requests);
        Assert.Equal(0, harness.Terminator.Counters.UpstreamFailures);
    }

    [Fact]
    public async Task ForwardedClientCert_ClientSuppliedValue_IsReplacedByTheValidatedPeer()
    {
        // Rule 0 (/b/ only) goes to B, everything else to A: the forged XFCC must not steer or reach anything.
        await using PeeringHarness harness = await PeeringHarness.StartAsync(
        [
            new HttpRouteRule { Match = new HttpRouteMatch { PathPrefix = "/b/" }, Splits = [new WeightedTarget(PeeringHarness.TargetB, 1)] },
            new HttpRouteRule { Splits = [new WeightedTarget(PeeringHarness.TargetA, 1)] },
        ]);
        SeenRequest seen = await SendToSidecarAAsync(harness, "/xfcc",
            ("X-Forwarded-Client-Cert", "By=spiffe://forged;URI=spiffe://forged/svc/admin"));

        string xfcc = Assert.Single(seen.ForwardedClientCert);
        string hash = Convert.ToHexStringLower(SHA256.HashData(harness.PeerClient.RawData));
        Assert.StartsWith($"By={harness.GatewaySpiffeId};Hash={hash};Subject=\"CN=frontend\";URI={harness.PeerB.ServiceId("frontend", "dc2")};Cert=\"", xfcc, StringComparison.Ordinal);
        Assert.Contains("Cert=\"" + Uri.EscapeDataString(harness.PeerClient.ExportCertificatePem()) + "\"", xfcc, StringComparison.Ordinal);
        Assert.Contains(";Chain=\"" + Uri.EscapeDataString(harness.PeerClient.ExportCertificatePem()), xfcc, StringComparison.Ordinal);
        Assert.DoesNotContain("forged", xfcc, StringComparison.Ordinal);
        Assert.Equal(0, harness.SidecarB.Requests);
    }

    [Fact]
    public async Task ForwardedHeaders_AsEnvoysMeshGateway_ProtoSetClientsForwardedForPassedAndNoAddressOrHostAdded()
    {
        // Consul's mesh gateway filter chain for a peer (agent/xds/listeners.go, makeHTTPFilter) leaves Envoy's
        // use_remote_address unset: the peer's address is not appended to X-Forwarded-For and no host is added. YARP's
        // defaults would add X-Forwarded-For/-Host (the peer gateway's address, inside the local datacenter).
        await using PeeringHarness harness = await PeeringHarness.StartAsync();

        SeenRequest seen = await SendToSidecarAAsync(harness, "/forwarded", ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "http"));

        Assert.Equal("203.0.113.7", seen.Forwarded["X-Forwarded-For"]);
        Assert.Equal("https", seen.Forwarded["X-Forwarded-Proto"]);
        Assert.Equal(["X-Forwarded-For", "X-Forwarded-Proto"], seen.Forwarded.Keys.Order(StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>Sends a GET with the given headers as the peer's client, expects 200 and returns what sidecar A saw.</summary>
    private static async Task<SeenRequest> SendToSidecarAAsync(PeeringHarness harness, string path, params (string Name, string Value)[] headers)
    {
        using HttpClient client = harness.CreateClient(harness.PeerClient);
        using HttpRequestMessage request = PeeringHarness.Get(path, HttpVersion.Version11);
        foreach ((string name, string value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using HttpResponseMessage response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Assert.Single(harness.SidecarA.Seen);
    }

    public static TheoryData<string, HandshakeRefusal> Refusals => new()
    {
        { "stranger", HandshakeRefusal.UnknownTrustDomain },
        { "expired", HandshakeRefusal.Expired },
        { "peer-c", HandshakeRefusal.NotExportedToPeer },
        { "forged", HandshakeRefusal.UntrustedChain },
        { "no-spiffe", HandshakeRefusal.NoSpiffeId },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Handshake_WithBadClientCertificate_IsRefusedCountedAndNothingIsForwarded(string kind, HandshakeRefusal expected)
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 certificate = kind switch
        {
            // Another trust domain nobody imported anything from.
            "stranger" => harness.Stranger.Issue(harness.Stranger.ServiceId("frontend", "dc9")),
            // The consumer peer's CA, but no longer valid.
            "expired" => harness.PeerB.Issue(harness.PeerB.ServiceId("frontend", "dc2"), now.AddDays(-3), now.AddDays(-1)),
            // A known peer (it has a trust bundle) to which web is not exported: its certificate is for other imports.
            "peer-c" => harness.PeerC.Issue(harness.PeerC.ServiceId("frontend", "dc3")),
            // Claims the consumer peer's trust domain but was issued by the stranger CA.
            "forged" => harness.Stranger.Issue(harness.PeerB.ServiceId("frontend", "dc2")),
            _ => harness.PeerB.Issue("urn:not-spiffe:frontend"),
        };
        using HttpClient client = harness.CreateClient(certificate);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(PeeringHarness.Get("/hello", HttpVersion.Version11)));

        Assert.True(harness.Terminator.Counters.GetRefused(expected) >= 1, $"no {expected} refusal counted");
        Assert.Equal(harness.Terminator.Counters.GetRefused(expected), harness.Terminator.Counters.HandshakesRefused);
        Assert.Equal(0, harness.Terminator.Counters.HandshakesAccepted);
        Assert.Equal(0, harness.Terminator.Counters.Requests);
        Assert.Equal(0, harness.SidecarA.Requests + harness.SidecarB.Requests);
        Assert.True(harness.Gateway.Counters.Terminated >= 1);
    }

    [Fact]
    public async Task Handshake_ThatStallsAfterTheServersFlight_IsClosedAtTheHandshakeTimeout()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync(handshakeTimeout: TimeSpan.FromMilliseconds(300));
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(harness.GatewayEndPoint);
        await using var stalling = new StallAfterFirstWriteStream(new System.Net.Sockets.NetworkStream(socket, ownsSocket: false));
        await using var tls = new System.Net.Security.SslStream(stalling, leaveInnerStreamOpen: true, (_, certificate, _, _) => certificate is not null);

        // A real ClientHello, then nothing: the client's second flight waits until the gateway closes the connection.
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAnyAsync<IOException>(() => tls.AuthenticateAsClientAsync(
            new System.Net.Security.SslClientAuthenticationOptions { TargetHost = PeeringHarness.WebSni, ClientCertificates = [harness.PeerClient] }, guard.Token));

        Assert.True(stalling.ServerFlightRead, "the server's flight never came");
        Assert.True(stalling.ClosedByServer, "the connection was not closed by the gateway");
        Assert.Equal(1, harness.Terminator.Counters.Connections);
        Assert.Equal(0, harness.Terminator.Counters.HandshakesAccepted);
        Assert.Equal(0, harness.Terminator.Counters.Requests);
        Assert.Equal(0, harness.SidecarA.Requests + harness.SidecarB.Requests);
    }

    [Fact]
    public async Task Handshake_WithoutClientCertificate_IsRefused()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        using HttpClient client = harness.CreateClient(null);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(PeeringHarness.Get("/hello", HttpVersion.Version11)));

        Assert.True(harness.Terminator.Counters.GetRefused(HandshakeRefusal.NoClientCertificate) >= 1);
        Assert.Equal(0, harness.SidecarA.Requests + harness.SidecarB.Requests);
    }

    [Fact]
    public async Task LeafRotation_MidStream_KeepsEstablishedConnectionWhileNewHandshakesGetTheNewLeaf()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        var oldSeen = new List<string>();
        using HttpClient established = harness.CreateClient(harness.PeerClient, c => { lock (oldSeen) { oldSeen.Add(c.Thumbprint); } });
        using HttpResponseMessage streaming = await established.SendAsync(PeeringHarness.Get("/stream", HttpVersion.Version20), HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync());
        Assert.Equal("first", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        using X509Certificate2 rotated = harness.Local.Issue(harness.GatewaySpiffeId);
        harness.Terminator.Update(harness.Snapshot(rotated));

        var newSeen = new List<string>();
        using HttpClient fresh = harness.CreateClient(harness.PeerClient, c => { lock (newSeen) { newSeen.Add(c.Thumbprint); } });
        using HttpResponseMessage afterRotation = await fresh.SendAsync(PeeringHarness.Get("/new", HttpVersion.Version20));
        Assert.Equal("web-a /new", await afterRotation.Content.ReadAsStringAsync());
        Assert.Equal([rotated.Thumbprint], newSeen);

        // The established HTTP/2 connection still serves: the open stream finishes and a new stream shares the connection.
        using HttpResponseMessage again = await established.SendAsync(PeeringHarness.Get("/again", HttpVersion.Version20));
        Assert.Equal("web-a /again", await again.Content.ReadAsStringAsync());
        harness.SidecarA.ReleaseStream();
        Assert.Equal("second", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal([harness.GatewayLeaf.Thumbprint], oldSeen);
        Assert.Equal(2, harness.Terminator.Counters.HandshakesAccepted);
    }

    [Fact]
    public async Task Terminator_ThatThrows_IsCountedAndTheListenerGoesOn()
    {
        Route throwing = new("boom.example", new UpstreamCluster("boom.example", [])) { Terminator = new ThrowingTerminator() };
        var faulting = new FaultingTerminator();
        Route faulted = new("fault.example", new UpstreamCluster("fault.example", [])) { Terminator = faulting };
        await using PeeringHarness harness = await PeeringHarness.StartAsync(extraRoutes: [throwing, faulted]);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(PeeringHarness.Get("/", HttpVersion.Version11, "boom.example")));
        await Assert.ThrowsAsync<HttpRequestException>(() => client.SendAsync(PeeringHarness.Get("/", HttpVersion.Version11, "fault.example")));
        await faulting.Faulted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using (HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/still-up", HttpVersion.Version11)))
        {
            Assert.Equal("web-a /still-up", await response.Content.ReadAsStringAsync());
        }

        // Every connection ends once the client closes its pooled one: the drain completes on that signal, and by
        // then the faulted session has been counted.
        client.Dispose();
        GatewayStopResult stopped = await harness.Gateway.StopAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, stopped.Cut);
        Assert.True(harness.Gateway.Counters.GetRejected(RejectionReason.TerminatorFailed) >= 1);
        Assert.Equal(0, harness.Gateway.Counters.GetRejected(RejectionReason.NoRoute));
        Assert.True(harness.Gateway.Counters.ObserverErrors >= 1, "the faulted session was not counted");
    }

    [Fact]
    public async Task Sidecar_WithAnotherServiceIdentity_IsNotTrusted()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        PeeringSnapshot snapshot = harness.Snapshot(harness.GatewayLeaf, [new HttpRouteRule { Splits = [new WeightedTarget(PeeringHarness.TargetB, 1)] }]);
        ExportedHttpService web = snapshot.Services[0];
        harness.Terminator.Update(snapshot with
        {
            Services = [web with { Targets = [web.Targets[0], web.Targets[1] with { SpiffeId = harness.Local.ServiceId("billing", "dc1") }] }],
        });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/hello", HttpVersion.Version11));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(0, harness.SidecarB.Requests);
        Assert.Equal(1, harness.Terminator.Counters.UpstreamFailures);
        // The refused certificate failed the connection (counted as Envoy's upstream_cx_connect_fail).
        Assert.True(harness.Terminator.Counters.SidecarConnectFailures >= 1);
        Assert.Equal(0, harness.Terminator.Counters.SidecarConnections);
    }

    [Theory]
    [InlineData("http", "1.1")]
    [InlineData("http", "2.0")]
    [InlineData("http2", "1.1")]
    public async Task RequestsForManyHosts_ReachTheSidecarWithTheTargetsServerName(string protocol, string clientVersion)
    {
        // Consul's gateway cluster for an exported HTTP service sends the target's SNI to its sidecars
        // (agent/xds/testdata/clusters/mesh-gateway-with-exported-peered-services-http.latest.golden, "sni"), and keeps the
        // request's Host. The Host must not pick the SNI, nor (HTTP/1.1 to the sidecar) a connection pool of its own;
        // HTTP/2 connections stay one per :authority (PeeringState.cs, SidecarDestination's remarks).
        const int Hosts = 5;
        await using PeeringHarness harness = await PeeringHarness.StartAsync(protocol: protocol);
        using HttpClient client = harness.CreateClient(harness.PeerClient, serverName: PeeringHarness.WebSni);

        for (int i = 0; i < Hosts; i++)
        {
            using HttpRequestMessage request = PeeringHarness.Get("/host" + i, Version.Parse(clientVersion));
            request.Headers.Host = "h" + i + ".example";
            using HttpResponseMessage response = await client.SendAsync(request);
            Assert.Equal("web-a /host" + i, await response.Content.ReadAsStringAsync());
        }

        SeenRequest[] seen = [.. harness.SidecarA.Seen];
        Assert.Equal(Hosts, seen.Length);
        Assert.All(seen, r => Assert.Equal(PeeringHarness.TargetAServerName, r.ServerName));
        Assert.Equal([.. Enumerable.Range(0, Hosts).Select(i => "h" + i + ".example")], seen.Select(r => r.Host));
        if (protocol == "http")
        {
            Assert.Single(seen.Select(r => r.ConnectionId).Distinct());
            Assert.Equal(1, harness.Terminator.Counters.SidecarConnections);
        }

        Assert.Equal(0, harness.Terminator.Counters.SidecarConnectFailures);

        Assert.Equal(Hosts, harness.Terminator.Counters.HandshakesAccepted);
    }

    [Fact]
    public async Task Target_WithoutServerName_SendsNoHostAsSni()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync([new HttpRouteRule { Splits = [new WeightedTarget(PeeringHarness.TargetB, 1)] }]);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/b", HttpVersion.Version11));

        Assert.Equal("web-b /b", await response.Content.ReadAsStringAsync());
        SeenRequest seen = Assert.Single(harness.SidecarB.Seen);
        // The sidecar's address is 127.0.0.1, and an address is never sent as a server name (RFC 6066, section 3).
        Assert.Null(seen.ServerName);
        Assert.Equal(PeeringHarness.WebSni, seen.Host);
    }

    /// <summary>Passes the first write (the ClientHello) and reads; the next write waits for the peer's close, then fails.</summary>
    private sealed class StallAfterFirstWriteStream(Stream inner) : Stream
    {
        private int _writes;

        public bool ServerFlightRead { get; private set; }

        public bool ClosedByServer { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            ServerFlightRead |= n > 0;
            return n;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (++_writes == 1)
            {
                await inner.WriteAsync(buffer, cancellationToken);
                return;
            }

            // Stalled: wait for the gateway to give up on the handshake (EOF or reset), never sending this flight.
            byte[] scratch = new byte[4096];
            try
            {
                while (await inner.ReadAsync(scratch, cancellationToken) > 0)
                {
                }

                ClosedByServer = true;
            }
            catch (IOException)
            {
                ClosedByServer = true;
            }

            throw new IOException("stalled client: the server closed the connection");
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private sealed class ThrowingTerminator : ConnectionTerminator
    {
        public override Task RunAsync(TerminatedConnection connection) => throw new InvalidOperationException("broken terminator");
    }

    private sealed class FaultingTerminator : ConnectionTerminator
    {
        public TaskCompletionSource Faulted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task RunAsync(TerminatedConnection connection)
        {
            await Task.Yield();
            Faulted.TrySetResult();
            throw new InvalidOperationException("session failed");
        }
    }
}
