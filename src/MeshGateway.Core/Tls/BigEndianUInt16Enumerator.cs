using System.Buffers.Binary;

namespace MeshGateway.Tls;

/// <summary>
/// Enumerates a TLS list of 16-bit code points (cipher suites, named groups, signature schemes: 2 big-endian bytes each)
/// without allocating. Obtained from <see cref="ClientHelloLists.CipherSuites"/>, <see cref="ClientHelloLists.SupportedGroups"/>
/// and <see cref="ClientHelloLists.SignatureAlgorithms"/>.
/// </summary>
/// <remarks>A trailing odd byte (which the reader never produces) is ignored.</remarks>
public ref struct BigEndianUInt16Enumerator
{
    private ReadOnlySpan<byte> _remaining;
    private ushort _current;

    /// <summary>Creates an enumerator over raw big-endian pairs.</summary>
    /// <param name="raw">The list bytes, e.g. <see cref="ClientHelloLists.CipherSuitesRaw"/>.</param>
    public BigEndianUInt16Enumerator(ReadOnlySpan<byte> raw)
    {
        _remaining = raw;
        _current = 0;
    }

    /// <summary>How many values the list holds.</summary>
    public readonly int Count => _remaining.Length / 2;

    /// <summary>The value at the current position.</summary>
    public readonly ushort Current => _current;

    /// <summary>Returns this enumerator, so it can be used in <see langword="foreach"/>.</summary>
    /// <returns>This enumerator.</returns>
    public readonly BigEndianUInt16Enumerator GetEnumerator() => this;

    /// <summary>Advances to the next value.</summary>
    /// <returns><see langword="true"/> when <see cref="Current"/> holds a value; <see langword="false"/> at the end.</returns>
    public bool MoveNext()
    {
        if (_remaining.Length < 2)
        {
            return false;
        }

        _current = BinaryPrimitives.ReadUInt16BigEndian(_remaining);
        _remaining = _remaining[2..];
        return true;
    }
}
