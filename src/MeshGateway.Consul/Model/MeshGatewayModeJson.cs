using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace MeshGateway.Model;

/// <summary>
/// Reads and writes Consul's JSON spelling of a mode, <c>"MeshGateway": {"Mode": "local"}</c>, with
/// <see cref="Utf8JsonReader"/>/<see cref="Utf8JsonWriter"/> (no reflection; AOT-safe).
/// </summary>
public static class MeshGatewayModeJson
{
    /// <summary>The property name Consul uses for the block.</summary>
    public const string PropertyName = "MeshGateway";

    /// <summary>The property name of the mode inside the block.</summary>
    public const string ModePropertyName = "Mode";

    /// <summary>
    /// Reads the value of a <c>MeshGateway</c> property: an object with an optional <c>Mode</c> string, or <c>null</c>.
    /// Property names match case-insensitively (Go's <c>encoding/json</c> does; the snake-case <c>mode</c> is the same key);
    /// other properties are skipped. Never throws.
    /// </summary>
    /// <param name="reader">Positioned on the value (<see cref="JsonTokenType.StartObject"/> or <see cref="JsonTokenType.Null"/>);
    /// on success left on the value's last token. The reader must hold the whole value.</param>
    /// <param name="validate">False for data read from Consul (unknown strings are kept as <see cref="MeshGatewayModeKind.Unknown"/>);
    /// true for a user's configuration (unknown strings fail with Consul's message).</param>
    /// <param name="mode">The mode; unset on failure.</param>
    /// <param name="error">Null on success; otherwise why the value was rejected.</param>
    /// <returns>Whether a mode was read.</returns>
    public static bool TryRead(ref Utf8JsonReader reader, bool validate, out MeshGatewayMode mode, [NotNullWhen(false)] out string? error)
    {
        mode = MeshGatewayMode.Unset;
        try
        {
            if (reader.TokenType == JsonTokenType.Null)
            {
                error = null;
                return true;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                error = $"MeshGateway must be an object, not {reader.TokenType}.";
                return false;
            }

            int depth = reader.CurrentDepth;
            while (reader.Read() && !(reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == depth))
            {
                // At depth + 1 every token here is a property name.
                bool isMode = string.Equals(reader.GetString(), ModePropertyName, StringComparison.OrdinalIgnoreCase);
                if (!reader.Read())
                {
                    break;
                }

                if (!isMode)
                {
                    reader.Skip();
                    continue;
                }

                if (reader.TokenType == JsonTokenType.Null)
                {
                    mode = MeshGatewayMode.Unset;
                    continue;
                }

                if (reader.TokenType != JsonTokenType.String)
                {
                    error = $"MeshGateway.Mode must be a string, not {reader.TokenType}.";
                    return false;
                }

                string? raw = reader.GetString();
                if (validate)
                {
                    if (!MeshGatewayMode.TryParse(raw, out mode, out error))
                    {
                        return false;
                    }
                }
                else
                {
                    mode = MeshGatewayMode.FromConsul(raw);
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != depth)
            {
                mode = MeshGatewayMode.Unset;
                error = "MeshGateway object is incomplete.";
                return false;
            }

            error = null;
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            mode = MeshGatewayMode.Unset;
            error = "MeshGateway is not valid JSON: " + e.Message;
            return false;
        }
    }

    /// <summary>Reads <c>{"Mode": ...}</c> from a UTF-8 JSON document (the value of a <c>MeshGateway</c> property). Never throws.</summary>
    /// <param name="utf8Json">The JSON text, e.g. <c>{"Mode":"local"}</c> or <c>null</c>.</param>
    /// <param name="validate">Whether unknown values fail (user configuration) or are kept (Consul data).</param>
    /// <param name="mode">The mode.</param>
    /// <param name="error">Null on success; otherwise why.</param>
    /// <returns>Whether a mode was read.</returns>
    public static bool TryRead(ReadOnlySpan<byte> utf8Json, bool validate, out MeshGatewayMode mode, [NotNullWhen(false)] out string? error)
    {
        if (utf8Json.Trim(" \t\r\n"u8).IsEmpty)
        {
            mode = MeshGatewayMode.Unset;
            error = "MeshGateway JSON is empty.";
            return false;
        }

        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        try
        {
            if (!reader.Read())
            {
                mode = MeshGatewayMode.Unset;
                error = "MeshGateway JSON is empty.";
                return false;
            }
        }
        catch (JsonException e)
        {
            mode = MeshGatewayMode.Unset;
            error = "MeshGateway is not valid JSON: " + e.Message;
            return false;
        }

        return TryRead(ref reader, validate, out mode, out error);
    }

    /// <summary>Writes the value object <c>{"Mode": "local"}</c>; an unset mode writes <c>{}</c>, as Consul's <c>omitempty</c> does.</summary>
    /// <param name="writer">The writer.</param>
    /// <param name="mode">The mode; unknown values are written unchanged.</param>
    public static void WriteValue(Utf8JsonWriter writer, MeshGatewayMode mode)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        if (mode.IsSet)
        {
            writer.WriteString("Mode"u8, mode.RawValue);
        }

        writer.WriteEndObject();
    }

    /// <summary>Writes the property <c>"MeshGateway": {"Mode": "local"}</c> inside the current object.</summary>
    /// <param name="writer">The writer, positioned inside an object.</param>
    /// <param name="mode">The mode.</param>
    public static void WriteProperty(Utf8JsonWriter writer, MeshGatewayMode mode)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WritePropertyName("MeshGateway"u8);
        WriteValue(writer, mode);
    }
}
