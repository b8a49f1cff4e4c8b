using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace MeshGateway.Model;

/// <summary>
/// Renders and parses the HCL spelling of a mode, <c>mesh_gateway { mode = "local" }</c>, as written in agent
/// configuration and service definitions (config entries may use <c>MeshGateway { Mode = "local" }</c>; both are read).
/// </summary>
/// <remarks>
/// Only this one block is understood: its name (<c>mesh_gateway</c> or <c>MeshGateway</c>, case-insensitive), an optional
/// <c>=</c>, braces, at most one <c>mode</c> attribute with a quoted string, whitespace and <c>#</c>, <c>//</c>,
/// <c>/* */</c> comments. Parsing is for a user's configuration, so values are validated as Consul does.
/// </remarks>
public static class MeshGatewayModeHcl
{
    /// <summary>Renders the block, e.g. <c>mesh_gateway {\n  mode = "local"\n}</c>; unset renders <c>mesh_gateway {}</c>.</summary>
    /// <param name="mode">The mode; unknown values are rendered unchanged (quoted and escaped).</param>
    /// <param name="indent">Spaces in front of every line (for nesting inside a service or proxy block).</param>
    /// <returns>The HCL text, without a final newline.</returns>
    public static string Render(MeshGatewayMode mode, int indent = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(indent);
        string pad = new(' ', indent);
        if (!mode.IsSet)
        {
            return pad + "mesh_gateway {}";
        }

        return $"{pad}mesh_gateway {{\n{pad}  mode = {HclQuote.Quote(mode.RawValue)}\n{pad}}}";
    }

    /// <summary>Parses one <c>mesh_gateway</c> block. Never throws.</summary>
    /// <param name="text">The block's text.</param>
    /// <param name="mode">The mode; unset on failure or when the block has no <c>mode</c>.</param>
    /// <param name="error">
    /// Null on success. For an invalid value exactly Consul's message (<c>Invalid Mesh Gateway Mode: "Remote"</c>);
    /// for a syntax error <c>line N: …</c>.
    /// </param>
    /// <returns>Whether the block is valid.</returns>
    public static bool TryParse(string text, out MeshGatewayMode mode, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        bool ok = TryParseCore(text, out mode, out error);
        if (!ok)
        {
            mode = MeshGatewayMode.Unset;
        }

        return ok;
    }

    private static bool TryParseCore(string text, out MeshGatewayMode mode, [NotNullWhen(false)] out string? error)
    {
        mode = MeshGatewayMode.Unset;
        var scanner = new Scanner(text);

        if (!scanner.TryReadIdentifier(out string? name))
        {
            error = scanner.Error("expected mesh_gateway");
            return false;
        }

        if (!name.Equals("mesh_gateway", StringComparison.OrdinalIgnoreCase) && !name.Equals("MeshGateway", StringComparison.OrdinalIgnoreCase))
        {
            error = scanner.Error($"expected mesh_gateway, found {name}");
            return false;
        }

        scanner.TrySkip('=');
        if (!scanner.TrySkip('{'))
        {
            error = scanner.Error("expected '{'");
            return false;
        }

        bool seenMode = false;
        while (!scanner.TrySkip('}'))
        {
            int keyLine = scanner.Line;
            if (!scanner.TryReadIdentifier(out string? key))
            {
                error = scanner.AtEnd ? scanner.Error("missing '}'") : scanner.Error("expected an attribute or '}'");
                return false;
            }

            if (!key.Equals("mode", StringComparison.OrdinalIgnoreCase))
            {
                error = $"line {keyLine.ToString(CultureInfo.InvariantCulture)}: unknown key \"{key}\" in mesh_gateway (only mode is allowed)";
                return false;
            }

            if (seenMode)
            {
                error = $"line {keyLine.ToString(CultureInfo.InvariantCulture)}: mode is set twice";
                return false;
            }

            seenMode = true;
            if (!scanner.TrySkip('='))
            {
                error = scanner.Error("expected '=' after mode");
                return false;
            }

            if (!scanner.TryReadString(out string? value, out string? stringError))
            {
                error = scanner.Error(stringError);
                return false;
            }

            if (!MeshGatewayMode.TryParse(value, out mode, out error))
            {
                return false;
            }

            scanner.TrySkip(',');
        }

        if (!scanner.AtEnd)
        {
            error = scanner.Error("unexpected text after the mesh_gateway block");
            return false;
        }

        error = null;
        return true;
    }

    private ref struct Scanner
    {
        private readonly ReadOnlySpan<char> _text;
        private int _position;

        public Scanner(string text)
        {
            _text = text;
            Line = 1;
        }

        public int Line { get; private set; }

        public bool AtEnd
        {
            get
            {
                SkipTrivia();
                return _position >= _text.Length;
            }
        }

        public readonly string Error(string message) => $"line {Line.ToString(CultureInfo.InvariantCulture)}: {message}";

        public bool TrySkip(char c)
        {
            SkipTrivia();
            if (_position < _text.Length && _text[_position] == c)
            {
                _position++;
                return true;
            }

            return false;
        }

        public bool TryReadIdentifier([NotNullWhen(true)] out string? identifier)
        {
            SkipTrivia();
            int start = _position;
            while (_position < _text.Length && (char.IsAsciiLetterOrDigit(_text[_position]) || _text[_position] is '_' or '-'))
            {
                _position++;
            }

            identifier = _position > start && !char.IsAsciiDigit(_text[start]) ? _text[start.._position].ToString() : null;
            if (identifier is null)
            {
                _position = start;
            }

            return identifier is not null;
        }

        public bool TryReadString([NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
        {
            SkipTrivia();
            value = null;
            if (_position >= _text.Length || _text[_position] != '"')
            {
                error = "expected a quoted string";
                return false;
            }

            _position++;
            var builder = new StringBuilder();
            while (_position < _text.Length)
            {
                char c = _text[_position++];
                if (c == '"')
                {
                    value = builder.ToString();
                    error = null;
                    return true;
                }

                if (c == '\n')
                {
                    error = "unterminated string";
                    return false;
                }

                if (c != '\\')
                {
                    builder.Append(c);
                    continue;
                }

                if (_position >= _text.Length)
                {
                    break;
                }

                char escape = _text[_position++];
                switch (escape)
                {
                    case '"': builder.Append('"'); break;
                    case '\\': builder.Append('\\'); break;
                    case 'n': builder.Append('\n'); break;
                    case 'r': builder.Append('\r'); break;
                    case 't': builder.Append('\t'); break;
                    case 'u' or 'U':
                        int digits = escape == 'u' ? 4 : 8;
                        if (_position + digits > _text.Length
                            || !int.TryParse(_text.Slice(_position, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
                            || !Rune.IsValid(code))
                        {
                            error = "invalid \\" + escape + " escape";
                            return false;
                        }

                        builder.Append(new Rune(code).ToString());
                        _position += digits;
                        break;
                    default:
                        error = "invalid escape \\" + escape;
                        return false;
                }
            }

            error = "unterminated string";
            return false;
        }

        private void SkipTrivia()
        {
            while (_position < _text.Length)
            {
                char c = _text[_position];
                if (c == '\n')
                {
                    Line++;
                    _position++;
                }
                else if (char.IsWhiteSpace(c))
                {
                    _position++;
                }
                else if (c == '#' || (c == '/' && _position + 1 < _text.Length && _text[_position + 1] == '/'))
                {
                    while (_position < _text.Length && _text[_position] != '\n')
                    {
                        _position++;
                    }
                }
                else if (c == '/' && _position + 1 < _text.Length && _text[_position + 1] == '*')
                {
                    _position += 2;
                    while (_position < _text.Length && !(_text[_position] == '*' && _position + 1 < _text.Length && _text[_position + 1] == '/'))
                    {
                        if (_text[_position] == '\n')
                        {
                            Line++;
                        }

                        _position++;
                    }

                    _position = Math.Min(_position + 2, _text.Length);
                }
                else
                {
                    return;
                }
            }
        }
    }
}
