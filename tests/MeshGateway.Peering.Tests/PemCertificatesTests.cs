using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Peering.Tests;

/// <summary>Consul's PEM (leaf CertPEM + PrivateKeyPEM, roots, bundle RootPEMs) loaded into a working snapshot.</summary>
public sealed class PemCertificatesTests
{
    [Fact]
    public async Task LoadLeaf_FromConsulsPemFields_TerminatesPeerTraffic()
    {
        await using PeeringHarness harness = await PeeringHarness.StartAsync();
        using X509Certificate2 issued = harness.Local.Issue(harness.GatewaySpiffeId);
        using ECDsa key = issued.GetECDsaPrivateKey()!;
        using X509Certificate2 leaf = PemCertificates.LoadLeaf(issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        IReadOnlyList<X509Certificate2> roots = PemCertificates.LoadCertificates([harness.Local.Root.ExportCertificatePem() + "\n" + harness.PeerB.Root.ExportCertificatePem()]);

        harness.Terminator.Update(harness.Snapshot(leaf) with { LocalRoots = [roots[0]] });
        var seen = new List<string>();
        using HttpClient client = harness.CreateClient(harness.PeerClient, c => seen.Add(c.Thumbprint));
        using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/pem", HttpVersion.Version11));

        Assert.Equal("web-a /pem", await response.Content.ReadAsStringAsync());
        Assert.Equal([issued.Thumbprint], seen);
        Assert.Equal([harness.Local.Root.Thumbprint, harness.PeerB.Root.Thumbprint], roots.Select(r => r.Thumbprint));
    }

    [Fact]
    public void LoadCertificates_TextWithoutCertificate_Throws()
    {
        Assert.ThrowsAny<CryptographicException>(() => PemCertificates.LoadCertificates(["not a certificate"]));
    }
}
