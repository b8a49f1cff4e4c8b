using System.Buffers;
using System.Text;
using MeshGateway.Tls;
using static MeshGateway.Tests.Tls.ClientHelloFixtures;

namespace MeshGateway.Tests.Tls;

public sealed class ClientHelloReaderTests
{
    private static readonly ClientHelloReaderOptions s_large = new() { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize };

    [Fact]
    public void TryRead_Tls12Small_ReportsEveryField()
    {
        byte[] input = Tls12Small;
        Assert.Equal(103, input.Length);

        HelloResult result = HelloResult.ReadEveryWay(input);

        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(ClientHelloError.None, result.Error);
        Assert.Equal(103, result.BytesConsumed);
        Assert.Equal("Example.com", result.ServerName);
        Assert.False(result.EndsWithDot);
        Assert.Equal("", result.Alpn);
        Assert.Equal(0x0301, result.RecordVersion);
        Assert.Equal(0x0303, result.LegacyVersion);
        Assert.False(result.OffersTls13);
        Assert.Equal(0, result.MaxSupportedVersion);
        Assert.False(result.Ech);
        Assert.Equal(2, result.CipherSuiteCount);
        Assert.Equal("0000,000a,000d,0017,ff01", result.ExtensionTypes);
    }

    [Fact]
    public void TryRead_Tls12Small_LowerCasesIntoCallerBuffer()
    {
        Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(Tls12Small, out ClientHelloInfo hello));
        Span<byte> name = stackalloc byte[ClientHelloInfo.MaxHostNameLength];
        int written = hello.CopyServerNameLowerCase(name);
        Assert.Equal("example.com", Encoding.ASCII.GetString(name[..written]));
        Assert.Equal("Example.com", Encoding.ASCII.GetString(hello.ServerName));
        Assert.Equal(-1, hello.CopyServerNameLowerCase(stackalloc byte[4]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryRead_ChromeLike_ReportsFields(bool postQuantum)
    {
        byte[] input = postQuantum ? PostQuantum : ChromeLike;
        if (postQuantum)
        {
            Assert.InRange(input.Length, 1700, 1900);
        }
        else
        {
            Assert.InRange(input.Length, 550, 650);
        }

        HelloResult result = HelloResult.ReadEveryWay(input);

        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(input.Length, result.BytesConsumed);
        Assert.Equal(ChromeHost, result.ServerName);
        Assert.Equal("alpn:h2,http/1.1,", result.Alpn);
        Assert.False(result.AlpnTruncated);
        Assert.True(result.OffersTls13);
        Assert.Equal(0x0304, result.MaxSupportedVersion);
        Assert.True(result.Ech);
        Assert.Equal(16, result.CipherSuiteCount);
        Assert.Equal("0a0a,0000,0017,ff01,000a,000b,0023,0010,0005,000d,0012,0033,002d,002b,001b,44cd,fe0d,1a1a", result.ExtensionTypes);
        Assert.Equal(string.Join(",", ChromeLikeExtensionOrder(postQuantum).Select(t => t.ToString("x4", null))), result.ExtensionTypes);
    }

    [Fact]
    public void TryRead_PostQuantumInManyRecords_SameAnswerAsOneRecord()
    {
        byte[] message = Unrecord(PostQuantum);
        HelloResult one = HelloResult.Read(PostQuantum);
        foreach (int[] sizes in new[] { new[] { 1000 }, new[] { 1, 1, 1, 1 }, new[] { 3, 700, 2 }, Enumerable.Repeat(7, 400).ToArray() })
        {
            byte[] records = Record(message, sizes);
            HelloResult many = HelloResult.ReadEveryWay(records, s_large);
            Assert.Equal(one with { BytesConsumed = records.Length }, many);
        }
    }

    [Fact]
    public void TryRead_LargeSingleRecordAcrossSegments_SameAnswerAsOneSpan()
    {
        // Over 2 KiB, a record cut by segment boundaries is walked piecewise instead of being copied to the stack.
        byte[] input = PaddedPostQuantum;
        Assert.InRange(input.Length, 3000, 4000);
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(ChromeHost, result.ServerName);
        Assert.Contains("0015", result.ExtensionTypes.Split(','));
        foreach (int cut in new[] { 100, 1448, 2000, 2896, 3000 })
        {
            Assert.Equal(result, HelloResult.Read(TestSequence.Split(input, [cut, 0, 7])));
        }
    }

    [Fact]
    public void TryRead_OneByteRecords_Done()
    {
        byte[] message = Unrecord(ChromeLike);
        byte[] records = Record(message, Enumerable.Repeat(1, message.Length).ToArray());
        HelloResult result = HelloResult.ReadEveryWay(records);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(6 * message.Length, result.BytesConsumed);
        Assert.Equal(ChromeHost, result.ServerName);
    }

    [Fact]
    public void TryRead_DataAfterHello_ConsumesOnlyTheHello()
    {
        // A change_cipher_spec record (middlebox compatibility) and early data may follow the hello.
        byte[] input = [.. Tls12Small, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03, 0x00, 0x02, 0xAB, 0xCD];
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(Tls12Small.Length, result.BytesConsumed);
    }

    [Fact]
    public void TryRead_NoExtensionsBlock_Done()
    {
        var builder = new HelloBuilder { Extensions = null };
        HelloResult result = HelloResult.ReadEveryWay(Record(builder.Message()));
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Null(result.ServerName);
        Assert.Equal("", result.ExtensionTypes);
    }

    [Fact]
    public void TryRead_TrailingDot_ReportedNotStripped()
    {
        HelloResult result = HelloResult.ReadEveryWay(Hello(b => b.Add(0, HelloBuilder.ServerName("web.example."))));
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal("web.example.", result.ServerName);
        Assert.True(result.EndsWithDot);
    }

    /// <summary>Host names per RFC 1035 §2.3.1/§2.3.4, RFC 1123 §2.1 and RFC 5890 §2.3.1; RFC 6066 §3 for the trailing dot.</summary>
    public static TheoryData<byte[], HostNameIssues> HostNames => new()
    {
        { "web.default.dc1.internal.5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul"u8.ToArray(), HostNameIssues.None },
        { "xn--bcher-kva.example"u8.ToArray(), HostNameIssues.None },
        { "A1-b.EXAMPLE.com"u8.ToArray(), HostNameIssues.None },
        { "b\u00FCcher.example"u8.ToArray(), HostNameIssues.NonAscii },                  // a .NET client's UTF-8 IDN (see the capture test)
        { "B\u00DCCHER.Example"u8.ToArray(), HostNameIssues.NonAscii },
        { "a\0b"u8.ToArray(), HostNameIssues.ControlOrSpace },
        { "a b"u8.ToArray(), HostNameIssues.ControlOrSpace },
        { "a\u007Fb"u8.ToArray(), HostNameIssues.ControlOrSpace },
        { "a\nb"u8.ToArray(), HostNameIssues.ControlOrSpace },
        { "my_service.default.dc1"u8.ToArray(), HostNameIssues.NonLdhCharacter },
        { "*.server.dc1.consul"u8.ToArray(), HostNameIssues.NonLdhCharacter },
        { "a..b"u8.ToArray(), HostNameIssues.EmptyLabel },
        { ".a"u8.ToArray(), HostNameIssues.EmptyLabel },
        { "."u8.ToArray(), HostNameIssues.EmptyLabel | HostNameIssues.TrailingDot },
        { "a.b."u8.ToArray(), HostNameIssues.TrailingDot },
        { "-a.b"u8.ToArray(), HostNameIssues.HyphenAtLabelEdge },
        { "a.b-"u8.ToArray(), HostNameIssues.HyphenAtLabelEdge },
        { Encoding.ASCII.GetBytes(new string('a', 63) + ".b"), HostNameIssues.None },
        { Encoding.ASCII.GetBytes(new string('a', 64) + ".b"), HostNameIssues.LabelTooLong },
        { Encoding.ASCII.GetBytes(string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..253]), HostNameIssues.None },
        { Encoding.ASCII.GetBytes(string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..253] + "."), HostNameIssues.TrailingDot },
        { Encoding.ASCII.GetBytes(string.Join('.', Enumerable.Repeat(new string('a', 63), 4))[..254]), HostNameIssues.NameTooLong },
        { Encoding.ASCII.GetBytes(new string('a', 255)), HostNameIssues.NameTooLong | HostNameIssues.LabelTooLong },
        { [0xC3, (byte)'_', (byte)'.', (byte)'.', (byte)' '], HostNameIssues.NonAscii | HostNameIssues.NonLdhCharacter | HostNameIssues.EmptyLabel | HostNameIssues.ControlOrSpace },
    };

    [Theory]
    [MemberData(nameof(HostNames))]
    public void TryRead_AnyHostNameBytes_AcceptedAndClassified(byte[] name, HostNameIssues expected)
    {
        // The reader reports, the caller decides: every host_name of 1..255 bytes is read as sent, its issues reported.
        byte[] input = Hello(b => b.Add(0, HelloBuilder.ServerNameList((0, name))));
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(Encoding.Latin1.GetString(name), result.ServerName);
        Assert.Equal(expected, result.ServerNameIssues);

        ClientHelloReader.TryRead(input, out ClientHelloInfo info);
        Assert.True(info.ServerName.SequenceEqual(name));
        Assert.Equal(expected == HostNameIssues.None, info.HasDnsServerName);
        Assert.Equal((expected & (HostNameIssues.NonAscii | HostNameIssues.ControlOrSpace)) != 0, info.ServerNameHasNonVisibleAscii);

        // Lower-casing never cuts the name short at a non-ASCII byte: ASCII letters lowered, other bytes kept.
        byte[] lower = new byte[ClientHelloInfo.MaxHostNameLength];
        Assert.Equal(name.Length, info.CopyServerNameLowerCase(lower));
        Assert.Equal(name.Select(b => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b), lower.Take(name.Length));
    }

    [Fact]
    public void ServerNameHasNonVisibleAscii_EveryByteValue_IsNonAsciiOrControlOrSpace()
    {
        // The gateway rejects on this one scan instead of classifying every name: it must be exactly those two issues.
        for (int b = 0; b < 256; b++)
        {
            ClientHelloReader.TryRead(Hello(x => x.Add(0, HelloBuilder.ServerNameList((0, [(byte)'a', (byte)b, (byte)'b'])))), out ClientHelloInfo info);
            bool rejected = (info.ServerNameIssues & (HostNameIssues.NonAscii | HostNameIssues.ControlOrSpace)) != 0;
            Assert.True(rejected == info.ServerNameHasNonVisibleAscii, $"byte 0x{b:X2}");
            Assert.Equal(b is < 0x21 or > 0x7E, rejected);
        }
    }

    [Fact]
    public void ServerNameIssues_ResultReusedForAShorterName_OnlyTheNameClassified()
    {
        // Issues are classified from the kept name when asked; a result reused by the next read (as the gateway's
        // connection field is) still holds the longer name's bytes past the new length, which must not count.
        ClientHelloInfo info;
        ClientHelloReader.TryRead(Hello(x => x.Add(0, HelloBuilder.ServerName(new string('_', 200) + ".a..b-"))), out info);
        Assert.Equal(HostNameIssues.NonLdhCharacter | HostNameIssues.LabelTooLong | HostNameIssues.EmptyLabel | HostNameIssues.HyphenAtLabelEdge, info.ServerNameIssues);
        ClientHelloReader.TryRead(Hello(x => x.Add(0, HelloBuilder.ServerName("web.default.dc1.internal.5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul"))), out info);
        Assert.Equal(HostNameIssues.None, info.ServerNameIssues);
        ClientHelloReader.TryRead(Hello(x => x.Add(0, HelloBuilder.ServerName("ab"))), out info);
        Assert.Equal(HostNameIssues.None, info.ServerNameIssues);
        Assert.True(info.HasDnsServerName);
    }

    [Fact]
    public void TryRead_ResultReusedAfterALargerHello_ReadsAsIntoAFreshResult()
    {
        // The reader and the lists clear only their scalars and lengths (Unsafe.SkipInit: zeroing the whole result
        // measured 3-9 % slower, docs/benchmarks.md issue 18), so the inline buffers keep the previous read's bytes:
        // nothing of them may show through the members. Large first (name, ALPN, ECH, 18 types), then a small hello.
        byte[] large = ClientHelloFixtures.PostQuantum;
        byte[] small = Hello(b => b.Add(23, []));
        ClientHelloInfo info;
        ClientHelloLists lists;
        Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(large, out info));
        Assert.True(ClientHelloLists.TryRead(large, info, out lists));

        Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(small, out info));
        Assert.True(ClientHelloLists.TryRead(small, info, out lists));

        Assert.Equal(HelloResult.Read(small), HelloResult.From(ClientHelloStatus.Done, info, small));
        Assert.False(info.HasServerName || info.HasAlpn || info.HasEncryptedClientHello || info.HasSupportedVersions);
        Assert.True(info.ServerName.IsEmpty && info.AlpnProtocolsRaw.IsEmpty);
        Assert.Equal([(ushort)23], info.ExtensionTypes.ToArray());
        Assert.True(lists.SupportedGroupsRaw.IsEmpty && lists.SignatureAlgorithmsRaw.IsEmpty && lists.EcPointFormats.IsEmpty);
        ClientHelloReader.TryRead(small, out ClientHelloInfo fresh);
        Assert.Equal(fresh.CipherSuiteCount * 2, lists.CipherSuitesRaw.Length);
    }

    [Fact]
    public void TryRead_NoServerName_NoIssues()
    {
        ClientHelloReader.TryRead(Hello(b => b.Add(23, [])), out ClientHelloInfo info);
        Assert.False(info.HasServerName);
        Assert.False(info.HasDnsServerName);
        Assert.Equal(HostNameIssues.None, info.ServerNameIssues);
    }

    [Fact]
    public void TryRead_MaxLengthHostName_Done()
    {
        string name = new('a', 255);
        HelloResult result = HelloResult.ReadEveryWay(Hello(b => b.Add(0, HelloBuilder.ServerName(name))));
        Assert.Equal(name, result.ServerName);
    }

    [Fact]
    public void TryRead_UnknownNameTypeBesideHostName_Skipped()
    {
        byte[] input = Hello(b => b.Add(0, HelloBuilder.ServerNameList((7, [1, 2, 3]), (0, "a.b"u8.ToArray()))));
        Assert.Equal("a.b", HelloResult.ReadEveryWay(input).ServerName);
    }

    [Fact]
    public void TryRead_GreaseEverywhere_Accepted()
    {
        byte[] input = Hello(b =>
        {
            b.CipherSuites = [0xDADA, 0x1301];
            b.Add(0xFAFA, []).Add(43, [4, 0xEA, 0xEA, 0x03, 0x04]).Add(0x3A3A, [0]);
        });
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(0x0304, result.MaxSupportedVersion);
        Assert.Equal("fafa,002b,3a3a", result.ExtensionTypes);
    }

    [Fact]
    public void TryRead_SupportedVersionsWithoutTls13_NotOffered()
    {
        HelloResult result = HelloResult.ReadEveryWay(Hello(b => b.Add(43, [4, 0x03, 0x03, 0x03, 0x02])));
        Assert.False(result.OffersTls13);
        Assert.Equal(0x0303, result.MaxSupportedVersion);
    }

    [Fact]
    public void TryRead_LongAlpnList_AcceptedAndTruncatedToWholeProtocols()
    {
        string[] protocols = [.. Enumerable.Range(0, 40).Select(i => $"protocol-{i:D2}")];
        HelloResult result = HelloResult.ReadEveryWay(Hello(b => b.Add(16, HelloBuilder.Alpn(protocols))));
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.True(result.AlpnTruncated);
        int kept = ClientHelloInfo.MaxAlpnLength / 12;   // each entry is 1 + 11 bytes
        Assert.Equal("alpn:" + string.Concat(protocols.Take(kept).Select(p => p + ",")), result.Alpn);
    }

    [Fact]
    public void TryRead_AlpnExactlyAtInlineLimit_NotTruncated()
    {
        // 8 entries of 1 + 15 bytes = 128 bytes.
        string[] protocols = [.. Enumerable.Range(0, 8).Select(i => $"proto-{i:D9}")];
        HelloResult result = HelloResult.ReadEveryWay(Hello(b => b.Add(16, HelloBuilder.Alpn(protocols))));
        Assert.False(result.AlpnTruncated);
        Assert.Equal("alpn:" + string.Concat(protocols.Select(p => p + ",")), result.Alpn);
    }

    [Fact]
    public void TryRead_EmptyRecordsWithinCap_Done()
    {
        byte[] message = Unrecord(Tls12Small);
        // Four empty records (the default cap) interleaved with the real ones.
        byte[] input = [.. EmptyRecord, .. Record(message.AsSpan(0, 10)), .. EmptyRecord, .. EmptyRecord, .. EmptyRecord, .. Record(message.AsSpan(10))];
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(input.Length, result.BytesConsumed);
        Assert.Equal("Example.com", result.ServerName);
    }

    [Fact]
    public void TryRead_EveryStrictPrefix_NeedMoreData()
    {
        byte[] message = Unrecord(ChromeLike);
        foreach (byte[] input in new[] { Tls12Small, ChromeLike, PostQuantum, Record(message, [1, 2, 3, 50, 200]) })
        {
            for (int length = 0; length < input.Length; length++)
            {
                Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(input.AsSpan(0, length), out ClientHelloInfo info));
                Assert.Equal(ClientHelloError.None, info.Error);
                var sequence = TestSequence.Split(input.AsSpan(0, length), [length / 3, 0, 1]);
                Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(sequence, out _));
            }

            Assert.Equal(ClientHelloStatus.Done, ClientHelloReader.TryRead(input, out _));
        }
    }

    public static TheoryData<string, byte[]> NotTlsInputs => new()
    {
        { "HTTP", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray() },
        { "SSH", "SSH-2.0-OpenSSH_9.6\r\n"u8.ToArray() },
        { "SSLv2 compatible hello", [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15] },
        { "application data record", [0x17, 0x03, 0x03, 0x00, 0x01, 0x00] },
        { "one byte", [0x00] },
    };

    [Theory]
    [MemberData(nameof(NotTlsInputs))]
    public void TryRead_NotTls_NotHandshakeRecord(string what, byte[] input)
    {
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.True(result.Status == ClientHelloStatus.NotTls, what);
        Assert.Equal(ClientHelloError.NotHandshakeRecord, result.Error);
    }

    public static TheoryData<ClientHelloError, byte[]> InvalidInputs()
    {
        byte[] tls12 = Tls12Small;
        byte[] message = Unrecord(tls12);
        var data = new TheoryData<ClientHelloError, byte[]>
        {
            // Record layer (RFC 8446 §5.1)
            { ClientHelloError.UnsupportedRecordVersion, [0x16, 0x02] },
            { ClientHelloError.UnsupportedRecordVersion, [.. Record(message.AsSpan(0, 4)), 0x16, 0x04, 0x01] },
            { ClientHelloError.RecordTooLong, [0x16, 0x03, 0x01, 0x40, 0x01] },
            { ClientHelloError.UnexpectedRecordType, [.. Record(message.AsSpan(0, 20)), 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28] },
            { ClientHelloError.UnexpectedRecordType, [.. Record(message.AsSpan(0, 2)), 0x14, 0x03, 0x03, 0x00, 0x01, 0x01] },
            { ClientHelloError.TooManyEmptyRecords, [.. EmptyRecord, .. EmptyRecord, .. EmptyRecord, .. EmptyRecord, .. EmptyRecord] },
            { ClientHelloError.NotClientHello, [0x16, 0x03, 0x01, 0x00, 0x04, 0x02] },
            { ClientHelloError.NotClientHello, [.. EmptyRecord, 0x16, 0x03, 0x01, 0x00, 0x01, 0x00] },
            { ClientHelloError.TrailingHandshakeData, Record([.. message, 0x0B, 0x00, 0x00, 0x00]) },
            { ClientHelloError.TrailingHandshakeData, Record([.. message, 0x00], [message.Length - 3]) },

            // ClientHello body (RFC 8446 §4.1.2)
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake([0x03, 0x03, 0x00])) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake([])) },
            { ClientHelloError.SessionIdTooLong, Hello(b => b.SessionId = Filled(33, 1)) },
            { ClientHelloError.InvalidCipherSuites, Hello(b => b.CipherSuites = []) },
            { ClientHelloError.InvalidCipherSuites, Record(HelloBuilder.Handshake([.. new HelloBuilder().Body()[..35], 0x00, 0x03, 0x13, 0x01, 0x00, 0x01, 0x00])) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake([.. new HelloBuilder().Body()[..35], 0x00, 0x08, 0x13, 0x01])) },
            { ClientHelloError.InvalidCompressionMethods, Hello(b => b.CompressionMethods = []) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake([.. new HelloBuilder { Extensions = null }.Body()[..^2], 0x05, 0x00])) },
            { ClientHelloError.TrailingBytes, Record(HelloBuilder.Handshake([.. new HelloBuilder { Extensions = null }.Body(), 0x00])) },
            { ClientHelloError.TrailingBytes, Record(HelloBuilder.Handshake([.. new HelloBuilder().Add(23, []).Body(), 0x00, 0x00])) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake([.. new HelloBuilder().Add(23, []).Body()[..^4]])) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake(ExtensionsBlock([0x00, 0x17, 0x00]))) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake(ExtensionsBlock([0x00, 0x17, 0x00, 0x05, 0x00]))) },

            // Extensions (RFC 8446 §4.2)
            { ClientHelloError.DuplicateExtension, Hello(b => b.Add(23, []).Add(35, []).Add(23, [])) },
            { ClientHelloError.DuplicateExtension, Hello(b => b.Add(0x0A0A, []).Add(0xFF01, [0]).Add(0x0A0A, [0])) },
            { ClientHelloError.DuplicateExtension, Hello(b => b.Add(0, HelloBuilder.ServerName("a")).Add(0, HelloBuilder.ServerName("b"))) },
            { ClientHelloError.TooManyExtensions, Hello(b => { for (int i = 0; i <= ClientHelloInfo.MaxExtensions; i++) { b.Add((ushort)(0x1000 + i), []); } }) },
            { ClientHelloError.PreSharedKeyNotLast, Hello(b => b.Add(41, [0, 0, 0, 0]).Add(23, [])) },

            // The first error in the order sent wins, whichever way the block is walked.
            { ClientHelloError.EmptyHostName, Hello(b => b.Add(0, HelloBuilder.ServerNameList((0, []))).Add(23, []).Add(23, [])) },
            { ClientHelloError.DuplicateExtension, Hello(b => b.Add(23, []).Add(23, []).Add(0, HelloBuilder.ServerNameList((0, [])))) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [0, 0]).Add(0, HelloBuilder.ServerNameList((0, [])))) },
            { ClientHelloError.InvalidSupportedVersionsExtension, Hello(b => b.Add(43, [1, 3]).Add(16, [0, 0]).Add(0, [])) },
            { ClientHelloError.MultipleHostNames, Record(HelloBuilder.Handshake(ExtensionsBlock([.. ExtensionBytes(0, HelloBuilder.ServerNameList((0, "a"u8.ToArray()), (0, "b"u8.ToArray()))), 0x00, 0x17, 0x00, 0x09]))) },
            { ClientHelloError.LengthOutOfBounds, Record(HelloBuilder.Handshake(ExtensionsBlock([.. ExtensionBytes(0, HelloBuilder.ServerName("ok")), 0x00, 0x17, 0x00, 0x09]))) },

            // server_name (RFC 6066 §3)
            { ClientHelloError.InvalidServerNameExtension, Hello(b => b.Add(0, [])) },
            { ClientHelloError.InvalidServerNameExtension, Hello(b => b.Add(0, [0x00, 0x00])) },
            { ClientHelloError.InvalidServerNameExtension, Hello(b => b.Add(0, [0x00, 0x05, 0x00, 0x00, 0x01, (byte)'a'])) },
            { ClientHelloError.InvalidServerNameExtension, Hello(b => b.Add(0, [0x00, 0x02, 0x00, 0x00])) },
            { ClientHelloError.InvalidServerNameExtension, Hello(b => b.Add(0, [0x00, 0x04, 0x00, 0x00, 0x05, (byte)'a'])) },
            { ClientHelloError.MultipleHostNames, Hello(b => b.Add(0, HelloBuilder.ServerNameList((0, "a"u8.ToArray()), (0, "b"u8.ToArray())))) },
            { ClientHelloError.EmptyHostName, Hello(b => b.Add(0, HelloBuilder.ServerNameList((0, [])))) },
            { ClientHelloError.HostNameTooLong, Hello(b => b.Add(0, HelloBuilder.ServerName(new string('a', 256)))) },

            // application_layer_protocol_negotiation (RFC 7301 §3.1)
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [])) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [0x00, 0x00])) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [0x00, 0x03, 0x02, (byte)'h', (byte)'2', 0x00])) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [0x00, 0x03, 0x00, 0x01, (byte)'x'])) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, [0x00, 0x03, 0x01, (byte)'x', 0x05])) },
            { ClientHelloError.InvalidAlpnExtension, Hello(b => b.Add(16, HelloBuilder.Vector16([.. HelloBuilder.Alpn([.. Enumerable.Repeat("protocol", 30)])[2..], 0x00]))) },

            // supported_versions (RFC 8446 §4.2.1)
            { ClientHelloError.InvalidSupportedVersionsExtension, Hello(b => b.Add(43, [])) },
            { ClientHelloError.InvalidSupportedVersionsExtension, Hello(b => b.Add(43, [0])) },
            { ClientHelloError.InvalidSupportedVersionsExtension, Hello(b => b.Add(43, [3, 0x03, 0x04, 0x03])) },
            { ClientHelloError.InvalidSupportedVersionsExtension, Hello(b => b.Add(43, [4, 0x03, 0x04])) },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(InvalidInputs))]
    public void TryRead_MalformedInput_InvalidWithReason(ClientHelloError expected, byte[] input)
    {
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.Invalid, result.Status);
        Assert.Equal(expected, result.Error);
        Assert.Equal(0, result.BytesConsumed);
    }

    [Fact]
    public void InvalidInputs_CoverEveryReasonCode()
    {
        var covered = new HashSet<ClientHelloError>(InvalidInputs().Select(row => (ClientHelloError)row[0]))
        {
            ClientHelloError.None,
            ClientHelloError.NotHandshakeRecord,    // TryRead_NotTls_NotHandshakeRecord
            ClientHelloError.HelloTooLarge,         // the TooLarge tests below
        };
        Assert.Equal(Enum.GetValues<ClientHelloError>().Order(), covered.Order());
    }

    [Fact]
    public void TryRead_LargestLegalHello_DoneAtTheAllowedMaximum()
    {
        // Every vector of RFC 8446 §4.1.2 at its maximum length: session id 32, cipher_suites 2^16-2, compression methods
        // 2^8-1, extensions 2^16-1 (one 65,531-byte extension). Full 2^14 records, as TLS stacks send it.
        var builder = new HelloBuilder
        {
            SessionId = Filled(32, 7),
            CipherSuites = [.. Enumerable.Range(0, 32_767).Select(i => (ushort)(0x0100 + i))],
            CompressionMethods = [0, .. Filled(254, 1)],
        };
        builder.Add(0xFF00, Filled(65_535 - 4, 3));
        byte[] message = builder.Message();
        Assert.Equal(ClientHelloReaderOptions.LargestClientHelloMessage, message.Length);
        byte[] input = Record(message);
        Assert.Equal(ClientHelloReaderOptions.MaxAllowedHelloSize, input.Length);

        HelloResult result = HelloResult.ReadEveryWay(input, s_large);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(input.Length, result.BytesConsumed);
        Assert.Equal(32_767, result.CipherSuiteCount);
        Assert.Equal(ClientHelloStatus.TooLarge, HelloResult.ReadEveryWay(input, new ClientHelloReaderOptions { MaxHelloSize = input.Length - 1 }).Status);
        Assert.Equal(ClientHelloStatus.TooLarge, HelloResult.ReadEveryWay(input).Status);
    }

    [Fact]
    public void TryRead_HandshakeLengthOverLimit_TooLargeFromTheFirstNineBytes()
    {
        // A declared 64 KiB message can never fit a 16 KiB limit: decided before any of it arrives.
        byte[] input = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00];
        HelloResult result = HelloResult.ReadEveryWay(input);
        Assert.Equal(ClientHelloStatus.TooLarge, result.Status);
        Assert.Equal(ClientHelloError.HelloTooLarge, result.Error);
    }

    [Fact]
    public void TryRead_RecordPastLimit_TooLargeFromItsHeader()
    {
        var options = new ClientHelloReaderOptions { MaxHelloSize = 100 };
        Assert.Equal(ClientHelloStatus.TooLarge, HelloResult.ReadEveryWay([0x16, 0x03, 0x01, 0x00, 0x60], options).Status);
        Assert.Equal(ClientHelloStatus.NeedMoreData, HelloResult.ReadEveryWay([0x16, 0x03, 0x01, 0x00, 0x5F], options).Status);
    }

    [Fact]
    public void TryRead_RecordOverheadPastLimit_TooLargeAsSoonAsCertain()
    {
        byte[] message = Unrecord(ChromeLike);
        var options = new ClientHelloReaderOptions { MaxHelloSize = message.Length + 50 };
        Assert.Equal(ClientHelloStatus.Done, HelloResult.ReadEveryWay(Record(message, [100, 100, 100]), options).Status);

        // 1-byte records: once ten headers (50 bytes) plus the one the rest still needs exceed the 50 spare bytes, the
        // hello cannot fit any more; that is certain as soon as the tenth record header is complete.
        byte[] dribbled = Record(message, Enumerable.Repeat(1, 20).ToArray());
        int decidedAt = 0;
        for (int length = 1; length <= dribbled.Length; length++)
        {
            if (ClientHelloReader.TryRead(dribbled.AsSpan(0, length), options, out _) == ClientHelloStatus.TooLarge)
            {
                decidedAt = length;
                break;
            }
        }

        Assert.Equal((6 * 9) + 5, decidedAt);
    }

    [Fact]
    public void TryRead_HelloExactlyAtLimit_Done()
    {
        byte[] input = ChromeLike;
        Assert.Equal(ClientHelloStatus.Done, HelloResult.ReadEveryWay(input, new ClientHelloReaderOptions { MaxHelloSize = input.Length }).Status);
        Assert.Equal(ClientHelloStatus.TooLarge, HelloResult.ReadEveryWay(input, new ClientHelloReaderOptions { MaxHelloSize = input.Length - 1 }).Status);
    }

    [Fact]
    public void TryRead_NoEmptyRecordsOption_RejectsTheFirst()
    {
        var options = new ClientHelloReaderOptions { MaxEmptyRecords = ClientHelloReaderOptions.NoEmptyRecords };
        Assert.Equal(ClientHelloError.TooManyEmptyRecords, HelloResult.ReadEveryWay(EmptyRecord, options).Error);
        Assert.Equal(ClientHelloStatus.NeedMoreData, HelloResult.ReadEveryWay(EmptyRecord).Status);
    }

    [Fact]
    public void Options_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientHelloReaderOptions { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize + 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientHelloReaderOptions { MaxHelloSize = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClientHelloReaderOptions { MaxEmptyRecords = -2 });
        Assert.Equal(ClientHelloReaderOptions.DefaultMaxHelloSize, default(ClientHelloReaderOptions).MaxHelloSize);
    }

    [Fact]
    public void TryRead_EmptyInput_NeedMoreData()
    {
        Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(ReadOnlySpan<byte>.Empty, out _));
        Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(ReadOnlySequence<byte>.Empty, out _));
    }

    [Fact]
    public void AlpnProtocolEnumerator_MalformedList_StopsWithoutThrowing()
    {
        var protocols = new List<string>();
        foreach (ReadOnlySpan<byte> protocol in new AlpnProtocolEnumerator([2, (byte)'h', (byte)'2', 9, (byte)'x']))
        {
            protocols.Add(Encoding.ASCII.GetString(protocol));
        }

        Assert.Equal(["h2"], protocols);
    }

    internal static byte[] EmptyRecord => [0x16, 0x03, 0x01, 0x00, 0x00];

    /// <summary>A small valid hello (one cipher suite pair, null compression) with the extensions <paramref name="configure"/> adds.</summary>
    internal static byte[] Hello(Action<HelloBuilder> configure)
    {
        var builder = new HelloBuilder();
        configure(builder);
        return Record(builder.Message());
    }

    private static byte[] ExtensionBytes(ushort type, byte[] data) => [(byte)(type >> 8), (byte)type, .. HelloBuilder.Vector16(data)];

    /// <summary>A hello body whose extensions block holds exactly <paramref name="block"/> (possibly malformed).</summary>
    private static byte[] ExtensionsBlock(byte[] block) => [.. new HelloBuilder { Extensions = null }.Body(), .. HelloBuilder.Vector16(block)];
}
