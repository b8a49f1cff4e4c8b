using System.Text;

namespace MeshGateway.Testing;

/// <summary>Builds TLS ClientHello records (RFC 8446 §4.1.2, RFC 6066 §3) for tests that do not need a real TLS stack.</summary>
internal static class TestHello
{
    /// <summary>A ClientHello with an optional server_name and optional padding (RFC 7685) to reach a size.</summary>
    public static byte[] Create(string? serverName, int padding = 0) => CreateRaw(serverName is null ? null : Encoding.ASCII.GetBytes(serverName), padding);

    /// <summary>A ClientHello whose server_name is exactly <paramref name="serverName"/> (any bytes, e.g. a UTF-8 IDN).</summary>
    public static byte[] CreateRaw(byte[]? serverName, int padding = 0)
    {
        var extensions = new List<byte>();
        if (serverName is byte[] name)
        {
            // server_name (0): list length, entry type host_name (0), name length, name
            AddU16(extensions, 0x0000);
            AddU16(extensions, name.Length + 5);
            AddU16(extensions, name.Length + 3);
            extensions.Add(0);
            AddU16(extensions, name.Length);
            extensions.AddRange(name);
        }

        if (padding > 0)
        {
            AddU16(extensions, 0x0015);
            AddU16(extensions, padding);
            extensions.AddRange(new byte[padding]);
        }

        var body = new List<byte> { 0x03, 0x03 };                 // legacy_version TLS 1.2
        body.AddRange(Enumerable.Range(1, 32).Select(i => (byte)i)); // random
        body.Add(0);                                              // legacy_session_id: empty
        AddU16(body, 4);                                          // cipher_suites
        AddU16(body, 0x1301);
        AddU16(body, 0xC02F);
        body.Add(1);                                              // legacy_compression_methods: null
        body.Add(0);
        AddU16(body, extensions.Count);
        body.AddRange(extensions);

        var handshake = new List<byte> { 0x01, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count };
        handshake.AddRange(body);

        var records = new List<byte>();
        for (int offset = 0; offset < handshake.Count; offset += 16384)
        {
            int length = Math.Min(16384, handshake.Count - offset);
            records.AddRange([0x16, 0x03, 0x01, (byte)(length >> 8), (byte)length]);
            records.AddRange(handshake.Skip(offset).Take(length));
        }

        return [.. records];
    }

    private static void AddU16(List<byte> output, int value)
    {
        output.Add((byte)(value >> 8));
        output.Add((byte)value);
    }
}
