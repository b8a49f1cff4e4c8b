using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// Reads a TLS ClientHello from the first bytes a client sent, without allocating, throwing or decrypting anything.
/// </summary>
/// <remarks>
/// <para>How it works. A ClientHello is one handshake message (RFC 8446 §4: msg_type(1) length(3) body) carried in one
/// or more handshake records (RFC 8446 §5.1: type(1) legacy_record_version(2) length(2) fragment). Peers may cut the
/// message into records of any size (even 1 byte), and TCP may cut the stream anywhere, so the reader works in two passes:</para>
/// <list type="number">
/// <item>Framing: walk the record headers and the 4-byte handshake header (which may itself straddle records) until the
/// record holding the message's last byte. Every record-level rule and the size limit are decided here, as soon as the
/// bytes that decide them are present; the answer is <see cref="ClientHelloStatus.NeedMoreData"/> until the whole
/// message is there.</item>
/// <item>Body: parse the ClientHello body (RFC 8446 §4.1.2), the handshake byte stream with the record headers skipped.
/// When the message sits in one record in one contiguous span (the usual case) the
/// body is walked in place; otherwise a cursor hops between record payloads and input segments, walking whatever lies
/// wholly inside one piece as a span. Nothing is copied except the fields kept in <see cref="ClientHelloInfo"/>
/// (host_name, ALPN list), and large fields such as key shares are skipped without being touched; the one exception
/// is a single record of at most 2 KiB cut by a segment boundary, which is cheaper to copy to the stack (measured).</item>
/// </list>
/// <para>The outcome depends only on the bytes, never on how they are split into segments. Each call starts from the
/// beginning of the input: the state between calls is the input itself (as with <c>SslStream</c>'s own frame helper),
/// which keeps the API stateless; a hello is at most <see cref="ClientHelloReaderOptions.MaxHelloSize"/> bytes.</para>
/// <para>Thread safety: all members are pure functions of their arguments.</para>
/// </remarks>
public static partial class ClientHelloReader
{
    // RFC 8446 §5.1 TLSPlaintext: ContentType type(1); ProtocolVersion legacy_record_version(2); uint16 length(2); fragment.
    internal const int RecordHeaderLength = 5;
    internal const int RecordVersionOffset = 1;
    internal const int RecordLengthOffset = 3;
    internal const byte HandshakeContentType = 22;
    internal const byte RecordVersionMajor = 3;

    /// <summary>RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes."</summary>
    internal const int MaxRecordPayload = 1 << 14;

    // RFC 8446 §4 Handshake: HandshakeType msg_type(1); uint24 length(3); body.
    internal const int HandshakeHeaderLength = 4;
    internal const byte ClientHelloMessageType = 1;

    /// <summary>Reads a ClientHello from contiguous input with the default limits.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(ReadOnlySpan<byte> input, out ClientHelloInfo hello) => TryRead(input, default, out hello);

    /// <summary>Reads a ClientHello from contiguous input.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>
    /// <see cref="ClientHelloStatus.Done"/> with <see cref="ClientHelloInfo.BytesConsumed"/> set when a complete, valid
    /// ClientHello was read; <see cref="ClientHelloStatus.NeedMoreData"/> when <paramref name="input"/> is a valid prefix
    /// (call again with all bytes so far plus more); <see cref="ClientHelloStatus.NotTls"/>,
    /// <see cref="ClientHelloStatus.Invalid"/> or <see cref="ClientHelloStatus.TooLarge"/> with
    /// <see cref="ClientHelloInfo.Error"/> set otherwise.
    /// </returns>
    public static ClientHelloStatus TryRead(ReadOnlySpan<byte> input, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
    {
        // Only the ~40 bytes of scalars are cleared, not the 0.6 KB of inline buffers (which are read only up to those lengths).
        Unsafe.SkipInit(out hello);
        hello.Reset();
        int maxHelloSize = options.MaxHelloSize;

        // Fast path: the whole message in the first record, the whole record in the span.
        if (IsSingleRecordHello(input, maxHelloSize, out int recordLength))
        {
            hello.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(input[RecordVersionOffset..]);
            ReadOnlySpan<byte> helloBody = input.Slice(RecordHeaderLength + HandshakeHeaderLength, recordLength - HandshakeHeaderLength);
            return Finish(ParseContiguousBody(helloBody, ref hello), RecordHeaderLength + recordLength, ref hello);
        }

        var framingInput = new SpanInput(input);
        ClientHelloStatus status = ReadFraming(ref framingInput, maxHelloSize, options.MaxEmptyRecords, ref hello, out int messageLength, out int consumed);
        if (status != ClientHelloStatus.Done)
        {
            return status;
        }

        var body = new HandshakeCursor<RecordChunks<SpanInput>>(default, new RecordChunks<SpanInput>(new SpanInput(input)));
        return Finish(ParseBody(ref body, messageLength, ref hello), consumed, ref hello);
    }

    /// <summary>Reads a ClientHello from possibly multi-segment input with the default limits.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(in ReadOnlySequence<byte> input, out ClientHelloInfo hello) => TryRead(input, default, out hello);

    /// <summary>Reads a ClientHello from possibly multi-segment input, without copying it to one buffer.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome, exactly as <see cref="TryRead(ReadOnlySpan{byte}, in ClientHelloReaderOptions, out ClientHelloInfo)"/>
    /// would return it for the same bytes in one span.</returns>
    public static ClientHelloStatus TryRead(in ReadOnlySequence<byte> input, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
    {
        if (input.IsSingleSegment)
        {
            return TryRead(input.FirstSpan, options, out hello);
        }

        // Only the ~40 bytes of scalars are cleared, not the 0.6 KB of inline buffers (which are read only up to those lengths).
        Unsafe.SkipInit(out hello);
        hello.Reset();
        int maxHelloSize = options.MaxHelloSize;

        // The usual multi-segment case is a hello that arrived whole followed by more data: same fast path.
        ReadOnlySpan<byte> first = input.FirstSpan;
        if (IsSingleRecordHello(first, maxHelloSize, out int recordLength))
        {
            hello.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(first[RecordVersionOffset..]);
            ReadOnlySpan<byte> helloBody = first.Slice(RecordHeaderLength + HandshakeHeaderLength, recordLength - HandshakeHeaderLength);
            return Finish(ParseContiguousBody(helloBody, ref hello), RecordHeaderLength + recordLength, ref hello);
        }

        // A single-record hello cut by a segment boundary (a 1.8 KB post-quantum hello in two TCP reads) is cheaper to
        // copy to the stack and parse in place than to walk piecewise; the bytes and so the answer are the same.
        if (first.Length >= RecordHeaderLength && first[0] == HandshakeContentType)
        {
            int wholeRecord = RecordHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(first[RecordLengthOffset..]);
            if (wholeRecord <= MaxStackCopy && wholeRecord <= input.Length
                && TryReadCopiedRecord(input, wholeRecord, maxHelloSize, ref hello, out ClientHelloStatus copied))
            {
                return copied;
            }
        }

        var framingInput = new SequenceInput(input);
        ClientHelloStatus status = ReadFraming(ref framingInput, maxHelloSize, options.MaxEmptyRecords, ref hello, out int messageLength, out int consumed);
        if (status != ClientHelloStatus.Done)
        {
            return status;
        }

        var body = new HandshakeCursor<RecordChunks<SequenceInput>>(default, new RecordChunks<SequenceInput>(new SequenceInput(input)));
        return Finish(ParseBody(ref body, messageLength, ref hello), consumed, ref hello);
    }

    /// <summary>The largest record (header included) that a multi-segment read copies to the stack: 2 KiB + header.</summary>
    private const int MaxStackCopy = 2048 + RecordHeaderLength;

    /// <summary>Copies the first record to the stack and takes the in-place path when it holds the whole hello.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool TryReadCopiedRecord(in ReadOnlySequence<byte> input, int wholeRecord, int maxHelloSize, ref ClientHelloInfo hello, out ClientHelloStatus status)
    {
        Span<byte> copy = stackalloc byte[MaxStackCopy];
        copy = copy[..wholeRecord];
        input.Slice(0, wholeRecord).CopyTo(copy);
        if (!IsSingleRecordHello(copy, maxHelloSize, out int recordLength))
        {
            status = default;
            return false;
        }

        hello.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(copy[RecordVersionOffset..]);
        ReadOnlySpan<byte> helloBody = copy.Slice(RecordHeaderLength + HandshakeHeaderLength, recordLength - HandshakeHeaderLength);
        status = Finish(ParseContiguousBody(helloBody, ref hello), RecordHeaderLength + recordLength, ref hello);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="input"/> starts with one complete, well-framed handshake record that holds exactly one
    /// complete handshake message of type client_hello, within the size limit. Anything else takes the general path,
    /// which reaches the same verdict on the same bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSingleRecordHello(ReadOnlySpan<byte> input, int maxHelloSize, out int recordLength)
    {
        // record header (5) + handshake header (4)
        if (input.Length >= RecordHeaderLength + HandshakeHeaderLength
            && input[0] == HandshakeContentType
            && input[RecordVersionOffset] == RecordVersionMajor
            && input[RecordHeaderLength] == ClientHelloMessageType)
        {
            recordLength = BinaryPrimitives.ReadUInt16BigEndian(input[RecordLengthOffset..]);
            int messageLength = HandshakeHeaderLength + ((input[RecordHeaderLength + 1] << 16) | BinaryPrimitives.ReadUInt16BigEndian(input[(RecordHeaderLength + 2)..]));
            return messageLength == recordLength
                && recordLength <= MaxRecordPayload
                && RecordHeaderLength + recordLength <= input.Length
                && RecordHeaderLength + recordLength <= maxHelloSize;
        }

        recordLength = 0;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ClientHelloStatus Finish(ClientHelloError error, int consumed, ref ClientHelloInfo hello)
    {
        if (error == ClientHelloError.None)
        {
            hello.BytesConsumed = consumed;
            return ClientHelloStatus.Done;
        }

        hello.Error = error;
        return ClientHelloStatus.Invalid;
    }

    /// <summary>
    /// The framing pass: walks record headers (RFC 8446 §5.1) and the handshake header (RFC 8446 §4) until the record
    /// that ends the ClientHello. Returns <see cref="ClientHelloStatus.Done"/> when the whole message is present, with
    /// <paramref name="messageLength"/> (handshake header included) and <paramref name="consumed"/> (the end of its
    /// last record); otherwise the status to report, with <see cref="ClientHelloInfo.Error"/> set for failures.
    /// </summary>
    private static ClientHelloStatus ReadFraming<TInput>(
        ref TInput input, int maxHelloSize, int maxEmptyRecords, ref ClientHelloInfo hello, out int messageLength, out int consumed)
        where TInput : IRawInput, allows ref struct
    {
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        Span<byte> handshakeHeader = stackalloc byte[HandshakeHeaderLength];
        int handshakeHeaderHave = 0;
        int position = 0;            // input offset of the current record header
        int handshakeBefore = 0;     // handshake bytes carried by the records before the current one
        int emptyRecords = 0;
        messageLength = -1;          // 4 + uint24 length, once the handshake header is complete
        consumed = 0;

        while (true)
        {
            int available = input.Remaining;
            if (available == 0)
            {
                return ClientHelloStatus.NeedMoreData;
            }

            // struct { ContentType type; ProtocolVersion legacy_record_version; uint16 length; opaque fragment[length]; } TLSPlaintext;
            // Each field is judged as soon as its bytes are present, so a peer learns nothing by dribbling.
            int headerHave = Math.Min(available, RecordHeaderLength);
            input.Peek(header[..headerHave]);
            if (header[0] != HandshakeContentType)
            {
                // The first byte of the connection decides "is this TLS at all" (HTTP, SSH, SSLv2 hellos, ...);
                // later a change_cipher_spec, alert or application_data record before the hello completes is invalid.
                return position == 0
                    ? Fail(ClientHelloStatus.NotTls, ClientHelloError.NotHandshakeRecord, ref hello)
                    : Fail(ClientHelloStatus.Invalid, ClientHelloError.UnexpectedRecordType, ref hello);
            }

            if (headerHave > RecordVersionOffset && header[RecordVersionOffset] != RecordVersionMajor)
            {
                return Fail(ClientHelloStatus.Invalid, ClientHelloError.UnsupportedRecordVersion, ref hello);
            }

            if (headerHave < RecordHeaderLength)
            {
                return ClientHelloStatus.NeedMoreData;
            }

            if (position == 0)
            {
                hello.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(header[RecordVersionOffset..]);
            }

            int recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[RecordLengthOffset..]);
            if (recordLength > MaxRecordPayload)
            {
                return Fail(ClientHelloStatus.Invalid, ClientHelloError.RecordTooLong, ref hello);
            }

            // The hello ends where a record ends, so every record we accept is counted whole.
            int recordEnd = position + RecordHeaderLength + recordLength;
            if (recordEnd > maxHelloSize)
            {
                return Fail(ClientHelloStatus.TooLarge, ClientHelloError.HelloTooLarge, ref hello);
            }

            input.Advance(RecordHeaderLength);
            if (recordLength == 0)
            {
                // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types"; tolerated up to a cap.
                if (++emptyRecords > maxEmptyRecords)
                {
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.TooManyEmptyRecords, ref hello);
                }

                position = recordEnd;
                continue;
            }

            int payloadHave = Math.Min(recordLength, available - RecordHeaderLength);
            if (messageLength < 0)
            {
                // struct { HandshakeType msg_type; uint24 length; ... } Handshake; the 4 bytes may straddle records.
                int take = Math.Min(HandshakeHeaderLength - handshakeHeaderHave, payloadHave);
                input.Peek(handshakeHeader.Slice(handshakeHeaderHave, take));
                handshakeHeaderHave += take;
                if (handshakeHeaderHave > 0 && handshakeHeader[0] != ClientHelloMessageType)
                {
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.NotClientHello, ref hello);
                }

                if (handshakeHeaderHave == HandshakeHeaderLength)
                {
                    messageLength = HandshakeHeaderLength + ((handshakeHeader[1] << 16) | (handshakeHeader[2] << 8) | handshakeHeader[3]);
                }
            }

            if (messageLength >= 0)
            {
                int stillNeeded = messageLength - (handshakeBefore + recordLength);
                if (stillNeeded < 0)
                {
                    // The hello ends inside this record and other handshake bytes follow it: a client must wait for the
                    // ServerHello (RFC 8446 §4), so these bytes cannot belong to a well-behaved peer.
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.TrailingHandshakeData, ref hello);
                }

                // The least the hello can still occupy: the rest of the message plus one header per 2^14 bytes of it.
                long smallestEnd = recordEnd + (long)stillNeeded + (RecordHeaderLength * (((long)stillNeeded + MaxRecordPayload - 1) / MaxRecordPayload));
                if (smallestEnd > maxHelloSize)
                {
                    return Fail(ClientHelloStatus.TooLarge, ClientHelloError.HelloTooLarge, ref hello);
                }

                if (stillNeeded == 0)
                {
                    if (payloadHave < recordLength)
                    {
                        return ClientHelloStatus.NeedMoreData;
                    }

                    consumed = recordEnd;
                    return ClientHelloStatus.Done;
                }
            }

            if (payloadHave < recordLength)
            {
                return ClientHelloStatus.NeedMoreData;
            }

            input.Advance(recordLength);
            position = recordEnd;
            handshakeBefore += recordLength;
        }
    }

    private static ClientHelloStatus Fail(ClientHelloStatus status, ClientHelloError error, ref ClientHelloInfo hello)
    {
        hello.Error = error;
        return status;
    }
}
