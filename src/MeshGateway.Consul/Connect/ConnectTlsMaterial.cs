using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Consul;

/// <summary>An immutable leaf certificate (with its key and intermediates) as one unit, swapped atomically on renewal.</summary>
internal sealed class ConnectLeaf
{
    private ConnectLeaf(X509Certificate2 certificate, X509Certificate2Collection intermediates, SslStreamCertificateContext context, string serial, DateTimeOffset validBefore)
    {
        Certificate = certificate;
        Intermediates = intermediates;
        Context = context;
        Serial = serial;
        ValidBefore = validBefore;
    }

    public X509Certificate2 Certificate { get; }

    public X509Certificate2Collection Intermediates { get; }

    public SslStreamCertificateContext Context { get; }

    public string Serial { get; }

    public DateTimeOffset ValidBefore { get; }

    /// <summary>Builds the leaf from the agent's answer (<c>CertPEM</c> carries the leaf then any intermediates).</summary>
    public static ConnectLeaf From(ConsulLeafCertificate leaf)
    {
        if (string.IsNullOrEmpty(leaf.CertPEM) || string.IsNullOrEmpty(leaf.PrivateKeyPEM))
        {
            throw new InvalidOperationException($"The agent returned a leaf certificate for '{leaf.Service}' without CertPEM or PrivateKeyPEM.");
        }

        var all = new X509Certificate2Collection();
        all.ImportFromPem(leaf.CertPEM);
        if (all.Count == 0)
        {
            throw new InvalidOperationException($"The leaf certificate PEM for '{leaf.Service}' holds no certificate.");
        }

        X509Certificate2 certificate = X509Certificate2.CreateFromPem(leaf.CertPEM, leaf.PrivateKeyPEM);
        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use an ephemeral key for client authentication: round-trip through PKCS#12.
            X509Certificate2 ephemeral = certificate;
            certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
            ephemeral.Dispose();
        }

        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < all.Count; i++)
        {
            intermediates.Add(all[i]);
        }

        SslStreamCertificateContext context = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
        DateTimeOffset validBefore = leaf.ValidBefore ?? new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        return new ConnectLeaf(certificate, intermediates, context, leaf.SerialNumber ?? certificate.SerialNumber, validBefore);
    }
}

/// <summary>The Connect CA roots (and any intermediates the roots answer lists) plus the trust domain.</summary>
internal sealed class ConnectRoots
{
    private ConnectRoots(X509Certificate2Collection roots, X509Certificate2Collection intermediates, string trustDomain)
    {
        Roots = roots;
        Intermediates = intermediates;
        TrustDomain = trustDomain;
    }

    public X509Certificate2Collection Roots { get; }

    public X509Certificate2Collection Intermediates { get; }

    public string TrustDomain { get; }

    /// <summary>A cluster peer's roots (<c>Peering.PeerCAPems</c>): what its servers' and gateways' leaves chain to.</summary>
    public static ConnectRoots FromPeer(string peer, IReadOnlyList<string>? pems)
    {
        var roots = new X509Certificate2Collection();
        foreach (string pem in pems ?? [])
        {
            if (!string.IsNullOrWhiteSpace(pem))
            {
                roots.ImportFromPem(pem);
            }
        }

        if (roots.Count == 0)
        {
            throw new InvalidOperationException($"The peering '{peer}' carries no PeerCAPems: the peer's trust bundle has not arrived yet (is the peering ACTIVE?).");
        }

        return new ConnectRoots(roots, [], "peer " + peer);
    }

    public static ConnectRoots From(ConsulCaRoots answer)
    {
        if (string.IsNullOrEmpty(answer.TrustDomain))
        {
            throw new InvalidOperationException("The agent's Connect CA roots carry no TrustDomain: is Connect enabled and the CA initialised?");
        }

        var roots = new X509Certificate2Collection();
        var intermediates = new X509Certificate2Collection();
        foreach (ConsulCaRoot root in answer.Roots ?? [])
        {
            if (!string.IsNullOrEmpty(root.RootCert))
            {
                roots.ImportFromPem(root.RootCert);
            }

            foreach (string pem in root.IntermediateCerts ?? [])
            {
                intermediates.ImportFromPem(pem);
            }
        }

        if (roots.Count == 0)
        {
            throw new InvalidOperationException("The agent's Connect CA roots answer holds no root certificate.");
        }

        return new ConnectRoots(roots, intermediates, answer.TrustDomain);
    }
}
