using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshGateway.Consul;

/// <summary>Go <c>time.Duration</c> strings (<c>1h2m3.5s</c>, <c>500ms</c>, <c>10us</c>) as Consul's API uses them.</summary>
internal static class GoDuration
{
    /// <summary>Formats a duration the way Consul's <c>wait</c> and check intervals accept it (whole ms or s).</summary>
    public static string Format(TimeSpan value)
    {
        long ms = (long)Math.Ceiling(value.TotalMilliseconds);
        return ms % 1000 == 0 ? (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s" : ms.ToString(CultureInfo.InvariantCulture) + "ms";
    }

    /// <summary>Parses a Go duration; false on anything malformed (never throws).</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (text.IsEmpty)
        {
            return false;
        }

        bool negative = false;
        if (text[0] is '-' or '+')
        {
            negative = text[0] == '-';
            text = text[1..];
        }

        if (text is "0")
        {
            return true;
        }

        double ticks = 0;
        while (!text.IsEmpty)
        {
            int n = 0;
            while (n < text.Length && (char.IsAsciiDigit(text[n]) || text[n] == '.'))
            {
                n++;
            }

            if (n == 0 || !double.TryParse(text[..n], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                return false;
            }

            text = text[n..];
            int u = 0;
            while (u < text.Length && !char.IsAsciiDigit(text[u]) && text[u] != '.')
            {
                u++;
            }

            double unitTicks = text[..u] switch
            {
                "ns" => 0.01,
                "us" or "µs" or "μs" => 10,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => -1,
            };
            if (unitTicks < 0)
            {
                return false;
            }

            ticks += number * unitTicks;
            text = text[u..];
        }

        if (ticks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)(negative ? -ticks : ticks));
        return true;
    }
}

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
