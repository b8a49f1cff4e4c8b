using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;

namespace MeshGateway.Tls;

/// <summary>
/// JA3 and JA4 client fingerprints of a ClientHello read by <see cref="ClientHelloReader"/>, written into a caller's
/// buffer without allocating (<c>TryFormat</c> style: <see langword="false"/> and nothing usable when it does not fit).
/// </summary>
/// <remarks>
/// <para>JA3 (Salesforce, <c>salesforce/ja3</c> README and <c>python/ja3/ja3.py</c>): the decimal string
/// <c>SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats</c> (legacy_version; values joined by
/// <c>-</c>; GREASE values left out) and its MD5 as 32 lower-case hex characters.</para>
/// <para>JA4 (FoxIO, <c>FoxIO-LLC/ja4</c> <c>technical_details/JA4.md</c>): <c>a_b_c</c>, where a is <c>t</c> (TCP),
/// the highest non-GREASE supported_versions value or else legacy_version (<c>13</c>, <c>12</c>, ... <c>00</c> when
/// unknown), <c>d</c>/<c>i</c> (server_name extension present or not), the counts of non-GREASE cipher suites and
/// extensions (at most 99) and the first and last characters of the first ALPN protocol (<c>00</c> without ALPN; when
/// either is not an ASCII letter or digit, the first and last hex digits of the protocol's bytes, as the specification
/// says; the reference tools print <c>99</c> for non-ASCII instead); b is the SHA-256 (first 12 hex characters) of the
/// sorted non-GREASE cipher suites as 4-digit hex joined by commas; c is the same over the sorted non-GREASE extension
/// types without server_name and ALPN, followed by <c>_</c> and the signature algorithms in the order sent when there
/// are any. An empty list hashes to <c>000000000000</c>. The raw form (<c>JA4_r</c>) shows the lists instead of hashes.</para>
/// <para>Each method takes the hello as read (<see cref="ClientHelloInfo"/>: versions, extension order, ALPN) and its
/// lists (<see cref="ClientHelloLists"/>: cipher suites, groups, signature algorithms, point formats), which
/// <see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/> reads from the same
/// bytes only when a caller asks, so the routing path pays nothing for fingerprints. Every method returns
/// <see langword="false"/> when the destination is too small, and when the lists were not kept whole
/// (<see cref="ClientHelloLists.Incomplete"/>, lists of another hello, or an ALPN list whose first protocol was not
/// kept), as the fingerprint would then be wrong. Call them only for a hello read with <see cref="ClientHelloStatus.Done"/>.</para>
/// <para>The hashes come from <see cref="MD5.HashData(ReadOnlySpan{byte}, Span{byte})"/> and
/// <see cref="SHA256.HashData(ReadOnlySpan{byte}, Span{byte})"/> over stack buffers. The formatting is written here
/// because no library formats these strings into a caller's buffer without building strings first.</para>
/// </remarks>
public static class ClientHelloFingerprint
{
    /// <summary>The length of a JA3 hash: 32 hex characters.</summary>
    public const int Ja3Length = 32;

    /// <summary>The length of a JA4 fingerprint: <c>t13d1516h2_8daaf6152771_e5627efa2ab1</c>, 36 characters.</summary>
    public const int Ja4Length = 36;

    /// <summary>
    /// The longest JA3 string the inline lists allow: a 5-digit version, 4 commas, and up to
    /// <see cref="ClientHelloLists.MaxCipherSuites"/>, <see cref="ClientHelloInfo.MaxExtensions"/> and
    /// <see cref="ClientHelloLists.MaxSupportedGroups"/> 5-digit values and <see cref="ClientHelloLists.MaxEcPointFormats"/>
    /// 3-digit values, each with its separator.
    /// </summary>
    public const int MaxJa3StringLength = 5 + 4 + (6 * (ClientHelloLists.MaxCipherSuites + ClientHelloInfo.MaxExtensions + ClientHelloLists.MaxSupportedGroups)) + (4 * ClientHelloLists.MaxEcPointFormats);

    /// <summary>The longest raw JA4 (<c>JA4_r</c>) the inline lists allow.</summary>
    public const int MaxJa4RawLength = 10 + 1 + (5 * ClientHelloLists.MaxCipherSuites) + 1 + (5 * ClientHelloInfo.MaxExtensions) + 1 + (5 * ClientHelloLists.MaxSignatureAlgorithms);

    private const int HashedLength = 12;
    private const ushort ServerNameType = 0;
    private const ushort AlpnType = 16;

    /// <summary>Writes the JA3 string (e.g. <c>771,4865-4866-...,0-23-...,29-23-24,0</c>).</summary>
    /// <param name="hello">A hello read with <see cref="ClientHelloStatus.Done"/>.</param>
    /// <param name="lists">Its lists (<see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>).</param>
    /// <param name="destination">Receives the string; <see cref="MaxJa3StringLength"/> characters always suffice.</param>
    /// <param name="charsWritten">How many characters were written.</param>
    /// <returns>Whether the string was written (see the remarks on <see cref="ClientHelloFingerprint"/>).</returns>
    public static bool TryFormatJa3String(in ClientHelloInfo hello, in ClientHelloLists lists, Span<char> destination, out int charsWritten)
    {
        var writer = new Writer(destination);
        if (!Matches(hello, lists))
        {
            charsWritten = 0;
            return false;
        }

        writer.Decimal(hello.LegacyVersion);
        writer.Char(',');
        writer.DecimalList(lists.CipherSuitesRaw);
        writer.Char(',');
        bool first = true;
        foreach (ushort type in hello.ExtensionTypes)
        {
            if (!ClientHelloReader.IsGrease(type))
            {
                if (!first)
                {
                    writer.Char('-');
                }

                writer.Decimal(type);
                first = false;
            }
        }

        writer.Char(',');
        writer.DecimalList(lists.SupportedGroupsRaw);
        writer.Char(',');
        ReadOnlySpan<byte> formats = lists.EcPointFormats;
        for (int i = 0; i < formats.Length; i++)
        {
            if (i > 0)
            {
                writer.Char('-');
            }

            writer.Decimal(formats[i]);
        }

        charsWritten = writer.Ok ? writer.Position : 0;
        return writer.Ok;
    }

    /// <summary>Writes the JA3 fingerprint: the MD5 of the JA3 string, 32 lower-case hex characters.</summary>
    /// <param name="hello">A hello read with <see cref="ClientHelloStatus.Done"/>.</param>
    /// <param name="lists">Its lists (<see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>).</param>
    /// <param name="destination">Receives the hash; <see cref="Ja3Length"/> characters.</param>
    /// <param name="charsWritten">How many characters were written (<see cref="Ja3Length"/> on success).</param>
    /// <returns>Whether the hash was written (see the remarks on <see cref="ClientHelloFingerprint"/>).</returns>
    [SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "JA3 is defined as an MD5 digest; it identifies clients, it protects nothing.")]
    public static bool TryFormatJa3(in ClientHelloInfo hello, in ClientHelloLists lists, Span<char> destination, out int charsWritten)
    {
        charsWritten = 0;
        Span<char> text = stackalloc char[MaxJa3StringLength];
        if (destination.Length < Ja3Length || !TryFormatJa3String(hello, lists, text, out int length))
        {
            return false;
        }

        Span<byte> ascii = stackalloc byte[MaxJa3StringLength];
        for (int i = 0; i < length; i++)
        {
            ascii[i] = (byte)text[i];
        }

        Span<byte> hash = stackalloc byte[MD5.HashSizeInBytes];
        MD5.HashData(ascii[..length], hash);
        return Convert.TryToHexStringLower(hash, destination, out charsWritten);
    }

    /// <summary>Writes the JA4 fingerprint (e.g. <c>t13d1516h2_8daaf6152771_e5627efa2ab1</c>).</summary>
    /// <param name="hello">A hello read with <see cref="ClientHelloStatus.Done"/>.</param>
    /// <param name="lists">Its lists (<see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>).</param>
    /// <param name="destination">Receives the fingerprint; <see cref="Ja4Length"/> characters.</param>
    /// <param name="charsWritten">How many characters were written (<see cref="Ja4Length"/> on success).</param>
    /// <returns>Whether the fingerprint was written (see the remarks on <see cref="ClientHelloFingerprint"/>).</returns>
    public static bool TryFormatJa4(in ClientHelloInfo hello, in ClientHelloLists lists, Span<char> destination, out int charsWritten) =>
        TryFormatJa4(hello, lists, destination, raw: false, out charsWritten);

    /// <summary>Writes the raw JA4 (<c>JA4_r</c>): part a, then the sorted lists themselves instead of their hashes.</summary>
    /// <param name="hello">A hello read with <see cref="ClientHelloStatus.Done"/>.</param>
    /// <param name="lists">Its lists (<see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>).</param>
    /// <param name="destination">Receives the string; <see cref="MaxJa4RawLength"/> characters always suffice.</param>
    /// <param name="charsWritten">How many characters were written.</param>
    /// <returns>Whether the string was written (see the remarks on <see cref="ClientHelloFingerprint"/>).</returns>
    public static bool TryFormatJa4Raw(in ClientHelloInfo hello, in ClientHelloLists lists, Span<char> destination, out int charsWritten) =>
        TryFormatJa4(hello, lists, destination, raw: true, out charsWritten);

    private static bool TryFormatJa4(in ClientHelloInfo hello, in ClientHelloLists lists, Span<char> destination, bool raw, out int charsWritten)
    {
        charsWritten = 0;
        if (!Matches(hello, lists) || (hello.AlpnTruncated && hello.AlpnProtocolsRaw.IsEmpty))
        {
            return false;
        }

        // The sorted lists, GREASE left out (server_name and ALPN too, for extensions).
        Span<ushort> ciphers = stackalloc ushort[ClientHelloLists.MaxCipherSuites];
        int cipherCount = 0;
        foreach (ushort suite in lists.CipherSuites)
        {
            if (!ClientHelloReader.IsGrease(suite))
            {
                ciphers[cipherCount++] = suite;
            }
        }

        Span<ushort> extensions = stackalloc ushort[ClientHelloInfo.MaxExtensions];
        int extensionCount = 0;
        int hashedExtensions = 0;
        bool serverName = false;
        foreach (ushort type in hello.ExtensionTypes)
        {
            if (ClientHelloReader.IsGrease(type))
            {
                continue;
            }

            extensionCount++;
            serverName |= type == ServerNameType;
            if (type is not (ServerNameType or AlpnType))
            {
                extensions[hashedExtensions++] = type;
            }
        }

        ciphers = ciphers[..cipherCount];
        extensions = extensions[..hashedExtensions];
        ciphers.Sort();
        extensions.Sort();

        // a: t, version, d/i, counts, ALPN.
        var writer = new Writer(destination);
        writer.Char('t');
        writer.Ascii(VersionCode(hello.HasSupportedVersions ? hello.MaxSupportedVersion : hello.LegacyVersion));
        writer.Char(serverName ? 'd' : 'i');
        writer.TwoDigits(Math.Min(cipherCount, 99));
        writer.TwoDigits(Math.Min(extensionCount, 99));
        WriteAlpn(hello, ref writer);

        // b: the sorted cipher suites; c: the sorted extensions, then "_" and the signature algorithms as sent.
        Span<byte> list = stackalloc byte[MaxJa4RawLength];
        int length = WriteHexList(ciphers, list);
        writer.Char('_');
        Hashed(list[..length], raw, ref writer);

        length = WriteHexList(extensions, list);
        bool firstSignature = true;
        foreach (ushort scheme in lists.SignatureAlgorithms)
        {
            if (!ClientHelloReader.IsGrease(scheme))
            {
                list[length++] = (byte)(firstSignature ? '_' : ',');
                WriteHex(scheme, list[length..]);
                length += 4;
                firstSignature = false;
            }
        }

        writer.Char('_');
        Hashed(list[..length], raw, ref writer);
        charsWritten = writer.Ok ? writer.Position : 0;
        return writer.Ok;
    }

    /// <summary>Whether the lists were read whole, and from this hello (as far as its cipher suite count tells).</summary>
    private static bool Matches(in ClientHelloInfo hello, in ClientHelloLists lists) =>
        !lists.Incomplete && lists.CipherSuitesRaw.Length == hello.CipherSuiteCount * 2;

    /// <summary>The 12-character truncated SHA-256 of a list (<c>000000000000</c> for an empty one), or the list itself for the raw form.</summary>
    private static void Hashed(scoped ReadOnlySpan<byte> list, bool raw, ref Writer writer)
    {
        if (raw)
        {
            writer.Ascii(list);
            return;
        }

        if (list.IsEmpty)
        {
            writer.Ascii("000000000000"u8);
            return;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(list, hash);
        Span<byte> hex = stackalloc byte[HashedLength];
        Convert.TryToHexStringLower(hash[..(HashedLength / 2)], hex, out _);
        writer.Ascii(hex);
    }

    /// <summary>JA4's ALPN characters (technical_details/JA4.md, "ALPN Extension Value").</summary>
    private static void WriteAlpn(in ClientHelloInfo hello, ref Writer writer)
    {
        AlpnProtocolEnumerator protocols = hello.AlpnProtocols;
        if (!protocols.MoveNext())
        {
            writer.Ascii("00"u8);
            return;
        }

        ReadOnlySpan<byte> protocol = protocols.Current;
        byte first = protocol[0];
        byte last = protocol[^1];
        if (char.IsAsciiLetterOrDigit((char)first) && char.IsAsciiLetterOrDigit((char)last))
        {
            writer.Char((char)first);
            writer.Char((char)last);
        }
        else
        {
            // "the first and last characters of the hex representation of the first ALPN": 0xAB 0xCD -> "ad".
            writer.Char(HexDigit(first >> 4));
            writer.Char(HexDigit(last & 0xF));
        }
    }

    private static ReadOnlySpan<byte> VersionCode(ushort version) => version switch
    {
        0x0304 => "13"u8,
        0x0303 => "12"u8,
        0x0302 => "11"u8,
        0x0301 => "10"u8,
        0x0300 => "s3"u8,
        0x0002 => "s2"u8,
        0xFEFF => "d1"u8,
        0xFEFD => "d2"u8,
        0xFEFC => "d3"u8,
        _ => "00"u8,
    };

    /// <summary>Writes <c>hhhh,hhhh,...</c> (4 lower-case hex digits each) and returns its length.</summary>
    private static int WriteHexList(ReadOnlySpan<ushort> values, Span<byte> destination)
    {
        int length = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (i > 0)
            {
                destination[length++] = (byte)',';
            }

            WriteHex(values[i], destination[length..]);
            length += 4;
        }

        return length;
    }

    private static void WriteHex(ushort value, Span<byte> destination)
    {
        destination[0] = (byte)HexDigit(value >> 12);
        destination[1] = (byte)HexDigit((value >> 8) & 0xF);
        destination[2] = (byte)HexDigit((value >> 4) & 0xF);
        destination[3] = (byte)HexDigit(value & 0xF);
    }

    private static char HexDigit(int nibble) => (char)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);

    /// <summary>Appends to a caller's buffer and remembers whether everything fitted.</summary>
    private ref struct Writer
    {
        private readonly Span<char> _destination;

        public Writer(Span<char> destination)
        {
            _destination = destination;
            Position = 0;
            Ok = true;
        }

        public int Position { get; private set; }

        public bool Ok { get; private set; }

        public void Char(char c)
        {
            if (Position < _destination.Length)
            {
                _destination[Position++] = c;
            }
            else
            {
                Ok = false;
            }
        }

        public void Ascii(scoped ReadOnlySpan<byte> text)
        {
            if (text.Length <= _destination.Length - Position)
            {
                for (int i = 0; i < text.Length; i++)
                {
                    _destination[Position + i] = (char)text[i];
                }

                Position += text.Length;
            }
            else
            {
                Ok = false;
            }
        }

        public void Decimal(int value)
        {
            if (value.TryFormat(_destination[Position..], out int written, default, CultureInfo.InvariantCulture))
            {
                Position += written;
            }
            else
            {
                Ok = false;
            }
        }

        public void TwoDigits(int value)
        {
            Char((char)('0' + (value / 10)));
            Char((char)('0' + (value % 10)));
        }

        /// <summary>Big-endian 2-byte values as decimals joined by <c>-</c>, GREASE left out.</summary>
        public void DecimalList(scoped ReadOnlySpan<byte> raw)
        {
            bool first = true;
            for (int i = 0; i + 1 < raw.Length; i += 2)
            {
                ushort value = BinaryPrimitives.ReadUInt16BigEndian(raw[i..]);
                if (!ClientHelloReader.IsGrease(value))
                {
                    if (!first)
                    {
                        Char('-');
                    }

                    Decimal(value);
                    first = false;
                }
            }
        }
    }
}
