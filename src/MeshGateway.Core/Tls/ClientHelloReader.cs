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
/// <item>Body: parse the ClientHello body (RFC 8446 §4.1.2) from one contiguous span, with one walk of the extensions
/// (<see cref="ExtensionWalker"/>, shared with <see cref="ClientHelloLists"/>). When the message sits in one record in
/// one span (the usual case) the body is walked in place; otherwise the handshake message is copied once out of its
/// records and segments into one buffer (a pooled array; a single record of at most 2 KiB cut by a segment boundary
/// goes to the stack, which measured cheaper) and walked there. Nothing else is copied except the fields kept in
/// <see cref="ClientHelloInfo"/> (host_name, ALPN list).</item>
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
        // Only the 36 bytes of scalars are cleared, not the 0.5 KB of inline buffers (which are read only up to those lengths).
        Unsafe.SkipInit(out hello);
        hello.Reset();
        int maxHelloSize = options.MaxHelloSize;

        // Fast path: the whole message in the first record, the whole record in the span.
        if (IsSingleRecordHello(input, maxHelloSize, out int recordLength))
        {
            return ReadSingleRecord(input, recordLength, ref hello);
        }

        return ReadRecords(new SpanInput(input), options, ref hello);
    }

    /// <summary>Reads a ClientHello from possibly multi-segment input with the default limits.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(in ReadOnlySequence<byte> input, out ClientHelloInfo hello) => TryRead(input, default, out hello);

    /// <summary>Reads a ClientHello from possibly multi-segment input.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome, exactly as <see cref="TryRead(ReadOnlySpan{byte}, in ClientHelloReaderOptions, out ClientHelloInfo)"/>
    /// would return it for the same bytes in one span.</returns>
    /// <remarks>
    /// A hello that lies in the first segment is read in place. Otherwise the record headers are walked across the
    /// segments (so an incomplete hello costs no copy), and once the whole hello is present its handshake bytes are
    /// copied once into one buffer (the stack up to 4 KiB, else a pooled array) and read as a span.
    /// </remarks>
    public static ClientHelloStatus TryRead(in ReadOnlySequence<byte> input, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
    {
        // The usual multi-segment case is a hello that arrived whole followed by more data: the span reader's fast path.
        ReadOnlySpan<byte> first = input.FirstSpan;
        int maxHelloSize = options.MaxHelloSize;
        if (input.IsSingleSegment || IsSingleRecordHello(first, maxHelloSize, out _))
        {
            return TryRead(first, options, out hello);
        }

        // Next most usual: a hello in one record cut by a segment boundary (a 1.8 KB post-quantum hello in two TCP
        // reads). Its first record header says where that record ends: read a copy of that record as a span. Unless
        // that record is only the start of the hello (NeedMoreData), the answer is final: the span reader decides
        // every rule as soon as the bytes that decide it are present, and these are the same bytes.
        if (first.Length >= RecordHeaderLength && first[0] == HandshakeContentType)
        {
            int firstRecord = RecordHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(first[RecordLengthOffset..]);
            if (firstRecord <= MaxStackCopy && firstRecord <= input.Length)
            {
                ClientHelloStatus copied = ReadCopy(input.Slice(0, firstRecord), options, out hello);
                if (copied != ClientHelloStatus.NeedMoreData)
                {
                    return copied;
                }
            }
        }

        // Only the scalars are cleared, as in the span reader.
        Unsafe.SkipInit(out hello);
        hello.Reset();
        return ReadRecords(new SequenceInput(input), options, ref hello);
    }

    /// <summary>The largest first record (header included) that a multi-segment read copies to the stack: 2 KiB + header.</summary>
    private const int MaxStackCopy = 2048 + RecordHeaderLength;

    /// <summary>Reads a copy of <paramref name="records"/> (at most <see cref="MaxStackCopy"/> bytes) as a span.</summary>
    /// <remarks>
    /// A fixed-size stack buffer, which the runtime zeroes: cheaper at this size than renting and returning a pooled
    /// array (measured on the two-segment benchmark), and the size lets the JIT zero it with wide stores.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloStatus ReadCopy(in ReadOnlySequence<byte> records, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
    {
        Span<byte> copy = stackalloc byte[MaxStackCopy];
        copy = copy[..(int)records.Length];
        records.CopyTo(copy);
        return TryRead(copy, options, out hello);
    }

    /// <summary>
    /// The general path, for span and multi-segment input alike: the framing pass, then, once the whole hello is there,
    /// its handshake message copied out of its records (and segments) into one buffer and parsed as a span.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ClientHelloStatus ReadRecords<TInput>(TInput records, in ClientHelloReaderOptions options, ref ClientHelloInfo hello)
        where TInput : IRawInput, allows ref struct
    {
        TInput framingInput = records;
        ClientHelloStatus status = ReadFraming(ref framingInput, options.MaxHelloSize, options.MaxEmptyRecords, out Framing framing);
        hello.RecordVersion = framing.RecordVersion;
        if (status != ClientHelloStatus.Done)
        {
            hello.Error = framing.Error;
            return status;
        }

        using var message = new ScratchBytes(framing.MessageLength);
        ClientHelloError error = CopyMessage(ref records, message.Span)
            ? ParseContiguousBody(message.Span[HandshakeHeaderLength..], ref hello)
            : ClientHelloError.LengthOutOfBounds;   // defence in depth: the framing pass found the whole message there
        return Finish(error, framing.Consumed, ref hello);
    }

    /// <summary>
    /// Copies the handshake message out of the records (RFC 8446 §5.1, headers skipped) that <paramref name="input"/>
    /// starts with into <paramref name="message"/>; <see langword="false"/> when they do not hold that many bytes.
    /// </summary>
    internal static bool CopyMessage<TInput>(ref TInput input, scoped Span<byte> message)
        where TInput : IRawInput, allows ref struct
    {
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        while (!message.IsEmpty)
        {
            // struct { ContentType type; ProtocolVersion legacy_record_version; uint16 length; opaque fragment[length]; } TLSPlaintext;
            if (input.Remaining < RecordHeaderLength)
            {
                return false;
            }

            input.Peek(header);
            input.Advance(RecordHeaderLength);
            int length = BinaryPrimitives.ReadUInt16BigEndian(header[RecordLengthOffset..]);
            if (length > input.Remaining || length > message.Length)
            {
                return false;
            }

            input.Peek(message[..length]);
            input.Advance(length);
            message = message[length..];
        }

        return true;
    }

    /// <summary>
    /// Whether <paramref name="input"/> starts with one complete, well-framed handshake record that holds exactly one
    /// complete handshake message of type client_hello, within the size limit. Anything else takes the general path,
    /// which reaches the same verdict on the same bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsSingleRecordHello(ReadOnlySpan<byte> input, int maxHelloSize, out int recordLength)
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

    /// <summary>Reads the hello that <see cref="IsSingleRecordHello"/> found at the start of <paramref name="input"/>, in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ClientHelloStatus ReadSingleRecord(ReadOnlySpan<byte> input, int recordLength, ref ClientHelloInfo hello)
    {
        hello.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(input[RecordVersionOffset..]);
        ReadOnlySpan<byte> body = input.Slice(RecordHeaderLength + HandshakeHeaderLength, recordLength - HandshakeHeaderLength);
        return Finish(ParseContiguousBody(body, ref hello), RecordHeaderLength + recordLength, ref hello);
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

    /// <summary>What the framing pass learned.</summary>
    internal struct Framing
    {
        /// <summary>The handshake message's length, its 4-byte header included (when <see cref="ClientHelloStatus.Done"/>).</summary>
        public int MessageLength;

        /// <summary>The end of the record that ends the message (when <see cref="ClientHelloStatus.Done"/>).</summary>
        public int Consumed;

        /// <summary>The first record's legacy_record_version, once its header was read.</summary>
        public ushort RecordVersion;

        /// <summary>Why the input was rejected, for the failure statuses.</summary>
        public ClientHelloError Error;
    }

    /// <summary>
    /// The framing pass: walks record headers (RFC 8446 §5.1) and the handshake header (RFC 8446 §4) until the record
    /// that ends the ClientHello. Returns <see cref="ClientHelloStatus.Done"/> when the whole message is present, with
    /// <see cref="Framing.MessageLength"/> and <see cref="Framing.Consumed"/>; otherwise the status to report, with
    /// <see cref="Framing.Error"/> set for failures.
    /// </summary>
    internal static ClientHelloStatus ReadFraming<TInput>(ref TInput input, int maxHelloSize, int maxEmptyRecords, out Framing framing)
        where TInput : IRawInput, allows ref struct
    {
        Span<byte> header = stackalloc byte[RecordHeaderLength];
        Span<byte> handshakeHeader = stackalloc byte[HandshakeHeaderLength];
        int handshakeHeaderHave = 0;
        int position = 0;            // input offset of the current record header
        int handshakeBefore = 0;     // handshake bytes carried by the records before the current one
        int emptyRecords = 0;
        int messageLength = -1;      // 4 + uint24 length, once the handshake header is complete
        framing = default;

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
                    ? Fail(ClientHelloStatus.NotTls, ClientHelloError.NotHandshakeRecord, ref framing)
                    : Fail(ClientHelloStatus.Invalid, ClientHelloError.UnexpectedRecordType, ref framing);
            }

            if (headerHave > RecordVersionOffset && header[RecordVersionOffset] != RecordVersionMajor)
            {
                return Fail(ClientHelloStatus.Invalid, ClientHelloError.UnsupportedRecordVersion, ref framing);
            }

            if (headerHave < RecordHeaderLength)
            {
                return ClientHelloStatus.NeedMoreData;
            }

            if (position == 0)
            {
                framing.RecordVersion = BinaryPrimitives.ReadUInt16BigEndian(header[RecordVersionOffset..]);
            }

            int recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[RecordLengthOffset..]);
            if (recordLength > MaxRecordPayload)
            {
                return Fail(ClientHelloStatus.Invalid, ClientHelloError.RecordTooLong, ref framing);
            }

            // The hello ends where a record ends, so every record we accept is counted whole.
            int recordEnd = position + RecordHeaderLength + recordLength;
            if (recordEnd > maxHelloSize)
            {
                return Fail(ClientHelloStatus.TooLarge, ClientHelloError.HelloTooLarge, ref framing);
            }

            input.Advance(RecordHeaderLength);
            if (recordLength == 0)
            {
                // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types"; tolerated up to a cap.
                if (++emptyRecords > maxEmptyRecords)
                {
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.TooManyEmptyRecords, ref framing);
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
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.NotClientHello, ref framing);
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
                    return Fail(ClientHelloStatus.Invalid, ClientHelloError.TrailingHandshakeData, ref framing);
                }

                // The least the hello can still occupy: the rest of the message plus one header per 2^14 bytes of it.
                long smallestEnd = recordEnd + (long)stillNeeded + (RecordHeaderLength * (((long)stillNeeded + MaxRecordPayload - 1) / MaxRecordPayload));
                if (smallestEnd > maxHelloSize)
                {
                    return Fail(ClientHelloStatus.TooLarge, ClientHelloError.HelloTooLarge, ref framing);
                }

                if (stillNeeded == 0)
                {
                    if (payloadHave < recordLength)
                    {
                        return ClientHelloStatus.NeedMoreData;
                    }

                    framing.MessageLength = messageLength;
                    framing.Consumed = recordEnd;
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

    private static ClientHelloStatus Fail(ClientHelloStatus status, ClientHelloError error, ref Framing framing)
    {
        framing.Error = error;
        return status;
    }
}
