using System.Buffers;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Tls;
using static MeshGateway.Tests.Tls.ClientHelloFixtures;

namespace MeshGateway.Tests.Tls;

/// <summary>FsCheck properties of the reader.</summary>
public sealed class ClientHelloReaderPropertyTests
{
    private static readonly ClientHelloReaderOptions s_large = new() { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize };

    private static readonly byte[][] s_valid = [Tls12Small, ChromeLike, PostQuantum, PaddedPostQuantum, ClientHelloReaderTests.Hello(b => b.Add(16, HelloBuilder.Alpn([.. Enumerable.Range(0, 30).Select(i => $"p{i:D8}")])))];

    private static Gen<byte[]> ValidHello => Gen.Elements(s_valid);

    /// <summary>Sizes for splitting: mostly small (1-byte pieces included), some 0 (empty segments), some large.</summary>
    private static Gen<int[]> Sizes(int max) =>
        Gen.Frequency(
            (4, Gen.Choose(1, 4)),
            (1, Gen.Constant(0)),
            (3, Gen.Choose(1, max)))
        .ArrayOf();

    /// <summary>An input that is a valid hello, with 0-3 bytes overwritten at random positions (about half unchanged).</summary>
    private static Gen<byte[]> MaybeCorrupted =>
        from hello in ValidHello
        from edits in Gen.Choose(0, int.MaxValue).Zip(Gen.Choose(0, 255)).ArrayOf()
        from count in Gen.Choose(0, 3)
        select Corrupt(hello, edits.Take(count));

    [Property(MaxTest = 150)]
    public Property TryRead_AnySegmentation_SameAnswerAsOneSpan()
    {
        return Prop.ForAll(
            (from input in MaybeCorrupted from sizes in Sizes(600) select (input, sizes)).ToArbitrary(),
            t =>
            {
                HelloResult expected = HelloResult.Read(t.input, s_large);
                HelloResult actual = HelloResult.Read(TestSequence.Split(t.input, t.sizes, padding: t.sizes.Length % 3), s_large);
                return expected == actual;
            });
    }

    [Property(MaxTest = 150)]
    public Property TryRead_AnyRecordSplit_SameAnswerAsOneRecord()
    {
        return Prop.ForAll(
            (from input in ValidHello
             from recordSizes in Gen.Frequency((3, Gen.Choose(1, 3)), (2, Gen.Choose(1, 2000))).ArrayOf()
             from segmentSizes in Sizes(400)
             select (input, recordSizes, segmentSizes)).ToArbitrary(),
            t =>
            {
                HelloResult oneRecord = HelloResult.Read(t.input, s_large);
                byte[] records = Record(Unrecord(t.input), t.recordSizes);
                HelloResult span = HelloResult.Read(records, s_large);
                HelloResult segments = HelloResult.Read(TestSequence.Split(records, t.segmentSizes), s_large);
                return oneRecord.Status == ClientHelloStatus.Done
                    && span == oneRecord with { BytesConsumed = records.Length }
                    && segments == span;
            });
    }

    [Property(MaxTest = 150)]
    public Property TryRead_StrictPrefix_NeedMoreData()
    {
        return Prop.ForAll(
            (from input in ValidHello
             from recordSizes in Gen.Choose(1, 300).ArrayOf()
             from cut in Gen.Choose(0, int.MaxValue)
             from segmentSizes in Sizes(200)
             select (input, recordSizes, cut, segmentSizes)).ToArbitrary(),
            t =>
            {
                byte[] records = Record(Unrecord(t.input), t.recordSizes);
                int length = t.cut % records.Length;
                ClientHelloStatus span = ClientHelloReader.TryRead(records.AsSpan(0, length), s_large, out ClientHelloInfo info);
                ReadOnlySequence<byte> prefix = TestSequence.Split(records.AsSpan(0, length), t.segmentSizes);
                ClientHelloStatus sequence = ClientHelloReader.TryRead(prefix, s_large, out _);
                return span == ClientHelloStatus.NeedMoreData && sequence == ClientHelloStatus.NeedMoreData
                    && info.Error == ClientHelloError.None && info.BytesConsumed == 0;
            });
    }

    [Property(MaxTest = 150)]
    public Property TryRead_RandomCorruption_ClassifiedNeverThrows()
    {
        return Prop.ForAll(
            (from hello in ValidHello
             from recordSizes in Gen.Frequency((1, Gen.Constant(Array.Empty<int>())), (1, Gen.Choose(1, 500).ArrayOf()))
             from edits in Gen.Choose(0, int.MaxValue).Zip(Gen.Choose(0, 255)).ArrayOf()
             from cut in Gen.Choose(0, int.MaxValue)
             select (hello, recordSizes, edits, cut)).ToArbitrary(),
            t =>
            {
                byte[] records = Corrupt(Record(Unrecord(t.hello), t.recordSizes), t.edits.Take(4));
                byte[] input = records.AsSpan(0, records.Length - (t.cut % 2 == 0 ? 0 : t.cut % records.Length)).ToArray();
                foreach (ClientHelloReaderOptions options in new[] { default, s_large })
                {
                    ClientHelloStatus status = ClientHelloReader.TryRead(input, options, out ClientHelloInfo info);
                    bool classified = status switch
                    {
                        ClientHelloStatus.Done => info.Error == ClientHelloError.None && info.BytesConsumed > 0 && info.BytesConsumed <= input.Length,
                        ClientHelloStatus.NeedMoreData => info.Error == ClientHelloError.None && info.BytesConsumed == 0,
                        ClientHelloStatus.NotTls => info.Error == ClientHelloError.NotHandshakeRecord,
                        ClientHelloStatus.TooLarge => info.Error == ClientHelloError.HelloTooLarge,
                        ClientHelloStatus.Invalid => info.Error is not (ClientHelloError.None or ClientHelloError.NotHandshakeRecord or ClientHelloError.HelloTooLarge)
                            && Enum.IsDefined(info.Error),
                        _ => false,
                    };
                    if (!classified || HelloResult.Read(TestSequence.OneBytePerSegmentWithEmpties(input), options) != HelloResult.From(status, info, input))
                    {
                        return false;
                    }
                }

                return true;
            });
    }

    [Property(MaxTest = 150)]
    public Property TryRead_RandomBytesAfterHandshakeByte_ClassifiedNeverThrows()
    {
        return Prop.ForAll(
            Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Select(bytes => (byte[])[0x16, 0x03, .. bytes]).ToArbitrary(),
            input =>
            {
                ClientHelloStatus status = ClientHelloReader.TryRead(input, out ClientHelloInfo info);
                return Enum.IsDefined(status) && info.BytesConsumed <= input.Length
                    && HelloResult.Read(TestSequence.Split(input, [1, 2, 0, 3]), default) == HelloResult.From(status, info, input);
            });
    }

    [Fact]
    public void TryRead_EveryBodyByteCorrupted_InPlaceAndFragmentedWalksAgree()
    {
        // The in-place read (one record, one span) and the copied reads (records copied out of their headers, a record
        // cut by segments copied whole) share one body walk; every single-byte corruption of the body must get the
        // same verdict from each shape.
        foreach (byte[] hello in new[] { Tls12Small, ChromeLike, s_valid[4] })
        {
            byte[] message = Unrecord(hello);
            for (int position = HandshakeHeaderLength; position < message.Length; position++)
            {
                foreach (int delta in new[] { 1, -1, 0x80 })
                {
                    byte[] corrupted = (byte[])message.Clone();
                    corrupted[position] = (byte)(corrupted[position] + delta);
                    byte[] oneRecord = Record(corrupted);
                    byte[] sevenByteRecords = Record(corrupted, Enumerable.Repeat(7, corrupted.Length).ToArray());
                    HelloResult inPlace = HelloResult.Read(oneRecord, s_large);
                    HelloResult fragmented = HelloResult.Read(sevenByteRecords, s_large);
                    HelloResult segmented = HelloResult.Read(TestSequence.Split(oneRecord, [position / 2, 1]), s_large);
                    HelloResult largeRecords = HelloResult.Read(Record(corrupted, Enumerable.Repeat(97, corrupted.Length).ToArray()), s_large);
                    Assert.Equal(inPlace with { BytesConsumed = 0 }, fragmented with { BytesConsumed = 0 });
                    Assert.Equal(inPlace with { BytesConsumed = 0 }, largeRecords with { BytesConsumed = 0 });
                    Assert.Equal(inPlace, segmented);
                }
            }
        }
    }

    [Fact]
    public void TryRead_MillionMutations_NeverThrowsAndFingerprintsNeverThrow()
    {
        // 1,000,000 mutated inputs (1-8 random byte edits, a random cut, sometimes re-recorded into small records) of the
        // valid hellos, read as one span; every 16th also as 3-byte segments, which must give the same answer. A fixed
        // seed keeps failures reproducible; the time bound keeps a slow machine from hanging the run (the count reached
        // is asserted, so a bound hit early fails instead of passing quietly).
        const int Mutations = 1_000_000;
        var random = new Random(20261206);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Span<char> fingerprint = stackalloc char[ClientHelloFingerprint.MaxJa3StringLength];
        byte[][] sources = [.. s_valid, .. s_valid.Select(hello => Record(Unrecord(hello), Enumerable.Repeat(50, 100).ToArray()))];
        byte[] input = new byte[sources.Max(hello => hello.Length)];
        int done = 0;
        int mutation = 0;
        for (; mutation < Mutations && clock.Elapsed < TimeSpan.FromMinutes(4); mutation++)
        {
            byte[] source = sources[random.Next(sources.Length)];
            int length = random.Next(4) == 0 ? random.Next(source.Length + 1) : source.Length;
            source.AsSpan(0, length).CopyTo(input);
            for (int edits = random.Next(1, 9); edits > 0 && length > 0; edits--)
            {
                input[random.Next(length)] = (byte)random.Next(256);
            }

            ClientHelloStatus status = ClientHelloReader.TryRead(input.AsSpan(0, length), s_large, out ClientHelloInfo info);
            Assert.True(Enum.IsDefined(status));
            if (status == ClientHelloStatus.Done)
            {
                done++;
                Assert.InRange(info.BytesConsumed, 1, length);
                Assert.True(ClientHelloLists.TryRead(input.AsSpan(0, length), info, out ClientHelloLists lists));
                ClientHelloFingerprint.TryFormatJa4(info, lists, fingerprint, out _);
                ClientHelloFingerprint.TryFormatJa3(info, lists, fingerprint, out _);
                ClientHelloFingerprint.TryFormatJa4Raw(info, lists, fingerprint, out _);
            }

            if ((mutation & 15) == 0)
            {
                HelloResult pieces = HelloResult.Read(TestSequence.Split(input.AsSpan(0, length), Enumerable.Repeat(3, (length / 3) + 1).ToArray()), s_large);
                Assert.Equal(HelloResult.From(status, info, input.AsSpan(0, length)), pieces);
            }

            if (status == ClientHelloStatus.Done)
            {
                // The lists reader trusts nothing: given other bytes than the hello it describes, it answers, never throws.
                input[random.Next(length)] = (byte)random.Next(256);
                ClientHelloLists.TryRead(input.AsSpan(0, length), info, out _);
                ClientHelloLists.TryRead(input.AsSpan(0, random.Next(length + 1)), info, out _);
            }
        }

        Assert.Equal(Mutations, mutation);
        Assert.True(done > 0, "some mutations (a byte of the random, a cipher suite) keep the hello valid");
    }

    [Fact]
    public void Classify_BlockwiseAndBytewise_Agree()
    {
        // The per-connection classifier reads 16-byte blocks; the byte loop is the reference. Names of every length up
        // to 255 from an alphabet heavy in dots, hyphens and the characters at the edges of the LDH ranges.
        byte[] alphabet = [.. "aAzZ09-._/:`{@[ \u007F"u8, 0x00, 0x80, 0xC3, 0xFF];
        var random = new Random(1206);
        byte[] buffer = new byte[HostNameClassifierBufferLength];
        for (int round = 0; round < 20_000; round++)
        {
            int length = 1 + random.Next(ClientHelloInfo.MaxHostNameLength);
            random.NextBytes(buffer);   // bytes past the name must not matter
            for (int i = 0; i < length; i++)
            {
                buffer[i] = random.Next(3) == 0 ? alphabet[random.Next(alphabet.Length)] : (byte)'a';
            }

            HostNameIssues expected = HostNameClassifier.Classify(buffer.AsSpan(0, length));
            Assert.Equal(expected, HostNameClassifier.Classify(buffer, length));
            Assert.Equal(expected, HostNameClassifier.Classify(buffer.AsSpan(0, length).ToArray(), buffer));   // as received: no slack after it
        }
    }

    private const int HostNameClassifierBufferLength = 256;

    private const int HandshakeHeaderLength = 4;

    private static byte[] Corrupt(byte[] input, IEnumerable<(int Position, int Value)> edits)
    {
        byte[] copy = (byte[])input.Clone();
        foreach ((int position, int value) in edits)
        {
            copy[position % copy.Length] = (byte)value;
        }

        return copy;
    }
}
