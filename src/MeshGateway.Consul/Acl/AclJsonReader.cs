using System.Text;
using System.Text.Json;

namespace MeshGateway.Acl;

/// <summary>
/// Reads JSON ACL rules with <see cref="Utf8JsonReader"/> (no reflection) into the same syntax tree as the HCL reader,
/// following HCL v1's JSON mapping: a string member is an attribute; an object whose members are all objects or lists
/// of objects is a set of labelled blocks (<c>"service": {"web": [{"policy": "read"}]}</c>); any other object is one
/// block without a label. Line and column come from the reader's byte offsets.
/// </summary>
internal sealed class AclJsonReader
{
    private const int MaxDepth = 32;

    private readonly byte[] _utf8;
    private readonly List<int> _lineStarts = [0];

    private AclJsonReader(byte[] utf8)
    {
        _utf8 = utf8;
        for (int i = 0; i < utf8.Length; i++)
        {
            if (utf8[i] == (byte)'\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    public static List<AclSyntaxNode> Read(string text)
    {
        var reader = new AclJsonReader(Encoding.UTF8.GetBytes(text));
        JsonValue root = reader.ReadDocument();
        if (root.Kind != JsonValueKind.Object)
        {
            (int line, int column) = (root.Line, root.Column);
            throw new AclParseException(new AclParseError(AclParseErrorKind.InvalidShape, line, column, "JSON rules must be an object"));
        }

        var nodes = new List<AclSyntaxNode>();
        MapMembers(root, nodes);
        return nodes;
    }

    private JsonValue ReadDocument()
    {
        var options = new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = MaxDepth };
        var reader = new Utf8JsonReader(_utf8, options);
        try
        {
            if (!reader.Read())
            {
                throw new AclParseException(new AclParseError(AclParseErrorKind.Syntax, 1, 1, "empty JSON document"));
            }

            JsonValue value = ReadValue(ref reader);
            if (reader.Read())
            {
                (int line, int column) = Locate(reader.TokenStartIndex);
                throw new AclParseException(new AclParseError(AclParseErrorKind.Syntax, line, column, "unexpected data after the JSON object"));
            }

            return value;
        }
        catch (JsonException e)
        {
            // JsonException carries 0-based line and byte position; Consul would say "Failed to parse ACL rules".
            int line = (int)(e.LineNumber ?? 0) + 1;
            int column = (int)(e.BytePositionInLine ?? 0) + 1;
            throw new AclParseException(new AclParseError(AclParseErrorKind.Syntax, line, column, "malformed JSON: " + FirstSentence(e.Message)));
        }
    }

    private static string FirstSentence(string message)
    {
        int end = message.IndexOf(" LineNumber", StringComparison.Ordinal);
        return (end > 0 ? message[..end] : message).TrimEnd();
    }

    private JsonValue ReadValue(ref Utf8JsonReader reader)
    {
        (int line, int column) = Locate(reader.TokenStartIndex);
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return new JsonValue(JsonValueKind.String, line, column) { Text = reader.GetString() };
            case JsonTokenType.StartObject:
            {
                var value = new JsonValue(JsonValueKind.Object, line, column);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    (int keyLine, int keyColumn) = Locate(reader.TokenStartIndex);
                    string key = reader.GetString()!;
                    reader.Read();
                    value.Members.Add(new JsonMember(key, keyLine, keyColumn, ReadValue(ref reader)));
                }

                return value;
            }

            case JsonTokenType.StartArray:
            {
                var value = new JsonValue(JsonValueKind.Array, line, column);
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    value.Items.Add(ReadValue(ref reader));
                }

                return value;
            }

            default:
                return new JsonValue(JsonValueKind.Number, line, column);
        }
    }

    private (int Line, int Column) Locate(long offset)
    {
        int index = _lineStarts.BinarySearch((int)offset);
        int line = index >= 0 ? index : ~index - 1;
        return (line + 1, (int)offset - _lineStarts[line] + 1);
    }

    private static void MapMembers(JsonValue obj, List<AclSyntaxNode> into)
    {
        foreach (JsonMember member in obj.Members)
        {
            MapMember(member.Key, member.Line, member.Column, member.Value, into);
        }
    }

    private static void MapMember(string key, int line, int column, JsonValue value, List<AclSyntaxNode> into)
    {
        switch (value.Kind)
        {
            case JsonValueKind.String:
                into.Add(new AclSyntaxNode(key, line, column, AclSyntaxKind.StringValue) { Value = value.Text });
                break;
            case JsonValueKind.Object when IsLabelled(value):
                foreach (JsonMember labelled in value.Members)
                {
                    foreach (JsonValue body in BodiesOf(labelled.Value))
                    {
                        var block = new AclSyntaxNode(key, labelled.Line, labelled.Column, AclSyntaxKind.Block) { KeyPosition = (line, column) };
                        block.Labels.Add(labelled.Key);
                        MapMembers(body, block.Body);
                        into.Add(block);
                    }
                }

                break;
            case JsonValueKind.Object:
            {
                var block = new AclSyntaxNode(key, line, column, AclSyntaxKind.Block);
                MapMembers(value, block.Body);
                into.Add(block);
                break;
            }

            case JsonValueKind.Array when value.Items.TrueForAll(i => i.Kind == JsonValueKind.Object) && value.Items.Count > 0:
                foreach (JsonValue item in value.Items)
                {
                    MapMember(key, line, column, item, into);
                }

                break;
            default:
                into.Add(new AclSyntaxNode(key, line, column, AclSyntaxKind.OtherValue));
                break;
        }
    }

    private static List<JsonValue> BodiesOf(JsonValue value)
        => value.Kind == JsonValueKind.Object ? [value] : value.Items;

    // HCL v1 treats {"web": {...}} and {"web": [{...}]} as labelled blocks; {"policy": "read"} is a block body.
    private static bool IsLabelled(JsonValue value)
        => value.Members.Count > 0 && value.Members.TrueForAll(m =>
            m.Value.Kind == JsonValueKind.Object
            || (m.Value.Kind == JsonValueKind.Array && m.Value.Items.Count > 0 && m.Value.Items.TrueForAll(i => i.Kind == JsonValueKind.Object)));

    private enum JsonValueKind
    {
        String,
        Object,
        Array,
        Number,
    }

    private sealed record JsonMember(string Key, int Line, int Column, JsonValue Value);

    private sealed class JsonValue(JsonValueKind kind, int line, int column)
    {
        public JsonValueKind Kind { get; } = kind;

        public int Line { get; } = line;

        public int Column { get; } = column;

        public string? Text { get; init; }

        public List<JsonMember> Members { get; } = [];

        public List<JsonValue> Items { get; } = [];
    }
}
