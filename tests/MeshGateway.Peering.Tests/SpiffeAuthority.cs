using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Peering.Tests;

/// <summary>A throw-away Connect CA for one trust domain (ECDSA P-256 like Consul's), issuing SPIFFE leaf certificates.</summary>
internal sealed class SpiffeAuthority : IDisposable
{
    private readonly X509Certificate2 _caWithKey;

    public SpiffeAuthority(string trustDomain)
    {
        TrustDomain = trustDomain;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Consul CA " + trustDomain[..8], key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri("spiffe://" + trustDomain));
        request.CertificateExtensions.Add(names.Build());
        _caWithKey = request.CreateSelfSigned(now.AddDays(-10), now.AddDays(10));
        Root = X509CertificateLoader.LoadCertificate(_caWithKey.RawData);
    }

    public string TrustDomain { get; }

    /// <summary>The root (public part): what a trust bundle holds.</summary>
    public X509Certificate2 Root { get; }

    public string ServiceId(string service, string datacenter) => $"spiffe://{TrustDomain}/ns/default/dc/{datacenter}/svc/{service}";

    /// <summary>A leaf with its key, for <paramref name="spiffeId"/>, valid from <paramref name="notBefore"/> to <paramref name="notAfter"/> (default: yesterday to tomorrow).</summary>
    public X509Certificate2 Issue(string spiffeId, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, string? dnsName = null)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + spiffeId[(spiffeId.LastIndexOf('/') + 1)..], key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddUri(new Uri(spiffeId));
        if (dnsName is not null)
        {
            names.AddDnsName(dnsName);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyAgreement, true));
        // Consul's leaves are for both ends of mTLS.
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_caWithKey, true, false));
        using X509Certificate2 leaf = request.Create(_caWithKey, notBefore ?? now.AddDays(-1), notAfter ?? now.AddDays(1), RandomNumberGenerator.GetBytes(16));
        using X509Certificate2 withKey = leaf.CopyWithPrivateKey(key);

        // On Linux an SslStream needs a key it can export: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pfx), null, X509KeyStorageFlags.Exportable);
    }

    public void Dispose()
    {
        _caWithKey.Dispose();
        Root.Dispose();
    }
}
