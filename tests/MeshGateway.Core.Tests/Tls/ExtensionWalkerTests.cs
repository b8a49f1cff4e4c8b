using System.Buffers.Binary;
using MeshGateway.Tls;
using static MeshGateway.Tests.Tls.ClientHelloFixtures;

namespace MeshGateway.Tests.Tls;

/// <summary>
/// The bounds of <see cref="ExtensionWalker.Next"/>, the one place the reader reads its input with an unchecked
/// (unaligned) load: every answer must be that of a plain span-indexing reference, for every offset of every
/// truncation of real extension blocks, with bytes after the block that would look like a valid extension if the
/// walker read past the block's end.
/// </summary>
public sealed class ExtensionWalkerTests
{
    /// <summary>A whole empty extension of type 0xABCD: what an off-by-one read past the block would find.</summary>
    private static readonly byte[] s_lure = [0xAB, 0xCD, 0x00, 0x00, 0xAB, 0xCD, 0x00, 0x00];

    [Fact]
    public void Next_EveryOffsetOfEveryTruncation_AnswersAsTheCheckedReference()
    {
        int checkedSteps = 0;
        foreach (byte[] hello in new[] { Tls12Small, ChromeLike, PostQuantum })
        {
            byte[] block = ExtensionBlock(hello);
            for (int length = 0; length <= block.Length; length++)
            {
                // The truncated block, followed (in the same array) by the lure.
                byte[] buffer = [.. block.AsSpan(0, length), .. s_lure];
                ReadOnlySpan<byte> truncated = buffer.AsSpan(0, length);
                for (int offset = 0; offset <= length; offset++)
                {
                    nint next = ExtensionWalker.Next(truncated, offset, out uint type);
                    int expected = ReferenceNext(truncated, offset, out ushort expectedType);
                    Assert.Equal(expected, (int)next);
                    Assert.Equal(expected < 0 ? 0u : expectedType, type);
                    checkedSteps++;
                }
            }
        }

        Assert.True(checkedSteps > 100_000, $"only {checkedSteps} steps checked");
    }

    [Theory]
    [InlineData(0, 0)]          // an empty extension that ends the block exactly
    [InlineData(5, 5)]          // data that ends the block exactly
    [InlineData(5, 4)]          // one byte short of the length: overruns
    [InlineData(0xFFFF, 100)]   // the largest length, far past the block
    public void Next_LengthAgainstTheBlockEnd_FitsExactlyOrFails(int declaredLength, int dataPresent)
    {
        byte[] buffer = [0x00, 0x2A, (byte)(declaredLength >> 8), (byte)declaredLength, .. new byte[dataPresent], .. s_lure];
        ReadOnlySpan<byte> block = buffer.AsSpan(0, ExtensionWalker.HeaderLength + dataPresent);

        nint next = ExtensionWalker.Next(block, 0, out uint type);

        if (declaredLength <= dataPresent)
        {
            Assert.Equal(block.Length, (int)next);
            Assert.Equal(42u, type);
            Assert.Equal(declaredLength, ExtensionWalker.Data(block, 0).Length);
        }
        else
        {
            Assert.Equal(-1, (int)next);
            Assert.Equal(0u, type);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Next_HeaderCutAtTheBlockEnd_Fails(int headerBytes)
    {
        // A whole empty extension, then the first 1-3 bytes of another header: the lure after them completes a header.
        byte[] buffer = [0x00, 0x17, 0x00, 0x00, .. s_lure];
        ReadOnlySpan<byte> block = buffer.AsSpan(0, ExtensionWalker.HeaderLength + headerBytes);

        Assert.Equal(ExtensionWalker.HeaderLength, (int)ExtensionWalker.Next(block, 0, out _));
        Assert.Equal(-1, (int)ExtensionWalker.Next(block, ExtensionWalker.HeaderLength, out uint type));
        Assert.Equal(0u, type);
    }

    /// <summary>The same step with checked span indexing only.</summary>
    private static int ReferenceNext(ReadOnlySpan<byte> block, int offset, out ushort type)
    {
        type = 0;
        ReadOnlySpan<byte> rest = block[offset..];
        if (rest.Length < ExtensionWalker.HeaderLength)
        {
            return -1;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
        if (length > rest.Length - ExtensionWalker.HeaderLength)
        {
            return -1;
        }

        type = BinaryPrimitives.ReadUInt16BigEndian(rest);
        return offset + ExtensionWalker.HeaderLength + length;
    }

    /// <summary>The extensions block of a one-record hello fixture (after the fixed fields and the block's length).</summary>
    private static byte[] ExtensionBlock(byte[] hello)
    {
        ReadOnlySpan<byte> body = Unrecord(hello).AsSpan(4);   // the handshake header
        Assert.Equal(ClientHelloError.None, ClientHelloBody.TryParse(body, out ClientHelloBody parsed));
        Assert.False(parsed.Extensions.IsEmpty);
        return parsed.Extensions.ToArray();
    }
}
