using System.Buffers;
using System.Text;
using MeshGateway.Tls;

namespace MeshGateway.Tests.Tls;

/// <summary>Everything the reader reports, as a comparable value (strings are made here, in tests only).</summary>
internal sealed record HelloResult(
    ClientHelloStatus Status,
    ClientHelloError Error,
    int BytesConsumed,
    string? ServerName,
    HostNameIssues ServerNameIssues,
    bool EndsWithDot,
    string Alpn,
    bool AlpnTruncated,
    ushort RecordVersion,
    ushort LegacyVersion,
    bool OffersTls13,
    ushort MaxSupportedVersion,
    bool Ech,
    int CipherSuiteCount,
    string ExtensionTypes,
    string Lists)
{
    /// <summary>The reader's answer and, for a hello read whole, its lists as <see cref="ClientHelloLists"/> reads them from the same input.</summary>
    public static HelloResult From(ClientHelloStatus status, in ClientHelloInfo info, ReadOnlySpan<byte> input)
    {
        bool read = ClientHelloLists.TryRead(input, info, out ClientHelloLists lists);
        return From(status, info, read, lists);
    }

    /// <summary>The same for multi-segment input.</summary>
    public static HelloResult From(ClientHelloStatus status, in ClientHelloInfo info, in ReadOnlySequence<byte> input)
    {
        bool read = ClientHelloLists.TryRead(input, info, out ClientHelloLists lists);
        return From(status, info, read, lists);
    }

    private static HelloResult From(ClientHelloStatus status, in ClientHelloInfo info, bool listsRead, in ClientHelloLists lists)
    {
        if (status != ClientHelloStatus.Done)
        {
            // Only the outcome is defined for failures.
            return new HelloResult(status, info.Error, info.BytesConsumed, null, HostNameIssues.None, false, "", false, 0, 0, false, 0, false, 0, "", "");
        }

        var alpn = new StringBuilder();
        foreach (ReadOnlySpan<byte> protocol in info.AlpnProtocols)
        {
            alpn.Append(Encoding.ASCII.GetString(protocol)).Append(',');
        }

        return new HelloResult(
            status,
            info.Error,
            info.BytesConsumed,
            info.HasServerName ? Encoding.Latin1.GetString(info.ServerName) : null,   // Latin-1: every byte, one char
            info.ServerNameIssues,
            info.ServerNameEndsWithDot,
            (info.HasAlpn ? "alpn:" : "") + alpn,
            info.AlpnTruncated,
            info.RecordVersion,
            info.LegacyVersion,
            info.OffersTls13,
            info.MaxSupportedVersion,
            info.HasEncryptedClientHello,
            info.CipherSuiteCount,
            string.Join(",", info.ExtensionTypes.ToArray().Select(t => t.ToString("x4", null))),
            !listsRead ? "lists not read"
                : $"suites={Convert.ToHexString(lists.CipherSuitesRaw)} groups={Convert.ToHexString(lists.SupportedGroupsRaw)} "
                + $"sigs={Convert.ToHexString(lists.SignatureAlgorithmsRaw)} formats={Convert.ToHexString(lists.EcPointFormats)} incomplete={lists.Incomplete}");
    }

    public static HelloResult Read(ReadOnlySpan<byte> input, in ClientHelloReaderOptions options = default)
    {
        ClientHelloStatus status = ClientHelloReader.TryRead(input, options, out ClientHelloInfo info);
        return From(status, info, input);
    }

    public static HelloResult Read(in ReadOnlySequence<byte> input, in ClientHelloReaderOptions options = default)
    {
        ClientHelloStatus status = ClientHelloReader.TryRead(input, options, out ClientHelloInfo info);
        return From(status, info, input);
    }

    /// <summary>
    /// Reads <paramref name="input"/> as one span, as a single-segment sequence, one byte per segment with empty
    /// segments in between, and split in two at a few places; asserts every answer is the same and returns it.
    /// </summary>
    public static HelloResult ReadEveryWay(byte[] input, in ClientHelloReaderOptions options = default)
    {
        HelloResult expected = Read(input, options);
        Assert.Equal(expected, Read(new ReadOnlySequence<byte>(input), options));
        Assert.Equal(expected, Read(TestSequence.OneBytePerSegmentWithEmpties(input), options));
        foreach (int cut in new[] { 1, 5, 9, input.Length / 2, input.Length - 1 })
        {
            if (cut > 0 && cut < input.Length)
            {
                Assert.Equal(expected, Read(TestSequence.Split(input, [cut]), options));
            }
        }

        return expected;
    }
}
