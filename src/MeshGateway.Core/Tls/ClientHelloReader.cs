using System.Buffers;

namespace MeshGateway.Tls;

/// <summary>
/// Reads a TLS ClientHello from the first bytes a client sent, without allocating, throwing or decrypting anything.
/// </summary>
public static class ClientHelloReader
{
    /// <summary>Reads a ClientHello from contiguous input with the default limits.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(ReadOnlySpan<byte> input, out ClientHelloInfo hello) => TryRead(input, default, out hello);

    /// <summary>Reads a ClientHello from contiguous input.</summary>
    /// <param name="input">The bytes received so far, starting with the first byte of the connection.</param>
    /// <param name="options">Limits.</param>
    /// <param name="hello">The result; see <see cref="ClientHelloInfo"/>.</param>
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(ReadOnlySpan<byte> input, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
    {
        hello = default;
        if (input.IsEmpty)
        {
            return ClientHelloStatus.NeedMoreData;
        }

        if (input[0] != 22)
        {
            hello.Error = ClientHelloError.NotHandshakeRecord;
            return ClientHelloStatus.NotTls;
        }

        _ = options.MaxHelloSize;
        return ClientHelloStatus.NeedMoreData;
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
    /// <returns>The outcome.</returns>
    public static ClientHelloStatus TryRead(in ReadOnlySequence<byte> input, in ClientHelloReaderOptions options, out ClientHelloInfo hello)
        => TryRead(input.FirstSpan, options, out hello);
}
