using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MeshGateway.Tls;

/// <summary>
/// Sequential access to the raw input (record headers and payloads), contiguous or multi-segment, for the framing pass.
/// The reader only moves forward. <see cref="Remaining"/> is clamped to <see cref="int.MaxValue"/>; the reader never
/// looks further than <see cref="ClientHelloReaderOptions.MaxAllowedHelloSize"/> bytes.
/// </summary>
internal interface IRawInput
{
    /// <summary>Bytes from the current position to the end of the input.</summary>
    public int Remaining { get; }

    /// <summary>Moves forward; <paramref name="count"/> is at most <see cref="Remaining"/>.</summary>
    public void Advance(int count);

    /// <summary>Copies the next <c>destination.Length</c> (at most <see cref="Remaining"/>) bytes without moving.</summary>
    public void Peek(scoped Span<byte> destination);
}

/// <summary>Contiguous raw input.</summary>
internal ref struct SpanInput : IRawInput
{
    private ReadOnlySpan<byte> _rest;

    public SpanInput(ReadOnlySpan<byte> input) => _rest = input;

    public readonly int Remaining => _rest.Length;

    public void Advance(int count) => _rest = _rest[count..];

    public readonly void Peek(scoped Span<byte> destination) => _rest[..destination.Length].CopyTo(destination);
}

/// <summary>Multi-segment raw input over a <see cref="SequenceReader{T}"/> (which skips empty segments, never allocates).</summary>
internal ref struct SequenceInput : IRawInput
{
    private SequenceReader<byte> _reader;

    public SequenceInput(in ReadOnlySequence<byte> input) => _reader = new SequenceReader<byte>(input);

    public readonly int Remaining => (int)Math.Min(_reader.Remaining, int.MaxValue);

    public void Advance(int count) => _reader.Advance(count);

    public readonly void Peek(scoped Span<byte> destination) => _reader.TryCopyTo(destination);
}

/// <summary>
/// A contiguous scratch copy of part of the input, in an array rented from <see cref="ArrayPool{T}.Shared"/> and
/// returned by <see cref="Dispose"/>: no size of hello allocates once the pool is warm, and nothing is zeroed first
/// (measured on the two-record benchmark: a variable-length <see langword="stackalloc"/>, which the runtime zeroes,
/// made the read about 20 % slower than renting and returning).
/// </summary>
/// <remarks>
/// Every hello that is not one record in one span is parsed from such a copy (or, for one record of at most 2 KiB
/// cut by a segment boundary, from a fixed-size stack copy), so that a single walk, the span walk, serves every input
/// shape. Usage: <c>using var copy = new ScratchBytes(length);</c>
/// </remarks>
internal ref struct ScratchBytes
{
    private byte[]? _rented;

    /// <summary>Rents at least <paramref name="length"/> bytes.</summary>
    public ScratchBytes(int length)
    {
        _rented = ArrayPool<byte>.Shared.Rent(length);
        Span = _rented.AsSpan(0, length);
    }

    /// <summary>The <c>length</c> bytes of scratch.</summary>
    public Span<byte> Span { get; }

    /// <summary>Returns the array to the pool (the bytes are a plaintext ClientHello: nothing to clear).</summary>
    public void Dispose()
    {
        if (_rented is not null)
        {
            ArrayPool<byte>.Shared.Return(_rented);
            _rented = null;
        }
    }
}

/// <summary>Reads a TLS variable-length vector (RFC 8446 §3.4: a 1- or 2-byte length, then that many bytes).</summary>
internal static class TlsVector
{
    /// <summary>
    /// The content of the vector that fills <paramref name="data"/> exactly, with a <paramref name="prefixLength"/>-byte
    /// length of at least <paramref name="minLength"/>; <see langword="false"/> when the length is short or does not match.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, int prefixLength, int minLength, out ReadOnlySpan<byte> content)
    {
        content = default;
        if (data.Length < prefixLength)
        {
            return false;
        }

        int length = prefixLength == 1 ? data[0] : BinaryPrimitives.ReadUInt16BigEndian(data);
        if (length < minLength || length != data.Length - prefixLength)
        {
            return false;
        }

        content = data[prefixLength..];
        return true;
    }
}

/// <summary>
/// The ClientHello body's fixed fields (RFC 8446 §4.1.2), split without copying: the one reading of them, shared by
/// the reader and <see cref="ClientHelloLists"/>.
/// </summary>
internal readonly ref struct ClientHelloBody
{
    // ProtocolVersion legacy_version(2); Random random(32).
    private const int LegacyVersionLength = 2;
    private const int RandomLength = 32;
    private const int MaxSessionIdLength = 32;

    private ClientHelloBody(ushort legacyVersion, ReadOnlySpan<byte> cipherSuites, ReadOnlySpan<byte> extensions)
    {
        LegacyVersion = legacyVersion;
        CipherSuites = cipherSuites;
        Extensions = extensions;
    }

    /// <summary>legacy_version.</summary>
    public ushort LegacyVersion { get; }

    /// <summary>cipher_suites without its length: a non-empty, even number of bytes.</summary>
    public ReadOnlySpan<byte> CipherSuites { get; }

    /// <summary>The extensions block without its length (empty when the hello has none); its content is not checked here.</summary>
    public ReadOnlySpan<byte> Extensions { get; }

    /// <summary>Splits <paramref name="body"/> (the handshake message after its 4-byte header), checking every length against its parent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ClientHelloError TryParse(ReadOnlySpan<byte> body, out ClientHelloBody parsed)
    {
        // struct {
        //     ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
        //     Random random;                              /* 32 bytes */
        //     opaque legacy_session_id<0..32>;
        //     CipherSuite cipher_suites<2..2^16-2>;
        //     opaque legacy_compression_methods<1..2^8-1>;
        //     Extension extensions<8..2^16-1>;            /* RFC 5246 §7.4.1.2: absent in old clients */
        // } ClientHello;
        parsed = default;
        if (body.Length < LegacyVersionLength + RandomLength + 1)
        {
            return ClientHelloError.LengthOutOfBounds;
        }

        ushort legacyVersion = BinaryPrimitives.ReadUInt16BigEndian(body);
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

        // CipherSuite cipher_suites<2..2^16-2>;  (CipherSuite is uint8[2])
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

        ReadOnlySpan<byte> cipherSuites = body[..cipherSuitesLength];

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

        // RFC 5246 §7.4.1.2: "the presence of extensions can be detected by determining whether there are bytes
        // following the compression_methods at the end of the ClientHello"; when present they fill the rest exactly.
        body = body[compressionLength..];
        if (body.IsEmpty)
        {
            parsed = new ClientHelloBody(legacyVersion, cipherSuites, default);
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

        parsed = new ClientHelloBody(legacyVersion, cipherSuites, body);
        return ClientHelloError.None;
    }
}

/// <summary>
/// The one walk over an extensions block (RFC 8446 §4.2), shared by the reader and <see cref="ClientHelloLists"/>:
/// each step reads a 4-byte header and checks that the header and the extension_data fit the block.
/// </summary>
/// <remarks>
/// <para><c>struct { ExtensionType extension_type; opaque extension_data&lt;0..2^16-1&gt;; } Extension;</c></para>
/// <para>The walk is a chain of dependent loads (each length gives the next offset), so a step is a static function
/// of a native-sized offset that the caller's loop keeps in a register, and the header is read with one unaligned
/// load at that offset. This is the one place the reader reads its input through <see cref="Unsafe"/>: the same
/// checks through span slicing (an int offset sign-extended on every step, or a walker struct) made the reader 10 to
/// 16 % slower on the benchmark hellos (interleaved A/B, docs/benchmarks.md, issue 18). The bounds are the two explicit
/// checks below; <c>ExtensionWalkerTests</c> walks every truncation and every overrunning length.</para>
/// </remarks>
internal static class ExtensionWalker
{
    /// <summary>extension_type(2) + extension_data length(2).</summary>
    public const int HeaderLength = 4;

    /// <summary>
    /// Reads the header of the extension at <paramref name="offset"/> (0 to <c>block.Length</c>; the caller stops at
    /// <c>block.Length</c>) and returns the offset of the next one, or -1 when the header or its extension_data overruns
    /// the block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Next(ReadOnlySpan<byte> block, nint offset, out uint type)
    {
        // offset + 4 <= block.Length: the 4-byte read below lies inside the block.
        if (offset > block.Length - HeaderLength)
        {
            type = 0;
            return -1;
        }

        // extension_type in the high half, the extension_data length in the low half.
        uint header = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref MemoryMarshal.GetReference(block), offset)));
        nint next = offset + HeaderLength + (nint)(header & 0xFFFF);
        if (next > block.Length)
        {
            type = 0;
            return -1;
        }

        type = header >> 16;
        return next;
    }

    /// <summary>The extension_data of the extension whose header is at <paramref name="offset"/> (which <see cref="Next"/> accepted).</summary>
    public static ReadOnlySpan<byte> Data(ReadOnlySpan<byte> block, int offset) =>
        block.Slice(offset + HeaderLength, BinaryPrimitives.ReadUInt16BigEndian(block[(offset + sizeof(ushort))..]));
}
