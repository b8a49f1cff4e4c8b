using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MeshGateway.Peering;

/// <summary>Why the terminator refused a peer's TLS handshake (nothing was forwarded for any of them).</summary>
public enum HandshakeRefusal
{
    /// <summary>The server name is not one of the current snapshot's exported services (the route table and the snapshot disagree for a moment).</summary>
    UnknownServerName = 0,

    /// <summary>The client sent no certificate.</summary>
    NoClientCertificate,

    /// <summary>The client certificate has no <c>spiffe://</c> URI subject alternative name, or more than one.</summary>
    NoSpiffeId,

    /// <summary>The SPIFFE ID's trust domain is not the trust domain of any peer known to the gateway.</summary>
    UnknownTrustDomain,

    /// <summary>
    /// The SPIFFE ID's trust domain belongs to a known peer, but the service named by the server name is not exported
    /// to that peer (the certificate is for another peer's imports).
    /// </summary>
    NotExportedToPeer,

    /// <summary>The certificate (or its chain) is outside its validity period.</summary>
    Expired,

    /// <summary>The certificate does not chain to the trust bundle of the peer its SPIFFE ID names.</summary>
    UntrustedChain,
}

/// <summary>A validated peer client: its SPIFFE ID and the <c>X-Forwarded-Client-Cert</c> value set for its requests.</summary>
internal sealed class PeerIdentity(string spiffeId, string peerName, string forwardedClientCert)
{
    public string SpiffeId { get; } = spiffeId;

    public string PeerName { get; } = peerName;

    /// <summary>The header value, computed once per connection (Envoy's <c>SANITIZE_SET</c> with Consul's detail set).</summary>
    public string ForwardedClientCert { get; } = forwardedClientCert;
}

/// <summary>Certificate checks of the terminator: peer client certificates, sidecar server certificates, SAN parsing, XFCC.</summary>
internal static class PeerCertificates
{
    /// <summary>The <c>X-Forwarded-Client-Cert</c> header.</summary>
    public const string ForwardedClientCertHeader = "X-Forwarded-Client-Cert";


    /// <summary>
    /// Validates a peer's client certificate for one exported service, as Consul's SPIFFE validator does: the URI SAN's
    /// trust domain picks the bundle (only bundles of peers the service is exported to), and the chain must build to
    /// that bundle's roots alone, at <paramref name="now"/>.
    /// </summary>
    public static HandshakeRefusal? Validate(
        X509Certificate2? certificate, X509Chain? presented, ServiceState service, PeeringState state, DateTime now, out PeerIdentity? identity, out string? detail)
    {
        identity = null;
        detail = null;
        if (certificate is null)
        {
            return HandshakeRefusal.NoClientCertificate;
        }

        ReadSubjectAltNames(certificate, out List<string> uris, out _);
        string? spiffe = null;
        int count = 0;
        foreach (string uri in uris)
        {
            if (uri.StartsWith("spiffe://", StringComparison.OrdinalIgnoreCase))
            {
                spiffe = uri;
                count++;
            }
        }

        if (count != 1 || !Uri.TryCreate(spiffe, UriKind.Absolute, out Uri? parsed) || string.IsNullOrEmpty(parsed.Host))
        {
            detail = count == 0 ? "no spiffe:// URI SAN" : count > 1 ? "several spiffe:// URI SANs" : "malformed SPIFFE ID";
            return HandshakeRefusal.NoSpiffeId;
        }

        detail = spiffe;
        string trustDomain = parsed.Host;
        PeerTrustBundle? bundle = null;
        foreach (PeerTrustBundle candidate in service.Bundles)
        {
            if (string.Equals(candidate.TrustDomain, trustDomain, StringComparison.OrdinalIgnoreCase))
            {
                bundle = candidate;
                break;
            }
        }

        if (bundle is null)
        {
            return state.IsKnownTrustDomain(trustDomain) ? HandshakeRefusal.NotExportedToPeer : HandshakeRefusal.UnknownTrustDomain;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now;
        foreach (X509Certificate2 root in bundle.Roots)
        {
            chain.ChainPolicy.CustomTrustStore.Add(root);
        }

        if (presented is not null)
        {
            // Intermediates the client sent with its leaf: candidates for the path, never anchors.
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
        }

        if (!chain.Build(certificate))
        {
            foreach (X509ChainStatus status in chain.ChainStatus)
            {
                if (status.Status == X509ChainStatusFlags.NotTimeValid)
                {
                    return HandshakeRefusal.Expired;
                }
            }

            return HandshakeRefusal.UntrustedChain;
        }

        var path = new List<X509Certificate2>(chain.ChainElements.Count);
        for (int i = 0; i < chain.ChainElements.Count - 1; i++)
        {
            path.Add(chain.ChainElements[i].Certificate);
        }

        identity = new PeerIdentity(spiffe!, bundle.PeerName, FormatForwardedClientCert(state.LeafUris, certificate, path));
        return null;
    }

    /// <summary>
    /// Validates a local sidecar's server certificate: chains to the local CA roots alone and carries exactly the
    /// expected SPIFFE ID (Envoy's upstream validation context in Consul: <c>match_subject_alt_names</c>, exact).
    /// </summary>
    public static bool ValidateSidecar(X509Certificate2? certificate, X509Chain? presented, string expectedSpiffeId, PeeringState state, DateTime now)
    {
        if (certificate is null)
        {
            return false;
        }

        ReadSubjectAltNames(certificate, out List<string> uris, out _);
        if (!uris.Contains(expectedSpiffeId, StringComparer.Ordinal))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now;
        foreach (X509Certificate2 root in state.Snapshot.LocalRoots)
        {
            chain.ChainPolicy.CustomTrustStore.Add(root);
        }

        if (presented is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
        }

        return chain.Build(certificate);
    }

    /// <summary>
    /// The XFCC value Envoy writes with <c>forward_client_cert_details: SANITIZE_SET</c> and Consul's
    /// <c>set_current_client_cert_details</c> (Subject, Cert, Chain, Dns, Uri; agent/xds/listeners.go, makeHTTPFilter):
    /// <c>By</c> (each URI SAN of the gateway's own certificate), <c>Hash</c> (SHA-256 of the client certificate),
    /// then in Envoy's order <c>Subject</c>, <c>URI</c>, <c>Cert</c>, <c>Chain</c>, <c>DNS</c>; pairs joined by <c>;</c>.
    /// </summary>
    public static string FormatForwardedClientCert(IReadOnlyList<string> localUris, X509Certificate2 client, IReadOnlyList<X509Certificate2> path)
    {
        var builder = new StringBuilder(4096);
        foreach (string uri in localUris)
        {
            Append(builder, "By=").Append(uri);
        }

        Append(builder, "Hash=").Append(Convert.ToHexStringLower(SHA256.HashData(client.RawData)));
        Append(builder, "Subject=\"").Append(FormatSubject(client.SubjectName).Replace("\"", "\\\"", StringComparison.Ordinal)).Append('"');
        ReadSubjectAltNames(client, out List<string> uris, out List<string> dnsNames);
        foreach (string uri in uris)
        {
            Append(builder, "URI=").Append(uri);
        }

        Append(builder, "Cert=\"").Append(Uri.EscapeDataString(client.ExportCertificatePem())).Append('"');
        var chain = new StringBuilder();
        foreach (X509Certificate2 certificate in path)
        {
            chain.Append(certificate.ExportCertificatePem()).Append('\n');
        }

        Append(builder, "Chain=\"").Append(Uri.EscapeDataString(chain.ToString())).Append('"');
        foreach (string dns in dnsNames)
        {
            Append(builder, "DNS=").Append(dns);
        }

        return builder.ToString();

        static StringBuilder Append(StringBuilder builder, string key) => (builder.Length == 0 ? builder : builder.Append(';')).Append(key);
    }

    /// <summary>The subject in RFC 2253 order (most specific first), comma-separated, as Envoy prints it.</summary>
    private static string FormatSubject(X500DistinguishedName name) =>
        name.RawData.Length <= 2 ? string.Empty : name.Decode(X500DistinguishedNameFlags.UseCommas | X500DistinguishedNameFlags.DoNotUsePlusSign).Replace(", ", ",", StringComparison.Ordinal);

    /// <summary>The URI and DNS names of the subject alternative name extension (see <see cref="SubjectAltNames"/>).</summary>
    public static void ReadSubjectAltNames(X509Certificate2 certificate, out List<string> uris, out List<string> dnsNames)
    {
        uris = [];
        dnsNames = [];
        SubjectAltNames.Read(certificate, uris, dnsNames);
    }
}
