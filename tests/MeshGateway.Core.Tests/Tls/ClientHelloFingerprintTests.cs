using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using MeshGateway.Tls;
using static MeshGateway.Tests.Tls.ClientHelloFixtures;
using HelloAndLists = (MeshGateway.Tls.ClientHelloInfo Hello, MeshGateway.Tls.ClientHelloLists Lists);

namespace MeshGateway.Tests.Tls;

/// <summary>JA3 and JA4 fingerprints (<see cref="ClientHelloFingerprint"/>) against published vectors.</summary>
public sealed class ClientHelloFingerprintTests
{
    private static readonly ClientHelloReaderOptions s_large = new() { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize };

    /// <summary>
    /// Real ClientHellos from the JA4 suite, FoxIO-LLC/ja4 commit 0e54bc8: the bytes are the client's first TCP payload
    /// in <c>pcap/&lt;file&gt;</c>, the expected values are <c>JA4.1</c> and <c>JA4_r.1</c> of the same stream in
    /// <c>python/test/testdata/&lt;file&gt;.json</c> (the Rust snapshots in <c>rust/ja4/src/snapshots</c> agree).
    /// </summary>
    public static readonly Ja4Vector[] Ja4Vectors =
    [
        // tls-alpn-h2.pcap, client port 64034 (www.cloudflare.com)
        new("tls-alpn-h2.pcap", "t12d4605h2_85626a9a5f7f_aaf95bb78ec9", "t12d4605h2_0004,0005,000a,0016,002f,0033,0035,0039,003c,003d,0041,0045,0067,006b,0081,0084,0088,009c,009d,009e,009f,00ba,00be,00c0,00c4,00ff,c007,c008,c009,c00a,c011,c012,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa,ff85_000a,000b,000d_0601,0603,efef,0501,0503,0401,0403,eeee,eded,0301,0303,0201,0203",
            "16030100e8010000e40303858226c04fbaeddef4246093b4cfdab38f9dcfef145360e417686575cac49c7000005cc030c02cc028c024c014" +
            "c00a009f006b0039cca9cca8ccaaff8500c400880081009d003d003500c00084c02fc02bc027c023c013c009009e0067003300be0045009c" +
            "003c002f00ba0041c011c00700050004c012c0080016000a00ff0100005f0000001700150000127777772e636c6f7564666c6172652e636f" +
            "6d000b00020100000a00080006001d00170018000d001c001a06010603efef0501050304010403eeeeeded03010303020102030010000e00" +
            "0c02683208687474702f312e31"),
        // tls12.pcap, client port 36372 (contile.services.mozilla.com)
        new("tls12.pcap", "t13d1715h2_5b57614c22b0_3d5424432f57", "t13d1715h2_002f,0035,009c,009d,1301,1302,1303,c009,c00a,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0015,0017,001c,0022,0023,002b,002d,0033,ff01_0403,0503,0603,0804,0805,0806,0401,0501,0601,0203,0201",
            "1603010200010001fc0303ecb2691addb2bf6c599c7aaae23de5f42561cc04eb41029acc6fc050a16ac1d22046f8617b580ac9358e2aa44e" +
            "306d52466bcc989c87c8ca64309f5faf50ba7b4d0022130113031302c02bc02fcca9cca8c02cc030c00ac009c013c014009c009d002f0035" +
            "0100019100000021001f00001c636f6e74696c652e73657276696365732e6d6f7a696c6c612e636f6d00170000ff01000100000a000e000c" +
            "001d00170018001901000101000b00020100002300000010000e000c02683208687474702f312e310005000501000000000022000a000804" +
            "030503060302030033006b0069001d00208909858fbeb6ed2f1248ba5b9e2978bead0e840110192c61daed0096798b184400170041044d18" +
            "3d91f5eed35791fa982464e3b0214aaa5f5d1b78616d9b9fbebc22d11f535b2f94c686143136aa795e6e5a875d6c08064ad5b76d44caad76" +
            "6e2483012748002b00050403040303000d0018001604030503060308040805080604010501060102030201002d00020101001c0002400100" +
            "15007a0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
            "00000000000000000000000000"),
        // latest.pcapng, client port 52937 (discovery.cem.cloud.us)
        new("latest.pcapng", "t12d190800_d83cc789557e_7af1ed941c26", "t12d190800_000a,002f,0035,003c,003d,009c,009d,c009,c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030_0005,000a,000b,000d,0017,0023,ff01_0804,0805,0806,0401,0501,0201,0403,0503,0203,0202,0601,0603",
            "16030300b8010000b4030364960ddb84e92e8d5a9be477e2f7112257269dc742143793732813c25ec65af0000026c02cc02bc030c02fc024" +
            "c023c028c027c00ac009c014c013009d009c003d003c0035002f000a010000650000001b0019000016646973636f766572792e63656d2e63" +
            "6c6f75642e7573000500050100000000000a00080006001d00170018000b00020100000d001a001808040805080604010501020104030503" +
            "02030202060106030023000000170000ff01000100"),
        // latest.pcapng, client port 52938 (app.slack.com)
        new("latest.pcapng", "t13d1516h2_8daaf6152771_9b887d9acb53", "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0017,001b,0023,0029,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601",
            "16030102210100021d0303e324ad3940b1fc2faac32dfb616b20ade4da5e229307ccf91cedfd6e17a5617b2094062214534b45539c73dc7e" +
            "9534660571aa298b29d37c8653f81c9bf813876e00200a0a130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f00350100" +
            "01b45a5a0000000d00120010040308040401050308050501080606010010000e000c02683208687474702f312e3100000012001000000d61" +
            "70702e736c61636b2e636f6d000b0002010000230000446900050003026832ff010001000033002b0029baba000100001d00208fdbbcb996" +
            "0aadf4c716c17de6beefe959125b2c0f9ffb95f620cfee1a8e0b78000a000a0008baba001d00170018002d00020101002b0007066a6a0304" +
            "03030005000501000000000017000000120000001b00030200026a6a000100002900eb00c600c00534e03d93445e10b01a3a73b2186cf74d" +
            "47163aee499d3704619ee0b74ffc1caa7f088708f4dff06ac42f9df8aaa16e8551d8e206da1d77b19f9f7e5400b142420b7c8ed0ae8841d5" +
            "8a3cf73da84b7f49b11f93d4a1630276dbec257e6883abd0aa876eea50f122ddfd506694bb949d38dca486e39a0ef9331a6782bb8392a5bc" +
            "7395189340732a15909e9c309fc4c7c0bd4102a78c99979e1eb8dcde030c469c38c3f79cee81c9da56db0ab4a3fe19d54da17bf67fc7efce" +
            "7bb939a292e7c1082ac2880021201e639a41e760bacf644eeb7b751c0109159373ffdc666c640b661e2be906aa6c"),
        // tls-non-ascii-alpn.pcapng, client port 50112 (clientservices.googleapis.com)
        new("tls-non-ascii-alpn.pcapng", "t13d151699_8daaf6152771_e5627efa2ab1", "t13d151699_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601",
            "1603010200010001fc03030f9e38acb9a54a7c6e00e29a70ac2feee180ff76d7f25dca84932a66a42d1e5a20bc58b92f865e6b9aa4a6371c" +
            "adcb0afe1da1c0f705209a11d52357f56d5dd9620020aaaa130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f00350100" +
            "01939a9a0000ff010001000033002b00290a0a000100001d0020cf55af2603e92f59eb321779706a18fa6b96b16c16404c2264ed687a5940" +
            "1878002d00020101000500050100000000446900050003026832000d00120010040308040401050308050501080606010010000e000c02ba" +
            "ad08687474702f312e3100230000001b0003020002002b0007060a0a0304030300000022002000001d636c69656e7473657276696365732e" +
            "676f6f676c65617069732e636f6d00120000000a000a00080a0a001d0017001800170000000b000201006a6a000100001500ba0000000000" +
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
            "00000000000000000000000000"),
    ];

    public static TheoryData<int> Ja4VectorIndexes => new(Enumerable.Range(0, Ja4Vectors.Length));

    [Theory]
    [MemberData(nameof(Ja4VectorIndexes))]
    public void TryFormatJa4_PublishedVectors_Match(int index)
    {
        Ja4Vector vector = Ja4Vectors[index];
        byte[] input = Convert.FromHexString(vector.Hex);
        string expected = vector.Ja4;
        string expectedRaw = vector.Ja4Raw;
        if (vector.Source == "tls-non-ascii-alpn.pcapng")
        {
            // The first ALPN protocol is 0xBA 0xAD. technical_details/JA4.md ("ALPN Extension Value") says a first or last
            // byte that is not an ASCII letter or digit gives the first and last hex digits: "bd"; the reference tools
            // (python/ja4.py, rust tls.rs first_last, the Wireshark plugin) still print "99". We follow the specification.
            expected = expected.Replace("t13d151699_", "t13d1516bd_", StringComparison.Ordinal);
            expectedRaw = expectedRaw.Replace("t13d151699_", "t13d1516bd_", StringComparison.Ordinal);
        }

        foreach (HelloAndLists hello in ReadEveryWay(input))
        {
            Assert.Equal(expected, Ja4(hello));
            Assert.Equal(expectedRaw, Ja4Raw(hello));
        }
    }

    [Fact]
    public void TryFormatJa4_ListsExposedAsSpans_MatchTheRawFingerprint()
    {
        // tls-alpn-h2.pcap: the raw fingerprint lists the sorted ciphers and the signature algorithms as sent.
        Ja4Vector vector = Ja4Vectors[0];
        (ClientHelloInfo hello, ClientHelloLists lists) = ReadOnce(Convert.FromHexString(vector.Hex));
        string[] parts = vector.Ja4Raw.Split('_');
        var ciphers = new List<ushort>();
        foreach (ushort suite in lists.CipherSuites)
        {
            ciphers.Add(suite);
        }

        Assert.Equal(hello.CipherSuiteCount, ciphers.Count);
        Assert.Equal(lists.CipherSuites.Count, ciphers.Count);
        Assert.Equal(parts[1], string.Join(",", ciphers.Order().Select(c => c.ToString("x4", null))));
        var signatures = new List<string>();
        foreach (ushort scheme in lists.SignatureAlgorithms)
        {
            signatures.Add(scheme.ToString("x4", null));
        }

        Assert.Equal(parts[3], string.Join(",", signatures));
        Assert.Equal("001d,0017,0018", Hex(lists.SupportedGroupsRaw));
        Assert.Equal([0], lists.EcPointFormats.ToArray());
        Assert.False(lists.Incomplete);
    }

    /// <summary>
    /// The two examples of the salesforce/ja3 README ("JA3 ... Example" and the MD5 list under it), rebuilt as hellos:
    /// TLS 1.0 (769); server_name (0), supported_groups (10) 23-24-25, ec_point_formats (11) 0; and one without extensions.
    /// </summary>
    [Theory]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "JA3 is defined as MD5.")]
    [InlineData(true, "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0", "ada70206e40642a3e4461f35503241d5")]
    [InlineData(false, "769,4-5-10-9-100-98-3-6-19-18-99,,,", "de350869b8c85de67a350c8d186f11e6")]
    public void TryFormatJa3_ReadmeExamples_Match(bool extensions, string expectedString, string expectedHash)
    {
        ushort[] suites = [.. expectedString.Split(',')[1].Split('-').Select(ushort.Parse)];
        var builder = new HelloBuilder { LegacyVersion = 0x0301, CipherSuites = suites, Extensions = null };
        if (extensions)
        {
            builder.Add(0, HelloBuilder.ServerName("example.com"))
                .Add(10, HelloBuilder.Vector16([0, 23, 0, 24, 0, 25]))
                .Add(11, [1, 0]);
        }

        foreach (HelloAndLists hello in ReadEveryWay(Record(builder.Message())))
        {
            Assert.Equal(expectedString, Ja3String(hello));
            Assert.Equal(expectedHash, Ja3(hello));
        }

        // The README's hash is the MD5 of its string (so the string alone pins the algorithm down).
        Assert.Equal(expectedHash, Convert.ToHexStringLower(MD5.HashData(Encoding.ASCII.GetBytes(expectedString))));
    }

    [Fact]
    public void TryFormatJa3_GreaseEverywhere_Ignored()
    {
        // salesforce/ja3 python/ja3/ja3.py drops GREASE_TABLE values from ciphers, extensions and curves.
        var builder = new HelloBuilder { LegacyVersion = 0x0301, CipherSuites = [0x0A0A, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4] };
        builder.Add(0x1A1A, [])
            .Add(0, HelloBuilder.ServerName("example.com"))
            .Add(10, HelloBuilder.Vector16([0x2A, 0x2A, 0, 23, 0, 24, 0, 25]))
            .Add(11, [1, 0])
            .Add(0xFAFA, [0]);
        HelloAndLists hello = ReadOnce(Record(builder.Message()));
        Assert.Equal("769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0", Ja3String(hello));
        Assert.Equal("ada70206e40642a3e4461f35503241d5", Ja3(hello));
    }

    [Fact]
    public void TryReadLists_NotWhatTheHelloDescribes_FalseAndEmpty()
    {
        // The lists are read only on request, from the bytes the hello was read from; the reader's result does not hold
        // them (ClientHelloInfo stays the size a router keeps per connection). Bytes that do not hold that hello (a failed
        // read, a cut or another message) answer false with empty lists, and no fingerprint is made.
        byte[] input = Convert.FromHexString(Ja4Vectors[0].Hex);
        Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(input, out ClientHelloInfo hello));
        Assert.True(ClientHelloLists.TryRead(input, hello, out ClientHelloLists lists));
        Assert.Equal(hello.CipherSuiteCount * 2, lists.CipherSuitesRaw.Length);

        Assert.False(ClientHelloLists.TryRead(input.AsSpan(0, hello.BytesConsumed - 1), hello, out lists));
        Assert.True(lists.CipherSuitesRaw.IsEmpty && lists.SupportedGroupsRaw.IsEmpty && lists.SignatureAlgorithmsRaw.IsEmpty && lists.EcPointFormats.IsEmpty);
        Assert.False(ClientHelloLists.TryRead(TestSequence.Split(input.AsSpan(0, hello.BytesConsumed - 1), [3]), hello, out _));

        byte[] notHello = (byte[])input.Clone();
        notHello[5] = 2;   // msg_type server_hello
        Assert.False(ClientHelloLists.TryRead(notHello, hello, out _));
        byte[] longer = (byte[])input.Clone();
        longer[8]++;       // the handshake length no longer fits the records
        Assert.False(ClientHelloLists.TryRead(longer, hello, out _));
        byte[] shortRecord = (byte[])input.Clone();
        shortRecord[4] -= 40;   // the record holds 40 bytes fewer than the message: the walk runs out of input and stops
        Assert.False(ClientHelloLists.TryRead(shortRecord, hello, out _));
        Assert.False(ClientHelloLists.TryRead(TestSequence.Split(shortRecord, [7, 100]), hello, out _));

        Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(input.AsSpan(0, 100), out ClientHelloInfo partial));
        Assert.False(ClientHelloLists.TryRead(input, partial, out lists));
        Assert.True(lists.Incomplete);
        Assert.False(ClientHelloFingerprint.TryFormatJa3(hello, lists, new char[64], out int written));
        Assert.Equal(0, written);
        Assert.False(ClientHelloFingerprint.TryFormatJa4(hello, default, new char[64], out written));

        // Lists of another hello are not taken for this one's (the cipher suite count tells them apart here).
        (_, ClientHelloLists otherLists) = ReadOnce(ChromeLike);
        Assert.False(ClientHelloFingerprint.TryFormatJa4(hello, otherLists, new char[64], out _));
    }

    [Fact]
    public void TryFormat_DestinationTooSmall_FalseNothingWritten()
    {
        (ClientHelloInfo hello, ClientHelloLists lists) = ReadOnce(Convert.FromHexString(Ja4Vectors[0].Hex));
        char[] small = new char[ClientHelloFingerprint.Ja4Length - 1];
        Assert.False(ClientHelloFingerprint.TryFormatJa4(hello, lists, small, out int written));
        Assert.Equal(0, written);
        Assert.False(ClientHelloFingerprint.TryFormatJa3(hello, lists, small.AsSpan(0, ClientHelloFingerprint.Ja3Length - 1), out written));
        Assert.Equal(0, written);
        Assert.False(ClientHelloFingerprint.TryFormatJa3String(hello, lists, new char[20], out written));
        Assert.Equal(0, written);
        Assert.False(ClientHelloFingerprint.TryFormatJa4Raw(hello, lists, new char[40], out written));
        Assert.Equal(0, written);
    }

    [Fact]
    public void TryFormat_ListOverInlineCapacity_NoFingerprint()
    {
        // A legal hello with 200 cipher suites: read (the reader keeps the first 128), but no fingerprint is made from it.
        byte[] input = Record(new HelloBuilder { CipherSuites = [.. Enumerable.Range(1, 200).Select(i => (ushort)i)] }.Message());
        foreach (HelloAndLists hello in ReadEveryWay(input))
        {
            Assert.True(hello.Lists.Incomplete);
            Assert.Equal(200, hello.Hello.CipherSuiteCount);
            Assert.Equal(ClientHelloLists.MaxCipherSuites * 2, hello.Lists.CipherSuitesRaw.Length);
            Assert.False(ClientHelloFingerprint.TryFormatJa4(hello.Hello, hello.Lists, new char[64], out _));
            Assert.False(ClientHelloFingerprint.TryFormatJa3(hello.Hello, hello.Lists, new char[64], out _));
        }
    }

    [Theory]
    [InlineData(new byte[] { })]                               // empty (found by the million-mutation test, for ec_point_formats)
    [InlineData(new byte[] { 0x05 })]                          // too short for a 2-byte list length; a 1-byte one too long
    [InlineData(new byte[] { 0x00, 0x03, 0x00, 0x17, 0x00 })]  // odd list length
    [InlineData(new byte[] { 0x00, 0x04, 0x00, 0x17 })]        // list longer than the extension
    public void TryRead_MalformedListExtension_AcceptedListsIncomplete(byte[] data)
    {
        // The reader does not route on these lists, so it does not reject a hello for them; the fingerprint is withheld.
        foreach (ushort type in new ushort[] { 10, 11, 13 })
        {
            foreach (HelloAndLists hello in ReadEveryWay(Record(new HelloBuilder().Add(type, data).Add(23, []).Message())))
            {
                Assert.True(hello.Lists.Incomplete);
                Assert.True(hello.Lists.SupportedGroupsRaw.IsEmpty && hello.Lists.EcPointFormats.IsEmpty && hello.Lists.SignatureAlgorithmsRaw.IsEmpty);
                Assert.False(ClientHelloFingerprint.TryFormatJa4(hello.Hello, hello.Lists, new char[64], out _));
            }
        }
    }

    [Theory]
    [InlineData(new[] { "h2" }, "h2")]
    [InlineData(new[] { "http/1.1", "h2" }, "h1")]
    [InlineData(new[] { "x" }, "xx")]
    public void TryFormatJa4_AlpnCharacters_AsSpecified(string[] alpn, string expected)
    {
        // technical_details/JA4.md, "ALPN Extension Value": first and last characters; a single character is both.
        HelloAndLists hello = ReadOnce(Record(new HelloBuilder().Add(16, HelloBuilder.Alpn(alpn)).Message()));
        Assert.Equal(expected, Ja4(hello).Substring(8, 2));
    }

    [Theory]
    [InlineData(new byte[] { 0xAB }, "ab")]
    [InlineData(new byte[] { 0x20 }, "20")]
    [InlineData(new byte[] { 0xAB, 0xCD }, "ad")]
    [InlineData(new byte[] { 0x20, 0x61 }, "21")]
    [InlineData(new byte[] { 0x30, 0xAB }, "3b")]
    [InlineData(new byte[] { 0x61, 0x20 }, "60")]
    [InlineData(new byte[] { 0x30, 0x31, 0xAB, 0xCD }, "3d")]
    [InlineData(new byte[] { 0x30, 0xAB, 0xCD, 0x31 }, "01")]
    public void TryFormatJa4_NonAlphanumericAlpn_HexDigits(byte[] protocol, string expected)
    {
        // The examples listed in technical_details/JA4.md, "ALPN Extension Value".
        HelloAndLists hello = ReadOnce(Record(new HelloBuilder().Add(16, HelloBuilder.Vector16([(byte)protocol.Length, .. protocol])).Message()));
        Assert.Equal(expected, Ja4(hello).Substring(8, 2));
    }

    [Fact]
    public void TryFormatJa4_NoCiphersOrExtensionsToHash_Zeros()
    {
        // Only GREASE suites and no extensions: empty lists hash to 000000000000 (JA4.md, "Cipher hash"/"Extension hash").
        HelloAndLists hello = ReadOnce(Record(new HelloBuilder { CipherSuites = [0x0A0A], Extensions = null }.Message()));
        Assert.Equal("t12i000000_000000000000_000000000000", Ja4(hello));
    }

    /// <summary>Reads the hello and then its lists from the same span.</summary>
    internal static HelloAndLists ReadOnce(byte[] input)
    {
        Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(input, s_large, out ClientHelloInfo hello));
        Assert.True(ClientHelloLists.TryRead(input, hello, out ClientHelloLists lists));
        return (hello, lists);
    }

    private static List<HelloAndLists> ReadEveryWay(byte[] input)
    {
        // One span, one byte per segment, 7-byte records in 3-byte segments: the fingerprint must not depend on framing,
        // neither in the reader nor in the lists' second walk.
        var results = new List<HelloAndLists> { ReadOnce(input) };
        ReadOnlySequence<byte> bytes = TestSequence.OneBytePerSegmentWithEmpties(input);
        byte[] message = Unrecord(input);
        byte[] records = Record(message, Enumerable.Repeat(7, message.Length).ToArray());
        ReadOnlySequence<byte> pieces = TestSequence.Split(records, Enumerable.Repeat(3, records.Length).ToArray());
        foreach (ReadOnlySequence<byte> sequence in new[] { bytes, pieces })
        {
            Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(sequence, s_large, out ClientHelloInfo hello));
            Assert.True(ClientHelloLists.TryRead(sequence, hello, out ClientHelloLists lists));
            results.Add((hello, lists));
        }

        return results;
    }

    internal static string Ja4(in HelloAndLists hello)
    {
        Span<char> buffer = stackalloc char[ClientHelloFingerprint.Ja4Length];
        Assert.True(ClientHelloFingerprint.TryFormatJa4(hello.Hello, hello.Lists, buffer, out int written));
        Assert.Equal(ClientHelloFingerprint.Ja4Length, written);
        return new string(buffer);
    }

    internal static string Ja4Raw(in HelloAndLists hello)
    {
        char[] buffer = new char[ClientHelloFingerprint.MaxJa4RawLength];
        Assert.True(ClientHelloFingerprint.TryFormatJa4Raw(hello.Hello, hello.Lists, buffer, out int written));
        return new string(buffer, 0, written);
    }

    internal static string Ja3(in HelloAndLists hello)
    {
        Span<char> buffer = stackalloc char[ClientHelloFingerprint.Ja3Length];
        Assert.True(ClientHelloFingerprint.TryFormatJa3(hello.Hello, hello.Lists, buffer, out int written));
        Assert.Equal(ClientHelloFingerprint.Ja3Length, written);
        return new string(buffer);
    }

    internal static string Ja3String(in HelloAndLists hello)
    {
        char[] buffer = new char[ClientHelloFingerprint.MaxJa3StringLength];
        Assert.True(ClientHelloFingerprint.TryFormatJa3String(hello.Hello, hello.Lists, buffer, out int written));
        return new string(buffer, 0, written);
    }

    private static string Hex(ReadOnlySpan<byte> pairs)
    {
        var values = new List<string>();
        for (int i = 0; i + 1 < pairs.Length; i += 2)
        {
            values.Add(Convert.ToHexStringLower(pairs.Slice(i, 2)));
        }

        return string.Join(",", values);
    }

    /// <summary>A ClientHello from the JA4 suite and its published fingerprints.</summary>
    public sealed record Ja4Vector(string Source, string Ja4, string Ja4Raw, string Hex);
}
