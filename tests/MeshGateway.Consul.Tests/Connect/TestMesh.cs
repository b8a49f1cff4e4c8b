using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace MeshGateway.Consul.Tests.Connect;

/// <summary>A throw-away Connect CA: an EC P-256 root and leaves carrying SPIFFE URI SANs, as Consul's built-in CA issues them.</summary>
internal sealed class TestCa : IDisposable
{
    public const string TrustDomain = "11111111-2222-3333-4444-555555555555.consul";

    public TestCa(string name = "Test Connect CA")
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

    public X509Certificate2 Root { get; }

    public string RootPem => Root.ExportCertificatePem();

    public static string SpiffeFor(string service, string dc = "dc1") => $"spiffe://{TrustDomain}/ns/default/dc/{dc}/svc/{service}";

    /// <summary>A leaf with <paramref name="uri"/> as its only SAN (plus, optionally, a DNS name that never matches the SNI).</summary>
    public X509Certificate2 Issue(string uri, DateTimeOffset? notAfter = null, string? dnsName = null)
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=leaf", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(uri));
        if (dnsName is not null)
        {
            san.AddDnsName(dnsName);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        byte[] serial = RandomNumberGenerator.GetBytes(8);
        using X509Certificate2 issued = request.Create(Root, DateTimeOffset.UtcNow.AddMinutes(-5), notAfter ?? DateTimeOffset.UtcNow.AddDays(3), serial);
        using X509Certificate2 withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public static string KeyPem(X509Certificate2 certificate) => certificate.GetECDsaPrivateKey()!.ExportECPrivateKeyPem();

    public void Dispose() => Root.Dispose();
}

/// <summary>A mutual-TLS server on loopback presenting a given certificate and echoing; records the client identities it saw.</summary>
internal sealed class TestTlsServer : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly X509Certificate2 _certificate;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private readonly bool _rejectClients;

    public TestTlsServer(X509Certificate2 certificate, bool rejectClients = false)
    {
        _certificate = certificate;
        _rejectClients = rejectClients;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        _loop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public ConcurrentQueue<string> ClientIdentities { get; } = new();

    public ConcurrentQueue<string?> ServerNames { get; } = new();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        try
        {
            await _loop;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket socket = await _listener.AcceptAsync(_stop.Token);
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _certificate,
                ClientCertificateRequired = true,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && !_rejectClients,
            }, _stop.Token);
            ServerNames.Enqueue(tls.TargetHostName);
            if (tls.RemoteCertificate is X509Certificate2 client)
            {
                foreach (X509Extension extension in client.Extensions)
                {
                    if (extension is X509SubjectAlternativeNameExtension)
                    {
                        ClientIdentities.Enqueue(Encoding.ASCII.GetString(extension.RawData));
                    }
                }
            }

            byte[] buffer = new byte[4096];
            int read;
            while ((read = await tls.ReadAsync(buffer, _stop.Token)) > 0)
            {
                await tls.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>
/// A fake local agent answering by path (requests run in parallel, so a FIFO script would not do). Blocking
/// requests (<c>index</c> &gt; 0) wait until cancelled, like an agent with nothing new to say.
/// </summary>
internal sealed class FakeAgent : HttpMessageHandler
{
    private readonly ConcurrentDictionary<string, Func<HttpRequestMessage, (HttpStatusCode, string)>> _routes = new(StringComparer.Ordinal);

    public ConcurrentQueue<string> Requests { get; } = new();

    public void Set(string path, string json) => _routes[path] = _ => (HttpStatusCode.OK, json);

    public void Set(string path, Func<HttpRequestMessage, (HttpStatusCode, string)> answer) => _routes[path] = answer;

    public int Count(string pathAndQueryPrefix) => Requests.Count(r => r.StartsWith(pathAndQueryPrefix, StringComparison.Ordinal));

    public static FakeAgent Standard(TestCa ca, X509Certificate2 webLeaf, string datacenter = "dc1")
    {
        var agent = new FakeAgent();
        agent.Set("/v1/agent/self", $$"""{"Config": {"Datacenter": "{{datacenter}}", "PrimaryDatacenter": "dc1", "NodeName": "n1"} }""");
        agent.Set("/v1/agent/connect/ca/roots", new JsonObject
        {
            ["ActiveRootID"] = "r1",
            ["TrustDomain"] = TestCa.TrustDomain,
            ["Roots"] = new JsonArray(new JsonObject { ["ID"] = "r1", ["RootCert"] = ca.RootPem, ["Active"] = true }),
        }.ToJsonString());
        agent.SetLeaf(webLeaf);

        // What the dialer's catalog watcher reads: names, checks, CA roots, datacenters and the config-entry lists (the
        // lists are built from the entries set by name, see SendAsync).
        agent.Set("/v1/catalog/services", "{}");
        agent.Set("/v1/health/state/any", "[]");
        agent.Set("/v1/catalog/datacenters", $$"""["{{datacenter}}", "dc2"]""");
        agent.Set("/v1/connect/ca/roots", new JsonObject
        {
            ["ActiveRootID"] = "r1",
            ["TrustDomain"] = TestCa.TrustDomain,
            ["Roots"] = new JsonArray(new JsonObject { ["ID"] = "r1", ["RootCert"] = ca.RootPem, ["Active"] = true }),
        }.ToJsonString());
        return agent;
    }

    public void SetLeaf(X509Certificate2 leaf, string service = "web") =>
        Set("/v1/agent/connect/ca/leaf/" + service, new JsonObject
        {
            ["SerialNumber"] = leaf.SerialNumber,
            ["CertPEM"] = leaf.ExportCertificatePem(),
            ["PrivateKeyPEM"] = TestCa.KeyPem(leaf),
            ["Service"] = service,
            ["ValidBefore"] = leaf.NotAfter.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
        }.ToJsonString());

    public static string Instance(string service, string dc, int port, string kind = "", string status = "passing", string? wanAddress = null, int wanPort = 0) =>
        new JsonObject
        {
            ["Node"] = new JsonObject { ["Node"] = "node-" + dc, ["Address"] = "127.0.0.1", ["Datacenter"] = dc },
            ["Service"] = new JsonObject
            {
                ["Kind"] = kind,
                ["ID"] = service + "-1",
                ["Service"] = service,
                ["Address"] = "127.0.0.1",
                ["Port"] = port,
                ["TaggedAddresses"] = wanAddress is null ? new JsonObject() : new JsonObject
                {
                    ["lan"] = new JsonObject { ["Address"] = "127.0.0.1", ["Port"] = port },
                    ["wan"] = new JsonObject { ["Address"] = wanAddress, ["Port"] = wanPort },
                },
            },
            ["Checks"] = new JsonArray(new JsonObject { ["CheckID"] = "c", ["Status"] = status }),
        }.ToJsonString();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        string path = request.RequestUri!.AbsolutePath;
        Requests.Enqueue(request.RequestUri.PathAndQuery);
        string query = request.RequestUri.Query;
        if ((query.Contains("index=", StringComparison.Ordinal) && !query.Contains("index=0", StringComparison.Ordinal)) || query.Contains("hash=", StringComparison.Ordinal))
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        (HttpStatusCode status, string body) = _routes.TryGetValue(path, out Func<HttpRequestMessage, (HttpStatusCode, string)>? answer)
            ? answer(request)
            : Default(path, request);
        var response = new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, status == HttpStatusCode.OK ? "application/json" : "text/plain") };
        response.Headers.Add("X-Consul-Index", "7");
        return response;
    }

    /// <summary>Config-entry lists are the entries set by name; unknown services have no instances; anything else is 404.</summary>
    private (HttpStatusCode, string) Default(string path, HttpRequestMessage request)
    {
        if (path.Count(c => c == '/') == 3 && path.StartsWith("/v1/config/", StringComparison.Ordinal))
        {
            IEnumerable<string> entries = _routes.Where(p => p.Key.StartsWith(path + "/", StringComparison.Ordinal)).Select(p => p.Value(request))
                .Where(a => a.Item1 == HttpStatusCode.OK).Select(a => a.Item2);
            return (HttpStatusCode.OK, "[" + string.Join(",", entries) + "]");
        }

        if (path.StartsWith("/v1/health/connect/", StringComparison.Ordinal) || path.StartsWith("/v1/health/service/", StringComparison.Ordinal))
        {
            return (HttpStatusCode.OK, "[]");
        }

        return (HttpStatusCode.NotFound, path.StartsWith("/v1/config/", StringComparison.Ordinal) ? "Config entry not found" : "Unknown path");
    }
}
