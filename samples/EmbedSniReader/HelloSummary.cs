using System.Globalization;
using System.Text;
using MeshGateway.Tls;

namespace EmbedSniReader;

/// <summary>What the server saw on one connection, made into strings for printing (off the hot path).</summary>
internal sealed record HelloSummary(
    ClientHelloStatus Status,
    ClientHelloError Error,
    int BytesConsumed,
    int Reads,
    string? ServerName,
    IReadOnlyList<string> Alpn,
    ushort RecordVersion,
    ushort LegacyVersion,
    ushort MaxSupportedVersion,
    bool OffersTls13,
    bool HasEncryptedClientHello,
    IReadOnlyList<ushort> ExtensionTypes,
    HostNameIssues ServerNameIssues,
    string Fingerprints)
{
    public static HelloSummary Create(ClientHelloStatus status, in ClientHelloInfo hello, ReadOnlySpan<byte> input, int reads)
    {
        if (status != ClientHelloStatus.Done)
        {
            return new HelloSummary(status, hello.Error, 0, reads, null, [], 0, 0, 0, false, false, [], HostNameIssues.None, "");
        }

        // Route on the lower-cased name, made without allocating into a stack buffer. The reader accepts any host_name
        // bytes; this sample's policy is to route only valid DNS names (see ServerNameIssues) and print the rest escaped.
        Span<byte> name = stackalloc byte[ClientHelloInfo.MaxHostNameLength];
        int nameLength = hello.CopyServerNameLowerCase(name);
        var alpn = new List<string>();
        foreach (ReadOnlySpan<byte> protocol in hello.AlpnProtocols)
        {
            alpn.Add(Encoding.ASCII.GetString(protocol));
        }

        return new HelloSummary(
            status,
            hello.Error,
            hello.BytesConsumed,
            reads,
            !hello.HasServerName ? null : hello.HasDnsServerName ? Encoding.ASCII.GetString(name[..nameLength]) : Escape(hello.ServerName),
            alpn,
            hello.RecordVersion,
            hello.LegacyVersion,
            hello.MaxSupportedVersion,
            hello.OffersTls13,
            hello.HasEncryptedClientHello,
            hello.ExtensionTypes.ToArray(),
            hello.ServerNameIssues,
            FormatFingerprints(hello, input));
    }

    /// <summary>
    /// JA4 and JA3 (<see cref="ClientHelloFingerprint"/>), written into stack buffers; "-" when not computable. The lists
    /// they need (cipher suites, groups, ...) are read here, on request, from the same bytes as the hello, into a local.
    /// </summary>
    private static string FormatFingerprints(in ClientHelloInfo hello, ReadOnlySpan<byte> input)
    {
        ClientHelloLists.TryRead(input, hello, out ClientHelloLists lists);   // when false, lists.Incomplete: "-" below
        Span<char> ja4 = stackalloc char[ClientHelloFingerprint.Ja4Length];
        Span<char> ja3 = stackalloc char[ClientHelloFingerprint.Ja3Length];
        string ja4Text = ClientHelloFingerprint.TryFormatJa4(hello, lists, ja4, out int ja4Length) ? new string(ja4[..ja4Length]) : "-";
        string ja3Text = ClientHelloFingerprint.TryFormatJa3(hello, lists, ja3, out int ja3Length) ? new string(ja3[..ja3Length]) : "-";
        return $"ja4 {ja4Text}, ja3 {ja3Text}";
    }

    private static string Escape(ReadOnlySpan<byte> name)
    {
        var text = new StringBuilder();
        foreach (byte b in name)
        {
            text.Append(b is > 0x20 and < 0x7F and not (byte)'\\' ? ((char)b).ToString() : string.Create(CultureInfo.InvariantCulture, $"\\x{b:X2}"));
        }

        return text.ToString();
    }

    public void WriteTo(TextWriter output, int connection, string remote)
    {
        output.WriteLine($"[{connection}] {remote}: {Status}{(Status == ClientHelloStatus.Done ? "" : $" ({Error})")} after {Reads} read(s)");
        if (Status != ClientHelloStatus.Done)
        {
            return;
        }

        output.WriteLine($"    hello bytes   {BytesConsumed}");
        output.WriteLine($"    sni           {ServerName ?? "(none)"}");
        output.WriteLine($"    alpn          {(Alpn.Count == 0 ? "(none)" : string.Join(", ", Alpn))}");
        output.WriteLine($"    versions      record 0x{RecordVersion:x4}, hello 0x{LegacyVersion:x4}, supported_versions max 0x{MaxSupportedVersion:x4}");
        output.WriteLine($"    tls 1.3       {(OffersTls13 ? "offered" : "not offered")}");
        output.WriteLine($"    ech           {(HasEncryptedClientHello ? "present (SNI is the outer name)" : "absent")}");
        output.WriteLine($"    extensions    {string.Join(" ", ExtensionTypes.Select(t => t.ToString("x4", CultureInfo.InvariantCulture)))} ({ExtensionTypes.Count})");
        output.WriteLine($"    sni issues    {ServerNameIssues}");
        output.WriteLine($"    fingerprints  {Fingerprints}");
    }
}
