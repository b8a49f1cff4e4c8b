using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace GatewaySample;

/// <summary>
/// The embedded demo's service: an HTTPS server on loopback with its own self-made certificate for
/// <paramref name="serverName"/>. It holds the only private key; the gateway in front of it has none.
/// </summary>
public sealed class DemoBackend : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly X509Certificate2 _certificate;
    private readonly Task _accept;

    public DemoBackend(string serverName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + serverName, key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(serverName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using X509Certificate2 selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(7));
        _certificate = X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pfx), null, X509KeyStorageFlags.Exportable);
        Certificate = X509CertificateLoader.LoadCertificate(_certificate.RawData);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accept = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Where the backend listens (the demo route's endpoint).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The backend's certificate without its key: what the demo client trusts.</summary>
    public X509Certificate2 Certificate { get; }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _accept.ConfigureAwait(false);
        _certificate.Dispose();
        Certificate.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using (socket)
        {
            try
            {
                await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, timeout.Token).ConfigureAwait(false);
                // Read the request head (bounded), answer, close.
                byte[] buffer = new byte[8192];
                int total = 0;
                while (total < buffer.Length)
                {
                    int n = await ssl.ReadAsync(buffer.AsMemory(total), timeout.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    total += n;
                    if (buffer.AsSpan(0, total).IndexOf("\r\n\r\n"u8) >= 0)
                    {
                        break;
                    }
                }

                string body = $"Hello from the demo backend at {EndPoint}, reached through MeshGateway over TLS it never decrypted ({ssl.SslProtocol}).\n";
                string response = $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
                await ssl.WriteAsync(Encoding.UTF8.GetBytes(response), timeout.Token).ConfigureAwait(false);
                await ssl.ShutdownAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
            {
                // A client that goes away is not the demo's problem.
            }
        }
    }
}
