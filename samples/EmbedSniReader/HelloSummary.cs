using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
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
    string Ja4Style)
{
    public static HelloSummary Create(ClientHelloStatus status, in ClientHelloInfo hello, int reads)
    {
        if (status != ClientHelloStatus.Done)
        {
            return new HelloSummary(status, hello.Error, 0, reads, null, [], 0, 0, 0, false, false, [], "");
        }

        // Route on the lower-cased name, made without allocating into a stack buffer.
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
            hello.HasServerName ? Encoding.ASCII.GetString(name[..nameLength]) : null,
            alpn,
            hello.RecordVersion,
            hello.LegacyVersion,
            hello.MaxSupportedVersion,
            hello.OffersTls13,
            hello.HasEncryptedClientHello,
            hello.ExtensionTypes.ToArray(),
            ComputeJa4Style(hello, alpn));
    }

    /// <summary>
    /// A JA4-style fingerprint (after FoxIO's JA4 "a_c" parts): t, TLS version, d/i (SNI or not), cipher count,
    /// extension count (GREASE excluded), first+last character of the first ALPN value; then the first 12 hex digits
    /// of SHA-256 over the sorted non-GREASE extension ids. Real JA4 also hashes the cipher list and signature
    /// algorithms, which the reader does not keep; the cipher count here includes GREASE values.
    /// </summary>
    private static string ComputeJa4Style(in ClientHelloInfo hello, List<string> alpn)
    {
        ushort version = hello.MaxSupportedVersion != 0 ? hello.MaxSupportedVersion : hello.LegacyVersion;
        string tls = version switch
        {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            _ => "00",
        };
        List<ushort> extensions = [.. hello.ExtensionTypes.ToArray().Where(t => !IsGrease(t))];
        string alpnPart = alpn.Count == 0 || alpn[0].Length == 0 ? "00" : $"{alpn[0][0]}{alpn[0][^1]}";
        string a = string.Create(CultureInfo.InvariantCulture,
            $"t{tls}{(hello.HasServerName ? 'd' : 'i')}{Math.Min(hello.CipherSuiteCount, 99):D2}{Math.Min(extensions.Count, 99):D2}{alpnPart}");

        extensions.Sort();
        byte[] ids = new byte[extensions.Count * 2];
        for (int i = 0; i < extensions.Count; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ids.AsSpan(i * 2), extensions[i]);
        }

        return a + "_" + Convert.ToHexStringLower(SHA256.HashData(ids))[..12];
    }

    private static bool IsGrease(ushort value) => (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF);

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
        output.WriteLine($"    ja4-style     {Ja4Style}");
    }
}
