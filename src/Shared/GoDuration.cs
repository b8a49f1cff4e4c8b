using System.Globalization;

namespace MeshGateway;

/// <summary>
/// Go <c>time.Duration</c> strings (<c>1h2m3.5s</c>, <c>500ms</c>, <c>10us</c>) as Consul's API uses them. Compiled into each
/// package that reads them (linked source, internal): the Consul client and the peering terminator (a router's
/// <c>RequestTimeout</c>). Written here because the BCL parses no Go durations (<see cref="TimeSpan.Parse(string)"/>
/// reads <c>hh:mm:ss</c>).
/// </summary>
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
