using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Testing;

/// <summary>A throw-away CA and a leaf certificate for the backend names, made in the test run (ECDSA P-256, Consul's default key type).</summary>
internal sealed class TestCertificates : IDisposable
{
    public TestCertificates(params string[] dnsNames)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=MeshGateway Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using X509Certificate2 caWithKey = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(2));
        Authority = X509CertificateLoader.LoadCertificate(caWithKey.RawData);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=mesh-gateway-test-backend", leafKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        foreach (string name in dnsNames)
        {
            names.AddDnsName(name);
        }

        leafRequest.CertificateExtensions.Add(names.Build());
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        leafRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        leafRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caWithKey, true, false));
        using X509Certificate2 leaf = leafRequest.Create(caWithKey, now.AddDays(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(16));
        using X509Certificate2 leafWithKey = leaf.CopyWithPrivateKey(leafKey);

        // On Linux an SslStream server needs a key it can export: round-trip through PKCS#12.
        ServerCertificate = X509CertificateLoader.LoadPkcs12(leafWithKey.Export(X509ContentType.Pfx), null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>The CA (public part only): what clients trust.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>The backend's certificate with its private key. Only the backend gets it; the gateway never does.</summary>
    public X509Certificate2 ServerCertificate { get; }

    public X509ChainPolicy ClientChainPolicy()
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(Authority);
        return policy;
    }

    public void Dispose()
    {
        Authority.Dispose();
        ServerCertificate.Dispose();
    }
}
