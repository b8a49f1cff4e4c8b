using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text.Json;

namespace MeshGateway.Routing;

/// <summary>
/// Parses a routes file into a <see cref="RouteTable"/> with <see cref="Utf8JsonReader"/> (no reflection, trimming- and
/// AOT-safe). Shared by the <c>SniGateway</c> sample and the Hosting routes-file source so the format is read in one place.
/// </summary>
/// <remarks>
/// <para>Format (comments and trailing commas allowed, unknown properties skipped):</para>
/// <code>
/// {"routes":[
///   {"sni":"web.default.dc1.internal.&lt;uuid&gt;.consul","endpoints":["127.0.0.1:19440"]},
///   {"sni":"*.dc2.internal.&lt;uuid&gt;.consul",
///    "cluster":"dc2-gateways", "connectTimeoutMs":2000, "connectAttempts":2,
///    "consecutiveFailures":5, "ejectionTimeMs":30000, "maxEjectionTimeMs":300000, "maxEjectionPercent":10,
///    "tcpKeepalive":{"time":120,"interval":60,"probes":7},
///    "endpoints":[{"address":"10.0.0.7:8443","weight":3},{"address":"10.0.0.8:8443","healthy":false}]}
/// ]}
/// </code>
/// <para>An <c>sni</c> starting with <c>*.</c> is a wildcard route. An endpoint is either a string <c>"ip:port"</c> or
/// an object with <c>address</c> (required), <c>weight</c> (1..<see cref="UpstreamEndpoint.MaxWeight"/>, default 1)
/// and <c>healthy</c> (default true). <c>cluster</c> names the cluster (default: the sni); <c>connectTimeoutMs</c>,
/// <c>connectAttempts</c> and the outlier-detection settings override the defaults passed to the parser:
/// <c>consecutiveFailures</c> (<see cref="OutlierDetection.ConsecutiveFailures"/>), <c>ejectionTimeMs</c>
/// (<see cref="OutlierDetection.BaseEjectionTime"/>, 0 disables ejection), <c>maxEjectionTimeMs</c> and
/// <c>maxEjectionPercent</c>. <c>tcpKeepalive</c> turns on TCP keepalive to the route's endpoints (see
/// <see cref="TcpKeepAlive"/>): <c>true</c> with the system's timings, or an object with any of <c>time</c>,
/// <c>interval</c> (seconds) and <c>probes</c>.</para>
/// </remarks>
public static class RouteFileParser
{
    private static readonly JsonReaderOptions s_readerOptions = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    /// <summary>Parses a routes file.</summary>
    /// <param name="utf8Json">The file's bytes (UTF-8).</param>
    /// <param name="connectTimeout">The connect timeout of a route that sets no <c>connectTimeoutMs</c>.</param>
    /// <param name="maxConnectAttempts">The connect attempts of a route that sets no <c>connectAttempts</c>.</param>
    /// <param name="table">The table when the file is valid.</param>
    /// <param name="error">Why the file is invalid: the JSON path and the problem.</param>
    /// <returns>Whether the file is valid.</returns>
    public static bool TryParse(ReadOnlySpan<byte> utf8Json, TimeSpan connectTimeout, int maxConnectAttempts, [NotNullWhen(true)] out RouteTable? table, [NotNullWhen(false)] out string? error)
        => TryParse(utf8Json, connectTimeout, maxConnectAttempts, OutlierDetection.Default, out table, out error);

    /// <summary>Parses a routes file.</summary>
    /// <param name="utf8Json">The file's bytes (UTF-8).</param>
    /// <param name="connectTimeout">The connect timeout of a route that sets no <c>connectTimeoutMs</c>.</param>
    /// <param name="maxConnectAttempts">The connect attempts of a route that sets no <c>connectAttempts</c>.</param>
    /// <param name="outlierDetection">The outlier detection of a route, before its own overrides.</param>
    /// <param name="table">The table when the file is valid.</param>
    /// <param name="error">Why the file is invalid: the JSON path and the problem.</param>
    /// <returns>Whether the file is valid.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="outlierDetection"/> is null.</exception>
    public static bool TryParse(ReadOnlySpan<byte> utf8Json, TimeSpan connectTimeout, int maxConnectAttempts, OutlierDetection outlierDetection, [NotNullWhen(true)] out RouteTable? table, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(outlierDetection);
        try
        {
            table = Parse(utf8Json, connectTimeout, maxConnectAttempts, outlierDetection);
            error = null;
            return true;
        }
        catch (JsonException ex)
        {
            table = null;
            error = "The routes file is not valid JSON: " + ex.Message;
            return false;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException)
        {
            table = null;
            error = ex.Message;
            return false;
        }
    }

    /// <summary>Parses a routes file.</summary>
    /// <param name="utf8Json">The file's bytes (UTF-8).</param>
    /// <param name="connectTimeout">The connect timeout of a route that sets no <c>connectTimeoutMs</c>.</param>
    /// <param name="maxConnectAttempts">The connect attempts of a route that sets no <c>connectAttempts</c>.</param>
    /// <returns>The table.</returns>
    /// <exception cref="FormatException">The file does not follow the format (the message names the JSON path).</exception>
    /// <exception cref="JsonException">The file is not JSON.</exception>
    /// <exception cref="ArgumentException">A route pattern is invalid or appears twice.</exception>
    public static RouteTable Parse(ReadOnlySpan<byte> utf8Json, TimeSpan connectTimeout, int maxConnectAttempts)
        => Parse(utf8Json, connectTimeout, maxConnectAttempts, OutlierDetection.Default);

    /// <summary>Parses a routes file.</summary>
    /// <param name="utf8Json">The file's bytes (UTF-8).</param>
    /// <param name="connectTimeout">The connect timeout of a route that sets no <c>connectTimeoutMs</c>.</param>
    /// <param name="maxConnectAttempts">The connect attempts of a route that sets no <c>connectAttempts</c>.</param>
    /// <param name="outlierDetection">The outlier detection of a route, before its own overrides.</param>
    /// <returns>The table.</returns>
    /// <exception cref="FormatException">The file does not follow the format (the message names the JSON path).</exception>
    /// <exception cref="JsonException">The file is not JSON.</exception>
    /// <exception cref="ArgumentException">A route pattern is invalid or appears twice.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="outlierDetection"/> is null.</exception>
    public static RouteTable Parse(ReadOnlySpan<byte> utf8Json, TimeSpan connectTimeout, int maxConnectAttempts, OutlierDetection outlierDetection)
    {
        ArgumentNullException.ThrowIfNull(outlierDetection);
        if (utf8Json.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw new FormatException("The routes file is empty.");
        }

        var reader = new Utf8JsonReader(utf8Json, s_readerOptions);
        var routes = new List<Route>();
        Expect(ref reader, JsonTokenType.StartObject, "the file must hold a JSON object");
        bool sawRoutes = false;
        while (Read(ref reader) && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals("routes"u8))
            {
                Read(ref reader);
                reader.Skip();
                continue;
            }

            sawRoutes = true;
            Expect(ref reader, JsonTokenType.StartArray, "\"routes\" must be an array");
            while (Read(ref reader) && reader.TokenType != JsonTokenType.EndArray)
            {
                routes.Add(ReadRoute(ref reader, routes.Count, connectTimeout, maxConnectAttempts, outlierDetection));
            }
        }

        if (!sawRoutes)
        {
            throw new FormatException("The routes file has no \"routes\" array.");
        }

        return RouteTable.Create(routes);
    }

    private static Route ReadRoute(ref Utf8JsonReader reader, int index, TimeSpan connectTimeout, int maxConnectAttempts, OutlierDetection outlier)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new FormatException($"routes[{index}] must be an object.");
        }

        string? sni = null;
        string? clusterName = null;
        var endpoints = new List<UpstreamEndpoint>();
        TcpKeepAlive? keepAlive = null;
        while (Read(ref reader) && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("sni"u8))
            {
                Expect(ref reader, JsonTokenType.String, $"routes[{index}].sni must be a string");
                sni = reader.GetString();
            }
            else if (reader.ValueTextEquals("cluster"u8))
            {
                Expect(ref reader, JsonTokenType.String, $"routes[{index}].cluster must be a string");
                clusterName = reader.GetString();
            }
            else if (reader.ValueTextEquals("connectTimeoutMs"u8))
            {
                connectTimeout = TimeSpan.FromMilliseconds(ReadInt(ref reader, $"routes[{index}].connectTimeoutMs", 1, int.MaxValue));
            }
            else if (reader.ValueTextEquals("connectAttempts"u8))
            {
                maxConnectAttempts = ReadInt(ref reader, $"routes[{index}].connectAttempts", 1, UpstreamCluster.MaxAllowedConnectAttempts);
            }
            else if (reader.ValueTextEquals("ejectionTimeMs"u8))
            {
                outlier = outlier with { BaseEjectionTime = TimeSpan.FromMilliseconds(ReadInt(ref reader, $"routes[{index}].ejectionTimeMs", 0, int.MaxValue)) };
            }
            else if (reader.ValueTextEquals("maxEjectionTimeMs"u8))
            {
                outlier = outlier with { MaxEjectionTime = TimeSpan.FromMilliseconds(ReadInt(ref reader, $"routes[{index}].maxEjectionTimeMs", 0, int.MaxValue)) };
            }
            else if (reader.ValueTextEquals("consecutiveFailures"u8))
            {
                outlier = outlier with { ConsecutiveFailures = ReadInt(ref reader, $"routes[{index}].consecutiveFailures", 1, OutlierDetection.MaxAllowedConsecutiveFailures) };
            }
            else if (reader.ValueTextEquals("maxEjectionPercent"u8))
            {
                outlier = outlier with { MaxEjectionPercent = ReadInt(ref reader, $"routes[{index}].maxEjectionPercent", 0, 100) };
            }
            else if (reader.ValueTextEquals("tcpKeepalive"u8))
            {
                keepAlive = ReadTcpKeepAlive(ref reader, $"routes[{index}].tcpKeepalive");
            }
            else if (reader.ValueTextEquals("endpoints"u8))
            {
                Expect(ref reader, JsonTokenType.StartArray, $"routes[{index}].endpoints must be an array");
                while (Read(ref reader) && reader.TokenType != JsonTokenType.EndArray)
                {
                    endpoints.Add(ReadEndpoint(ref reader, $"routes[{index}].endpoints[{endpoints.Count}]"));
                }
            }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        if (string.IsNullOrEmpty(sni))
        {
            throw new FormatException($"routes[{index}] has no \"sni\".");
        }

        var cluster = new UpstreamCluster(clusterName ?? sni, endpoints)
        {
            ConnectTimeout = connectTimeout,
            MaxConnectAttempts = maxConnectAttempts,
            OutlierDetection = outlier,
            TcpKeepAlive = keepAlive,
        };

        try
        {
            return new Route(sni, cluster);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"routes[{index}].sni: {ex.Message}", ex);
        }
    }

    private static UpstreamEndpoint ReadEndpoint(ref Utf8JsonReader reader, string path)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new UpstreamEndpoint(ParseEndPoint(reader.GetString()!, path));
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new FormatException($"{path} must be a string \"ip:port\" or an object with \"address\".");
        }

        IPEndPoint? endPoint = null;
        int weight = 1;
        bool healthy = true;
        while (Read(ref reader) && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("address"u8))
            {
                Expect(ref reader, JsonTokenType.String, $"{path}.address must be a string");
                endPoint = ParseEndPoint(reader.GetString()!, path + ".address");
            }
            else if (reader.ValueTextEquals("weight"u8))
            {
                weight = ReadInt(ref reader, path + ".weight", 1, UpstreamEndpoint.MaxWeight);
            }
            else if (reader.ValueTextEquals("healthy"u8))
            {
                Read(ref reader);
                healthy = reader.TokenType switch
                {
                    JsonTokenType.True => true,
                    JsonTokenType.False => false,
                    _ => throw new FormatException($"{path}.healthy must be true or false."),
                };
            }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        return endPoint is null
            ? throw new FormatException($"{path} has no \"address\".")
            : new UpstreamEndpoint(endPoint, weight, healthy);
    }

    private static IPEndPoint ParseEndPoint(string text, string path) =>
        IPEndPoint.TryParse(text, out IPEndPoint? endPoint) && endPoint.Port != 0
            ? endPoint
            : throw new FormatException($"{path} must be \"ip:port\" with a non-zero port, not '{text}'.");

    private static TcpKeepAlive? ReadTcpKeepAlive(ref Utf8JsonReader reader, string path)
    {
        Read(ref reader);
        if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
        {
            return reader.TokenType == JsonTokenType.True ? TcpKeepAlive.SystemDefaults : null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new FormatException($"{path} must be true, false or an object with time, interval and probes.");
        }

        var keepAlive = TcpKeepAlive.SystemDefaults;
        while (Read(ref reader) && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("time"u8))
            {
                keepAlive = keepAlive with { Time = ReadInt(ref reader, path + ".time", 1, TcpKeepAlive.MaxSeconds) };
            }
            else if (reader.ValueTextEquals("interval"u8))
            {
                keepAlive = keepAlive with { Interval = ReadInt(ref reader, path + ".interval", 1, TcpKeepAlive.MaxSeconds) };
            }
            else if (reader.ValueTextEquals("probes"u8))
            {
                keepAlive = keepAlive with { Probes = ReadInt(ref reader, path + ".probes", 1, TcpKeepAlive.MaxProbes) };
            }
            else
            {
                Read(ref reader);
                reader.Skip();
            }
        }

        return keepAlive;
    }

    private static int ReadInt(ref Utf8JsonReader reader, string path, int min, int max)
    {
        Read(ref reader);
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int value) || value < min || value > max)
        {
            throw new FormatException($"{path} must be an integer from {min} to {max}.");
        }

        return value;
    }

    private static bool Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new FormatException("The routes file ends too early.");
        }

        return true;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string message)
    {
        Read(ref reader);
        if (reader.TokenType != type)
        {
            throw new FormatException($"Invalid routes file: {message} (found {reader.TokenType} at byte {reader.TokenStartIndex}).");
        }
    }
}
