using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

/// <summary>FsCheck properties of <see cref="ConsulSniName"/>.</summary>
public sealed class ConsulSniNamePropertyTests
{
    private const string LabelChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// <summary>A DNS-label-like string: a letter or digit, then up to 20 letters, digits or hyphens, ending in a letter or digit. No dots.</summary>
    private static Gen<string> Label =>
        from first in Gen.Elements(LabelChars.ToCharArray())
        from middle in Gen.Elements((LabelChars + "-").ToCharArray()).ArrayOf().Select(a => a.Take(18).ToArray())
        from last in Gen.Elements(LabelChars.ToCharArray())
        from single in Gen.Choose(0, 3)
        select single == 0 ? first.ToString() : first + new string(middle) + last;

    private static Gen<string> NamedPartition => Label.Where(l => !l.Equals("default", StringComparison.OrdinalIgnoreCase));

    private static Gen<string?> Optional(Gen<string> gen) =>
        Gen.Frequency((1, Gen.Constant<string?>(null)), (1, Gen.Constant<string?>(string.Empty)), (4, gen.Select(s => (string?)s)));

    /// <summary>Trust domains with 1–4 labels (they contain dots), e.g. a UUID-like label plus <c>consul</c>.</summary>
    private static Gen<string> TrustDomain =>
        Gen.Choose(1, 4).SelectMany(n => Label.ArrayOf(n)).Select(labels => string.Join('.', labels));

    private static Gen<ConsulSniName> AnyName(string domain) =>
        from td in TrustDomain
        from kind in Gen.Choose(1, 12)
        from a in Label
        from b in Label
        from c in Label
        from d in Label
        from ns in Optional(Label)
        from ap in Gen.Frequency((1, Gen.Constant<string?>(null)), (1, Gen.Constant<string?>("default")), (3, NamedPartition.Select(s => (string?)s)))
        from subset in Optional(Label)
        select kind switch
        {
            1 or 2 or 3 or 4 => ConsulSniName.ForService(a, ns, ap, b, td, subset),
            5 or 6 => ConsulSniName.ForGateway(a, ap, td),
            7 => ConsulSniName.ForPreparedQuery(a, b, td),
            8 => ConsulSniName.ForPeeredService(a, ns, ap, c, td),
            9 => ConsulSniName.ForImportedPeerCluster(a, ns, c, td),
            10 => ConsulSniName.ForWanFederationServers(b, domain),
            11 => ConsulSniName.ForWanFederationServer(d, b, domain),
            _ => ConsulSniName.ForPeeringServers(b, td),
        };

    /// <summary>Both a one-label and a two-label DNS domain (forms 10 and 11 end in it), about 300 names each.</summary>
    [Property(MaxTest = 600)]
    public Property FormatThenParse_ValidLabels_GivesThePartsBack()
    {
        return Prop.ForAll(
            (from domain in Gen.Elements("consul", "corp.example") from name in AnyName(domain) select (domain, name)).ToArbitrary(),
            t =>
            {
                (string domain, ConsulSniName name) = t;
                string td = name.TrustDomain ?? "unused-td.consul";
                string text = name.ToString();
                bool chars = ConsulSniName.TryParse(text, td, domain, out ConsulSniName? fromChars, out ConsulSniParseError error);
                bool bytes = ConsulSniName.TryParse(Encoding.ASCII.GetBytes(text), td, domain, out ConsulSniName? fromBytes, out _);
                bool upper = ConsulSniName.TryParse(text.ToUpperInvariant(), td, domain, out ConsulSniName? fromUpper, out _);
                return (chars && bytes && upper && name.Equals(fromChars) && name.Equals(fromBytes) && name.Equals(fromUpper)
                        && fromUpper!.Form == name.Form && name.GetHashCode() == fromUpper.GetHashCode()
                        && string.Equals(fromUpper.ToString(), text, StringComparison.OrdinalIgnoreCase) && !fromUpper.ToString().Any(char.IsAsciiLetterUpper))
                    .Label($"{text}: {error}");
            });
    }

    [Property(MaxTest = 300)]
    public Property TryParse_AnyPrintableString_NeverThrowsAndAgreesWithResult()
    {
        Gen<string> noise =
            from parts in Gen.Elements("api", "default", "dc2", "internal", "internal-v1", "query", "external", "peering", "server",
                "consul", "td", "", "X", "a b", "\u00e9", "*", "-").ArrayOf()
            from dot in Gen.Elements("", ".")
            select string.Join('.', parts) + dot;

        return Prop.ForAll(
            noise.ToArbitrary(),
            text =>
            {
                bool ok = ConsulSniName.TryParse(text, "td.consul", out ConsulSniName? result, out ConsulSniParseError error);
                return ok == (result is not null) && ok == (error == ConsulSniParseError.None)
                    && (!ok || string.Equals(result!.ToString(), text, StringComparison.OrdinalIgnoreCase));
            });
    }
}
