using System.Buffers;
using System.Runtime.CompilerServices;
using MeshGateway.Tls;
using static MeshGateway.Tests.Tls.ClientHelloFixtures;

namespace MeshGateway.Tests.Tls;

public sealed class ClientHelloReaderAllocationTests
{
    private const int Iterations = 2_000;

    [Fact]
    public void TryRead_ManyParsesOfEveryShape_AllocatesNothing()
    {
        var large = new ClientHelloReaderOptions { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize };
        byte[] chromeMessage = Unrecord(ChromeLike);
        byte[] pqMessage = Unrecord(PostQuantum);
        byte[] chrome = ChromeLike;
        byte[] postQuantum = PostQuantum;
        byte[] pqTwoRecords = Record(pqMessage, [1000]);
        byte[] chromeOneByteRecords = Record(chromeMessage, Enumerable.Repeat(1, chromeMessage.Length).ToArray());
        byte[] longAlpn = ClientHelloReaderTests.Hello(b => b.Add(16, HelloBuilder.Alpn([.. Enumerable.Range(0, 30).Select(i => $"p{i:D8}")])));
        byte[] invalid = ClientHelloReaderTests.Hello(b => b.Add(0, HelloBuilder.ServerNameList((0, "a"u8.ToArray()), (0, "b"u8.ToArray()))));
        ReadOnlySequence<byte> pqTwoSegments = TestSequence.Split(postQuantum, [1400]);
        ReadOnlySequence<byte> pqRecordsSegments = TestSequence.Split(pqTwoRecords, [3, 0, 700, 1]);
        ReadOnlySequence<byte> chromeByteSegments = TestSequence.OneBytePerSegmentWithEmpties(chrome);
        ReadOnlySequence<byte> tinyRecordsSegments = TestSequence.Split(chromeOneByteRecords, [7, 7, 7, 100, 3]);
        ReadOnlySequence<byte> paddedSegments = TestSequence.Split(PaddedPostQuantum, [1448, 1448]);   // over the stack-copy size

        int done = 0;
        long allocated = 0;
        for (int round = 0; round < 2; round++)
        {
            // Round 0 warms up (JIT tiers, static data); round 1 is measured.
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < Iterations; i++)
            {
                done += Count(ClientHelloReader.TryRead(chrome, out _));
                done += Count(ClientHelloReader.TryRead(postQuantum, out _));
                done += Count(ClientHelloReader.TryRead(pqTwoRecords, out _));
                done += Count(ClientHelloReader.TryRead(chromeOneByteRecords, large, out _));
                done += Count(ClientHelloReader.TryRead(longAlpn, out _));
                done += Count(ClientHelloReader.TryRead(pqTwoSegments, out _));
                done += Count(ClientHelloReader.TryRead(pqRecordsSegments, out _));
                done += Count(ClientHelloReader.TryRead(chromeByteSegments, out _));
                done += Count(ClientHelloReader.TryRead(tinyRecordsSegments, large, out _));
                done += Count(ClientHelloReader.TryRead(paddedSegments, out _));
                done -= Count(ClientHelloReader.TryRead(invalid, out _));
                done -= Count(ClientHelloReader.TryRead(postQuantum.AsSpan(0, 1000), out _));
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(2 * Iterations * 10, done);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Fingerprints_ManyComputations_AllocateNothing()
    {
        byte[] chromeInput = ChromeLike;
        byte[] cloudflareInput = Convert.FromHexString(ClientHelloFingerprintTests.Ja4Vectors[0].Hex);
        ClientHelloReader.TryRead(chromeInput, out ClientHelloInfo chrome);
        ClientHelloReader.TryRead(cloudflareInput, out ClientHelloInfo cloudflare);
        ReadOnlySequence<byte> cloudflareSegments = TestSequence.Split(cloudflareInput, [100, 3]);
        char[] buffer = new char[ClientHelloFingerprint.MaxJa3StringLength];
        int written = 0;
        long allocated = 0;
        for (int round = 0; round < 2; round++)
        {
            // Round 0 warms up (JIT tiers, the hash algorithms' static state); round 1 is measured.
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < Iterations; i++)
            {
                // The lists' second walk included, from a span and from segments.
                Assert.True(ClientHelloLists.TryRead(chromeInput, chrome, out ClientHelloLists chromeLists));
                Assert.True(ClientHelloFingerprint.TryFormatJa4(chrome, chromeLists, buffer, out int n));
                written += n;
                Assert.True(ClientHelloFingerprint.TryFormatJa3(chrome, chromeLists, buffer, out n));
                written += n;
                Assert.True(ClientHelloLists.TryRead(cloudflareSegments, cloudflare, out ClientHelloLists cloudflareLists));
                Assert.True(ClientHelloFingerprint.TryFormatJa4Raw(cloudflare, cloudflareLists, buffer, out n));
                written += n;
                Assert.True(ClientHelloFingerprint.TryFormatJa3String(cloudflare, cloudflareLists, buffer, out n));
                written += n;
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.True(written > 0);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void ClientHelloInfo_Size_NoLargerThanARoutingResultNeeds()
    {
        // The gateway holds one ClientHelloInfo per connection (GatewayConnection._hello), and the reader's callers keep
        // it in locals the runtime zeroes: it holds what routing needs (host_name 255 B, ALPN 128 B, 64 extension types)
        // and nothing for fingerprints, whose lists the caller reads into its own ClientHelloLists on request. 568 B is
        // its size before the reader policy and fingerprint work (measured on main with Unsafe.SizeOf); with the lists
        // inline it had grown to 1,016 B.
        Assert.InRange(Unsafe.SizeOf<ClientHelloInfo>(), 1, 568);
        Assert.InRange(Unsafe.SizeOf<ClientHelloLists>(), ClientHelloLists.MaxCipherSuites * 2, 448);
    }

    private static int Count(ClientHelloStatus status) => status == ClientHelloStatus.Done ? 1 : 0;
}
