using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Consul;

/// <summary>Reads the URI entries of a certificate's subjectAltName (RFC 5280 §4.2.1.6, <c>uniformResourceIdentifier [6] IA5String</c>).</summary>
internal static class SpiffeUriSan
{
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly Asn1Tag s_uriTag = new(TagClass.ContextSpecific, 6);

    /// <summary>The URI SANs of <paramref name="certificate"/>; empty when it has none or the extension is malformed.</summary>
    public static List<string> Read(X509Certificate2 certificate)
    {
        var uris = new List<string>(1);
        foreach (X509Extension extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid)
            {
                continue;
            }

            try
            {
                var reader = new AsnReader(extension.RawData, AsnEncodingRules.DER);
                AsnReader names = reader.ReadSequence();
                while (names.HasData)
                {
                    if (names.PeekTag().HasSameClassAndValue(s_uriTag))
                    {
                        uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, s_uriTag));
                    }
                    else
                    {
                        names.ReadEncodedValue();
                    }
                }
            }
            catch (AsnContentException)
            {
                // A malformed extension proves no identity; the caller reports what was found so far.
            }
        }

        return uris;
    }

    /// <summary>
    /// Whether <paramref name="presented"/> is the <paramref name="expected"/> SPIFFE ID. Consul's own client
    /// (<c>connect/tls.go</c>, <c>verifyServerCertMatchesURI</c>) compares the URI strings case-insensitively.
    /// </summary>
    public static bool Matches(string presented, string expected) =>
        string.Equals(presented, expected, StringComparison.OrdinalIgnoreCase);
}
