using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.Peering.Tests;

/// <summary>
/// The whole peering data plane on loopback: a local trust domain (CA, gateway leaf, two sidecars of <c>web</c>), the
/// consumer peer <c>peer-b</c> (its own CA), a known peer <c>peer-c</c> that imports nothing, a stranger CA nobody
/// trusts; the real <see cref="GatewayListener"/> with the terminator's routes (plus any extra routes).
/// </summary>
internal sealed class PeeringHarness : IAsyncDisposable
{
    public const string LocalTrustDomain = "11111111-2222-3333-4444-555555555555.consul";
    public const string PeerBTrustDomain = "22222222-3333-4444-5555-666666666666.consul";
    public const string PeerCTrustDomain = "33333333-4444-5555-6666-777777777777.consul";
    public const string StrangerTrustDomain = "44444444-5555-6666-7777-888888888888.consul";
    public const string TargetA = "a.web.default.default.dc1";
    public const string TargetB = "b.web.default.default.dc1";

    /// <summary>Target A's SNI as Consul names it (target B's is left out: its sidecar gets the address).</summary>
    public const string TargetAServerName = "a.web.default.dc1.internal." + LocalTrustDomain;

    /// <summary>The form-8 SNI of <c>web</c> exported to <c>peer-b</c>.</summary>
    public const string WebSni = "web.default.default.peer-b.external." + LocalTrustDomain;

    private PeeringHarness()
    {
    }

    public SpiffeAuthority Local { get; } = new(LocalTrustDomain);

    public SpiffeAuthority PeerB { get; } = new(PeerBTrustDomain);

    public SpiffeAuthority PeerC { get; } = new(PeerCTrustDomain);

    public SpiffeAuthority Stranger { get; } = new(StrangerTrustDomain);

    public string GatewaySpiffeId { get; } = $"spiffe://{LocalTrustDomain}/gateway/mesh/dc/dc1";

    public X509Certificate2 GatewayLeaf { get; private set; } = null!;

    public Sidecar SidecarA { get; private set; } = null!;

    public Sidecar SidecarB { get; private set; } = null!;

    public PeeringTerminator Terminator { get; private set; } = null!;

    public GatewayListener Gateway { get; private set; } = null!;

    public IPEndPoint GatewayEndPoint => Gateway.LocalEndPoints[0];

    /// <summary>The peer's client certificate: <c>frontend</c> in peer-b's dc2.</summary>
    public X509Certificate2 PeerClient { get; private set; } = null!;

    public static async Task<PeeringHarness> StartAsync(IReadOnlyList<HttpRouteRule>? routes = null, IEnumerable<Route>? extraRoutes = null, string protocol = "http", TimeSpan? handshakeTimeout = null, Action<PeeringTerminatorOptions>? configure = null)
    {
        var options = new PeeringTerminatorOptions();
        if (handshakeTimeout is { } timeout)
        {
            options.HandshakeTimeout = timeout;
        }

        configure?.Invoke(options);

        var harness = new PeeringHarness();
        try
        {
            await harness.InitAsync(routes, extraRoutes, protocol, options);
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }

        return harness;
    }

    private async Task InitAsync(IReadOnlyList<HttpRouteRule>? routes, IEnumerable<Route>? extraRoutes, string protocol, PeeringTerminatorOptions options)
    {
        GatewayLeaf = Local.Issue(GatewaySpiffeId);
        PeerClient = PeerB.Issue(PeerB.ServiceId("frontend", "dc2"));
        SidecarA = await Sidecar.StartAsync("web-a", Local.Issue(Local.ServiceId("web", "dc1")), Local.Root, GatewaySpiffeId);
        SidecarB = await Sidecar.StartAsync("web-b", Local.Issue(Local.ServiceId("web", "dc1")), Local.Root, GatewaySpiffeId);
        Terminator = await PeeringTerminator.StartAsync(Snapshot(GatewayLeaf, routes, protocol), options);
        var listenerOptions = new GatewayListenerOptions { Engine = TestEngine.Current };
        listenerOptions.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        Gateway = new GatewayListener(listenerOptions, new RouteTableSource(RouteTable.Create([.. Terminator.CreateRoutes(), .. extraRoutes ?? []])));
        Gateway.Start();
    }

    /// <summary>The snapshot: <c>web</c> (targets A and B) exported to peer-b; bundles of peer-b and peer-c.</summary>
    public PeeringSnapshot Snapshot(X509Certificate2 leaf, IReadOnlyList<HttpRouteRule>? routes = null, string protocol = "http") => new()
    {
        Leaf = leaf,
        TrustDomain = LocalTrustDomain,
        LocalRoots = [Local.Root],
        TrustBundles =
        [
            new PeerTrustBundle { PeerName = "peer-b", TrustDomain = PeerBTrustDomain, Roots = [PeerB.Root] },
            new PeerTrustBundle { PeerName = "peer-c", TrustDomain = PeerCTrustDomain, Roots = [PeerC.Root] },
        ],
        Services =
        [
            new ExportedHttpService
            {
                Name = "web",
                Protocol = protocol,
                Consumers = [new ServiceConsumer("peer-b", WebSni)],
                Routes = routes ?? [new HttpRouteRule { Splits = [new WeightedTarget(TargetA, 100)] }],
                Targets =
                [
                    new ChainTargetEndpoints { Id = TargetA, SpiffeId = Local.ServiceId("web", "dc1"), Endpoints = [SidecarA.EndPoint], ServerName = TargetAServerName },
                    new ChainTargetEndpoints { Id = TargetB, SpiffeId = Local.ServiceId("web", "dc1"), Endpoints = [SidecarB.EndPoint] },
                ],
            },
        ],
    };

    /// <summary>
    /// An HttpClient acting as a peer's sidecar: dials the gateway whatever the host, sends the URI's host as SNI (or
    /// <paramref name="serverName"/> whatever the request's <c>Host</c>, when given), presents
    /// <paramref name="clientCertificate"/> and trusts the local CA only; <paramref name="onServerCertificate"/> sees the
    /// gateway certificate of every handshake.
    /// </summary>
    public HttpClient CreateClient(X509Certificate2? clientCertificate, Action<X509Certificate2>? onServerCertificate = null, string? serverName = null)
    {
        var tlsOptions = new SslClientAuthenticationOptions
        {
            LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                var server = (X509Certificate2)certificate!;
                onServerCertificate?.Invoke(server);
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(Local.Root);
                return chain.Build(server) && Sidecar.SpiffeIdOf(server) == GatewaySpiffeId;
            },
        };
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(GatewayEndPoint, cancellationToken);
                    var stream = new NetworkStream(socket, ownsSocket: true);
                    if (serverName is null)
                    {
                        return stream;
                    }

                    // The handler uses an authenticated SslStream as it is (.NET 7+): the SNI stays fixed whatever the Host.
                    var tls = new SslStream(stream);
                    await tls.AuthenticateAsClientAsync(
                        new SslClientAuthenticationOptions
                        {
                            TargetHost = serverName,
                            ApplicationProtocols = [context.InitialRequestMessage.Version == HttpVersion.Version20 ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11],
                            LocalCertificateSelectionCallback = tlsOptions.LocalCertificateSelectionCallback,
                            CertificateRevocationCheckMode = tlsOptions.CertificateRevocationCheckMode,
                            RemoteCertificateValidationCallback = tlsOptions.RemoteCertificateValidationCallback,
                        },
                        cancellationToken);
                    return tls;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = tlsOptions,
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
    }

    public static HttpRequestMessage Get(string path, Version version, string sni = WebSni) => new(HttpMethod.Get, "https://" + sni + path)
    {
        Version = version,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    public async ValueTask DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        if (Terminator is not null)
        {
            await Terminator.DisposeAsync();
        }

        if (SidecarA is not null)
        {
            await SidecarA.DisposeAsync();
        }

        if (SidecarB is not null)
        {
            await SidecarB.DisposeAsync();
        }

        GatewayLeaf?.Dispose();
        PeerClient?.Dispose();
        Local.Dispose();
        PeerB.Dispose();
        PeerC.Dispose();
        Stranger.Dispose();
    }
}
