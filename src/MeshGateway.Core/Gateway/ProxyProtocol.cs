using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Gateway;

/// <summary>The outcome of reading a PROXY protocol v2 header.</summary>
internal enum ProxyHeaderStatus
{
    /// <summary>A complete, valid header.</summary>
    Done,

    /// <summary>What arrived so far is a valid prefix: read more.</summary>
    NeedMoreData,

    /// <summary>The connection does not start with the v2 signature (no header, or a v1 text header).</summary>
    Missing,

    /// <summary>The signature is there but the header is malformed (version, command, lengths).</summary>
    Invalid,
}

/// <summary>
/// PROXY protocol version 2 (haproxy doc/proxy-protocol.txt, section 2.2), the binary header a TCP load balancer
/// (HAProxy, AWS NLB, ...) puts in front of a connection to pass on the client's address; read on listeners that
/// opt in, and optionally written toward upstreams.
/// </summary>
/// <remarks>
/// Written here rather than taken from a library: the BCL has none, and the gateway needs a span-based, allocation-free
/// reader that composes with its own ClientHello loop (the header and the hello arrive in the same buffer).
/// </remarks>
internal static class ProxyProtocol
{
    /// <summary>The 16-byte fixed part: 12-byte signature, version/command, family/transport, 2-byte length.</summary>
    public const int FixedLength = 16;

    /// <summary>The longest header accepted (fixed part, addresses and TLVs); longer is <see cref="ProxyHeaderStatus.Invalid"/>.</summary>
    public const int MaxHeaderLength = 1024;

    /// <summary>Header length for a TCP over IPv4 address block: 16 + 4 + 4 + 2 + 2.</summary>
    public const int Ipv4HeaderLength = FixedLength + 12;

    /// <summary>Header length for a TCP over IPv6 address block: 16 + 16 + 16 + 2 + 2.</summary>
    public const int Ipv6HeaderLength = FixedLength + 36;

    private const byte Version2 = 0x20;
    private const byte CommandLocal = 0x00;
    private const byte CommandProxy = 0x01;
    private const byte TcpOverIpv4 = 0x11;
    private const byte TcpOverIpv6 = 0x21;

    /// <summary>\r\n\r\n\0\r\nQUIT\n</summary>
    private static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>Reads a header from the start of <paramref name="input"/>.</summary>
    /// <param name="input">The bytes received so far.</param>
    /// <param name="headerLength">For <see cref="ProxyHeaderStatus.Done"/>: the header's length (the payload follows it).</param>
    /// <param name="source">For a PROXY command over TCP/IPv4 or IPv6: the client's address; null for LOCAL (a health check from the balancer itself) and other families.</param>
    /// <param name="destination">Like <paramref name="source"/>: the address the client connected to.</param>
    /// <returns>The status.</returns>
    public static ProxyHeaderStatus TryRead(ReadOnlySpan<byte> input, out int headerLength, out IPEndPoint? source, out IPEndPoint? destination)
    {
        headerLength = 0;
        source = null;
        destination = null;
        int prefix = Math.Min(input.Length, Signature.Length);
        if (!input[..prefix].SequenceEqual(Signature[..prefix]))
        {
            return ProxyHeaderStatus.Missing;
        }

        if (input.Length < FixedLength)
        {
            return ProxyHeaderStatus.NeedMoreData;
        }

        // 13th byte: version (high nibble, must be 2) and command (low nibble: 0 LOCAL, 1 PROXY).
        byte versionCommand = input[12];
        byte command = (byte)(versionCommand & 0x0F);
        if ((versionCommand & 0xF0) != Version2 || command > CommandProxy)
        {
            return ProxyHeaderStatus.Invalid;
        }

        // 14th byte: address family and transport; 15th-16th: length of what follows, big-endian.
        byte family = input[13];
        int length = BinaryPrimitives.ReadUInt16BigEndian(input.Slice(14, 2));
        int total = FixedLength + length;
        if (total > MaxHeaderLength
            || (family == TcpOverIpv4 && length < Ipv4HeaderLength - FixedLength)
            || (family == TcpOverIpv6 && length < Ipv6HeaderLength - FixedLength))
        {
            return ProxyHeaderStatus.Invalid;
        }

        if (input.Length < total)
        {
            return ProxyHeaderStatus.NeedMoreData;
        }

        headerLength = total;
        if (command == CommandLocal)
        {
            return ProxyHeaderStatus.Done;
        }

        ReadOnlySpan<byte> addresses = input[FixedLength..total];
        if (family == TcpOverIpv4)
        {
            source = new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses.Slice(8, 2)));
            destination = new IPEndPoint(new IPAddress(addresses.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(addresses.Slice(10, 2)));
        }
        else if (family == TcpOverIpv6)
        {
            source = new IPEndPoint(new IPAddress(addresses[..16]), BinaryPrimitives.ReadUInt16BigEndian(addresses.Slice(32, 2)));
            destination = new IPEndPoint(new IPAddress(addresses.Slice(16, 16)), BinaryPrimitives.ReadUInt16BigEndian(addresses.Slice(34, 2)));
        }

        // Other families (UNSPEC, UNIX, UDP): the receiver must accept the header and ignore its addresses (2.2).
        return ProxyHeaderStatus.Done;
    }

    /// <summary>The length of the header <see cref="Write"/> produces for these addresses.</summary>
    public static int GetLength(IPEndPoint source, IPEndPoint destination)
        => Normalize(source, destination, out _, out _) == AddressFamily.InterNetwork ? Ipv4HeaderLength : Ipv6HeaderLength;

    /// <summary>Writes a PROXY command header for a TCP connection from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    /// <returns>Bytes written (<see cref="GetLength"/>).</returns>
    public static int Write(Span<byte> destinationBuffer, IPEndPoint source, IPEndPoint destination)
    {
        AddressFamily family = Normalize(source, destination, out IPAddress from, out IPAddress to);
        int addressLength = family == AddressFamily.InterNetwork ? 4 : 16;
        int length = FixedLength + (2 * addressLength) + 4;
        Span<byte> header = destinationBuffer[..length];
        Signature.CopyTo(header);
        header[12] = Version2 | CommandProxy;
        header[13] = family == AddressFamily.InterNetwork ? TcpOverIpv4 : TcpOverIpv6;
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(14, 2), (ushort)(length - FixedLength));
        from.TryWriteBytes(header.Slice(FixedLength, addressLength), out _);
        to.TryWriteBytes(header.Slice(FixedLength + addressLength, addressLength), out _);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(FixedLength + (2 * addressLength), 2), (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(FixedLength + (2 * addressLength) + 2, 2), (ushort)destination.Port);
        return length;
    }

    /// <summary>Both addresses in one family: IPv4 when both are IPv4 (or IPv4-mapped), otherwise both as IPv6.</summary>
    private static AddressFamily Normalize(IPEndPoint source, IPEndPoint destination, out IPAddress from, out IPAddress to)
    {
        from = source.Address.IsIPv4MappedToIPv6 ? source.Address.MapToIPv4() : source.Address;
        to = destination.Address.IsIPv4MappedToIPv6 ? destination.Address.MapToIPv4() : destination.Address;
        if (from.AddressFamily == AddressFamily.InterNetwork && to.AddressFamily == AddressFamily.InterNetwork)
        {
            return AddressFamily.InterNetwork;
        }

        from = from.AddressFamily == AddressFamily.InterNetwork ? from.MapToIPv6() : from;
        to = to.AddressFamily == AddressFamily.InterNetwork ? to.MapToIPv6() : to;
        return AddressFamily.InterNetworkV6;
    }
}
