using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TwoDatacenters;

/// <summary>
/// The demo's certificate authority and api's leaf certificate, made in memory with <see cref="CertificateRequest"/>
/// (ECDSA P-256, Consul Connect's default key type). Only api gets the private key; web trusts only the CA; the
/// gateways get nothing.
/// </summary>
public sealed class DemoCertificates : IDisposable
{
    public DemoCertificates(string dnsName, Uri spiffeId)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Demo Connect CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using X509Certificate2 caWithKey = caRequest.CreateSelfSigned(now.AddHours(-1), now.AddDays(1));
        Authority = X509CertificateLoader.LoadCertificate(caWithKey.RawData);

        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=api", leafKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(dnsName);
        names.AddUri(spiffeId);
        leafRequest.CertificateExtensions.Add(names.Build());
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        leafRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        leafRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caWithKey, true, false));
        using X509Certificate2 leaf = leafRequest.Create(caWithKey, now.AddHours(-1), now.AddHours(12), RandomNumberGenerator.GetBytes(16));
        using X509Certificate2 leafWithKey = leaf.CopyWithPrivateKey(leafKey);

        // On Linux an SslStream server needs a key it can export: round-trip through PKCS#12.
        ApiCertificate = X509CertificateLoader.LoadPkcs12(leafWithKey.Export(X509ContentType.Pfx), null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>The CA, public part only: the one root web trusts.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>api's certificate with its private key: only api holds it.</summary>
    public X509Certificate2 ApiCertificate { get; }

    public X509ChainPolicy ClientChainPolicy()
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(Authority);
        return policy;
    }

    public void Dispose()
    {
        Authority.Dispose();
        ApiCertificate.Dispose();
    }
}
