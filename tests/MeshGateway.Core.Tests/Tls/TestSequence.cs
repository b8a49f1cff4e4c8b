using System.Buffers;

namespace MeshGateway.Tests.Tls;

/// <summary>
/// Builds multi-segment <see cref="ReadOnlySequence{T}"/> instances the way the BCL's ReadOnlySequenceFactory tests do:
/// chosen segment sizes, empty segments, and segments whose memory starts at a non-zero offset of a larger array.
/// </summary>
internal static class TestSequence
{
    /// <summary>One segment per element of <paramref name="sizes"/> (0 = an empty segment); the last takes the rest.</summary>
    public static ReadOnlySequence<byte> Split(ReadOnlySpan<byte> data, IReadOnlyList<int> sizes, int padding = 3)
    {
        var parts = new List<ReadOnlyMemory<byte>>();
        int offset = 0;
        foreach (int size in sizes)
        {
            int take = Math.Min(size, data.Length - offset);
            parts.Add(Padded(data.Slice(offset, take), padding));
            offset += take;
        }

        if (offset < data.Length || parts.Count == 0)
        {
            parts.Add(Padded(data[offset..], padding));
        }

        return Create(parts);
    }

    /// <summary>One byte per segment, with an empty segment between every two.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegmentWithEmpties(ReadOnlySpan<byte> data)
    {
        var parts = new List<ReadOnlyMemory<byte>> { ReadOnlyMemory<byte>.Empty };
        for (int i = 0; i < data.Length; i++)
        {
            parts.Add(Padded(data.Slice(i, 1), i % 4));
            parts.Add(ReadOnlyMemory<byte>.Empty);
        }

        return Create(parts);
    }

    public static ReadOnlySequence<byte> Create(IReadOnlyList<ReadOnlyMemory<byte>> parts)
    {
        if (parts.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(parts[0], 0);
        Segment last = first;
        for (int i = 1; i < parts.Count; i++)
        {
            last = last.Append(parts[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Copies <paramref name="bytes"/> into a larger array at a non-zero offset, with junk around it.</summary>
    private static ReadOnlyMemory<byte> Padded(ReadOnlySpan<byte> bytes, int padding)
    {
        byte[] array = new byte[bytes.Length + (2 * padding)];
        array.AsSpan().Fill(0xEE);
        bytes.CopyTo(array.AsSpan(padding));
        return new ReadOnlyMemory<byte>(array, padding, bytes.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
