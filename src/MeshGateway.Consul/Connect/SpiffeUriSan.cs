using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Consul;

/// <summary>Reads the URI entries of a certificate's subjectAltName (RFC 5280 §4.2.1.6, <c>uniformResourceIdentifier [6] IA5String</c>).</summary>
internal static class SpiffeUriSan
{
    /// <summary>The URI SANs of <paramref name="certificate"/>; empty when it has none or the extension is malformed.</summary>
    public static List<string> Read(X509Certificate2 certificate)
    {
        var uris = new List<string>(1);
        SubjectAltNames.Read(certificate, uris);
        return uris;
    }

    /// <summary>
    /// Whether <paramref name="presented"/> is the <paramref name="expected"/> SPIFFE ID. Consul's own client
    /// (<c>connect/tls.go</c>, <c>verifyServerCertMatchesURI</c>) compares the URI strings case-insensitively.
    /// </summary>
    public static bool Matches(string presented, string expected) =>
        string.Equals(presented, expected, StringComparison.OrdinalIgnoreCase);
}
