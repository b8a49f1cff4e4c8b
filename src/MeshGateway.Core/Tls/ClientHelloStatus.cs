namespace MeshGateway.Tls;

/// <summary>The outcome of <see cref="ClientHelloReader.TryRead(ReadOnlySpan{byte}, out ClientHelloInfo)"/>.</summary>
/// <remarks>Every outcome is distinct; <see cref="ClientHelloInfo.Error"/> gives the specific reason for the failures.</remarks>
public enum ClientHelloStatus
{
    /// <summary>A complete ClientHello was read. <see cref="ClientHelloInfo.BytesConsumed"/> says how many input bytes it occupied.</summary>
    Done = 0,

    /// <summary>The input is a valid prefix of a ClientHello; call again with more bytes (the same bytes plus what arrived since).</summary>
    NeedMoreData = 1,

    /// <summary>The first byte is not a TLS handshake record (for example HTTP, SSH or an SSLv2-compatible hello).</summary>
    NotTls = 2,

    /// <summary>The input is TLS but malformed or disallowed; <see cref="ClientHelloInfo.Error"/> names the reason.</summary>
    Invalid = 3,

    /// <summary>The ClientHello (or its records) would exceed <see cref="ClientHelloReaderOptions.MaxHelloSize"/>.</summary>
    TooLarge = 4,
}
