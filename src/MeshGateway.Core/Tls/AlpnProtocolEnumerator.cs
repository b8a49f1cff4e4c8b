namespace MeshGateway.Tls;

/// <summary>
/// Enumerates an ALPN protocol_name_list (RFC 7301 §3.1: <c>opaque ProtocolName&lt;1..2^8-1&gt;</c> entries, each a 1-byte
/// length and that many bytes) without allocating. Obtained from <see cref="ClientHelloInfo.AlpnProtocols"/>.
/// </summary>
/// <remarks>A malformed list (which the reader never produces) simply ends the enumeration.</remarks>
public ref struct AlpnProtocolEnumerator
{
    private ReadOnlySpan<byte> _remaining;
    private ReadOnlySpan<byte> _current;

    /// <summary>Creates an enumerator over a raw protocol_name_list (without its 2-byte length prefix).</summary>
    /// <param name="protocolNameList">The list bytes, e.g. <see cref="ClientHelloInfo.AlpnProtocolsRaw"/>.</param>
    public AlpnProtocolEnumerator(ReadOnlySpan<byte> protocolNameList)
    {
        _remaining = protocolNameList;
        _current = default;
    }

    /// <summary>The protocol at the current position, e.g. the bytes of "h2".</summary>
    public readonly ReadOnlySpan<byte> Current => _current;

    /// <summary>Returns this enumerator, so it can be used in <see langword="foreach"/>.</summary>
    /// <returns>This enumerator.</returns>
    public readonly AlpnProtocolEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next protocol.</summary>
    /// <returns><see langword="true"/> when <see cref="Current"/> holds a protocol; <see langword="false"/> at the end.</returns>
    public bool MoveNext()
    {
        ReadOnlySpan<byte> remaining = _remaining;
        if (remaining.IsEmpty)
        {
            return false;
        }

        int length = remaining[0];
        if (length == 0 || length >= remaining.Length)
        {
            _remaining = default;
            return false;
        }

        _current = remaining.Slice(1, length);
        _remaining = remaining[(1 + length)..];
        return true;
    }
}
