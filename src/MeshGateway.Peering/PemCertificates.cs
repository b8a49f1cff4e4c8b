using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Peering;

/// <summary>
/// Turns the PEM text Consul serves into the certificates of a <see cref="PeeringSnapshot"/>: the leaf
/// (<c>/v1/agent/connect/ca/leaf/&lt;service&gt;</c>: <c>CertPEM</c>, <c>PrivateKeyPEM</c>), the local roots
/// (<c>/v1/agent/connect/ca/roots</c>: each root's <c>RootCert</c>) and a peer's bundle (<c>RootPEMs</c>).
/// </summary>
public static class PemCertificates
{
    /// <summary>The leaf certificate with its private key, usable as an <see cref="System.Net.Security.SslStream"/> server and client certificate.</summary>
    /// <param name="certificatePem">The certificate (<c>CertPEM</c>); only its first certificate is the leaf.</param>
    /// <param name="privateKeyPem">The private key (<c>PrivateKeyPEM</c>: EC or RSA, PKCS#8 or SEC1/PKCS#1).</param>
    /// <returns>The certificate with its key.</returns>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The PEM text holds no certificate, no key, or a key that does not match.</exception>
    public static X509Certificate2 LoadLeaf(string certificatePem, string privateKeyPem)
    {
        ArgumentNullException.ThrowIfNull(certificatePem);
        ArgumentNullException.ThrowIfNull(privateKeyPem);
        using X509Certificate2 withKey = X509Certificate2.CreateFromPem(certificatePem, privateKeyPem);

        // On Linux an SslStream needs a key it can use from a stored certificate: round-trip through PKCS#12
        // (an ephemeral key from PEM fails the TLS handshake on some platforms).
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>Every certificate in the given PEM texts (each may hold several), in order.</summary>
    /// <param name="pems">PEM texts: root certificates, or a trust bundle's <c>RootPEMs</c>.</param>
    /// <returns>The certificates (public parts).</returns>
    /// <exception cref="System.Security.Cryptography.CryptographicException">A text holds no certificate, or a malformed one.</exception>
    public static IReadOnlyList<X509Certificate2> LoadCertificates(IEnumerable<string> pems)
    {
        ArgumentNullException.ThrowIfNull(pems);
        var certificates = new List<X509Certificate2>();
        foreach (string pem in pems)
        {
            var collection = new X509Certificate2Collection();
            collection.ImportFromPem(pem);
            if (collection.Count == 0)
            {
                throw new System.Security.Cryptography.CryptographicException("A PEM text holds no certificate.");
            }

            certificates.AddRange(collection);
        }

        return certificates;
    }
}
