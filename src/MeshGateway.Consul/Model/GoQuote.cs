using System.Globalization;
using System.Text;

namespace MeshGateway.Model;

/// <summary>Go's <c>strconv.Quote</c> (what <c>fmt</c>'s <c>%q</c> prints for a string), so messages match Consul's byte for byte.</summary>
internal static class GoQuote
{
    /// <summary>
    /// Quotes <paramref name="value"/>: <c>"</c> and <c>\</c> escaped; printable runes (Unicode letters, marks, numbers,
    /// punctuation, symbols and the ASCII space) kept; <c>\a \b \f \n \r \t \v</c>; other runes below U+0020 and U+007F as
    /// <c>\xNN</c>; other non-printable runes as <c>\uNNNN</c> or <c>\UNNNNNNNN</c> (lower-case hex, as Go writes).
    /// </summary>
    /// <param name="value">The string.</param>
    /// <returns>The quoted string.</returns>
    /// <remarks>A lone UTF-16 surrogate (which cannot come from UTF-8 input) is written as <c>\ufffd</c>, the rune Go decodes invalid input to.</remarks>
    public static string Quote(string value)
    {
        var builder = new StringBuilder(value.Length + 2);
        builder.Append('"');
        int index = 0;
        while (index < value.Length)
        {
            if (Rune.DecodeFromUtf16(value.AsSpan(index), out Rune rune, out int consumed) != System.Buffers.OperationStatus.Done)
            {
                builder.Append("\\ufffd");
                index += Math.Max(consumed, 1);
                continue;
            }

            index += consumed;
            AppendRune(builder, rune);
        }

        builder.Append('"');
        return builder.ToString();
    }

    private static void AppendRune(StringBuilder builder, Rune rune)
    {
        int value = rune.Value;
        if (value is '"' or '\\')
        {
            builder.Append('\\').Append((char)value);
            return;
        }

        if (IsPrint(rune))
        {
            builder.Append(rune.ToString());
            return;
        }

        switch (value)
        {
            case '\a': builder.Append("\\a"); return;
            case '\b': builder.Append("\\b"); return;
            case '\f': builder.Append("\\f"); return;
            case '\n': builder.Append("\\n"); return;
            case '\r': builder.Append("\\r"); return;
            case '\t': builder.Append("\\t"); return;
            case '\v': builder.Append("\\v"); return;
        }

        if (value < ' ' || value == 0x7F)
        {
            builder.Append("\\x").Append(value.ToString("x2", CultureInfo.InvariantCulture));
        }
        else if (value < 0x10000)
        {
            builder.Append("\\u").Append(value.ToString("x4", CultureInfo.InvariantCulture));
        }
        else
        {
            builder.Append("\\U").Append(value.ToString("x8", CultureInfo.InvariantCulture));
        }
    }

    // Go unicode.IsPrint: categories L, M, N, P, S plus U+0020 (other spaces are not printable).
    private static bool IsPrint(Rune rune)
    {
        if (rune.Value == ' ')
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
                or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation
                or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol or UnicodeCategory.OtherSymbol => true,
            _ => false,
        };
    }
}
