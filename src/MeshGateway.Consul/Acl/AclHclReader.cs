using System.Globalization;
using System.Text;

namespace MeshGateway.Acl;

/// <summary>
/// A small, strict reader for the subset of HCL (version 1, <c>github.com/hashicorp/hcl</c>) that Consul ACL rules use:
/// <c>key = "value"</c> attributes and <c>key "label" { ... }</c> blocks, separated by white space or commas, with
/// <c>#</c>, <c>//</c> and <c>/* */</c> comments. Anything else (numbers, bare words, lists, heredocs, interpolation)
/// is a located syntax error, never a guess.
/// </summary>
internal sealed class AclHclReader
{
    private const int MaxDepth = 16;

    private readonly string _text;
    private int _position;
    private int _line = 1;
    private int _lineStart;

    private AclHclReader(string text) => _text = text;

    public static List<AclSyntaxNode> Read(string text)
    {
        var reader = new AclHclReader(text);
        return reader.ReadBody(depth: 0, openLine: 0, openColumn: 0);
    }

    private int Column => _position - _lineStart + 1;

    private List<AclSyntaxNode> ReadBody(int depth, int openLine, int openColumn)
    {
        if (depth > MaxDepth)
        {
            throw Error(AclParseErrorKind.InvalidNesting, _line, Column, "blocks are nested more than " + MaxDepth + " deep");
        }

        var items = new List<AclSyntaxNode>();
        while (true)
        {
            SkipTrivia();
            if (_position >= _text.Length)
            {
                if (depth > 0)
                {
                    throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected end of rules: the block opened at line " + openLine + ", column " + openColumn + " has no closing '}'");
                }

                return items;
            }

            char c = _text[_position];
            if (c == '}')
            {
                if (depth == 0)
                {
                    throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected '}' with no block open");
                }

                _position++;
                return items;
            }

            items.Add(ReadItem(depth));

            SkipTrivia();
            if (_position < _text.Length && _text[_position] == ',')
            {
                _position++;
            }
        }
    }

    private AclSyntaxNode ReadItem(int depth)
    {
        int line = _line;
        int column = Column;
        string key = _text[_position] == '"' ? ReadString() : ReadIdentifier();
        var labels = new List<string>();
        while (true)
        {
            SkipTrivia();
            if (_position >= _text.Length)
            {
                throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected end of rules after '" + key + "': expected '=' or '{'");
            }

            if (_text[_position] != '"')
            {
                break;
            }

            labels.Add(ReadString());
        }

        char c = _text[_position];
        if (c == '=')
        {
            if (labels.Count > 0)
            {
                throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected '=' after the label of '" + key + "': a labelled rule is a block, write " + key + " \"" + labels[0] + "\" { policy = \"...\" }");
            }

            _position++;
            SkipTrivia();
            if (_position >= _text.Length)
            {
                throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected end of rules: '" + key + " =' has no value");
            }

            int valueLine = _line;
            int valueColumn = Column;
            char v = _text[_position];
            if (v == '"')
            {
                return new AclSyntaxNode(key, line, column, AclSyntaxKind.StringValue) { Value = ReadString() };
            }

            if (v == '{')
            {
                throw Error(AclParseErrorKind.InvalidShape, valueLine, valueColumn, "'" + key + " = { ... }' is not supported: write the block form " + key + " \"<name>\" { policy = \"...\" }");
            }

            string found = v == '<' && _position + 1 < _text.Length && _text[_position + 1] == '<' ? "a heredoc" : DescribeToken();
            throw Error(AclParseErrorKind.Syntax, valueLine, valueColumn, "expected a quoted string after '" + key + " =', found " + found);
        }

        if (c == '{')
        {
            int openLine = _line;
            int openColumn = Column;
            _position++;
            var node = new AclSyntaxNode(key, line, column, AclSyntaxKind.Block);
            node.Labels.AddRange(labels);
            node.Body.AddRange(ReadBody(depth + 1, openLine, openColumn));
            return node;
        }

        throw Error(AclParseErrorKind.Syntax, _line, Column, "expected '=' or '{' after '" + key + (labels.Count > 0 ? " \"" + labels[^1] + "\"" : string.Empty) + "', found " + DescribeToken());
    }

    private string DescribeToken()
    {
        char c = _text[_position];
        if (IsIdentifierStart(c) || char.IsAsciiDigit(c))
        {
            int end = _position;
            while (end < _text.Length && (IsIdentifierPart(_text[end]) || _text[end] == '.'))
            {
                end++;
            }

            return "'" + _text[_position..end] + "' (values must be quoted strings)";
        }

        return c switch
        {
            '[' => "a list '['",
            _ => "'" + c + "'",
        };
    }

    private string ReadIdentifier()
    {
        char c = _text[_position];
        if (!IsIdentifierStart(c))
        {
            throw Error(AclParseErrorKind.Syntax, _line, Column, "expected a rule keyword such as service or mesh, found " + DescribeToken());
        }

        int start = _position;
        while (_position < _text.Length && IsIdentifierPart(_text[_position]))
        {
            _position++;
        }

        return _text[start.._position];
    }

    private static bool IsIdentifierStart(char c) => char.IsAsciiLetter(c) || c == '_';

    // HCL v1 identifiers: letters, digits, '_', '-' and '.'.
    private static bool IsIdentifierPart(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.';

    private string ReadString()
    {
        int line = _line;
        int column = Column;
        _position++; // opening quote
        var builder = new StringBuilder();
        while (true)
        {
            if (_position >= _text.Length || _text[_position] == '\n')
            {
                throw Error(AclParseErrorKind.Syntax, line, column, "string not terminated: missing closing '\"'");
            }

            char c = _text[_position++];
            if (c == '"')
            {
                return builder.ToString();
            }

            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }

            if (_position >= _text.Length)
            {
                throw Error(AclParseErrorKind.Syntax, line, column, "string not terminated: missing closing '\"'");
            }

            char e = _text[_position++];
            switch (e)
            {
                case '"': builder.Append('"'); break;
                case '\\': builder.Append('\\'); break;
                case 'n': builder.Append('\n'); break;
                case 't': builder.Append('\t'); break;
                case 'r': builder.Append('\r'); break;
                case 'a': builder.Append('\a'); break;
                case 'b': builder.Append('\b'); break;
                case 'f': builder.Append('\f'); break;
                case 'v': builder.Append('\v'); break;
                case 'u': builder.Append(ReadHexEscape(4, line, column)); break;
                case 'U': builder.Append(ReadHexEscape(8, line, column)); break;
                default:
                    throw Error(AclParseErrorKind.Syntax, _line, Column - 2, "unknown escape sequence '\\" + e + "' in string");
            }
        }
    }

    private string ReadHexEscape(int digits, int line, int column)
    {
        if (_position + digits > _text.Length
            || !int.TryParse(_text.AsSpan(_position, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int code)
            || code > 0x10FFFF
            || code is >= 0xD800 and <= 0xDFFF)
        {
            throw Error(AclParseErrorKind.Syntax, line, column, "invalid \\u escape in string");
        }

        _position += digits;
        return char.ConvertFromUtf32(code);
    }

    private void SkipTrivia()
    {
        while (_position < _text.Length)
        {
            char c = _text[_position];
            if (c == '\n')
            {
                _position++;
                _line++;
                _lineStart = _position;
            }
            else if (c is ' ' or '\t' or '\r' or '\uFEFF')
            {
                _position++;
            }
            else if (c == '#' || (c == '/' && Peek(1) == '/'))
            {
                while (_position < _text.Length && _text[_position] != '\n')
                {
                    _position++;
                }
            }
            else if (c == '/' && Peek(1) == '*')
            {
                int line = _line;
                int column = Column;
                _position += 2;
                while (true)
                {
                    if (_position >= _text.Length)
                    {
                        throw Error(AclParseErrorKind.Syntax, line, column, "comment not terminated: '/*' has no closing '*/'");
                    }

                    if (_text[_position] == '*' && Peek(1) == '/')
                    {
                        _position += 2;
                        break;
                    }

                    if (_text[_position] == '\n')
                    {
                        _line++;
                        _lineStart = _position + 1;
                    }

                    _position++;
                }
            }
            else if (c == '/')
            {
                throw Error(AclParseErrorKind.Syntax, _line, Column, "unexpected '/': comments start with '#', '//' or '/*'");
            }
            else
            {
                return;
            }
        }
    }

    private char Peek(int offset) => _position + offset < _text.Length ? _text[_position + offset] : '\0';

    private static AclParseException Error(AclParseErrorKind kind, int line, int column, string message)
        => new(new AclParseError(kind, line, column, message));
}
