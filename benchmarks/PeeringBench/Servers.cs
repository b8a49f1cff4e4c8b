using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Gateway;
using MeshGateway.Peering;
using MeshGateway.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace PeeringBench;

/// <summary>The three server modes. Each runs until SIGTERM or SIGINT.</summary>
internal static class Servers
{
    /// <summary>
    /// The local service behind its sidecar: Kestrel HTTPS (HTTP/1.1) with the backend's leaf, a client certificate
    /// required and accepted only from the local CA (what every proxy presents: the gateway's leaf). Answers every
    /// request with <paramref name="bodyBytes"/> bytes of <c>x</c>.
    /// </summary>
    public static async Task<int> RunBackendAsync(IPEndPoint listen, string certs, int bodyBytes)
    {
        using X509Certificate2 leaf = Certificates.LoadLeaf(certs, "backend");
        using X509Certificate2 localRoot = Certificates.LoadRoot(certs, "local-ca");
        byte[] body = new byte[bodyBytes];
        Array.Fill(body, (byte)'x');
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(listen, options =>
            {
                options.Protocols = HttpProtocols.Http1;
                options.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = leaf,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    CheckCertificateRevocation = false,
                    ClientCertificateValidation = (client, _, _) => Certificates.ChainsTo(client, localRoot),
                });
            });
        });
        await using WebApplication app = builder.Build();
        app.Run(context =>
        {
            context.Response.ContentLength = body.Length;
            context.Response.ContentType = "text/plain";
            return context.Response.Body.WriteAsync(body).AsTask();
        });
        return await RunUntilSignalAsync("backend", listen, app.StartAsync, app.StopAsync);
    }

    /// <summary>
    /// "YARP alone": Kestrel HTTPS on a socket with the gateway's leaf, a client certificate required and accepted when it
    /// chains to the peer's CA, and YARP forwarding every request over mTLS (the gateway's leaf, the backend checked
    /// against the local CA) to the backend. No MeshGateway code: the baseline of what Kestrel + YARP cost.
    /// </summary>
    public static async Task<int> RunYarpAsync(IPEndPoint listen, IPEndPoint backend, string certs)
    {
        using X509Certificate2 leaf = Certificates.LoadLeaf(certs, "gateway");
        using X509Certificate2 peerRoot = Certificates.LoadRoot(certs, "peer-ca");
        using X509Certificate2 localRoot = Certificates.LoadRoot(certs, "local-ca");
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(listen, options =>
            {
                options.Protocols = HttpProtocols.Http1AndHttp2;
                options.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = leaf,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    CheckCertificateRevocation = false,
                    ClientCertificateValidation = (client, _, _) => Certificates.ChainsTo(client, peerRoot),
                });
            });
        });
        builder.Services.AddRoutingCore();
        builder.Services.AddSingleton<IForwarderHttpClientFactory>(new MutualTlsClientFactory(leaf, localRoot));
        RouteConfig[] routes = [new RouteConfig { RouteId = "web", ClusterId = "web", Match = new RouteMatch { Path = "/{**catch-all}" } }];
        ClusterConfig[] clusters =
        [
            new ClusterConfig
            {
                ClusterId = "web",
                Destinations = new Dictionary<string, DestinationConfig>(StringComparer.Ordinal) { ["0"] = new DestinationConfig { Address = "https://" + backend } },
                // As the gateway's clusters for an `http` export (src/MeshGateway.Peering/PeeringState.cs).
                HttpRequest = new ForwarderRequestConfig { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower },
            },
        ];
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        await using WebApplication app = builder.Build();
        app.UseRouting();
        app.MapReverseProxy();
        return await RunUntilSignalAsync("yarp", listen, app.StartAsync, app.StopAsync);
    }

    /// <summary>
    /// The peering gateway: the real <see cref="GatewayListener"/> (ClientHello read, form-8 route) handing the connection
    /// to <see cref="PeeringTerminator"/> (Kestrel in process, SPIFFE validation against peer-b's bundle, the discovery
    /// chain's one rule, XFCC, YARP over mTLS with the gateway's leaf to the backend as target <c>web</c>).
    /// </summary>
    public static async Task<int> RunGatewayAsync(IPEndPoint listen, IPEndPoint backend, string certs, LogLevel? logLevel)
    {
        // A host's default logging (console, Information) when asked; the terminator then writes what it writes in a host.
        using ILoggerFactory? logging = logLevel is { } level ? LoggerFactory.Create(builder => builder.SetMinimumLevel(level).AddSimpleConsole()) : null;
        using X509Certificate2 leaf = Certificates.LoadLeaf(certs, "gateway");
        using X509Certificate2 peerRoot = Certificates.LoadRoot(certs, "peer-ca");
        using X509Certificate2 localRoot = Certificates.LoadRoot(certs, "local-ca");
        PeeringSnapshot snapshot = Snapshot(leaf, peerRoot, localRoot, backend);
        await using PeeringTerminator terminator = await PeeringTerminator.StartAsync(snapshot, new PeeringTerminatorOptions { LoggerFactory = logging });
        var options = new GatewayListenerOptions();
        options.EndPoints.Add(listen);
        await using var gateway = new GatewayListener(options, new RouteTableSource(RouteTable.Create(terminator.CreateRoutes())));
        int rc = await RunUntilSignalAsync(
            "gateway",
            listen,
            _ =>
            {
                gateway.Start();
                return Task.CompletedTask;
            },
            token => gateway.StopAsync(TimeSpan.FromSeconds(2), token));
        Console.WriteLine($"gateway: {terminator.Counters.HandshakesAccepted} handshakes accepted, {terminator.Counters.HandshakesRefused} refused, {terminator.Counters.Requests} requests");
        return rc;
    }

    /// <summary>
    /// Only a <see cref="PeeringTerminator"/>, started as a program that embeds it without a host of its own would: no
    /// listener, no signal handling here. Prints <c>embedded: started</c> and waits; SIGTERM must end the process (the
    /// runtime's default), which <c>tests/MeshGateway.Peering.Tests/EmbeddingTests.cs</c> checks.
    /// </summary>
    public static async Task<int> RunEmbeddedAsync(string certs)
    {
        using X509Certificate2 leaf = Certificates.LoadLeaf(certs, "gateway");
        using X509Certificate2 peerRoot = Certificates.LoadRoot(certs, "peer-ca");
        using X509Certificate2 localRoot = Certificates.LoadRoot(certs, "local-ca");
        await using PeeringTerminator terminator = await PeeringTerminator.StartAsync(Snapshot(leaf, peerRoot, localRoot, new IPEndPoint(IPAddress.Loopback, 9)));
        Console.WriteLine("embedded: started");
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    /// <summary><c>web</c> exported to peer-b, one rule to target <c>web</c> at <paramref name="backend"/>.</summary>
    private static PeeringSnapshot Snapshot(X509Certificate2 leaf, X509Certificate2 peerRoot, X509Certificate2 localRoot, IPEndPoint backend)
    {
        const string target = "web.default.default.dc1";
        return new PeeringSnapshot
        {
            Leaf = leaf,
            TrustDomain = Certificates.LocalTrustDomain,
            LocalRoots = [localRoot],
            TrustBundles = [new PeerTrustBundle { PeerName = "peer-b", TrustDomain = Certificates.PeerTrustDomain, Roots = [peerRoot] }],
            Services =
            [
                new ExportedHttpService
                {
                    Name = "web",
                    Protocol = "http",
                    Consumers = [new ServiceConsumer("peer-b", Certificates.WebSni)],
                    Routes = [new HttpRouteRule { Splits = [new WeightedTarget(target, 100)] }],
                    Targets =
                    [
                        new ChainTargetEndpoints
                        {
                            Id = target,
                            SpiffeId = Certificates.BackendSpiffeId,
                            Endpoints = [new DnsEndPoint(backend.Address.ToString(), backend.Port)],
                        },
                    ],
                },
            ],
        };
    }

    private static async Task<int> RunUntilSignalAsync(string name, IPEndPoint listen, Func<CancellationToken, Task> start, Func<CancellationToken, Task> stop)
    {
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stopping.TrySetResult();
        }

        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        await start(CancellationToken.None);
        Console.WriteLine($"{name}: listening on {listen} (pid {Environment.ProcessId})");
        await stopping.Task;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await stop(deadline.Token);
        Console.WriteLine($"{name}: stopped");
        return 0;
    }

    /// <summary>YARP's client factory with mTLS: presents the gateway's leaf, accepts a backend chaining to the local CA.</summary>
    private sealed class MutualTlsClientFactory(X509Certificate2 leaf, X509Certificate2 localRoot) : ForwarderHttpClientFactory
    {
        protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
        {
            base.ConfigureHandler(context, handler);
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => leaf;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => Certificates.ChainsTo(certificate, localRoot);
            handler.SslOptions.CertificateRevocationCheckMode = X509RevocationMode.NoCheck;
        }
    }
}
