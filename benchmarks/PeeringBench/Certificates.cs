using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Peering;
using MeshGateway.Peering.Tests;

namespace PeeringBench;

/// <summary>
/// The benchmark's PKI, written as PEM files so that nginx uses the same certificates: the local trust domain (its CA,
/// the gateway's leaf, the backend's leaf) and the consumer peer <c>peer-b</c> (its CA, the client's leaf).
/// </summary>
internal static class Certificates
{
    public const string LocalTrustDomain = "11111111-2222-3333-4444-555555555555.consul";
    public const string PeerTrustDomain = "22222222-3333-4444-5555-666666666666.consul";

    /// <summary>The form-8 SNI of <c>web</c> exported to <c>peer-b</c>: what the client sends to every proxy.</summary>
    public const string WebSni = "web.default.default.peer-b.external." + LocalTrustDomain;

    /// <summary>A DNS name on the backend's leaf besides its SPIFFE ID: nginx's <c>proxy_ssl_verify</c> checks names, not URIs.</summary>
    public const string BackendDnsName = "backend.peering-bench.test";

    public const string GatewaySpiffeId = "spiffe://" + LocalTrustDomain + "/gateway/mesh/dc/dc1";
    public const string BackendSpiffeId = "spiffe://" + LocalTrustDomain + "/ns/default/dc/dc1/svc/web";
    public const string ClientSpiffeId = "spiffe://" + PeerTrustDomain + "/ns/default/dc/dc2/svc/frontend";

    /// <summary>Writes local-ca.crt, peer-ca.crt and gateway/backend/client .crt + .key into <paramref name="directory"/>.</summary>
    public static void Write(string directory)
    {
        Directory.CreateDirectory(directory);
        using var local = new SpiffeAuthority(LocalTrustDomain);
        using var peer = new SpiffeAuthority(PeerTrustDomain);
        File.WriteAllText(Path.Combine(directory, "local-ca.crt"), local.Root.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "peer-ca.crt"), peer.Root.ExportCertificatePem());
        WriteLeaf(directory, "gateway", local.Issue(GatewaySpiffeId));
        WriteLeaf(directory, "backend", local.Issue(BackendSpiffeId, dnsName: BackendDnsName));
        WriteLeaf(directory, "client", peer.Issue(ClientSpiffeId));
    }

    public static X509Certificate2 LoadLeaf(string directory, string name) =>
        PemCertificates.LoadLeaf(File.ReadAllText(Path.Combine(directory, name + ".crt")), File.ReadAllText(Path.Combine(directory, name + ".key")));

    public static X509Certificate2 LoadRoot(string directory, string name) =>
        PemCertificates.LoadCertificates([File.ReadAllText(Path.Combine(directory, name + ".crt"))])[0];

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="root"/> alone (no system roots, no revocation).</summary>
    public static bool ChainsTo(X509Certificate? certificate, X509Certificate2 root)
    {
        if (certificate is null)
        {
            return false;
        }

        using X509Certificate2? owned = certificate as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        return chain.Build(owned ?? (X509Certificate2)certificate);
    }

    private static void WriteLeaf(string directory, string name, X509Certificate2 leaf)
    {
        using (leaf)
        {
            using ECDsa key = leaf.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"The {name} leaf has no EC key.");
            File.WriteAllText(Path.Combine(directory, name + ".crt"), leaf.ExportCertificatePem());
            File.WriteAllText(Path.Combine(directory, name + ".key"), key.ExportPkcs8PrivateKeyPem());
        }
    }
}
