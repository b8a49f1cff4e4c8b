using System.Buffers.Binary;
using System.Text;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>
/// A small SNI extractor for the interim test gateway (main's <c>ClientHelloReader</c> is still the stub until the
/// data plane lands): joins the handshake fragments of the leading TLS records and reads the <c>server_name</c>
/// extension (RFC 8446 §4.1.2, RFC 6066 §3).
/// </summary>
internal static class TestSniParser
{
    /// <summary>Returns <see langword="true"/> when done (<paramref name="serverName"/> set, or <see langword="null"/> if malformed); <see langword="false"/> when more bytes are needed.</summary>
    public static bool TryRead(ReadOnlySpan<byte> input, out string? serverName)
    {
        serverName = null;
        var handshake = new List<byte>();
        int offset = 0;
        int needed = -1;
        while (needed < 0 || handshake.Count < needed)
        {
            if (input.Length - offset < 5)
            {
                return false;
            }

            if (input[offset] != 22)
            {
                return true;
            }

            int length = BinaryPrimitives.ReadUInt16BigEndian(input[(offset + 3)..]);
            if (input.Length - offset - 5 < length)
            {
                return false;
            }

            handshake.AddRange(input.Slice(offset + 5, length));
            offset += 5 + length;
            if (needed < 0 && handshake.Count >= 4)
            {
                if (handshake[0] != 1)
                {
                    return true;
                }

                needed = 4 + ((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]);
            }
        }

        ReadOnlySpan<byte> body = handshake.ToArray().AsSpan(4, needed - 4);
        try
        {
            int p = 2 + 32;
            p += 1 + body[p];
            p += 2 + BinaryPrimitives.ReadUInt16BigEndian(body[p..]);
            p += 1 + body[p];
            int end = p + 2 + BinaryPrimitives.ReadUInt16BigEndian(body[p..]);
            p += 2;
            while (p + 4 <= end)
            {
                int type = BinaryPrimitives.ReadUInt16BigEndian(body[p..]);
                int length = BinaryPrimitives.ReadUInt16BigEndian(body[(p + 2)..]);
                if (type == 0)
                {
                    ReadOnlySpan<byte> sni = body.Slice(p + 4, length);
                    int nameLength = BinaryPrimitives.ReadUInt16BigEndian(sni[3..]);
                    serverName = Encoding.ASCII.GetString(sni.Slice(5, nameLength)).ToLowerInvariant();
                    return true;
                }

                p += 4 + length;
            }
        }
        catch (ArgumentOutOfRangeException)
        {
        }

        return true;
    }
}
