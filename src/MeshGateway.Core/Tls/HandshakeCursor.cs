using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// Sequential access to the raw input (record headers and payloads), contiguous or multi-segment. The reader only
/// moves forward. <see cref="Remaining"/> is clamped to <see cref="int.MaxValue"/>; the reader never looks further
/// than <see cref="ClientHelloReaderOptions.MaxAllowedHelloSize"/> bytes.
/// </summary>
internal interface IRawInput
{
    /// <summary>Bytes from the current position to the end of the input.</summary>
    public int Remaining { get; }

    /// <summary>The contiguous bytes from the current position (empty only at the end of the input).</summary>
    public ReadOnlySpan<byte> UnreadSpan { get; }

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

    public readonly ReadOnlySpan<byte> UnreadSpan => _rest;

    public void Advance(int count) => _rest = _rest[count..];

    public readonly void Peek(scoped Span<byte> destination) => _rest[..destination.Length].CopyTo(destination);
}

/// <summary>Multi-segment raw input over a <see cref="SequenceReader{T}"/> (which skips empty segments, never allocates).</summary>
internal ref struct SequenceInput : IRawInput
{
    private SequenceReader<byte> _reader;

    public SequenceInput(in ReadOnlySequence<byte> input) => _reader = new SequenceReader<byte>(input);

    public readonly int Remaining => (int)Math.Min(_reader.Remaining, int.MaxValue);

    public readonly ReadOnlySpan<byte> UnreadSpan => _reader.UnreadSpan;

    public void Advance(int count) => _reader.Advance(count);

    public readonly void Peek(scoped Span<byte> destination) => _reader.TryCopyTo(destination);
}

/// <summary>Yields the pieces of the handshake byte stream, in order: record payloads, cut further at segment boundaries.</summary>
internal interface IChunkSource
{
    /// <summary>Gets the next piece (possibly empty); <see langword="false"/> when the input holds no more.</summary>
    public bool TryGetNext(out ReadOnlySpan<byte> chunk);
}

/// <summary>The source for a hello parsed in place: the whole handshake message is the cursor's first chunk.</summary>
internal readonly ref struct NoMoreChunks : IChunkSource
{
    public bool TryGetNext(out ReadOnlySpan<byte> chunk)
    {
        chunk = default;
        return false;
    }
}

/// <summary>
/// Walks TLS records (RFC 8446 §5.1: type(1) legacy_record_version(2) length(2) fragment) from the start of the input
/// and yields their payloads. The record headers were validated by the framing pass before this runs.
/// </summary>
internal ref struct RecordChunks<TInput> : IChunkSource
    where TInput : IRawInput, allows ref struct
{
    private TInput _input;
    private int _recordRemaining;

    public RecordChunks(TInput input)
    {
        _input = input;
        _recordRemaining = 0;
    }

    public bool TryGetNext(out ReadOnlySpan<byte> chunk)
    {
        if (_recordRemaining == 0)
        {
            // Next record header; its length is at offset 3 (RFC 8446 §5.1 TLSPlaintext).
            if (_input.Remaining < ClientHelloReader.RecordHeaderLength)
            {
                chunk = default;
                return false;
            }

            Span<byte> header = stackalloc byte[ClientHelloReader.RecordHeaderLength];
            _input.Peek(header);
            _input.Advance(ClientHelloReader.RecordHeaderLength);
            _recordRemaining = BinaryPrimitives.ReadUInt16BigEndian(header[ClientHelloReader.RecordLengthOffset..]);

            // An empty record yields an empty chunk; the cursor asks again.
            chunk = default;
            return true;
        }

        ReadOnlySpan<byte> unread = _input.UnreadSpan;
        if (unread.IsEmpty)
        {
            chunk = default;
            return false;
        }

        int take = Math.Min(unread.Length, _recordRemaining);
        chunk = unread[..take];
        _input.Advance(take);
        _recordRemaining -= take;
        return true;
    }
}

/// <summary>
/// Reads the handshake byte stream (record headers removed) from a chunk source. Reads inside the current chunk are a
/// bounds check and a slice; crossing into the next chunk takes the no-inline slow path. The caller checks every length
/// against its parent structure before reading, and the framing pass guarantees the whole message is present, so the
/// source never runs dry; if it did (a bug), <see cref="Overrun"/> is set and zeros are read instead of throwing.
/// </summary>
internal ref struct HandshakeCursor<TSource>
    where TSource : IChunkSource, allows ref struct
{
    private ReadOnlySpan<byte> _chunk;
    private TSource _source;
    private int _chunkEnd;
    private bool _overrun;

    public HandshakeCursor(ReadOnlySpan<byte> first, TSource source)
    {
        _chunk = first;
        _source = source;
        _chunkEnd = first.Length;
        _overrun = false;
    }

    /// <summary>How many handshake bytes have been read or skipped.</summary>
    public readonly int Position => _chunkEnd - _chunk.Length;

    /// <summary>The unread rest of the current chunk (empty at a chunk boundary), for walking it as a span.</summary>
    public readonly ReadOnlySpan<byte> CurrentChunk => _chunk;

    /// <summary>Whether a read went past the available input (never, unless the parser has a bug).</summary>
    public readonly bool Overrun => _overrun;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte ReadByte()
    {
        ReadOnlySpan<byte> chunk = _chunk;
        if (!chunk.IsEmpty)
        {
            _chunk = chunk[1..];
            return chunk[0];
        }

        return ReadByteSlow();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ushort ReadUInt16()
    {
        ReadOnlySpan<byte> chunk = _chunk;
        if (chunk.Length >= sizeof(ushort))
        {
            _chunk = chunk[sizeof(ushort)..];
            return BinaryPrimitives.ReadUInt16BigEndian(chunk);
        }

        return ReadUInt16Slow();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Skip(int count)
    {
        ReadOnlySpan<byte> chunk = _chunk;
        if ((uint)count <= (uint)chunk.Length)
        {
            _chunk = chunk[count..];
            return;
        }

        SkipSlow(count);
    }

    /// <summary>Reads <c>destination.Length</c> bytes into <paramref name="destination"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyTo(scoped Span<byte> destination)
    {
        ReadOnlySpan<byte> chunk = _chunk;
        if (destination.Length <= chunk.Length)
        {
            chunk[..destination.Length].CopyTo(destination);
            _chunk = chunk[destination.Length..];
            return;
        }

        CopyToSlow(destination);
    }

    /// <summary>Returns the next <paramref name="count"/> bytes in place when they lie in the current chunk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReadContiguous(int count, out ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<byte> chunk = _chunk;
        if ((uint)count <= (uint)chunk.Length)
        {
            bytes = chunk[..count];
            _chunk = chunk[count..];
            return true;
        }

        bytes = default;
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private byte ReadByteSlow()
    {
        while (_chunk.IsEmpty)
        {
            if (!NextChunk())
            {
                return 0;
            }
        }

        byte value = _chunk[0];
        _chunk = _chunk[1..];
        return value;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ushort ReadUInt16Slow()
    {
        int high = ReadByte();
        return (ushort)((high << 8) | ReadByte());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SkipSlow(int count)
    {
        while (count > _chunk.Length)
        {
            count -= _chunk.Length;
            _chunk = default;
            if (!NextChunk())
            {
                return;
            }
        }

        _chunk = _chunk[count..];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CopyToSlow(scoped Span<byte> destination)
    {
        while (destination.Length > _chunk.Length)
        {
            _chunk.CopyTo(destination);
            destination = destination[_chunk.Length..];
            _chunk = default;
            if (!NextChunk())
            {
                destination.Clear();
                return;
            }
        }

        _chunk[..destination.Length].CopyTo(destination);
        _chunk = _chunk[destination.Length..];
    }

    /// <summary>Moves to the next non-empty chunk; the current one must be exhausted.</summary>
    private bool NextChunk()
    {
        while (_source.TryGetNext(out ReadOnlySpan<byte> next))
        {
            if (!next.IsEmpty)
            {
                _chunk = next;
                _chunkEnd += next.Length;
                return true;
            }
        }

        _overrun = true;
        return false;
    }
}
