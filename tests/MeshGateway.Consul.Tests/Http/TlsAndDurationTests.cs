using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MeshGateway.Consul.Tests.Http;

public sealed class TlsAndDurationTests
{
    private static X509Certificate2 SelfSigned(string cn)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + cn, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    private static async Task ServeOnceAsync(TcpListener listener, X509Certificate2 certificate)
    {
        using TcpClient tcp = await listener.AcceptTcpClientAsync();
        using var ssl = new SslStream(tcp.GetStream());
        try
        {
            await ssl.AuthenticateAsServerAsync(certificate);
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException)
        {
            return; // the client refused our certificate
        }

        var buffer = new byte[4096];
        var received = new StringBuilder();
        while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await ssl.ReadAsync(buffer);
            if (n == 0)
            {
                return;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        await ssl.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n[\"dc1\"]"u8.ToArray());
        await ssl.FlushAsync();
    }

    [Fact]
    public async Task Https_CaFileTrustsServer_Succeeds_OtherCa_FailsAsTransport()
    {
        using X509Certificate2 server = SelfSigned("consul-test");
        using X509Certificate2 other = SelfSigned("someone-else");
        string goodCa = Path.GetTempFileName();
        string badCa = Path.GetTempFileName();
        await File.WriteAllTextAsync(goodCa, server.ExportCertificatePem());
        await File.WriteAllTextAsync(badCa, other.ExportCertificatePem());
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var address = new Uri($"https://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}");
        try
        {
            Task serve = ServeOnceAsync(listener, server);
            using (var trusted = new ConsulClient(new ConsulClientOptions { Address = address, CaFile = goodCa }))
            {
                Assert.Equal(["dc1"], (await trusted.GetDatacentersAsync()).Value);
            }

            await serve.WaitAsync(TimeSpan.FromSeconds(20));
            serve = ServeOnceAsync(listener, server);
            using (var untrusted = new ConsulClient(new ConsulClientOptions { Address = address, CaFile = badCa }))
            {
                ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => untrusted.GetDatacentersAsync());
                Assert.False(error.IsTimeout);
            }

            await serve.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            File.Delete(goodCa);
            File.Delete(badCa);
        }
    }

    [Theory]
    [InlineData("5s", 5_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("250ms", 250)]
    [InlineData("0", 0)]
    [InlineData("1500us", 1.5)]
    public void GoDuration_TryParse_ValidStrings(string text, double milliseconds)
    {
        Assert.True(GoDuration.TryParse(text, out TimeSpan value));
        Assert.Equal(milliseconds, value.TotalMilliseconds, 3);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("s")]
    [InlineData("5 s")]
    [InlineData("5d")]
    [InlineData("1..5s")]
    public void GoDuration_TryParse_InvalidStrings_ReturnFalse(string text) => Assert.False(GoDuration.TryParse(text, out _));

    [Fact]
    public void GoDuration_Format_RoundTripsWholeMillisecondsAndSeconds()
    {
        Assert.Equal("10s", GoDuration.Format(TimeSpan.FromSeconds(10)));
        Assert.Equal("1500ms", GoDuration.Format(TimeSpan.FromMilliseconds(1500)));
        Assert.Equal("300s", GoDuration.Format(TimeSpan.FromMinutes(5)));
        Assert.True(GoDuration.TryParse(GoDuration.Format(TimeSpan.FromMilliseconds(1234)), out TimeSpan back));
        Assert.Equal(TimeSpan.FromMilliseconds(1234), back);
    }
}
