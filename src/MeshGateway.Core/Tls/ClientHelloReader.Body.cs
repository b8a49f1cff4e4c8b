using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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

    /// <summary>Bits (of types below 64) of the extensions the contiguous walk does more with than detecting duplicates.</summary>
    private const ulong SpecialTypes = (1UL << ServerNameExtension) | (1UL << AlpnExtension) | (1UL << PreSharedKeyExtension) | (1UL << SupportedVersionsExtension);

    private const int ExtensionHeaderLength = 4;                       // extension_type(2) + extension_data length(2)
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
        if (c.TryReadContiguous(end - c.Position, out ReadOnlySpan<byte> body))
        {
            return ParseContiguousBody(body, ref hello);
        }

        // The message crosses records or segments: the same steps as ParseContiguousBody, through the cursor.
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

    /// <summary>
    /// The ClientHello body (after the handshake header) when it is contiguous: the usual case, walked as a local span
    /// so that every length read feeds the next step straight from a register. Same rules, same order, as the cursor
    /// walk in <see cref="ParseBodyCore"/>; the property tests hold the two to the same answers.
    /// </summary>
    internal static ClientHelloError ParseContiguousBody(ReadOnlySpan<byte> body, ref ClientHelloInfo hello)
    {
        // ProtocolVersion legacy_version; Random random; opaque legacy_session_id<0..32>; (length byte)
        if (body.Length < LegacyVersionLength + RandomLength + 1)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        hello.LegacyVersion = BinaryPrimitives.ReadUInt16BigEndian(body);
        int sessionIdLength = body[LegacyVersionLength + RandomLength];
        if (sessionIdLength > MaxSessionIdLength)
        {
            return ClientHelloError.SessionIdTooLong;
        }

        body = body[(LegacyVersionLength + RandomLength + 1)..];
        if (body.Length < sessionIdLength + sizeof(ushort))
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        // CipherSuite cipher_suites<2..2^16-2>;
        int cipherSuitesLength = BinaryPrimitives.ReadUInt16BigEndian(body[sessionIdLength..]);
        if (cipherSuitesLength == 0 || (cipherSuitesLength & 1) != 0)
        {
            return ClientHelloError.InvalidCipherSuites;
        }

        body = body[(sessionIdLength + sizeof(ushort))..];
        if (body.Length < cipherSuitesLength + 1)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        hello.CipherSuiteCount = cipherSuitesLength >> 1;

        // opaque legacy_compression_methods<1..2^8-1>;
        int compressionLength = body[cipherSuitesLength];
        if (compressionLength == 0)
        {
            return ClientHelloError.InvalidCompressionMethods;
        }

        body = body[(cipherSuitesLength + 1)..];
        if (body.Length < compressionLength)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        // Extension extensions<8..2^16-1>; optional before TLS 1.3 (RFC 5246 §7.4.1.2), else it fills the rest exactly.
        body = body[compressionLength..];
        if (body.IsEmpty)
        {
            return ClientHelloError.None;
        }

        if (body.Length < sizeof(ushort))
        {
            return ClientHelloError.TrailingBytes;
        }

        int extensionsLength = BinaryPrimitives.ReadUInt16BigEndian(body);
        body = body[sizeof(ushort)..];
        if (extensionsLength > body.Length)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        if (extensionsLength < body.Length)
        {
            return ClientHelloError.TrailingBytes;
        }

        return ParseExtensionBlock(body, ref hello);
    }

    private static ClientHelloError ParseExtensions<TSource>(ref HandshakeCursor<TSource> c, int end, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        // Usual case: the whole block lies in one chunk (always so for a hello in one record in one span), so it is
        // walked as a local span; the few extensions that are parsed get a cursor of their own over their data.
        if (c.TryReadContiguous(end - c.Position, out ReadOnlySpan<byte> block))
        {
            return ParseExtensionBlock(block, ref hello);
        }

        return ParseFragmentedExtensions(ref c, end, ref hello);
    }

    /// <summary>The extensions block (RFC 8446 §4.2) when it is contiguous.</summary>
    /// <remarks>
    /// The walk is a chain of dependent loads (each extension's length gives the next one's offset), so the loop holds
    /// nothing but that chain and the per-type bookkeeping: no calls, so nothing is spilled to the stack (an earlier shape
    /// that called the parsers from inside the loop paid a store-to-load forward on every step; measured with perf).
    /// The three extensions that are parsed (server_name, ALPN, supported_versions: each at most once, duplicates being
    /// rejected) are parsed after the walk, in the order they were sent, and their errors take precedence over any
    /// error the walk found after them, so the answer is exactly that of the in-order cursor walk.
    /// </remarks>
    private static ClientHelloError ParseExtensionBlock(ReadOnlySpan<byte> all, ref ClientHelloInfo hello)
    {
        // The walk works on a ref and a signed offset rather than slicing spans (each slice is a bounds check and a
        // two-register update on the load chain), reads each 4-byte header with one big-endian load, keeps the duplicate
        // bitmaps and the type count in registers (written back once), and tests the four types that need more than
        // duplicate detection (server_name, ALPN, pre_shared_key, supported_versions) with one mask. Every access is
        // guarded by the explicit length checks below, which are those of RFC 8446 §4.2, in the order of TrackExtension.
        // The block is a whole extensions field, so the tracking state starts empty (as Reset left it).
        ref byte start = ref MemoryMarshal.GetReference(all);
        nint end = all.Length;
        nint lastHeader = end - ExtensionHeaderLength;   // the last offset at which a whole header fits (may be < 0)
        nint offset = 0;
        ref ushort types = ref hello.ExtensionTypeStorage;
        nint count = hello.ExtensionCount;
        ulong seenLow = hello.SeenLowTypes;
        ulong seenHashed = hello.SeenHashedTypes;
        int serverName = -1;            // offsets in `all` of the parsed extensions' headers
        int alpn = -1;
        int supportedVersions = -1;
        ClientHelloError error = ClientHelloError.None;

        // struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; } Extension;
        while (offset != end)
        {
            if (offset > lastHeader)
            {
                error = ClientHelloError.LengthOutOfBounds;
                break;
            }

            // extension_type in the high half, the extension_data length in the low half.
            uint header = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref start, offset)));
            uint type = header >> 16;
            nint next = offset + ExtensionHeaderLength + (nint)(header & 0xFFFF);
            if (next > end)
            {
                error = ClientHelloError.LengthOutOfBounds;
                break;
            }

            // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension block."
            // As in TrackExtension: types below 64 get their own bit; the others (GREASE, ECH, renegotiation_info, ...)
            // share a hashed filter, confirmed on a hit by a scan of the types recorded so far. The scan is written out
            // here rather than called: a call in the loop would force the chain's values out of registers (measured).
            ulong special = 0;
            if (type < 64)
            {
                ulong bit = 1UL << (int)type;
                if ((seenLow & bit) != 0)
                {
                    error = ClientHelloError.DuplicateExtension;
                    break;
                }

                seenLow |= bit;
                special = bit & SpecialTypes;
            }
            else
            {
                ulong bit = 1UL << (int)((type * 0x9E3779B1u) >> 26);
                if ((seenHashed & bit) != 0)
                {
                    nint i = 0;
                    while (i < count && Unsafe.Add(ref types, i) != type)
                    {
                        i++;
                    }

                    if (i < count)
                    {
                        error = ClientHelloError.DuplicateExtension;
                        break;
                    }
                }

                seenHashed |= bit;
                if (type == EncryptedClientHelloExtension)
                {
                    hello.HasEncryptedClientHello = true;
                }
            }

            if (count == ClientHelloInfo.MaxExtensions)
            {
                error = ClientHelloError.TooManyExtensions;
                break;
            }

            Unsafe.Add(ref types, count++) = (ushort)type;
            if (special != 0)
            {
                if (type == ServerNameExtension)
                {
                    serverName = (int)offset;
                }
                else if (type == AlpnExtension)
                {
                    alpn = (int)offset;
                }
                else if (type == SupportedVersionsExtension)
                {
                    supportedVersions = (int)offset;
                }
                else if (next != end)
                {
                    // RFC 8446 §4.2.11: "The "pre_shared_key" extension MUST be the last extension in the ClientHello".
                    // TrackExtension reports this when it meets the next extension, after that one's length checks,
                    // so a next extension that overruns the block is LengthOutOfBounds, as there.
                    error = next > lastHeader
                            || next + ExtensionHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(all[(int)(next + sizeof(ushort))..]) > end
                        ? ClientHelloError.LengthOutOfBounds
                        : ClientHelloError.PreSharedKeyNotLast;
                    break;
                }
            }

            offset = next;
        }

        hello.SetExtensionCount((int)count);
        hello.SeenLowTypes = seenLow;
        hello.SeenHashedTypes = seenHashed;
        if ((serverName & alpn & supportedVersions) == -1)
        {
            return error;
        }

        ClientHelloError contentError = ParseRecordedExtensions(all, serverName, alpn, supportedVersions, ref hello);
        return contentError != ClientHelloError.None ? contentError : error;
    }

    /// <summary>Parses the recorded extensions (offsets of their headers in <paramref name="all"/>, -1 when absent) in the order sent.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloError ParseRecordedExtensions(ReadOnlySpan<byte> all, int serverName, int alpn, int supportedVersions, ref ClientHelloInfo hello)
    {
        // -1 has every bit set, so the AND is -1 exactly when none is left.
        while ((serverName & alpn & supportedVersions) != -1)
        {
            // The smallest recorded offset (an absent one is -1, i.e. uint.MaxValue when compared unsigned); the
            // walk checked its header and length, and which parser applies is known here, so it is called directly.
            int first = (int)Math.Min((uint)serverName, Math.Min((uint)alpn, (uint)supportedVersions));
            ReadOnlySpan<byte> data = all.Slice(first + ExtensionHeaderLength, BinaryPrimitives.ReadUInt16BigEndian(all[(first + sizeof(ushort))..]));
            ClientHelloError error;
            if (first == serverName)
            {
                serverName = -1;
                error = ParseServerName(data, ref hello);
            }
            else if (first == alpn)
            {
                alpn = -1;
                error = ParseAlpn(data, ref hello);
            }
            else
            {
                supportedVersions = -1;
                error = ParseSupportedVersions(data, ref hello);
            }

            if (error != ClientHelloError.None)
            {
                return error;
            }
        }

        return ClientHelloError.None;
    }

    /// <summary>
    /// The extensions block when it crosses records or segments: the same rules, in the same order. The extensions that
    /// lie wholly inside the current chunk are walked as a span; only those that straddle a boundary go through the
    /// cursor (a 1.2 KB key share cut by a record or TCP boundary is skipped there without being copied).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloError ParseFragmentedExtensions<TSource>(ref HandshakeCursor<TSource> c, int end, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
    {
        while (c.Position < end)
        {
            ReadOnlySpan<byte> chunk = c.CurrentChunk;
            if (chunk.Length > end - c.Position)
            {
                chunk = chunk[..(end - c.Position)];
            }

            int walked = WalkWholeExtensions(chunk, ref hello, out ClientHelloError walkError);
            c.Skip(walked);
            if (walkError != ClientHelloError.None)
            {
                return walkError;
            }

            if (c.Position >= end)
            {
                break;
            }

            // One extension that does not fit the rest of the chunk: it straddles a boundary, or its length is bad.
            if (end - c.Position < ExtensionHeaderLength)
            {
                return ClientHelloError.LengthOutOfBounds;
            }

            ushort type = c.ReadUInt16();
            int length = c.ReadUInt16();
            if (length > end - c.Position)
            {
                return ClientHelloError.LengthOutOfBounds;
            }

            ClientHelloError error = TrackExtension(type, ref hello);
            if (error == ClientHelloError.None)
            {
                if (IsParsedExtension(type))
                {
                    error = ParseExtension(ref c, type, length, ref hello);
                }
                else
                {
                    // Key shares (1.2 KB with X25519MLKEM768), padding, GREASE, ...: skipped without being read.
                    c.Skip(length);
                }
            }

            if (error != ClientHelloError.None)
            {
                return error;
            }
        }

        return ClientHelloError.None;
    }

    /// <summary>
    /// Walks the extensions that lie wholly inside <paramref name="chunk"/>, parsing those that are parsed in place, in
    /// order; stops before the first one that does not fit (the caller continues with the cursor) or at the first error.
    /// </summary>
    /// <returns>How many bytes of <paramref name="chunk"/> were consumed.</returns>
    private static int WalkWholeExtensions(ReadOnlySpan<byte> chunk, ref ClientHelloInfo hello, out ClientHelloError error)
    {
        int offset = 0;
        while (chunk.Length - offset >= ExtensionHeaderLength)
        {
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(chunk[offset..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(chunk[(offset + sizeof(ushort))..]);
            if (length > chunk.Length - offset - ExtensionHeaderLength)
            {
                break;
            }

            error = TrackExtension(type, ref hello);
            if (error == ClientHelloError.None && IsParsedExtension(type))
            {
                error = ParseExtensionData(chunk.Slice(offset + ExtensionHeaderLength, length), type, ref hello);
            }

            if (error != ClientHelloError.None)
            {
                return offset;
            }

            offset += ExtensionHeaderLength + length;
        }

        error = ClientHelloError.None;
        return offset;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsParsedExtension(ushort type) => type is ServerNameExtension or AlpnExtension or SupportedVersionsExtension;

    /// <summary>
    /// Parses a contiguous extension_data of one of the extensions <see cref="IsParsedExtension"/> selects, with span
    /// versions of the cursor parsers (same checks, same order; the tests hold them to the same answers).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloError ParseExtensionData(ReadOnlySpan<byte> data, ushort type, ref ClientHelloInfo hello)
    {
        return type switch
        {
            ServerNameExtension => ParseServerName(data, ref hello),
            AlpnExtension => ParseAlpn(data, ref hello),
            _ => ParseSupportedVersions(data, ref hello),
        };
    }

    /// <summary>Parses one of the extensions <see cref="IsParsedExtension"/> selects; the cursor is at its data.</summary>
    private static ClientHelloError ParseExtension<TSource>(ref HandshakeCursor<TSource> c, ushort type, int length, ref ClientHelloInfo hello)
        where TSource : IChunkSource, allows ref struct
        => type switch
        {
            ServerNameExtension => ParseServerName(ref c, length, ref hello),
            AlpnExtension => ParseAlpn(ref c, length, ref hello),
            _ => ParseSupportedVersions(ref c, length, ref hello),
        };

    /// <summary>
    /// The per-extension rules of RFC 8446 §4.2 for the piecewise walk: pre_shared_key last, no duplicates, at most
    /// <see cref="ClientHelloInfo.MaxExtensions"/>; records the type and notes ECH (whose payload is opaque to a router).
    /// <see cref="ParseExtensionBlock"/> applies the same rules, in the same order, with its state in registers.
    /// </summary>
    /// <remarks>
    /// Duplicate detection without a per-type table: types below 64 get their own bit; the others share a 64-bit
    /// hashed filter and, on a filter hit (rare: distinct GREASE values, collisions), a scan of the
    /// types recorded so far.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ClientHelloError TrackExtension(ushort type, ref ClientHelloInfo hello)
    {
        ref ulong seenLow = ref hello.SeenLowTypes;
        ref ulong seenHashed = ref hello.SeenHashedTypes;

        // RFC 8446 §4.2.11: "The "pre_shared_key" extension MUST be the last extension in the ClientHello".
        if ((seenLow & (1UL << PreSharedKeyExtension)) != 0)
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
            if ((seenHashed & bit) != 0 && hello.ContainsExtensionType(type))
            {
                return ClientHelloError.DuplicateExtension;
            }

            seenHashed |= bit;
            if (type == EncryptedClientHelloExtension)
            {
                hello.HasEncryptedClientHello = true;
            }
        }

        if (hello.ExtensionCount == ClientHelloInfo.MaxExtensions)
        {
            return ClientHelloError.TooManyExtensions;
        }

        hello.AddExtensionType(type);
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
            // encoding without a trailing dot", but the type is opaque and real clients send other bytes (a .NET client
            // sends a Unicode IDN as UTF-8): the name is kept as sent and its departures from a DNS name are reported,
            // for the caller's policy to judge (ClientHelloInfo.ServerNameIssues, classified when asked, not here).
            c.CopyTo(hello.ServerNameBuffer[..nameLength]);
            hello.SetServerNameLength(nameLength);
        }

        return ClientHelloError.None;
    }

    /// <summary>server_name (RFC 6066 §3) from contiguous extension_data: the same checks, in the same order, as the cursor version.</summary>
    private static ClientHelloError ParseServerName(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
        if (data.Length < sizeof(ushort))
        {
            return ClientHelloError.InvalidServerNameExtension;
        }

        int listLength = BinaryPrimitives.ReadUInt16BigEndian(data);
        ReadOnlySpan<byte> list = data[sizeof(ushort)..];
        if (listLength == 0 || listLength != list.Length)
        {
            return ClientHelloError.InvalidServerNameExtension;
        }

        // struct { NameType name_type; select (name_type) { case host_name: HostName; } name; } ServerName;
        bool hostNameSeen = false;
        while (!list.IsEmpty)
        {
            if (list.Length < 1 + sizeof(ushort))
            {
                return ClientHelloError.InvalidServerNameExtension;
            }

            byte nameType = list[0];
            int nameLength = BinaryPrimitives.ReadUInt16BigEndian(list[1..]);
            list = list[(1 + sizeof(ushort))..];
            if (nameLength > list.Length)
            {
                return ClientHelloError.InvalidServerNameExtension;
            }

            ReadOnlySpan<byte> name = list[..nameLength];
            list = list[nameLength..];
            if (nameType != HostNameType)
            {
                continue;
            }

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

            // Kept as sent, its departures from a DNS name reported when asked (see the cursor version).
            name.CopyTo(hello.ServerNameBuffer);
            hello.SetServerNameLength(nameLength);
        }

        return ClientHelloError.None;
    }

    /// <summary>application_layer_protocol_negotiation (RFC 7301 §3.1) from contiguous extension_data.</summary>
    private static ClientHelloError ParseAlpn(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList; opaque ProtocolName<1..2^8-1>;
        if (data.Length < sizeof(ushort))
        {
            return ClientHelloError.InvalidAlpnExtension;
        }

        int listLength = BinaryPrimitives.ReadUInt16BigEndian(data);
        ReadOnlySpan<byte> list = data[sizeof(ushort)..];
        if (listLength < 2 || listLength != list.Length)
        {
            return ClientHelloError.InvalidAlpnExtension;
        }

        hello.HasAlpn = true;
        Span<byte> kept = hello.AlpnBufferSpan;
        int keptLength = 0;
        bool keeping = true;
        for (int i = 0; i < list.Length;)
        {
            int nameLength = list[i];
            if (nameLength == 0 || nameLength >= list.Length - i)
            {
                return ClientHelloError.InvalidAlpnExtension;
            }

            // Keep the leading protocols that fit whole (all of them, unless the list exceeds MaxAlpnLength).
            int entry = 1 + nameLength;
            if (keeping && entry <= kept.Length - keptLength)
            {
                keptLength += entry;
            }
            else
            {
                keeping = false;
            }

            i += entry;
        }

        list[..keptLength].CopyTo(kept);
        hello.SetAlpnLength(keptLength);
        hello.AlpnTruncated = keptLength < list.Length;
        return ClientHelloError.None;
    }

    /// <summary>supported_versions (RFC 8446 §4.2.1) from contiguous extension_data.</summary>
    private static ClientHelloError ParseSupportedVersions(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // ProtocolVersion versions<2..254>;
        if (data.Length < 1)
        {
            return ClientHelloError.InvalidSupportedVersionsExtension;
        }

        int listLength = data[0];
        ReadOnlySpan<byte> versions = data[1..];
        if (listLength < 2 || (listLength & 1) != 0 || listLength != versions.Length)
        {
            return ClientHelloError.InvalidSupportedVersionsExtension;
        }

        // The length was checked to be even and to match, so each 2-byte read below lies inside `versions`.
        bool tls13 = false;
        ushort max = 0;
        ref byte first = ref MemoryMarshal.GetReference(versions);
        for (nint i = 0; i < listLength; i += sizeof(ushort))
        {
            ushort version = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref first, i)));
            tls13 |= version == Tls13;
            if (!IsGrease(version) && version > max)
            {
                max = version;
            }
        }

        hello.HasSupportedVersions = true;
        hello.OffersTls13 = tls13;
        hello.MaxSupportedVersion = max;
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

    /// <summary>Whether <paramref name="value"/> is one of the RFC 8701 GREASE values (0x0A0A, 0x1A1A, ..., 0xFAFA), which clients send in cipher suites, extensions, groups and versions to keep servers tolerant, and which fingerprints ignore.</summary>
    /// <param name="value">A cipher suite, extension type, named group, signature scheme or version.</param>
    /// <returns><see langword="true"/> for a GREASE value.</returns>
    public static bool IsGrease(ushort value) => (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF);
}
