using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshGateway.Consul;

/// <summary>Reads a Go duration from a string (<c>"5s"</c>) or a number of nanoseconds; writes a string.</summary>
internal sealed class GoDurationJsonConverter : JsonConverter<TimeSpan?>
{
    public override TimeSpan? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.Number when reader.TryGetInt64(out long nanoseconds):
                return TimeSpan.FromTicks(nanoseconds / 100);
            case JsonTokenType.String when GoDuration.TryParse(reader.GetString(), out TimeSpan value):
                return value;
            default:
                throw new JsonException("Expected a Go duration (e.g. \"5s\") or a number of nanoseconds.");
        }
    }

    public override void Write(Utf8JsonWriter writer, TimeSpan? value, JsonSerializerOptions options)
    {
        if (value is { } v)
        {
            writer.WriteStringValue(GoDuration.Format(v));
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}
