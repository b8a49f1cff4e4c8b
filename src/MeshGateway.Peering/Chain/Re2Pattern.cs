using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MeshGateway.Peering;

/// <summary>
/// Consul's route regular expressions (a router's <c>PathRegex</c>, header and query-parameter <c>Regex</c>) are RE2:
/// Envoy compiles them with Google's RE2 (<c>safe_regex</c>). This turns one into a .NET pattern that matches the same
/// strings, for <see cref="RegexOptions.NonBacktracking"/> (linear time in the input, as RE2: a peer's path cannot make
/// a route's expression run long).
/// </summary>
/// <remarks>
/// <para>Written here because no library translates RE2 to .NET. What differs, from RE2's syntax reference
/// (github.com/google/re2/wiki/Syntax) and .NET's regular expression language:</para>
/// <list type="bullet">
/// <item><c>\d</c>, <c>\s</c>, <c>\w</c> are ASCII in RE2 (<c>[0-9]</c>, <c>[\t\n\f\r ]</c>, <c>[0-9A-Za-z_]</c>), Unicode in .NET: written out.</item>
/// <item>POSIX classes <c>[[:alpha:]]</c> exist in RE2 only: written out as their ASCII ranges.</item>
/// <item><c>(?P&lt;name&gt;re)</c> is RE2's named group: .NET's <c>(?&lt;name&gt;re)</c>.</item>
/// <item><c>\pL</c> (one-letter Unicode class) becomes <c>\p{L}</c>; <c>\Q...\E</c> literal text is escaped;
/// <c>\x{10FF}</c> becomes <c>\u10FF</c>; octal <c>\123</c> becomes <c>\u0053</c> (in .NET <c>\1</c> would be a backreference).</item>
/// <item>RE2's <c>$</c> without the <c>m</c> flag is the end of the text, .NET's also matches before a final newline:
/// the whole-match anchor is <c>\z</c>, and a <c>$</c> outside a class becomes <c>\z</c> unless a <c>m</c> flag is set
/// anywhere in the pattern.</item>
/// </list>
/// <para>RE2 constructs .NET has no equivalent for are refused with <see cref="ArgumentException"/>: the ungreedy flag
/// <c>U</c>, <c>\C</c>, a negated POSIX class or <c>\D</c>, <c>\S</c>, <c>\W</c> among other items of a class,
/// <c>\Q</c> inside a class, a code point above U+FFFF. Left as they are: <c>\b</c> (Unicode word characters here,
/// ASCII in RE2), and <c>.</c> or a negated class against a character above U+FFFF (one code point in RE2, two UTF-16
/// units here); request paths and header values seldom hold either.</para>
/// </remarks>
internal static class Re2Pattern
{
    private static readonly Dictionary<string, string> s_posix = new(StringComparer.Ordinal)
    {
        ["alnum"] = "0-9A-Za-z",
        ["alpha"] = "A-Za-z",
        ["ascii"] = @"\x00-\x7F",
        ["blank"] = @"\t ",
        ["cntrl"] = @"\x00-\x1F\x7F",
        ["digit"] = "0-9",
        ["graph"] = @"!-~",
        ["lower"] = "a-z",
        ["print"] = @" -~",
        ["punct"] = @"!-/:-@\[-`{-~",
        ["space"] = @"\t\n\v\f\r ",
        ["upper"] = "A-Z",
        ["word"] = "0-9A-Za-z_",
        ["xdigit"] = "0-9A-Fa-f",
    };

    /// <summary>
    /// Compiled expressions by RE2 text. Every snapshot compiles every route again (and the feed compiles a service alone
    /// before the snapshot does), while the expressions seldom change and a <see cref="Regex"/> is immutable and safe to
    /// share between threads; the non-backtracking engine costs more to build than the backtracking one.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Regex> s_compiled = new(StringComparer.Ordinal);

    private const int MaxCompiled = 4096;

    private const string Digit = "0-9";
    private const string Space = @"\t\n\f\r ";
    private const string Word = "0-9A-Za-z_";

    /// <summary>Compiles an RE2 expression as a whole-string match (Envoy's <c>safe_regex</c> matches the whole value).</summary>
    /// <param name="re2">The expression as Consul holds it.</param>
    /// <param name="what">What it is, for the error message.</param>
    /// <exception cref="ArgumentException">It is not a valid RE2 expression, or uses a construct .NET cannot match the same way.</exception>
    public static Regex CompileFullMatch(string re2, string what)
    {
        ArgumentNullException.ThrowIfNull(re2);
        if (s_compiled.TryGetValue(re2, out Regex? known))
        {
            return known;
        }

        try
        {
            Regex regex = new(@"\A(?:" + ToDotNet(re2) + @")\z", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
            if (s_compiled.Count >= MaxCompiled)
            {
                // Patterns come from config entries and change rarely; a bound only in case they churn.
                s_compiled.Clear();
            }

            s_compiled[re2] = regex;
            return regex;
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
        {
            // NotSupportedException: a construct RE2 has not either (lookaround, backreference, atomic group), which the
            // non-backtracking engine refuses.
            throw new ArgumentException($"The {what} regular expression '{re2}' is invalid: {ex.Message}", ex);
        }
    }

    /// <summary>The .NET pattern that matches what <paramref name="re2"/> matches.</summary>
    /// <exception cref="ArgumentException">A construct .NET cannot match the same way (the message names it).</exception>
    public static string ToDotNet(string re2)
    {
        ArgumentNullException.ThrowIfNull(re2);
        bool multiline = HasMultilineFlag(re2);
        var result = new StringBuilder(re2.Length + 16);
        int i = 0;
        while (i < re2.Length)
        {
            char c = re2[i];
            switch (c)
            {
                case '\\':
                    i = Escape(re2, i, result, inClass: false);
                    break;
                case '[':
                    i = Class(re2, i, result);
                    break;
                case '(' when At(re2, i + 1, "?P<"):
                    result.Append("(?<");
                    i += 4;
                    break;
                case '(' when At(re2, i + 1, "?"):
                    i = Group(re2, i, result);
                    break;
                case '$' when !multiline:
                    result.Append(@"\z");
                    i++;
                    break;
                default:
                    result.Append(c);
                    i++;
                    break;
            }
        }

        return result.ToString();
    }

    private static bool At(string s, int index, string text) => string.CompareOrdinal(s, index, text, 0, text.Length) == 0;

    /// <summary>Whether any flag group sets <c>m</c> (then <c>$</c> keeps .NET's meaning, which equals RE2's under <c>m</c>).</summary>
    private static bool HasMultilineFlag(string re2)
    {
        for (int at = re2.IndexOf("(?", StringComparison.Ordinal); at >= 0; at = re2.IndexOf("(?", at + 2, StringComparison.Ordinal))
        {
            int j = at + 2;
            while (j < re2.Length && re2[j] is 'i' or 'm' or 's' or 'U' or '-')
            {
                if (re2[j] == 'm' && (at == 0 || re2[at - 1] != '\\'))
                {
                    return true;
                }

                j++;
            }
        }

        return false;
    }

    /// <summary>A flag group <c>(?flags)</c> or <c>(?flags:re)</c>, or a non-capturing group <c>(?:</c>; <c>U</c> is refused.</summary>
    private static int Group(string re2, int i, StringBuilder result)
    {
        int j = i + 2;
        while (j < re2.Length && re2[j] is 'i' or 'm' or 's' or 'U' or '-')
        {
            if (re2[j] == 'U')
            {
                throw new ArgumentException("the ungreedy flag (?U) has no .NET equivalent");
            }

            j++;
        }

        result.Append(re2, i, j - i);
        return j;
    }

    /// <summary>An escape outside or inside a class, from the backslash at <paramref name="i"/>; returns the index after it.</summary>
    private static int Escape(string re2, int i, StringBuilder result, bool inClass)
    {
        if (i + 1 >= re2.Length)
        {
            throw new ArgumentException("a trailing backslash");
        }

        char e = re2[i + 1];
        switch (e)
        {
            case 'd':
                result.Append(inClass ? Digit : "[" + Digit + "]");
                return i + 2;
            case 's':
                result.Append(inClass ? Space : "[" + Space + "]");
                return i + 2;
            case 'w':
                result.Append(inClass ? Word : "[" + Word + "]");
                return i + 2;
            case 'D' or 'S' or 'W' when inClass:
                throw new ArgumentException($@"\{e} among other items of a character class has no .NET equivalent");
            case 'D':
                result.Append("[^" + Digit + "]");
                return i + 2;
            case 'S':
                result.Append("[^" + Space + "]");
                return i + 2;
            case 'W':
                result.Append("[^" + Word + "]");
                return i + 2;
            case 'C':
                throw new ArgumentException(@"\C (any byte) has no .NET equivalent");
            case 'Q' when inClass:
                throw new ArgumentException(@"\Q...\E inside a character class has no .NET equivalent");
            case 'Q':
            {
                int end = re2.IndexOf(@"\E", i + 2, StringComparison.Ordinal);
                string literal = end < 0 ? re2[(i + 2)..] : re2[(i + 2)..end];
                result.Append(Regex.Escape(literal));
                return end < 0 ? re2.Length : end + 2;
            }

            case 'p' or 'P' when i + 2 < re2.Length && re2[i + 2] != '{':
                // One-letter Unicode class: \pL is \p{L}.
                result.Append('\\').Append(e).Append('{').Append(re2[i + 2]).Append('}');
                return i + 3;
            case 'x' when i + 2 < re2.Length && re2[i + 2] == '{':
            {
                int close = re2.IndexOf('}', i + 3);
                if (close < 0 || !int.TryParse(re2.AsSpan(i + 3, close - i - 3), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code) || code > 0x10FFFF)
                {
                    throw new ArgumentException(@"a malformed \x{...} escape");
                }

                result.Append(CodeUnit(code));
                return close + 1;
            }

            case >= '0' and <= '7':
            {
                // Octal: up to three digits (RE2); .NET would read \1-\7 as backreferences.
                int j = i + 1;
                int code = 0;
                while (j < re2.Length && j < i + 4 && re2[j] is >= '0' and <= '7')
                {
                    code = (code * 8) + (re2[j] - '0');
                    j++;
                }

                result.Append(CodeUnit(code));
                return j;
            }

            case '8' or '9':
                throw new ArgumentException($@"\{e} is not an RE2 escape (RE2 has no backreferences)");
            default:
                result.Append('\\').Append(e);
                return i + 2;
        }
    }

    private static string CodeUnit(int code) =>
        code <= 0xFFFF
            ? @"\u" + code.ToString("X4", CultureInfo.InvariantCulture)
            : throw new ArgumentException($"the code point U+{code:X} (above U+FFFF) has no single-character .NET equivalent");

    /// <summary>A character class from its <c>[</c> at <paramref name="i"/>; returns the index after its <c>]</c>.</summary>
    private static int Class(string re2, int i, StringBuilder result)
    {
        int j = i + 1;
        bool negated = j < re2.Length && re2[j] == '^';
        if (negated)
        {
            j++;
        }

        // A class that is one negated POSIX class, [[:^alpha:]], is the complement of its ranges.
        if (At(re2, j, "[:^") && re2.IndexOf(":]", j, StringComparison.Ordinal) is int end and > 0 && end + 2 < re2.Length && re2[end + 2] == ']')
        {
            string name = re2[(j + 3)..end];
            result.Append(negated ? "[" : "[^").Append(Posix(name)).Append(']');
            return end + 3;
        }

        var body = new StringBuilder();
        bool first = true;
        while (true)
        {
            if (j >= re2.Length)
            {
                throw new ArgumentException("a character class without its closing ]");
            }

            char c = re2[j];
            if (c == ']' && !first)
            {
                break;
            }

            first = false;
            if (c == '\\')
            {
                j = Escape(re2, j, body, inClass: true);
            }
            else if (c == '[' && At(re2, j, "[:") && re2.IndexOf(":]", j + 2, StringComparison.Ordinal) is int close and > 0)
            {
                string name = re2[(j + 2)..close];
                if (name.StartsWith('^'))
                {
                    throw new ArgumentException($"the negated POSIX class [:{name}:] among other items of a character class has no .NET equivalent");
                }

                body.Append(Posix(name));
                j = close + 2;
            }
            else if (c == '[')
            {
                // A literal [ inside a class; escaped, as .NET reads "-[" as class subtraction.
                body.Append(@"\[");
                j++;
            }
            else
            {
                body.Append(c);
                j++;
            }
        }

        result.Append('[').Append(negated ? "^" : "").Append(body).Append(']');
        return j + 1;
    }

    private static string Posix(string name) =>
        s_posix.TryGetValue(name, out string? ranges) ? ranges : throw new ArgumentException($"[:{name}:] is not a POSIX character class");
}
