using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using MeshGateway.Testing;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;

namespace MeshGateway.IntegrationTests;

/// <summary>Real TLS through the gateway: the backend holds the key, the client validates it, the gateway holds nothing.</summary>
public sealed class TlsEndToEndTests
{
    private const string Web = "web.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul";

    [Theory]
    [InlineData(SslProtocols.Tls13)]
    [InlineData(SslProtocols.Tls12)]
    public async Task SslStreamClient_ThroughGateway_ValidatesBackendCertificateAndExchangesData(SslProtocols protocol)
    {
        using var certificates = new TestCertificates(Web);
        await using RawBackend backend = TlsBackend.Start(certificates, "web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Web, backend.EndPoint)]);

        using (Socket socket = await gateway.ConnectAsync())
        await using (var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false)))
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = Web,
                EnabledSslProtocols = protocol,
                CertificateChainPolicy = certificates.ClientChainPolicy(),
            }).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(protocol, ssl.SslProtocol);
            Assert.Equal(certificates.ServerCertificate.Thumbprint, ssl.RemoteCertificate!.GetCertHashString());
            using var reader = new StreamReader(ssl, Encoding.ASCII, leaveOpen: true);
            Assert.Equal("hello from web", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            await ssl.WriteAsync("ping through the gateway\n"u8.ToArray());
            Assert.Equal("ping through the gateway", await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            await ssl.ShutdownAsync();
            socket.Shutdown(SocketShutdown.Send);
        }

        await gateway.Observer.WaitForEventsAsync(1);
        var closed = Assert.Single(gateway.Observer.Closed);
        Assert.Equal(Web, closed.ServerName);
        Assert.Equal(backend.EndPoint, closed.Upstream);
        Assert.True(closed.Up > 0 && closed.Down > 0);
        Assert.Equal(1, gateway.Listener.Counters.Routed);
    }

    [Fact]
    public async Task SslStreamClient_WrongName_FailsValidationBecauseGatewayDoesNotTerminate()
    {
        // The gateway routes "*.dc1..." to a backend whose certificate does not cover the name asked: the client must notice.
        const string Other = "other.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul";
        using var certificates = new TestCertificates(Web);
        await using RawBackend backend = TlsBackend.Start(certificates, "web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route("*.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul", backend.EndPoint)]);
        using Socket socket = await gateway.ConnectAsync();
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await Assert.ThrowsAsync<AuthenticationException>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = Other,
            CertificateChainPolicy = certificates.ClientChainPolicy(),
        }).WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task SslStreamClient_UnknownName_IsClosedWithoutDialling()
    {
        using var certificates = new TestCertificates(Web);
        await using RawBackend backend = TlsBackend.Start(certificates, "web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Web, backend.EndPoint)]);
        using Socket socket = await gateway.ConnectAsync();
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await Assert.ThrowsAnyAsync<IOException>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "unknown.default.dc1.internal.11111111-2222-3333-4444-555555555555.consul",
            CertificateChainPolicy = certificates.ClientChainPolicy(),
        }).WaitAsync(TimeSpan.FromSeconds(30)));
        await gateway.Observer.WaitForEventsAsync(1);
        Assert.Equal(RejectionReason.NoRoute, Assert.Single(gateway.Observer.Rejections).Reason);
        Assert.Equal(0, backend.Accepted);
    }

    [Fact]
    public async Task OpenSslClient_ThroughGateway_VerifiesAndEchoes()
    {
        using var certificates = new TestCertificates(Web);
        await using RawBackend backend = TlsBackend.Start(certificates, "web");
        await using TestGateway gateway = TestGateway.Start([TestGateway.Route(Web, backend.EndPoint)]);
        string caFile = Path.Combine(Path.GetTempPath(), $"mg-ca-{Guid.NewGuid():N}.pem");
        await File.WriteAllTextAsync(caFile, certificates.Authority.ExportCertificatePem());
        var info = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "s_client", "-connect", gateway.EndPoint.ToString(), "-servername", Web, "-CAfile", caFile, "-verify_return_error", "-verify_hostname", Web, "-brief" })
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        try
        {
            var stderr = new StringBuilder();
            process.ErrorDataReceived += (_, e) =>
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            };
            process.BeginErrorReadLine();
            Assert.Equal("hello from web", await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
            await process.StandardInput.WriteLineAsync("ping from openssl");
            await process.StandardInput.FlushAsync();
            Assert.Equal("ping from openssl", await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
            process.StandardInput.Close();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            string errors;
            lock (stderr)
            {
                errors = stderr.ToString();
            }

            Assert.Contains("Verification: OK", errors, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            File.Delete(caFile);
        }
    }
}
