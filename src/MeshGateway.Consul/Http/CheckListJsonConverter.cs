using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshGateway.Consul;

/// <summary>What the catalog watcher keeps of one check: enough to tell which service or node a change affects.</summary>
/// <param name="ServiceName">The check's service (null or empty for a node check).</param>
/// <param name="Node">The check's node.</param>
/// <param name="ModifyIndex">The check's own modify index.</param>
/// <param name="Status">Its status (<c>passing</c>, <c>warning</c>, <c>critical</c>, …; shared strings).</param>
internal readonly record struct CheckRecord(string? ServiceName, string? Node, ulong ModifyIndex, string? Status);

/// <summary>Every check of <c>/v1/health/state/any</c>, keyed by <see cref="CheckList.Key"/> of node and check ID.</summary>
[JsonConverter(typeof(CheckListJsonConverter))]
internal sealed class CheckList
{
    public CheckList(Dictionary<ulong, CheckRecord> records) => Records = records;

    /// <summary>The checks by key.</summary>
    public Dictionary<ulong, CheckRecord> Records { get; }

    /// <summary>A 64-bit FNV-1a of node and check ID (a check is unique per node). A collision, about 1 in 10^10 for
    /// 50,000 checks, could only hide one check change until the next verification sweep.</summary>
    public static ulong Key(string node, ReadOnlySpan<char> checkId) =>
        Fnv1a.Append(Fnv1a.Append(Fnv1a.Append(Fnv1a.Seed, node), "\uFFFF"), checkId);
}

/// <summary>
/// Reads <c>/v1/health/state/any</c> straight into a <see cref="CheckList"/>: the checks trigger of the catalog watch reads this
/// whole list on every check change (about 17 MB for 62,000 checks at mesh size). Written by hand rather than generated: the
/// generated reader built a wire object and five strings per check and took 3-5 times as long as a plain token pass over the
/// same bytes (measured in the catalog-scale harness); here the check ID is hashed from a stack buffer, node and service
/// names are shared per response, statuses are shared constants, and every other property (output, notes, definition) is
/// skipped.
/// </summary>
internal sealed class CheckListJsonConverter : JsonConverter<CheckList>
{
    private const int MaxIdLength = 256;
    private const string What = "The check list";

    /// <summary>A JSON null reads as an empty list, not as a null list.</summary>
    public override bool HandleNull => true;

    /// <inheritdoc />
    public override CheckList Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var records = new Dictionary<ulong, CheckRecord>();
        if (reader.TokenType == JsonTokenType.Null)
        {
            return new CheckList(records);
        }

        CatalogHealthJsonConverter.Expect(ref reader, JsonTokenType.StartArray, "the check list");
        var cache = new CatalogHealthJsonConverter.StringCache();
        Span<char> id = stackalloc char[MaxIdLength];
        while (CatalogHealthJsonConverter.Next(ref reader, What) != JsonTokenType.EndArray)
        {
            CatalogHealthJsonConverter.Expect(ref reader, JsonTokenType.StartObject, "a check");
            string node = string.Empty;
            string? service = null;
            string? status = null;
            string? longId = null;
            int idLength = 0;
            ulong modifyIndex = 0;
            while (CatalogHealthJsonConverter.Next(ref reader, What) != JsonTokenType.EndObject)
            {
                bool isNode = reader.ValueTextEquals("Node"u8);
                bool isId = !isNode && reader.ValueTextEquals("CheckID"u8);
                bool isService = !isNode && !isId && reader.ValueTextEquals("ServiceName"u8);
                bool isStatus = !isNode && !isId && !isService && reader.ValueTextEquals("Status"u8);
                bool isIndex = !isNode && !isId && !isService && !isStatus && reader.ValueTextEquals("ModifyIndex"u8);
                CatalogHealthJsonConverter.Next(ref reader, What);
                if (isNode)
                {
                    node = cache.String(ref reader, "Node");
                }
                else if (isId)
                {
                    (idLength, longId) = ReadId(ref reader, id);
                }
                else if (isService)
                {
                    service = cache.String(ref reader, "ServiceName");
                }
                else if (isStatus)
                {
                    status = cache.Vocabulary(ref reader, "Status");
                }
                else if (isIndex)
                {
                    modifyIndex = CatalogHealthJsonConverter.ReadUInt64(ref reader, "ModifyIndex");
                }
                else
                {
                    reader.Skip();
                }
            }

            ulong key = CheckList.Key(node, longId is null ? id[..idLength] : longId);
            records[key] = new CheckRecord(service?.Length > 0 ? service : null, node, modifyIndex, status);
        }

        return new CheckList(records);
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, CheckList value, JsonSerializerOptions options) =>
        throw new NotSupportedException("Check lists are read from Consul, never written.");

    private static (int Length, string? Long) ReadId(ref Utf8JsonReader reader, scoped Span<char> buffer)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return (0, null);
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"Expected a string for CheckID but found {CatalogHealthJsonConverter.Describe(reader.TokenType)}.");
        }

        // UTF-8 never needs more UTF-16 code units than bytes.
        int bytes = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        return bytes <= buffer.Length ? (reader.CopyString(buffer), null) : (0, reader.GetString());
    }
}
