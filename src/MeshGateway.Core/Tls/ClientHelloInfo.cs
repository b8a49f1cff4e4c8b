using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// What <see cref="ClientHelloReader"/> learned from a ClientHello. The values that matter for routing are copied
/// into the struct itself, so the result does not depend on the input buffer staying alive and is the same for
/// single-record, multi-record and multi-segment input.
/// </summary>
/// <remarks>Only meaningful when the reader returned <see cref="ClientHelloStatus.Done"/>; otherwise see <see cref="Error"/>.</remarks>
public struct ClientHelloInfo
{
    /// <summary>The longest host_name the reader accepts (RFC 1035 / RFC 6066 §3): 255 bytes.</summary>
    public const int MaxHostNameLength = 255;

    /// <summary>The most extensions the reader tracks in one hello; more is <see cref="ClientHelloError.TooManyExtensions"/>.</summary>
    public const int MaxExtensions = 64;

    private HostNameBuffer _serverName;
    private int _serverNameLength;

    /// <summary>How many input bytes the ClientHello occupied, record headers included. Forward exactly these (and whatever followed them).</summary>
    public int BytesConsumed { readonly get; internal set; }

    /// <summary>Why the input was rejected; <see cref="ClientHelloError.None"/> after <see cref="ClientHelloStatus.Done"/>.</summary>
    public ClientHelloError Error { readonly get; internal set; }

    /// <summary>Whether the hello carried a server_name extension with a host_name.</summary>
    public readonly bool HasServerName => _serverNameLength > 0;

    /// <summary>Whether the host_name ends with a dot. RFC 6066 §3 forbids it; it is reported, never stripped.</summary>
    public readonly bool ServerNameEndsWithDot => _serverNameLength > 0 && _serverName[_serverNameLength - 1] == (byte)'.';

    /// <summary>The host_name bytes exactly as sent (ASCII). Empty when <see cref="HasServerName"/> is false.</summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> ServerName => ((ReadOnlySpan<byte>)_serverName)[.._serverNameLength];

    /// <summary>Copies the host_name into <paramref name="destination"/> with ASCII letters lower-cased, without allocating.</summary>
    /// <param name="destination">Receives the name; <see cref="MaxHostNameLength"/> bytes always suffice.</param>
    /// <returns>The number of bytes written, or -1 when <paramref name="destination"/> is too small.</returns>
    public readonly int CopyServerNameLowerCase(Span<byte> destination)
    {
        ReadOnlySpan<byte> name = ServerName;
        if (name.Length > destination.Length)
        {
            return -1;
        }

        System.Text.Ascii.ToLower(name, destination, out int written);
        return written;
    }

    internal void SetServerName(ReadOnlySpan<byte> name)
    {
        name.CopyTo(_serverName);
        _serverNameLength = name.Length;
    }

    [InlineArray(MaxHostNameLength)]
    private struct HostNameBuffer
    {
        private byte _element0;
    }
}
