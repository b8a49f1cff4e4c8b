using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// The lists of a ClientHello that fingerprints need and routing does not: cipher suites, supported groups, signature
/// algorithms and EC point formats. Read on request by <see cref="TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>,
/// which walks the hello's bytes a second time, into storage the caller owns (usually a local), so
/// <see cref="ClientHelloInfo"/>, which a router holds for every connection, carries none of them.
/// </summary>
/// <remarks>
/// <para>The extension types in the order sent, ALPN and versions stay in <see cref="ClientHelloInfo"/>; pass both to
/// <see cref="ClientHelloFingerprint"/>.</para>
/// <para>Inline storage: up to <see cref="MaxCipherSuites"/>, <see cref="MaxSupportedGroups"/>,
/// <see cref="MaxSignatureAlgorithms"/> and <see cref="MaxEcPointFormats"/> entries; a longer list keeps its leading
/// entries and sets <see cref="Incomplete"/>. These lists never make a hello invalid: a malformed supported_groups,
/// signature_algorithms or ec_point_formats extension is kept empty and sets <see cref="Incomplete"/> too.</para>
/// <para>The struct is about 0.4 KB: pass it by <see langword="ref"/> or <see langword="in"/>.</para>
/// </remarks>
public struct ClientHelloLists
{
    /// <summary>How many cipher suites are kept (<see cref="CipherSuitesRaw"/>); more sets <see cref="Incomplete"/>.</summary>
    public const int MaxCipherSuites = 128;

    /// <summary>How many supported_groups entries are kept; more sets <see cref="Incomplete"/>.</summary>
    public const int MaxSupportedGroups = 32;

    /// <summary>How many signature_algorithms entries are kept; more sets <see cref="Incomplete"/>.</summary>
    public const int MaxSignatureAlgorithms = 48;

    /// <summary>How many ec_point_formats entries are kept; more sets <see cref="Incomplete"/>.</summary>
    public const int MaxEcPointFormats = 8;

    // Extension types (IANA TLS ExtensionType Values).
    private const ushort SupportedGroupsExtension = 10;                // RFC 8446 §4.2.7 (RFC 4492 elliptic_curves)
    private const ushort EcPointFormatsExtension = 11;                 // RFC 8422 §5.1.2
    private const ushort SignatureAlgorithmsExtension = 13;            // RFC 8446 §4.2.3

    // As in ClientHelloInfo, the buffers are meaningful only up to their lengths; TryRead clears the lengths alone.
    private CipherSuiteBuffer _cipherSuites;
    private GroupBuffer _groups;
    private SignatureAlgorithmBuffer _signatureAlgorithms;
    private PointFormatBuffer _pointFormats;
    private ushort _cipherSuitesLength;
    private ushort _groupsLength;
    private ushort _signatureAlgorithmsLength;
    private byte _pointFormatsLength;
    private bool _incomplete;
    private bool _read;

    /// <summary>
    /// The cipher_suites as sent (RFC 8446 §4.1.2), 2 big-endian bytes each, GREASE values included; at most
    /// <see cref="MaxCipherSuites"/> (see <see cref="Incomplete"/>). <see cref="CipherSuites"/> enumerates them as numbers.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> CipherSuitesRaw => ((ReadOnlySpan<byte>)_cipherSuites)[.._cipherSuitesLength];

    /// <summary>The cipher suites in the order sent, GREASE values included (<see cref="ClientHelloReader.IsGrease"/> tells them apart).</summary>
    /// <example><code>foreach (ushort suite in lists.CipherSuites) { ... }</code></example>
    [UnscopedRef]
    public readonly BigEndianUInt16Enumerator CipherSuites => new(CipherSuitesRaw);

    /// <summary>
    /// The supported_groups extension's named_group_list (RFC 8446 §4.2.7; "elliptic_curves" in RFC 4492, JA3's
    /// EllipticCurves), 2 big-endian bytes each, as sent; empty when absent. At most <see cref="MaxSupportedGroups"/>.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> SupportedGroupsRaw => ((ReadOnlySpan<byte>)_groups)[.._groupsLength];

    /// <summary>The supported groups in the order sent, GREASE values included.</summary>
    [UnscopedRef]
    public readonly BigEndianUInt16Enumerator SupportedGroups => new(SupportedGroupsRaw);

    /// <summary>
    /// The signature_algorithms extension's supported_signature_algorithms (RFC 8446 §4.2.3), 2 big-endian bytes each,
    /// as sent; empty when absent. At most <see cref="MaxSignatureAlgorithms"/>.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> SignatureAlgorithmsRaw => ((ReadOnlySpan<byte>)_signatureAlgorithms)[.._signatureAlgorithmsLength];

    /// <summary>The signature algorithms in the order sent.</summary>
    [UnscopedRef]
    public readonly BigEndianUInt16Enumerator SignatureAlgorithms => new(SignatureAlgorithmsRaw);

    /// <summary>The ec_point_formats extension's list (RFC 8422 §5.1.2), one byte each, as sent; empty when absent.</summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> EcPointFormats => ((ReadOnlySpan<byte>)_pointFormats)[.._pointFormatsLength];

    /// <summary>
    /// Whether the lists hold less than the hello: they were not read (a <see langword="default"/> value, or
    /// <see cref="TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/> answered false), a list was
    /// longer than its inline capacity (only the leading entries are kept), or a supported_groups, signature_algorithms
    /// or ec_point_formats extension was malformed (kept empty; the reader does not reject a hello for them, as it does
    /// not use them). Fingerprints are then not computed.
    /// </summary>
    public readonly bool Incomplete => _incomplete || !_read;

    /// <summary>
    /// Reads the lists of a hello that <see cref="ClientHelloReader"/> has read from <paramref name="input"/> with
    /// <see cref="ClientHelloStatus.Done"/>: a second walk over its bytes (record headers skipped), without allocating.
    /// </summary>
    /// <param name="input">The same input the hello was read from (at least <see cref="ClientHelloInfo.BytesConsumed"/> bytes).</param>
    /// <param name="hello">The result of that read.</param>
    /// <param name="lists">The lists; empty when the method returns <see langword="false"/>.</param>
    /// <returns>
    /// <see langword="false"/> when <paramref name="hello"/> is not a completed read or <paramref name="input"/> does not
    /// hold the hello it describes; otherwise <see langword="true"/> (see <see cref="Incomplete"/> for lists not kept whole).
    /// </returns>
    public static bool TryRead(ReadOnlySpan<byte> input, in ClientHelloInfo hello, out ClientHelloLists lists)
    {
        Unsafe.SkipInit(out lists);
        lists.Clear();
        int consumed = hello.BytesConsumed;
        if (consumed <= 0 || hello.Error != ClientHelloError.None || input.Length < consumed)
        {
            return false;
        }

        return lists.Read(input[..consumed]);
    }

    /// <summary>
    /// Reads the lists of a hello that <see cref="ClientHelloReader"/> has read from multi-segment
    /// <paramref name="input"/>; see <see cref="TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>.
    /// </summary>
    /// <param name="input">The same input the hello was read from.</param>
    /// <param name="hello">The result of that read.</param>
    /// <param name="lists">The lists; empty when the method returns <see langword="false"/>.</param>
    /// <returns>Whether the lists were read (see the span overload).</returns>
    public static bool TryRead(in ReadOnlySequence<byte> input, in ClientHelloInfo hello, out ClientHelloLists lists)
    {
        // As the reader does: a hello in the first segment is read in place, any other copied once into one buffer.
        int consumed = hello.BytesConsumed;
        if (input.IsSingleSegment || input.FirstSpan.Length >= consumed || consumed <= 0 || input.Length < consumed)
        {
            return TryRead(input.FirstSpan, hello, out lists);
        }

        Unsafe.SkipInit(out lists);
        lists.Clear();
        return hello.Error == ClientHelloError.None && lists.ReadRecords(new SequenceInput(input.Slice(0, consumed)), consumed);
    }

    private void Clear()
    {
        _cipherSuitesLength = 0;
        _groupsLength = 0;
        _signatureAlgorithmsLength = 0;
        _pointFormatsLength = 0;
        _incomplete = false;
        _read = false;
    }

    /// <summary>
    /// The second walk, over the <paramref name="records"/> of one hello. The reader has validated the hello, so this
    /// only keeps the lists, but it checks the framing and every length it follows all the same (the caller may pass
    /// other bytes); any inconsistency answers false. Same steps as the reader: in place for one record, else a copy.
    /// </summary>
    private bool Read(ReadOnlySpan<byte> records)
    {
        return ClientHelloReader.IsSingleRecordHello(records, records.Length, out int recordLength)
               && ClientHelloReader.RecordHeaderLength + recordLength == records.Length
            ? Walk(records[(ClientHelloReader.RecordHeaderLength + ClientHelloReader.HandshakeHeaderLength)..])
            : ReadRecords(new SpanInput(records), records.Length);
    }

    /// <summary>A hello in several records or segments: framed and copied out of its records as the reader does, then walked.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool ReadRecords<TInput>(TInput records, int length)
        where TInput : IRawInput, allows ref struct
    {
        TInput framingInput = records;
        if (ClientHelloReader.ReadFraming(ref framingInput, ClientHelloReaderOptions.MaxAllowedHelloSize, int.MaxValue, out ClientHelloReader.Framing framing) != ClientHelloStatus.Done
            || framing.Consumed != length)
        {
            return false;
        }

        using var message = new ScratchBytes(framing.MessageLength);
        return ClientHelloReader.CopyMessage(ref records, message.Span) && Walk(message.Span[ClientHelloReader.HandshakeHeaderLength..]);
    }

    /// <summary>Keeps the lists of a ClientHello body (after the handshake header), with the reader's own steps.</summary>
    private bool Walk(ReadOnlySpan<byte> body)
    {
        if (ClientHelloBody.TryParse(body, out ClientHelloBody parsed) != ClientHelloError.None)
        {
            return Done(false);
        }

        // CipherSuite cipher_suites<2..2^16-2>;
        ReadOnlySpan<byte> suites = parsed.CipherSuites;
        int keptSuites = Math.Min(suites.Length, MaxCipherSuites * 2);
        suites[..keptSuites].CopyTo(_cipherSuites);
        _cipherSuitesLength = (ushort)keptSuites;
        _incomplete |= keptSuites < suites.Length;

        ReadOnlySpan<byte> block = parsed.Extensions;
        for (nint offset = 0; offset != block.Length;)
        {
            nint next = ExtensionWalker.Next(block, offset, out uint type);
            if (next < 0)
            {
                return Done(false);
            }

            if (type is SupportedGroupsExtension or EcPointFormatsExtension or SignatureAlgorithmsExtension)
            {
                KeepList((ushort)type, ExtensionWalker.Data(block, (int)offset));
            }

            offset = next;
        }

        return Done(true);
    }

    /// <summary>Marks the lists read, or clears what was kept of them when the walk failed.</summary>
    private bool Done(bool ok)
    {
        if (!ok)
        {
            Clear();
        }

        _read = ok;
        return ok;
    }

    /// <summary>
    /// supported_groups / signature_algorithms (a uint16 vector of 2-byte codes) or ec_point_formats (a uint8 vector of
    /// bytes) from its extension_data.
    /// </summary>
    private void KeepList(ushort type, ReadOnlySpan<byte> data)
    {
        // NamedGroup named_group_list<2..2^16-1>; SignatureScheme supported_signature_algorithms<2..2^16-2>;
        // ECPointFormat ec_point_format_list<1..2^8-1>;
        bool wide = type != EcPointFormatsExtension;
        if (!TlsVector.TryRead(data, wide ? sizeof(ushort) : 1, 0, out ReadOnlySpan<byte> list) || (wide && (list.Length & 1) != 0))
        {
            _incomplete = true;
            return;
        }

        Span<byte> storage = type switch
        {
            SupportedGroupsExtension => _groups,
            EcPointFormatsExtension => _pointFormats,
            _ => _signatureAlgorithms,
        };

        int kept = Math.Min(list.Length, storage.Length);
        list[..kept].CopyTo(storage);
        _incomplete |= kept < list.Length;
        switch (type)
        {
            case SupportedGroupsExtension:
                _groupsLength = (ushort)kept;
                break;
            case EcPointFormatsExtension:
                _pointFormatsLength = (byte)kept;
                break;
            default:
                _signatureAlgorithmsLength = (ushort)kept;
                break;
        }
    }

    [InlineArray(MaxCipherSuites * 2)]
    private struct CipherSuiteBuffer
    {
        private byte _element0;
    }

    [InlineArray(MaxSupportedGroups * 2)]
    private struct GroupBuffer
    {
        private byte _element0;
    }

    [InlineArray(MaxSignatureAlgorithms * 2)]
    private struct SignatureAlgorithmBuffer
    {
        private byte _element0;
    }

    [InlineArray(MaxEcPointFormats)]
    private struct PointFormatBuffer
    {
        private byte _element0;
    }
}
