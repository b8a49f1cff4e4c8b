namespace MeshGateway.Splicing;

/// <summary>
/// The bytes a connection read from the client before its splice began, handed to the splice to send upstream first:
/// <c>Buffer[Start..End]</c>, a buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> that the splice
/// returns (see <see cref="SocketSplice"/>). The first <see cref="HeaderLength"/> bytes, when not 0, are a header the
/// gateway wrote itself (PROXY protocol): sent, not counted as the client's.
/// </summary>
internal readonly struct ReplayPrefix
{
    public ReplayPrefix(byte[] buffer, int start, int end, int headerLength)
    {
        Buffer = buffer;
        Start = start;
        End = end;
        HeaderLength = headerLength;
    }

    /// <summary>The pooled buffer; null for no prefix.</summary>
    public byte[]? Buffer { get; }

    /// <summary>Where the bytes to send start (the header, when there is one).</summary>
    public int Start { get; }

    /// <summary>Where they end.</summary>
    public int End { get; }

    /// <summary>How many of the first bytes are the gateway's own header.</summary>
    public int HeaderLength { get; }
}
