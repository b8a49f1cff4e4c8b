using System.Buffers.Binary;
using System.Text;

namespace MeshGateway.Tests.Tls;

/// <summary>
/// ClientHello fixtures, written field by field after RFC 8446 §4.1.2 / §5.1, RFC 6066 §3 and RFC 7301 §3.1.
/// Also compiled into the benchmarks, so tests and benchmarks parse the very same bytes.
/// </summary>
internal static class ClientHelloFixtures
{
    public const string ChromeHost = "api.default.dc2.internal.5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul";

    /// <summary>A minimal TLS 1.2 ClientHello (curl-like, no session id), 103 bytes, written out by hand.</summary>
    public static byte[] Tls12Small =>
    [
        // TLSPlaintext (RFC 8446 §5.1)
        0x16,                   // ContentType handshake(22)
        0x03, 0x01,             // legacy_record_version TLS 1.0
        0x00, 0x62,             // length 98
        // Handshake (RFC 8446 §4)
        0x01,                   // msg_type client_hello(1)
        0x00, 0x00, 0x5E,       // length 94
        // ClientHello (RFC 8446 §4.1.2)
        0x03, 0x03,             // legacy_version TLS 1.2
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, // random[0..16)
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, // random[16..32)
        0x00,                   // legacy_session_id<0..32>: empty
        0x00, 0x04,             // cipher_suites<2..2^16-2>: 4 bytes
        0xC0, 0x2F,             //   TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        0xC0, 0x30,             //   TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        0x01, 0x00,             // legacy_compression_methods<1..2^8-1>: null(0)
        0x00, 0x31,             // extensions<8..2^16-1>: 49 bytes
        0x00, 0x00,             //   server_name(0)                         RFC 6066 §3
        0x00, 0x10,             //     extension_data length 16
        0x00, 0x0E,             //     server_name_list length 14
        0x00,                   //       name_type host_name(0)
        0x00, 0x0B,             //       HostName length 11
        (byte)'E', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', (byte)'.', (byte)'c', (byte)'o', (byte)'m',
        0x00, 0x0A,             //   supported_groups(10)
        0x00, 0x06,             //     extension_data length 6
        0x00, 0x04,             //     named_group_list length 4
        0x00, 0x1D, 0x00, 0x17, //       x25519, secp256r1
        0x00, 0x0D,             //   signature_algorithms(13)
        0x00, 0x06,             //     extension_data length 6
        0x00, 0x04,             //     supported_signature_algorithms length 4
        0x04, 0x01, 0x08, 0x04, //       rsa_pkcs1_sha256, rsa_pss_rsae_sha256
        0x00, 0x17,             //   extended_master_secret(23)
        0x00, 0x00,             //     extension_data length 0
        0xFF, 0x01,             //   renegotiation_info(0xff01)
        0x00, 0x01,             //     extension_data length 1
        0x00,                   //     renegotiated_connection<0..255>: empty
    ];

    /// <summary>A Chrome-like TLS 1.3 hello of about 600 bytes: GREASE, SNI, ALPN h2/http1.1, ECH GREASE, x25519 key share.</summary>
    public static byte[] ChromeLike => Record(ChromeLikeBuilder(postQuantum: false).Message());

    /// <summary>The Chrome-like hello with an X25519MLKEM768 key share (1216 + 32 bytes): about 1.8 KB, as Chrome 131+ sends.</summary>
    public static byte[] PostQuantum => Record(ChromeLikeBuilder(postQuantum: true).Message());

    /// <summary>The post-quantum hello padded (padding extension, RFC 7685) to about 3.3 KB: one record, too big for the stack copy.</summary>
    public static byte[] PaddedPostQuantum
    {
        get
        {
            HelloBuilder builder = ChromeLikeBuilder(postQuantum: true);
            builder.Extensions!.Insert(builder.Extensions.Count - 1, (21, Filled(1500, 0)));   // padding before the last GREASE
            return Record(builder.Message());
        }
    }

    /// <summary>Extension types the Chrome-like builder emits, in order (GREASE values at both ends).</summary>
    public static ushort[] ChromeLikeExtensionOrder(bool postQuantum) =>
        [.. ChromeLikeBuilder(postQuantum).Extensions!.Select(e => e.Type)];

    public static HelloBuilder ChromeLikeBuilder(bool postQuantum)
    {
        var b = new HelloBuilder
        {
            SessionId = Filled(32, 0x5A),                 // legacy_session_id: 32 random bytes (middlebox compatibility mode)
            CipherSuites =
            [
                0x2A2A,                                   // GREASE (RFC 8701)
                0x1301, 0x1302, 0x1303,                   // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256
                0xC02B, 0xC02F, 0xC02C, 0xC030,           // ECDHE-ECDSA/RSA AES-GCM
                0xCCA9, 0xCCA8, 0xC013, 0xC014,           // ECDHE ChaCha20, ECDHE-RSA AES-CBC
                0x009C, 0x009D, 0x002F, 0x0035,           // RSA AES-GCM, RSA AES-CBC
            ],
        };

        b.Add(0x0A0A, []);                                                   // GREASE extension, empty
        b.Add(0, HelloBuilder.ServerName(ChromeHost));                       // server_name
        b.Add(23, []);                                                       // extended_master_secret
        b.Add(0xFF01, [0]);                                                  // renegotiation_info: empty
        b.Add(10, HelloBuilder.U16List(postQuantum                           // supported_groups: GREASE, [X25519MLKEM768,] x25519, P-256, P-384
            ? [0x5A5A, 0x11EC, 0x001D, 0x0017, 0x0018]
            : [0x5A5A, 0x001D, 0x0017, 0x0018]));
        b.Add(11, [1, 0]);                                                   // ec_point_formats: uncompressed
        b.Add(35, []);                                                       // session_ticket: empty
        b.Add(16, HelloBuilder.Alpn("h2", "http/1.1"));                     // application_layer_protocol_negotiation
        b.Add(5, [1, 0, 0, 0, 0]);                                           // status_request: ocsp, no ids, no extensions
        b.Add(13, HelloBuilder.U16List([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601])); // signature_algorithms
        b.Add(18, []);                                                       // signed_certificate_timestamp
        b.Add(51, HelloBuilder.KeyShare(postQuantum                          // key_share: GREASE(1 byte), [X25519MLKEM768 1216,] x25519 32
            ? [(0x5A5A, 1), (0x11EC, 1216), (0x001D, 32)]
            : [(0x5A5A, 1), (0x001D, 32)]));
        b.Add(45, [1, 1]);                                                   // psk_key_exchange_modes: psk_dhe_ke
        b.Add(43, [6, 0x7A, 0x7A, 0x03, 0x04, 0x03, 0x03]);                  // supported_versions: GREASE, TLS 1.3, TLS 1.2
        b.Add(27, [2, 0, 2]);                                                // compress_certificate: brotli
        b.Add(0x44CD, [0, 3, 2, (byte)'h', (byte)'2']);                      // application_settings (ALPS): h2
        b.Add(0xFE0D, EchGrease());                                          // encrypted_client_hello: outer, GREASE payload
        b.Add(0x1A1A, [0]);                                                  // GREASE extension, 1 byte
        return b;
    }

    /// <summary>
    /// An ECH outer extension as Chrome's GREASE ECH sends it (draft-ietf-tls-esni §5): type outer(0), HPKE suite,
    /// config_id, 32-byte enc, 208-byte payload.
    /// </summary>
    private static byte[] EchGrease()
    {
        var data = new List<byte> { 0x00, 0x00, 0x01, 0x00, 0x01, 0x42 }; // outer(0), kdf HKDF-SHA256, aead AES-128-GCM, config_id
        data.AddRange(HelloBuilder.Vector16(Filled(32, 0x33)));          // enc<0..2^16-1>
        data.AddRange(HelloBuilder.Vector16(Filled(208, 0x44)));         // payload<1..2^16-1>
        return [.. data];
    }

    public static byte[] Filled(int length, byte value)
    {
        byte[] bytes = new byte[length];
        bytes.AsSpan().Fill(value);
        return bytes;
    }

    /// <summary>Frames a handshake message into handshake records of the given payload sizes (the last takes the rest, in 2^14 pieces).</summary>
    public static byte[] Record(ReadOnlySpan<byte> message, IReadOnlyList<int>? recordSizes = null, ushort recordVersion = 0x0301)
    {
        var output = new List<byte>(message.Length + 64);
        int offset = 0;
        foreach (int size in recordSizes ?? [])
        {
            int take = Math.Min(size, message.Length - offset);
            AppendRecord(output, message.Slice(offset, take), recordVersion);
            offset += take;
            if (offset == message.Length)
            {
                return [.. output];
            }
        }

        while (offset < message.Length)
        {
            int take = Math.Min(1 << 14, message.Length - offset);
            AppendRecord(output, message.Slice(offset, take), recordVersion);
            offset += take;
        }

        return [.. output];
    }

    /// <summary>Recovers the handshake message from well-formed handshake records (the inverse of <see cref="Record"/>).</summary>
    public static byte[] Unrecord(ReadOnlySpan<byte> records)
    {
        var message = new List<byte>();
        while (records.Length >= 5)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(records[3..]);
            message.AddRange(records.Slice(5, length).ToArray());
            records = records[(5 + length)..];
        }

        return [.. message];
    }

    public static void AppendRecord(List<byte> output, ReadOnlySpan<byte> payload, ushort recordVersion = 0x0301)
    {
        output.Add(22);                                     // ContentType handshake
        output.Add((byte)(recordVersion >> 8));             // legacy_record_version
        output.Add((byte)recordVersion);
        output.Add((byte)(payload.Length >> 8));            // length
        output.Add((byte)payload.Length);
        output.AddRange(payload.ToArray());                 // fragment
    }
}

/// <summary>Builds a ClientHello message (RFC 8446 §4.1.2) from its fields.</summary>
internal sealed class HelloBuilder
{
    public ushort LegacyVersion { get; set; } = 0x0303;

    public byte[] Random { get; set; } = ClientHelloFixtures.Filled(32, 0x11);

    public byte[] SessionId { get; set; } = [];

    public ushort[] CipherSuites { get; set; } = [0x1301, 0xC02F];

    public byte[] CompressionMethods { get; set; } = [0];

    /// <summary>The extensions in order; <see langword="null"/> leaves the extensions block out (a pre-TLS 1.2 style hello).</summary>
    public List<(ushort Type, byte[] Data)>? Extensions { get; set; } = [];

    public HelloBuilder Add(ushort type, byte[] data)
    {
        (Extensions ??= []).Add((type, data));
        return this;
    }

    /// <summary>The ClientHello body (no handshake header).</summary>
    public byte[] Body()
    {
        var body = new List<byte>();
        body.Add((byte)(LegacyVersion >> 8));
        body.Add((byte)LegacyVersion);
        body.AddRange(Random);
        body.AddRange(Vector8(SessionId));
        body.AddRange(U16List(CipherSuites));
        body.AddRange(Vector8(CompressionMethods));
        if (Extensions is not null)
        {
            var block = new List<byte>();
            foreach ((ushort type, byte[] data) in Extensions)
            {
                block.Add((byte)(type >> 8));
                block.Add((byte)type);
                block.AddRange(Vector16(data));
            }

            body.AddRange(Vector16([.. block]));
        }

        return [.. body];
    }

    /// <summary>The handshake message: msg_type client_hello(1), uint24 length, body.</summary>
    public byte[] Message() => Handshake(Body());

    public static byte[] Handshake(byte[] body, byte type = 1) =>
        [type, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];

    public static byte[] Vector8(byte[] data) => [(byte)data.Length, .. data];

    public static byte[] Vector16(byte[] data) => [(byte)(data.Length >> 8), (byte)data.Length, .. data];

    /// <summary>A uint16 vector of uint16 values, e.g. cipher_suites or named_group_list.</summary>
    public static byte[] U16List(ushort[] values) =>
        Vector16([.. values.SelectMany(v => new[] { (byte)(v >> 8), (byte)v })]);

    /// <summary>server_name extension_data (RFC 6066 §3) with one host_name.</summary>
    public static byte[] ServerName(string host) => ServerNameList((0, Encoding.ASCII.GetBytes(host)));

    /// <summary>server_name extension_data with arbitrary entries.</summary>
    public static byte[] ServerNameList(params (byte Type, byte[] Name)[] entries) =>
        Vector16([.. entries.SelectMany(e => new[] { e.Type }.Concat(Vector16(e.Name)))]);

    /// <summary>ALPN extension_data (RFC 7301 §3.1).</summary>
    public static byte[] Alpn(params string[] protocols) =>
        Vector16([.. protocols.SelectMany(p => Vector8(Encoding.ASCII.GetBytes(p)))]);

    /// <summary>key_share extension_data (RFC 8446 §4.2.8): KeyShareEntry client_shares&lt;0..2^16-1&gt;.</summary>
    public static byte[] KeyShare((ushort Group, int Length)[] shares) =>
        Vector16([.. shares.SelectMany(s => new[] { (byte)(s.Group >> 8), (byte)s.Group }.Concat(Vector16(ClientHelloFixtures.Filled(s.Length, 0x77))))]);
}
