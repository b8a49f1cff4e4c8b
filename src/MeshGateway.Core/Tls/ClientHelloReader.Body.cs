using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>The body pass: the ClientHello structure itself, read through a <see cref="HandshakeCursor{TSource}"/>.</summary>
public static partial class ClientHelloReader
{
    // RFC 8446 §4.1.2 ClientHello fixed part: ProtocolVersion legacy_version(2); Random random(32).
    private const int LegacyVersionLength = 2;
    private const int RandomLength = 32;
    private const int MaxSessionIdLength = 32;

    // Extension types (IANA TLS ExtensionType Values).
    private const ushort ServerNameExtension = 0;                      // RFC 6066 §3
    private const ushort AlpnExtension = 16;                           // RFC 7301 §3.1
    private const ushort PreSharedKeyExtension = 41;                   // RFC 8446 §4.2.11
    private const ushort SupportedVersionsExtension = 43;              // RFC 8446 §4.2.1
    private const ushort EncryptedClientHelloExtension = 0xfe0d;       // draft-ietf-tls-esni

    private const byte HostNameType = 0;                               // RFC 6066 §3 NameType host_name(0)
    private const ushort Tls13 = 0x0304;
    private const int MaxHostNameLength = ClientHelloInfo.MaxHostNameLength;

    /// <summary>
    /// Parses the handshake message of <paramref name="messageLength"/> bytes (handshake header included) that the
    /// cursor starts at. The framing pass guarantees that all of it is present and that its type is client_hello.
    /// </summary>
    private static ClientHelloError ParseBody<TSource>(ref HandshakeCursor<TSource> c, int messageLength, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        ClientHelloError error = ParseBodyCore(ref c, messageLength, ref hello);

        // Defence in depth: a cursor that ran out of input means a length escaped its parent's check.
        return c.Overrun && error == ClientHelloError.None ? ClientHelloError.LengthOutOfBounds : error;
    }

    private static ClientHelloError ParseBodyCore<TSource>(ref HandshakeCursor<TSource> c, int end, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // Handshake header (msg_type, uint24 length): checked by the framing pass. Positions below are offsets into the
        // handshake message and `end` is its end, so every "end - c.Position" is what the parent still holds.
        c.Skip(HandshakeHeaderLength);

        // RFC 8446 §4.1.2:
        // struct {
        //     ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
        //     Random random;                              /* 32 bytes */
        //     opaque legacy_session_id<0..32>;
        //     CipherSuite cipher_suites<2..2^16-2>;
        //     opaque legacy_compression_methods<1..2^8-1>;
        //     Extension extensions<8..2^16-1>;            /* RFC 5246 §7.4.1.2: absent in old clients */
        // } ClientHello;
        if (end - c.Position < LegacyVersionLength + RandomLength + 1)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        hello.LegacyVersion = c.ReadUInt16();
        c.Skip(RandomLength);

        // opaque legacy_session_id<0..32>;
        int sessionIdLength = c.ReadByte();
        if (sessionIdLength > MaxSessionIdLength)
        {
            return ClientHelloError.SessionIdTooLong;
        }

        if (end - c.Position < sessionIdLength + sizeof(ushort))
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        c.Skip(sessionIdLength);

        // CipherSuite cipher_suites<2..2^16-2>;  (CipherSuite is uint8[2])
        int cipherSuitesLength = c.ReadUInt16();
        if (cipherSuitesLength == 0 || (cipherSuitesLength & 1) != 0)
        {
            return ClientHelloError.InvalidCipherSuites;
        }

        if (end - c.Position < cipherSuitesLength + 1)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        hello.CipherSuiteCount = cipherSuitesLength >> 1;
        c.Skip(cipherSuitesLength);

        // opaque legacy_compression_methods<1..2^8-1>;
        int compressionLength = c.ReadByte();
        if (compressionLength == 0)
        {
            return ClientHelloError.InvalidCompressionMethods;
        }

        if (end - c.Position < compressionLength)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        c.Skip(compressionLength);

        // RFC 5246 §7.4.1.2: "the presence of extensions can be detected by determining whether there are bytes
        // following the compression_methods at the end of the ClientHello".
        int left = end - c.Position;
        if (left == 0)
        {
            return ClientHelloError.None;
        }

        if (left < sizeof(ushort))
        {
            return ClientHelloError.TrailingBytes;
        }

        // Extension extensions<8..2^16-1>; must fill the rest of the message exactly.
        int extensionsLength = c.ReadUInt16();
        left -= sizeof(ushort);
        if (extensionsLength > left)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        if (extensionsLength < left)
        {
            return ClientHelloError.TrailingBytes;
        }

        return ParseExtensions(ref c, end, ref hello);
    }

    private static ClientHelloError ParseExtensions<TSource>(ref HandshakeCursor<TSource> c, int end, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // Duplicate detection without a per-type table: types below 64 get their own bit; the others share a 64-bit
        // hashed filter and, on a filter hit (GREASE pairs, rare collisions), a scan of the types recorded so far.
        ulong seenLow = 0;
        ulong seenHashed = 0;
        bool preSharedKeySeen = false;

        // struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; } Extension;
        while (c.Position < end)
        {
            if (end - c.Position < 2 * sizeof(ushort))
            {
                return ClientHelloError.LengthOutOfBounds;
            }

            ushort type = c.ReadUInt16();
            int length = c.ReadUInt16();
            if (length > end - c.Position)
            {
                return ClientHelloError.LengthOutOfBounds;
            }

            // RFC 8446 §4.2.11: pre_shared_key MUST be the last extension.
            if (preSharedKeySeen)
            {
                return ClientHelloError.PreSharedKeyNotLast;
            }

            // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension block."
            if (type < 64)
            {
                ulong bit = 1UL << type;
                if ((seenLow & bit) != 0)
                {
                    return ClientHelloError.DuplicateExtension;
                }

                seenLow |= bit;
            }
            else
            {
                ulong bit = 1UL << (int)((type * 0x9E3779B1u) >> 26);
                if ((seenHashed & bit) != 0 && hello.ExtensionTypes.Contains(type))
                {
                    return ClientHelloError.DuplicateExtension;
                }

                seenHashed |= bit;
            }

            if (hello.ExtensionCount == ClientHelloInfo.MaxExtensions)
            {
                return ClientHelloError.TooManyExtensions;
            }

            hello.AddExtensionType(type);

            ClientHelloError error;
            switch (type)
            {
                case ServerNameExtension:
                    error = ParseServerName(ref c, length, ref hello);
                    break;
                case AlpnExtension:
                    error = ParseAlpn(ref c, length, ref hello);
                    break;
                case SupportedVersionsExtension:
                    error = ParseSupportedVersions(ref c, length, ref hello);
                    break;
                case EncryptedClientHelloExtension:
                    // The ECH payload is opaque to a router: its presence is what matters.
                    hello.HasEncryptedClientHello = true;
                    c.Skip(length);
                    continue;
                case PreSharedKeyExtension:
                    preSharedKeySeen = true;
                    c.Skip(length);
                    continue;
                default:
                    // Key shares (1.2 KB with X25519MLKEM768), padding, GREASE, ...: skipped without being read.
                    c.Skip(length);
                    continue;
            }

            if (error != ClientHelloError.None)
            {
                return error;
            }
        }

        return ClientHelloError.None;
    }

    /// <summary>server_name, RFC 6066 §3.</summary>
    private static ClientHelloError ParseServerName<TSource>(ref HandshakeCursor<TSource> c, int length, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
        if (length < sizeof(ushort))
        {
            return ClientHelloError.InvalidServerNameExtension;
        }

        int listLength = c.ReadUInt16();
        if (listLength == 0 || listLength != length - sizeof(ushort))
        {
            return ClientHelloError.InvalidServerNameExtension;
        }

        // struct { NameType name_type; select (name_type) { case host_name: HostName; } name; } ServerName;
        // opaque HostName<1..2^16-1>;
        // Other name types have no defined syntax; like every deployed parser we read them as opaque<0..2^16-1> and skip them.
        bool hostNameSeen = false;
        int listEnd = c.Position + listLength;
        while (c.Position < listEnd)
        {
            if (listEnd - c.Position < 1 + sizeof(ushort))
            {
                return ClientHelloError.InvalidServerNameExtension;
            }

            byte nameType = c.ReadByte();
            int nameLength = c.ReadUInt16();
            if (nameLength > listEnd - c.Position)
            {
                return ClientHelloError.InvalidServerNameExtension;
            }

            if (nameType != HostNameType)
            {
                c.Skip(nameLength);
                continue;
            }

            // "The ServerNameList MUST NOT contain more than one name of the same name_type."
            if (hostNameSeen)
            {
                return ClientHelloError.MultipleHostNames;
            }

            hostNameSeen = true;
            if (nameLength == 0)
            {
                return ClientHelloError.EmptyHostName;
            }

            if (nameLength > MaxHostNameLength)
            {
                return ClientHelloError.HostNameTooLong;
            }

            // "HostName" contains the fully qualified DNS hostname ... represented as a byte string using ASCII
            // encoding without a trailing dot": only visible ASCII is accepted (no NUL, controls, spaces or 8-bit bytes).
            // A trailing dot is kept and reported through ClientHelloInfo.ServerNameEndsWithDot.
            Span<byte> name = hello.ServerNameBuffer[..nameLength];
            c.CopyTo(name);
            if (name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E))
            {
                return ClientHelloError.InvalidHostNameCharacter;
            }

            hello.SetServerNameLength(nameLength);
        }

        return ClientHelloError.None;
    }

    /// <summary>application_layer_protocol_negotiation, RFC 7301 §3.1.</summary>
    private static ClientHelloError ParseAlpn<TSource>(ref HandshakeCursor<TSource> c, int length, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // opaque ProtocolName<1..2^8-1>;
        // struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
        if (length < sizeof(ushort))
        {
            return ClientHelloError.InvalidAlpnExtension;
        }

        int listLength = c.ReadUInt16();
        if (listLength < 2 || listLength != length - sizeof(ushort))
        {
            return ClientHelloError.InvalidAlpnExtension;
        }

        hello.HasAlpn = true;
        Span<byte> kept = hello.AlpnBufferSpan;
        if (listLength <= kept.Length)
        {
            // Usual case ("h2", "http/1.1"): copy the list, then validate the copy.
            kept = kept[..listLength];
            c.CopyTo(kept);
            for (int i = 0; i < kept.Length;)
            {
                int nameLength = kept[i];
                if (nameLength == 0 || nameLength >= kept.Length - i)
                {
                    return ClientHelloError.InvalidAlpnExtension;
                }

                i += 1 + nameLength;
            }

            hello.SetAlpnLength(listLength);
            return ClientHelloError.None;
        }

        return ParseLongAlpn(ref c, listLength, ref hello);
    }

    /// <summary>A legal ALPN list longer than the inline buffer: validate it all, keep the protocols that fit whole.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloError ParseLongAlpn<TSource>(ref HandshakeCursor<TSource> c, int listLength, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        Span<byte> kept = hello.AlpnBufferSpan;
        int keptLength = 0;
        bool keeping = true;
        int listEnd = c.Position + listLength;
        while (c.Position < listEnd)
        {
            int nameLength = c.ReadByte();
            if (nameLength == 0 || nameLength > listEnd - c.Position)
            {
                return ClientHelloError.InvalidAlpnExtension;
            }

            if (keeping && 1 + nameLength <= kept.Length - keptLength)
            {
                kept[keptLength] = (byte)nameLength;
                c.CopyTo(kept.Slice(keptLength + 1, nameLength));
                keptLength += 1 + nameLength;
            }
            else
            {
                keeping = false;
                c.Skip(nameLength);
            }
        }

        hello.SetAlpnLength(keptLength);
        hello.AlpnTruncated = true;
        return ClientHelloError.None;
    }

    /// <summary>supported_versions in a ClientHello, RFC 8446 §4.2.1.</summary>
    private static ClientHelloError ParseSupportedVersions<TSource>(ref HandshakeCursor<TSource> c, int length, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // struct { select (Handshake.msg_type) { case client_hello: ProtocolVersion versions<2..254>; ... }; } SupportedVersions;
        if (length < 1)
        {
            return ClientHelloError.InvalidSupportedVersionsExtension;
        }

        int listLength = c.ReadByte();
        if (listLength < 2 || (listLength & 1) != 0 || listLength != length - 1)
        {
            return ClientHelloError.InvalidSupportedVersionsExtension;
        }

        bool tls13 = false;
        ushort max = 0;
        if (c.TryReadContiguous(listLength, out ReadOnlySpan<byte> versions))
        {
            for (int i = 0; i + 1 < versions.Length; i += 2)
            {
                Accumulate(BinaryPrimitives.ReadUInt16BigEndian(versions[i..]), ref tls13, ref max);
            }
        }
        else
        {
            for (int i = 0; i < listLength; i += 2)
            {
                Accumulate(c.ReadUInt16(), ref tls13, ref max);
            }
        }

        hello.HasSupportedVersions = true;
        hello.OffersTls13 = tls13;
        hello.MaxSupportedVersion = max;
        return ClientHelloError.None;

        static void Accumulate(ushort version, ref bool tls13, ref ushort max)
        {
            tls13 |= version == Tls13;
            if (!IsGrease(version) && version > max)
            {
                max = version;
            }
        }
    }

    /// <summary>RFC 8701 GREASE values: 0x0A0A, 0x1A1A, ..., 0xFAFA.</summary>
    internal static bool IsGrease(ushort value) => (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF);
}
