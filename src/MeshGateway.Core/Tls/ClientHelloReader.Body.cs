using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// The body pass: the ClientHello structure itself (RFC 8446 §4.1.2), always read from one contiguous span: in place
/// for a hello in one record in one span, otherwise from the copy <see cref="ReadRecords"/> or <see cref="ReadCopy"/> made.
/// </summary>
public static partial class ClientHelloReader
{
    // Extension types (IANA TLS ExtensionType Values).
    private const ushort ServerNameExtension = 0;                      // RFC 6066 §3
    private const ushort AlpnExtension = 16;                           // RFC 7301 §3.1
    private const ushort PreSharedKeyExtension = 41;                   // RFC 8446 §4.2.11
    private const ushort SupportedVersionsExtension = 43;              // RFC 8446 §4.2.1
    private const ushort EncryptedClientHelloExtension = 0xfe0d;       // draft-ietf-tls-esni

    /// <summary>Bits (of types below 64) of the extensions the walk does more with than detecting duplicates.</summary>
    private const ulong SpecialTypes = (1UL << ServerNameExtension) | (1UL << AlpnExtension) | (1UL << PreSharedKeyExtension) | (1UL << SupportedVersionsExtension);

    private const byte HostNameType = 0;                               // RFC 6066 §3 NameType host_name(0)
    private const ushort Tls13 = 0x0304;
    private const int MaxHostNameLength = ClientHelloInfo.MaxHostNameLength;

    /// <summary>The ClientHello body (after the handshake header): the fixed fields, then the extensions block.</summary>
    internal static ClientHelloError ParseContiguousBody(ReadOnlySpan<byte> body, ref ClientHelloInfo hello)
    {
        ClientHelloError error = ClientHelloBody.TryParse(body, out ClientHelloBody parsed);
        if (error != ClientHelloError.None)
        {
            return error;
        }

        hello.LegacyVersion = parsed.LegacyVersion;
        hello.CipherSuiteCount = parsed.CipherSuites.Length >> 1;
        return ParseExtensionBlock(parsed.Extensions, ref hello);
    }

    /// <summary>The extensions block (RFC 8446 §4.2), walked once by <see cref="ExtensionWalker"/>.</summary>
    /// <remarks>
    /// The walk is a chain of dependent loads (each extension's length gives the next one's offset), so the loop holds
    /// nothing but that chain and the per-type bookkeeping, in registers: no calls, so nothing is spilled to the stack
    /// (an earlier shape that called the parsers from inside the loop paid a store-to-load forward on every step;
    /// measured with perf). The three extensions that are parsed (server_name, ALPN, supported_versions: each at most
    /// once, duplicates being rejected) are parsed after the walk, in the order they were sent, and their errors take
    /// precedence over any error the walk found after them, so the answer is that of parsing each extension in turn.
    /// </remarks>
    private static ClientHelloError ParseExtensionBlock(ReadOnlySpan<byte> block, ref ClientHelloInfo hello)
    {
        // The block is a whole extensions field, so the tracking state starts empty; it stays in registers and the
        // count is written back once. Offsets are native-sized so that nothing is widened on the walk's load chain.
        Span<ushort> types = hello.ExtensionTypeSlots;     // MaxExtensions slots
        nint count = 0;
        ulong seenLow = 0;
        ulong seenHashed = 0;
        int serverName = -1;            // offsets in `block` of the parsed extensions' headers
        int alpn = -1;
        int supportedVersions = -1;
        ClientHelloError error = ClientHelloError.None;
        nint end = block.Length;
        nint offset = 0;
        while (offset != end)
        {
            nint next = ExtensionWalker.Next(block, offset, out uint type);
            if (next < 0)
            {
                error = ClientHelloError.LengthOutOfBounds;
                break;
            }

            // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension block."
            // Duplicate detection without a per-type table: types below 64 get their own bit; the others (GREASE, ECH,
            // renegotiation_info, ...) share a hashed filter, confirmed on a hit (rare: distinct GREASE values,
            // collisions) by a scan of the types recorded so far, written out here: a call in the loop would force the
            // chain's values out of registers (measured).
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
                    ReadOnlySpan<ushort> recorded = types[..(int)count];
                    int i = 0;
                    while (i < recorded.Length && recorded[i] != type)
                    {
                        i++;
                    }

                    if (i < recorded.Length)
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

            // At most MaxExtensions types are kept (the test is also the store's bounds check).
            if ((nuint)count < (nuint)types.Length)
            {
                types[(int)count++] = (ushort)type;
            }
            else
            {
                error = ClientHelloError.TooManyExtensions;
                break;
            }

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
                    // Judged when the next extension is read, so a next extension that overruns the block is
                    // LengthOutOfBounds, as it would be without the pre_shared_key before it.
                    error = ExtensionWalker.Next(block, next, out _) < 0 ? ClientHelloError.LengthOutOfBounds : ClientHelloError.PreSharedKeyNotLast;
                    break;
                }
            }

            offset = next;
        }

        hello.SetExtensionCount((int)count);
        if ((serverName & alpn & supportedVersions) == -1)
        {
            return error;
        }

        ClientHelloError contentError = ParseRecordedExtensions(block, serverName, alpn, supportedVersions, ref hello);
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
            ReadOnlySpan<byte> data = ExtensionWalker.Data(all, first);
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

    /// <summary>server_name (RFC 6066 §3): keeps the host_name.</summary>
    private static ClientHelloError ParseServerName(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
        if (!TlsVector.TryRead(data, sizeof(ushort), 1, out ReadOnlySpan<byte> list))
        {
            return ClientHelloError.InvalidServerNameExtension;
        }

        // struct { NameType name_type; select (name_type) { case host_name: HostName; } name; } ServerName;
        // opaque HostName<1..2^16-1>;
        // Other name types have no defined syntax; like every deployed parser we read them as opaque<0..2^16-1> and skip them.
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
            name.CopyTo(hello.ServerNameBuffer);
            hello.SetServerNameLength(nameLength);
        }

        return ClientHelloError.None;
    }

    /// <summary>application_layer_protocol_negotiation (RFC 7301 §3.1).</summary>
    private static ClientHelloError ParseAlpn(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList; opaque ProtocolName<1..2^8-1>;
        if (!TlsVector.TryRead(data, sizeof(ushort), 2, out ReadOnlySpan<byte> list))
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

    /// <summary>supported_versions (RFC 8446 §4.2.1).</summary>
    private static ClientHelloError ParseSupportedVersions(ReadOnlySpan<byte> data, ref ClientHelloInfo hello)
    {
        // struct { select (Handshake.msg_type) { case client_hello: ProtocolVersion versions<2..254>; ... }; } SupportedVersions;
        if (!TlsVector.TryRead(data, 1, 2, out ReadOnlySpan<byte> versions) || (versions.Length & 1) != 0)
        {
            return ClientHelloError.InvalidSupportedVersionsExtension;
        }

        bool tls13 = false;
        ushort max = 0;
        for (; versions.Length >= sizeof(ushort); versions = versions[sizeof(ushort)..])
        {
            ushort version = BinaryPrimitives.ReadUInt16BigEndian(versions);
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

    /// <summary>Whether <paramref name="value"/> is one of the RFC 8701 GREASE values (0x0A0A, 0x1A1A, ..., 0xFAFA), which clients send in cipher suites, extensions, groups and versions to keep servers tolerant, and which fingerprints ignore.</summary>
    /// <param name="value">A cipher suite, extension type, named group, signature scheme or version.</param>
    /// <returns><see langword="true"/> for a GREASE value.</returns>
    public static bool IsGrease(ushort value) => (value & 0x0F0F) == 0x0A0A && (value >> 8) == (value & 0xFF);
}
