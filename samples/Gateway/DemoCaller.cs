using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MeshGateway.Hosting;
using Microsoft.Extensions.Hosting;

namespace GatewaySample;

/// <summary>
/// The embedded demo's client: once the gateway listens, makes one HTTPS call through it (validating the backend's
/// certificate end to end) and prints what to try next, including how to point the gateway at real routes or Consul.
/// </summary>
public sealed class DemoCaller : IHostedService
{
    private readonly MeshGatewayRuntime _runtime;
    private readonly DemoBackend _backend;

    public DemoCaller(MeshGatewayRuntime runtime, DemoBackend backend)
    {
        _runtime = runtime;
        _backend = backend;
    }

    /// <summary>The demo call's response body (tests read it).</summary>
    public string? LastResponse { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        IPEndPoint gateway = _runtime.Listeners[0].EndPoint;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        string response;
        try
        {
            response = await CallAsync(gateway, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            response = "demo call failed: " + ex.Message;
        }

        LastResponse = response;
        Console.WriteLine($"""

            MeshGateway embedded demo: no route source is configured, so the gateway serves one demo route.
              gateway   {gateway} (listeners: {string.Join(", ", _runtime.Listeners)})
              route     {GatewayHost.DemoServerName} -> {_backend.EndPoint} (a TLS backend with its own certificate)
              demo call through the gateway: {response.TrimEnd()}

            Try it:   curl -k --resolve {GatewayHost.DemoServerName}:{gateway.Port}:{gateway.Address} https://{GatewayHost.DemoServerName}:{gateway.Port}/
            Routes:   --MeshGateway:RoutesFile=routes.json   ({"{"}"routes":[{"{"}"sni":"...","endpoints":["10.0.0.7:20000"]{"}"}]{"}"}, reloaded on change)
                      or MeshGateway:Routes in appsettings.json (see appsettings.example.json)
            Consul:   --MeshGateway:Consul:Address=http://127.0.0.1:8500 --MeshGateway:Address=<this host's LAN IP>
                      (+ Consul:TokenFile or CONSUL_HTTP_TOKEN-style MeshGateway__Consul__Token, Consul:Datacenter):
                      routes from the catalog, registers as mesh-gateway. The token needs the mesh-gateway ACL policy.
            Listen:   --MeshGateway:Address=0.0.0.0 --MeshGateway:Port=8443 (WanAddress, BindTaggedAddresses, BindAddresses:<name>)
            """);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task<string> CallAsync(IPEndPoint gateway, CancellationToken cancellationToken)
    {
        using var socket = new Socket(gateway.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(gateway.Address.Equals(IPAddress.Any) ? new IPEndPoint(IPAddress.Loopback, gateway.Port) : gateway, cancellationToken).ConfigureAwait(false);
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        var trust = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        trust.CustomTrustStore.Add(_backend.Certificate);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = GatewayHost.DemoServerName, CertificateChainPolicy = trust }, cancellationToken).ConfigureAwait(false);
        await ssl.WriteAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: {GatewayHost.DemoServerName}\r\nConnection: close\r\n\r\n"), cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(ssl, Encoding.UTF8);
        string all = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        int body = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return body < 0 ? all : all[(body + 4)..];
    }
}
