using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// A compiled <c>service-resolver</c> subset <c>Filter</c>: the part of the go-bexpr language resolvers realistically use,
/// evaluated against a <see cref="CatalogServiceInstance"/> (docs/consul-behaviour.md §3, "Subset endpoints").
/// </summary>
/// <remarks>
/// <para>Supported (go-bexpr grammar, keywords lower-case as in go-bexpr):</para>
/// <list type="bullet">
/// <item><c>&lt;selector&gt; == &lt;value&gt;</c>, <c>!=</c>, <c>is empty</c>, <c>is not empty</c>;</item>
/// <item><c>&lt;selector&gt; contains &lt;value&gt;</c>, <c>not contains</c>, <c>&lt;value&gt; in &lt;selector&gt;</c>, <c>not in</c> (lists: element; maps: key; strings: substring);</item>
/// <item><c>and</c>, <c>or</c>, <c>not</c>, parentheses (<c>not</c> binds tighter than <c>and</c>, <c>and</c> tighter than <c>or</c>);</item>
/// <item>values: bare words (<c>v2</c>, <c>1.0</c>), <c>"double-quoted"</c> with backslash escapes, or <c>`raw`</c>.</item>
/// </list>
/// <para>Selectors: <c>Service.Meta.&lt;key&gt;</c>, <c>Service.Meta</c>, <c>Service.Tags</c>, <c>Service.ID</c>, <c>Service.Service</c>,
/// <c>Service.Kind</c>, <c>Node.Node</c>, <c>Node.Datacenter</c>. A missing meta key reads as the empty string (so
/// <c>!=</c> matches and <c>==</c> does not, as go-bexpr answers for a missing key). Anything else (<c>matches</c>, other
/// selectors, numeric comparisons) is rejected by <see cref="TryParse"/> with a message naming the construct.</para>
/// </remarks>
public sealed class ConsulSubsetFilter
{
    private const int MaxLength = 4096;
    private const int MaxDepth = 32;

    private readonly Func<CatalogServiceInstance, bool> _predicate;

    private ConsulSubsetFilter(string text, Func<CatalogServiceInstance, bool> predicate)
    {
        Text = text;
        _predicate = predicate;
    }

    /// <summary>The filter as written.</summary>
    public string Text { get; }

    /// <summary>Compiles a filter; an empty or whitespace filter matches every instance (as in Consul).</summary>
    /// <param name="text">The filter.</param>
    /// <param name="filter">The compiled filter.</param>
    /// <param name="error">Why it was rejected (position and construct).</param>
    /// <returns>Whether it compiled.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ConsulSubsetFilter? filter, [NotNullWhen(false)] out string? error)
    {
        filter = null;
        text ??= string.Empty;
        if (text.Length > MaxLength)
        {
            error = $"the filter is longer than {MaxLength} characters";
            return false;
        }

        if (string.IsNullOrWhiteSpace(text))
        {
            filter = new ConsulSubsetFilter(text, static _ => true);
            error = null;
            return true;
        }

        var parser = new Parser(text);
        if (!parser.TryTokenize(out error))
        {
            return false;
        }

        Func<CatalogServiceInstance, bool>? predicate = parser.ParseExpression(0, out error);
        if (predicate is null)
        {
            error ??= "the filter could not be parsed";
            return false;
        }

        if (!parser.AtEnd)
        {
            error = parser.Unexpected("'and', 'or' or the end");
            return false;
        }

        filter = new ConsulSubsetFilter(text, predicate);
        error = null;
        return true;
    }

    /// <summary>Whether the instance belongs to the subset.</summary>
    /// <param name="endpoint">The instance.</param>
    /// <returns><see langword="true"/> when the filter selects it.</returns>
    public bool Matches(CatalogServiceInstance endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return _predicate(endpoint);
    }

    /// <inheritdoc />
    public override string ToString() => Text;

    private enum TokenKind
    {
        Word,
        Quoted,
        Equal,
        NotEqual,
        Open,
        Close,
    }

    private readonly record struct Token(TokenKind Kind, string Text, int Position);

    private abstract record Selector(string Path);

    private sealed record StringSelector(string Path, Func<CatalogServiceInstance, string> Read) : Selector(Path);

    private sealed record TagsSelector() : Selector("Service.Tags");

    private sealed record MetaSelector() : Selector("Service.Meta");

    private sealed class Parser(string text)
    {
        private readonly List<Token> _tokens = [];
        private int _next;

        public bool AtEnd => _next >= _tokens.Count;

        public bool TryTokenize([NotNullWhen(false)] out string? error)
        {
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                }
                else if (c == '(' || c == ')')
                {
                    _tokens.Add(new(c == '(' ? TokenKind.Open : TokenKind.Close, c.ToString(), i));
                    i++;
                }
                else if ((c == '=' || c == '!') && i + 1 < text.Length && text[i + 1] == '=')
                {
                    _tokens.Add(new(c == '=' ? TokenKind.Equal : TokenKind.NotEqual, text.Substring(i, 2), i));
                    i += 2;
                }
                else if (c == '"' || c == '`')
                {
                    int start = i;
                    var value = new StringBuilder();
                    i++;
                    bool closed = false;
                    while (i < text.Length)
                    {
                        char d = text[i++];
                        if (d == c)
                        {
                            closed = true;
                            break;
                        }

                        if (c == '"' && d == '\\' && i < text.Length)
                        {
                            char escaped = text[i++];
                            value.Append(escaped switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => escaped });
                        }
                        else
                        {
                            value.Append(d);
                        }
                    }

                    if (!closed)
                    {
                        error = $"unterminated quoted value starting at position {start + 1}";
                        return false;
                    }

                    _tokens.Add(new(TokenKind.Quoted, value.ToString(), start));
                }
                else if (IsWordChar(c))
                {
                    int start = i;
                    while (i < text.Length && IsWordChar(text[i]))
                    {
                        i++;
                    }

                    _tokens.Add(new(TokenKind.Word, text[start..i], start));
                }
                else
                {
                    error = $"unexpected character '{c}' at position {i + 1}" + (c is '<' or '>' ? " (numeric comparisons are not part of go-bexpr)" : string.Empty);
                    return false;
                }
            }

            error = null;
            return true;
        }

        public string Unexpected(string expected) => AtEnd
            ? $"expected {expected} but the filter ended"
            : $"expected {expected} at position {_tokens[_next].Position + 1} but found '{_tokens[_next].Text}'";

        // or := and ('or' and)*
        public Func<CatalogServiceInstance, bool>? ParseExpression(int depth, out string? error)
        {
            if (depth > MaxDepth)
            {
                error = $"the filter nests deeper than {MaxDepth} levels";
                return null;
            }

            Func<CatalogServiceInstance, bool>? left = ParseAnd(depth, out error);
            while (left is not null && IsKeyword("or"))
            {
                _next++;
                Func<CatalogServiceInstance, bool>? right = ParseAnd(depth, out error);
                if (right is null)
                {
                    return null;
                }

                Func<CatalogServiceInstance, bool> l = left;
                left = e => l(e) || right(e);
            }

            return left;
        }

        private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '/' or ':' or '+' or '@';

        private static bool IsKeywordText(string word) => word is "and" or "or" or "not" or "in" or "contains" or "is" or "empty" or "matches";

        private bool IsKeyword(string keyword) => !AtEnd && _tokens[_next] is { Kind: TokenKind.Word } t && t.Text == keyword;

        private Func<CatalogServiceInstance, bool>? ParseAnd(int depth, out string? error)
        {
            Func<CatalogServiceInstance, bool>? left = ParseUnary(depth, out error);
            while (left is not null && IsKeyword("and"))
            {
                _next++;
                Func<CatalogServiceInstance, bool>? right = ParseUnary(depth, out error);
                if (right is null)
                {
                    return null;
                }

                Func<CatalogServiceInstance, bool> l = left;
                left = e => l(e) && right(e);
            }

            return left;
        }

        private Func<CatalogServiceInstance, bool>? ParseUnary(int depth, out string? error)
        {
            if (IsKeyword("not"))
            {
                _next++;
                Func<CatalogServiceInstance, bool>? inner = ParseUnary(depth + 1, out error);
                return inner is null ? null : e => !inner(e);
            }

            if (!AtEnd && _tokens[_next].Kind == TokenKind.Open)
            {
                _next++;
                Func<CatalogServiceInstance, bool>? inner = ParseExpression(depth + 1, out error);
                if (inner is null)
                {
                    return null;
                }

                if (AtEnd || _tokens[_next].Kind != TokenKind.Close)
                {
                    error = Unexpected("')'");
                    return null;
                }

                _next++;
                return inner;
            }

            return ParseMatch(out error);
        }

        private Func<CatalogServiceInstance, bool>? ParseMatch(out string? error)
        {
            if (AtEnd)
            {
                error = Unexpected("a selector or a value");
                return null;
            }

            Token first = _tokens[_next];

            // <value> [not] in <selector>
            if (first.Kind == TokenKind.Quoted || (first.Kind == TokenKind.Word && !IsKeywordText(first.Text) && !LooksLikeSelector(first.Text)))
            {
                _next++;
                if (first.Kind == TokenKind.Word && !AtEnd && (_tokens[_next].Kind is TokenKind.Equal or TokenKind.NotEqual || IsKeyword("contains") || IsKeyword("is") || IsKeyword("matches")))
                {
                    // A word in selector position that is not a selector: name it (ParseSelector explains what is supported).
                    _next--;
                    if (ParseSelector(out error) is not null)
                    {
                        error = $"the selector '{first.Text}' at position {first.Position + 1} is not supported by this gateway's subset filters";
                    }

                    return null;
                }

                bool negate = false;
                if (IsKeyword("not"))
                {
                    negate = true;
                    _next++;
                }

                if (!IsKeyword("in"))
                {
                    error = Unexpected("'in' after the value '" + first.Text + "' (a selector such as Service.Meta.version must come first for ==, != and contains)");
                    return null;
                }

                _next++;
                Selector? selector = ParseSelector(out error);
                if (selector is null)
                {
                    return null;
                }

                Func<CatalogServiceInstance, bool> contains = Contains(selector, first.Text);
                return negate ? e => !contains(e) : contains;
            }

            Selector? target = ParseSelector(out error);
            if (target is null)
            {
                return null;
            }

            if (AtEnd)
            {
                error = Unexpected("an operator after '" + target.Path + "'");
                return null;
            }

            Token op = _tokens[_next++];
            switch (op.Kind)
            {
                case TokenKind.Equal or TokenKind.NotEqual:
                {
                    if (target is not StringSelector scalar)
                    {
                        error = $"'{target.Path}' is a collection: use 'contains', 'in' or 'is empty', not '{op.Text}'";
                        return null;
                    }

                    string? value = ParseValue(out error);
                    if (value is null)
                    {
                        return null;
                    }

                    Func<CatalogServiceInstance, string> read = scalar.Read;
                    return op.Kind == TokenKind.Equal
                        ? e => string.Equals(read(e), value, StringComparison.Ordinal)
                        : e => !string.Equals(read(e), value, StringComparison.Ordinal);
                }

                case TokenKind.Word when op.Text == "is":
                {
                    bool negate = false;
                    if (IsKeyword("not"))
                    {
                        negate = true;
                        _next++;
                    }

                    if (!IsKeyword("empty"))
                    {
                        error = Unexpected("'empty' after 'is'");
                        return null;
                    }

                    _next++;
                    Func<CatalogServiceInstance, bool> empty = IsEmpty(target);
                    error = null;
                    return negate ? e => !empty(e) : empty;
                }

                case TokenKind.Word when op.Text is "contains" or "not":
                {
                    bool negate = op.Text == "not";
                    if (negate)
                    {
                        if (!IsKeyword("contains"))
                        {
                            error = Unexpected("'contains' after 'not'");
                            return null;
                        }

                        _next++;
                    }

                    string? value = ParseValue(out error);
                    if (value is null)
                    {
                        return null;
                    }

                    Func<CatalogServiceInstance, bool> contains = Contains(target, value);
                    return negate ? e => !contains(e) : contains;
                }

                case TokenKind.Word when op.Text == "matches":
                    error = $"'matches' (regular expressions) at position {op.Position + 1} is not supported by this gateway's subset filters; use ==, !=, contains or in";
                    return null;

                default:
                    _next--;
                    error = Unexpected("==, !=, 'contains', 'not contains', 'is empty' or 'is not empty' after '" + target.Path + "'");
                    return null;
            }
        }

        private static bool LooksLikeSelector(string word) => word.StartsWith("Service.", StringComparison.Ordinal) || word.StartsWith("Node.", StringComparison.Ordinal)
            || word is "Service" or "Node" or "Checks" || word.StartsWith("Checks.", StringComparison.Ordinal);

        private string? ParseValue(out string? error)
        {
            if (AtEnd || _tokens[_next].Kind is not (TokenKind.Word or TokenKind.Quoted))
            {
                error = Unexpected("a value");
                return null;
            }

            Token token = _tokens[_next++];
            if (token.Kind == TokenKind.Word && IsKeywordText(token.Text))
            {
                error = $"expected a value at position {token.Position + 1} but found the keyword '{token.Text}' (quote it: \"{token.Text}\")";
                return null;
            }

            error = null;
            return token.Text;
        }

        private Selector? ParseSelector(out string? error)
        {
            if (AtEnd || _tokens[_next].Kind != TokenKind.Word)
            {
                error = Unexpected("a selector such as Service.Meta.version");
                return null;
            }

            Token token = _tokens[_next++];
            error = null;
            switch (token.Text)
            {
                case "Service.Tags":
                    return new TagsSelector();
                case "Service.Meta":
                    return new MetaSelector();
                case "Service.ID":
                    return new StringSelector(token.Text, static e => e.Service.Id);
                case "Service.Service":
                    return new StringSelector(token.Text, static e => e.Service.Name);
                case "Service.Kind":
                    return new StringSelector(token.Text, static e => e.Service.Kind);
                case "Node.Node":
                    return new StringSelector(token.Text, static e => e.Node.Name);
                case "Node.Datacenter":
                    return new StringSelector(token.Text, static e => e.Node.Datacenter);
            }

            const string MetaPrefix = "Service.Meta.";
            if (token.Text.StartsWith(MetaPrefix, StringComparison.Ordinal) && token.Text.Length > MetaPrefix.Length)
            {
                string key = token.Text[MetaPrefix.Length..];
                return new StringSelector(token.Text, e => e.Service.Meta.TryGetValue(key, out string? v) ? v : string.Empty);
            }

            error = $"the selector '{token.Text}' at position {token.Position + 1} is not supported by this gateway's subset filters "
                + "(supported: Service.Meta.<key>, Service.Meta, Service.Tags, Service.ID, Service.Service, Service.Kind, Node.Node, Node.Datacenter)";
            return null;
        }

        private static Func<CatalogServiceInstance, bool> Contains(Selector selector, string value) => selector switch
        {
            TagsSelector => e => e.Service.Tags.Contains(value, StringComparer.Ordinal),
            MetaSelector => e => e.Service.Meta.ContainsKey(value),
            StringSelector s => e => s.Read(e).Contains(value, StringComparison.Ordinal),
            _ => static _ => false,
        };

        private static Func<CatalogServiceInstance, bool> IsEmpty(Selector selector) => selector switch
        {
            TagsSelector => static e => e.Service.Tags.Count == 0,
            MetaSelector => static e => e.Service.Meta.Count == 0,
            StringSelector s => e => s.Read(e).Length == 0,
            _ => static _ => true,
        };
    }

    internal static string Describe(string? filter, string error) =>
        string.Create(CultureInfo.InvariantCulture, $"filter \"{filter}\": {error}");
}
