using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway;

/// <summary>
/// Reads the URI and DNS names of a certificate's subject alternative name extension (RFC 5280 §4.2.1.6:
/// <c>GeneralNames ::= SEQUENCE OF GeneralName</c>; <c>dNSName [2] IA5String</c>, <c>uniformResourceIdentifier [6]
/// IA5String</c>). Compiled into each package that checks SPIFFE IDs (linked source, internal): the Connect dialer and the
/// peering terminator. Written here because <see cref="X509SubjectAlternativeNameExtension"/> enumerates DNS names and IP
/// addresses only, not URIs.
/// </summary>
internal static class SubjectAltNames
{
    private const string SubjectAltNameOid = "2.5.29.17";

    /// <summary>
    /// Adds the URI names to <paramref name="uris"/> and, when given, the DNS names to <paramref name="dnsNames"/>. A
    /// malformed extension yields no names at all (it proves no identity), so the caller refuses the certificate.
    /// </summary>
    /// <param name="certificate">The certificate.</param>
    /// <param name="uris">Receives the URI names.</param>
    /// <param name="dnsNames">Receives the DNS names, or null to skip them.</param>
    public static void Read(X509Certificate2 certificate, List<string> uris, List<string>? dnsNames = null)
    {
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
                    Asn1Tag tag = names.PeekTag();
                    if (tag.TagClass == TagClass.ContextSpecific && !tag.IsConstructed && (tag.TagValue == 6 || (tag.TagValue == 2 && dnsNames is not null)))
                    {
                        string value = names.ReadCharacterString(UniversalTagNumber.IA5String, tag);
                        (tag.TagValue == 6 ? uris : dnsNames!).Add(value);
                    }
                    else
                    {
                        names.ReadEncodedValue();
                    }
                }
            }
            catch (AsnContentException)
            {
                uris.Clear();
                dnsNames?.Clear();
                return;
            }
        }
    }
}
