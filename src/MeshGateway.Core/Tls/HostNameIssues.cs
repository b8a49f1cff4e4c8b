using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MeshGateway.Tls;

/// <summary>
/// How a ClientHello's host_name departs from a valid DNS host name (letters, digits and hyphens in dot-separated labels
/// of 1 to 63 bytes, at most 253 bytes in all: RFC 1035 §2.3.1/§2.3.4, RFC 1123 §2.1, RFC 5890 §2.3.1), as reported by
/// <see cref="ClientHelloInfo.ServerNameIssues"/>. <see cref="None"/> means the name is a valid DNS host name.
/// </summary>
/// <remarks>
/// The reader only reports these; it accepts any host_name bytes (RFC 6066 §3 types HostName as opaque), so the caller
/// chooses a policy. Real clients send names with some of them: a .NET <c>SslStream</c> client given a Unicode
/// (IDN) target host sends it as UTF-8 (<see cref="NonAscii"/>); Consul service names may contain <c>_</c>
/// (<see cref="NonLdhCharacter"/>).
/// </remarks>
[Flags]
public enum HostNameIssues
{
    /// <summary>A valid DNS host name (or no host_name at all).</summary>
    None = 0,

    /// <summary>A byte at or above 0x80, such as a UTF-8 encoded U-label where an A-label (<c>xn--</c>) belongs (RFC 5890 §2.3.2.1).</summary>
    NonAscii = 1 << 0,

    /// <summary>A NUL, another ASCII control character (0x00-0x1F, 0x7F) or a space (0x20).</summary>
    ControlOrSpace = 1 << 1,

    /// <summary>A visible ASCII character other than a letter, digit, hyphen or dot, such as <c>_</c> or <c>*</c>.</summary>
    NonLdhCharacter = 1 << 2,

    /// <summary>An empty label: a leading dot or two dots in a row (a single trailing dot is <see cref="TrailingDot"/>).</summary>
    EmptyLabel = 1 << 3,

    /// <summary>A label longer than 63 bytes (RFC 1035 §2.3.4).</summary>
    LabelTooLong = 1 << 4,

    /// <summary>The name, without a trailing dot, is longer than 253 bytes (255 octets in DNS wire form, RFC 1035 §2.3.4).</summary>
    NameTooLong = 1 << 5,

    /// <summary>A label starts or ends with a hyphen (RFC 1123 §2.1, RFC 5890 §2.3.1).</summary>
    HyphenAtLabelEdge = 1 << 6,

    /// <summary>The name ends with a dot, which RFC 6066 §3 forbids in host_name (see <see cref="ClientHelloInfo.ServerNameEndsWithDot"/>).</summary>
    TrailingDot = 1 << 7,
}

/// <summary>Classifies host names for <see cref="ClientHelloInfo.ServerNameIssues"/>.</summary>
internal static class HostNameClassifier
{
    /// <summary>RFC 1035 §2.3.4: labels are 63 octets or less.</summary>
    internal const int MaxLabelLength = 63;

    /// <summary>RFC 1035 §2.3.4: names are 255 octets or less in wire form, so 253 characters in text form without the trailing dot.</summary>
    internal const int MaxDnsNameLength = 253;

    /// <summary>The character issue of each byte value (0 for letters, digits, hyphen and dot).</summary>
    private static ReadOnlySpan<byte> CharacterIssues =>
    [
        // 0x00-0x1F: controls
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
        // 0x20 space, ! " # $ % & ' ( ) * + , - . /
        2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 4,
        // 0-9 : ; < = > ?
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4,
        // @ A-O
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // P-Z [ \ ] ^ _
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4,
        // ` a-o
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // p-z { | } ~ DEL
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 2,
        // 0x80-0xFF
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ];

    /// <summary>The size a buffer passed to <see cref="Classify(ReadOnlySpan{byte}, int)"/> must have: whole 16-byte blocks over the longest name.</summary>
    internal const int BufferLength = 256;

    /// <summary>The longest name classified with bit masks (four 32-byte blocks); longer ones walk their dots.</summary>
    private const int BlockwiseLength = 128;

    /// <summary>
    /// The issues of the host name in the first <paramref name="length"/> bytes of <paramref name="buffer"/> (at least
    /// <see cref="BufferLength"/> bytes, so it is read in whole 16-byte blocks; the bytes past the name are ignored).
    /// The same answer as <see cref="Classify(ReadOnlySpan{byte})"/>, which the tests hold it to; this one runs per
    /// connection, so it looks at 16 bytes at a time and visits only the dots (a byte loop cost the reader ~10 ns).
    /// </summary>
    internal static HostNameIssues Classify(ReadOnlySpan<byte> buffer, int length) => Classify(buffer[..length], buffer);

    /// <summary>
    /// As <see cref="Classify(ReadOnlySpan{byte}, int)"/>, for a name in <paramref name="original"/> (the bytes as received)
    /// whose copy starts <paramref name="buffer"/> (at least <see cref="BufferLength"/> bytes).
    /// </summary>
    internal static HostNameIssues Classify(ReadOnlySpan<byte> original, ReadOnlySpan<byte> buffer)
    {
        int length = original.Length;
        if (buffer.Length < BufferLength || (uint)length > ClientHelloInfo.MaxHostNameLength)
        {
            return Classify(original);
        }

        HostNameIssues issues = HostNameIssues.None;
        ref byte name = ref MemoryMarshal.GetReference(buffer);
        if (length > 0 && Unsafe.Add(ref name, length - 1) == (byte)'.')
        {
            issues |= HostNameIssues.TrailingDot;
            length--;
        }

        if (length > MaxDnsNameLength)
        {
            issues |= HostNameIssues.NameTooLong;
        }

        uint badCharacters = 0;
        if (length <= BlockwiseLength && Vector256.IsHardwareAccelerated)
        {
            // Nearly every name (Consul's SNI names are 60-100 bytes): the dots and hyphens of at most four 32-byte
            // blocks fit one 128-bit mask each, so the label rules are bit operations on the masks, and only label
            // lengths (for names over 63 bytes) visit the dots, by their bit positions.
            // Bit i of (dotsLow, dotsHigh) is set when byte i is a dot; the same for hyphens (two 64-bit halves rather
            // than UInt128, whose variable shifts are not single instructions).
            ulong dotsLow = 0, dotsHigh = 0, hyphensLow = 0, hyphensHigh = 0;
            ref byte source = ref MemoryMarshal.GetReference(original);
            for (int offset = 0; offset < length; offset += Vector256<byte>.Count)
            {
                // Whole blocks come from the original bytes; so does the last, partial one when the name has 32 bytes or
                // more (the block ending at the name's end, its masks shifted down); shorter names come from the padded
                // copy. Reading the original avoids loading a block the copy has just written with narrower stores
                // (a failed store-to-load forward on every block; measured).
                int rest = length - offset;
                uint blockDots, blockHyphens;
                if (rest >= Vector256<byte>.Count)
                {
                    ClassifyBlock(Vector256.LoadUnsafe(ref source, (nuint)offset), uint.MaxValue, out blockDots, out blockHyphens, ref badCharacters);
                }
                else if (length >= Vector256<byte>.Count)
                {
                    int skip = Vector256<byte>.Count - rest;
                    ClassifyBlock(Vector256.LoadUnsafe(ref source, (nuint)(length - Vector256<byte>.Count)), uint.MaxValue, out blockDots, out blockHyphens, ref badCharacters);
                    blockDots >>= skip;
                    blockHyphens >>= skip;
                }
                else
                {
                    ClassifyBlock(Vector256.LoadUnsafe(ref name, (nuint)offset), (1u << rest) - 1, out blockDots, out blockHyphens, ref badCharacters);
                }

                if (offset < 64)
                {
                    dotsLow |= (ulong)blockDots << offset;
                    hyphensLow |= (ulong)blockHyphens << offset;
                }
                else
                {
                    dotsHigh |= (ulong)blockDots << (offset - 64);
                    hyphensHigh |= (ulong)blockHyphens << (offset - 64);
                }
            }

            if (length == 0)
            {
                issues |= HostNameIssues.EmptyLabel;
            }
            else
            {
                // A dot first, last or next to another dot leaves an empty label; labels start at 0 and after each dot,
                // and end at the last byte and before each dot.
                ulong lastLow = length <= 64 ? 1UL << (length - 1) : 0;
                ulong lastHigh = length <= 64 ? 0 : 1UL << (length - 65);
                ulong afterLow = (dotsLow << 1) | 1;                              // dots << 1, plus byte 0
                ulong afterHigh = (dotsHigh << 1) | (dotsLow >> 63);
                ulong beforeLow = (dotsLow >> 1) | (dotsHigh << 63) | lastLow;     // dots >> 1, plus the last byte
                ulong beforeHigh = (dotsHigh >> 1) | lastHigh;
                if ((dotsLow & (1 | beforeLow)) != 0 || (dotsHigh & beforeHigh) != 0)
                {
                    issues |= HostNameIssues.EmptyLabel;
                }

                if ((hyphensLow & (afterLow | beforeLow)) != 0 || (hyphensHigh & (afterHigh | beforeHigh)) != 0)
                {
                    issues |= HostNameIssues.HyphenAtLabelEdge;
                }

                if (length > MaxLabelLength && LongestLabel(dotsLow, dotsHigh, length) > MaxLabelLength)
                {
                    issues |= HostNameIssues.LabelTooLong;
                }
            }

            return badCharacters == 0 ? issues : issues | CharacterIssuesOf(ref name, length);
        }

        int labelStart = 0;
        for (int offset = 0; offset < length; offset += Vector128<byte>.Count)
        {
            Vector128<byte> block = Vector128.LoadUnsafe(ref name, (nuint)offset);
            uint valid = length - offset >= Vector128<byte>.Count ? 0xFFFFu : (1u << (length - offset)) - 1;

            // Letters (either case), digits, hyphen, dot; byte comparisons are unsigned, so 8-bit bytes fall outside.
            Vector128<byte> ldh = Vector128.LessThan((block | Vector128.Create((byte)0x20)) - Vector128.Create((byte)'a'), Vector128.Create((byte)26))
                | Vector128.LessThan(block - Vector128.Create((byte)'0'), Vector128.Create((byte)10))
                | Vector128.Equals(block, Vector128.Create((byte)'-'));
            Vector128<byte> dot = Vector128.Equals(block, Vector128.Create((byte)'.'));
            badCharacters |= ~(ldh | dot).ExtractMostSignificantBits() & valid;
            uint dots = dot.ExtractMostSignificantBits() & valid;
            while (dots != 0)
            {
                int at = offset + BitOperations.TrailingZeroCount(dots);
                dots &= dots - 1;
                issues |= LabelIssues(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref name, labelStart), at - labelStart));
                labelStart = at + 1;
            }
        }

        issues |= LabelIssues(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref name, labelStart), length - labelStart));
        return badCharacters == 0 ? issues : issues | CharacterIssuesOf(ref name, length);
    }

    /// <summary>The longest label of a name of <paramref name="length"/> bytes whose dots are the set bits of (low, high).</summary>
    private static int LongestLabel(ulong low, ulong high, int length)
    {
        int longest = 0;
        int start = 0;
        while (low != 0)
        {
            int at = BitOperations.TrailingZeroCount(low);
            longest = Math.Max(longest, at - start);
            start = at + 1;
            low &= low - 1;
        }

        while (high != 0)
        {
            int at = 64 + BitOperations.TrailingZeroCount(high);
            longest = Math.Max(longest, at - start);
            start = at + 1;
            high &= high - 1;
        }

        return Math.Max(longest, length - start);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClassifyBlock(Vector256<byte> block, uint valid, out uint dots, out uint hyphens, ref uint badCharacters)
    {
        // Letters (either case), digits, hyphen, dot; byte comparisons are unsigned, so 8-bit bytes fall outside.
        Vector256<byte> hyphen = Vector256.Equals(block, Vector256.Create((byte)'-'));
        Vector256<byte> dot = Vector256.Equals(block, Vector256.Create((byte)'.'));
        Vector256<byte> ldh = Vector256.LessThan((block | Vector256.Create((byte)0x20)) - Vector256.Create((byte)'a'), Vector256.Create((byte)26))
            | Vector256.LessThan(block - Vector256.Create((byte)'0'), Vector256.Create((byte)10));
        badCharacters |= ~(ldh | hyphen | dot).ExtractMostSignificantBits() & valid;
        dots = dot.ExtractMostSignificantBits() & valid;
        hyphens = hyphen.ExtractMostSignificantBits() & valid;
    }

    /// <summary>Rare: which kinds of character issue (non-ASCII, control, other punctuation) a name has, with the table.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static HostNameIssues CharacterIssuesOf(ref byte name, int length)
    {
        ReadOnlySpan<byte> table = CharacterIssues;
        int characters = 0;
        for (int i = 0; i < length; i++)
        {
            characters |= table[Unsafe.Add(ref name, i)];
        }

        return (HostNameIssues)characters;
    }

    /// <summary>The issues of a non-empty host name; one pass, no allocation.</summary>
    /// <remarks>
    /// Written here rather than taken from <see cref="Uri.CheckHostName(string)"/> or <c>IdnMapping</c>: both need a
    /// string (an allocation per connection) and answer a different question (URI host syntax, IDNA mapping).
    /// </remarks>
    internal static HostNameIssues Classify(ReadOnlySpan<byte> name)
    {
        HostNameIssues issues = HostNameIssues.None;
        if (!name.IsEmpty && name[^1] == (byte)'.')
        {
            issues |= HostNameIssues.TrailingDot;
            name = name[..^1];
        }

        if (name.Length > MaxDnsNameLength)
        {
            issues |= HostNameIssues.NameTooLong;
        }

        ReadOnlySpan<byte> table = CharacterIssues;
        int characters = 0;
        int labelStart = 0;
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            if (b == (byte)'.')
            {
                issues |= LabelIssues(name[labelStart..i]);
                labelStart = i + 1;
            }
            else
            {
                characters |= table[b];
            }
        }

        return issues | LabelIssues(name[labelStart..]) | (HostNameIssues)characters;
    }

    private static HostNameIssues LabelIssues(ReadOnlySpan<byte> label)
    {
        if (label.IsEmpty)
        {
            return HostNameIssues.EmptyLabel;
        }

        HostNameIssues issues = label.Length > MaxLabelLength ? HostNameIssues.LabelTooLong : HostNameIssues.None;
        return label[0] == (byte)'-' || label[^1] == (byte)'-' ? issues | HostNameIssues.HyphenAtLabelEdge : issues;
    }
}
