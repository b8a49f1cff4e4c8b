using System.Net;
using System.Text.Json;
using MeshGateway.Routing;

namespace SniGateway;

/// <summary>
/// Reads the harness's routes file with <see cref="Utf8JsonReader"/> (no reflection, trimming-safe):
/// <c>{"routes":[{"sni":"web.default.dc1.internal.&lt;uuid&gt;.consul","endpoints":["127.0.0.1:19440"]}]}</c>.
/// An <c>sni</c> starting with <c>*.</c> is a wildcard route. Unknown properties are skipped.
/// </summary>
internal static class RoutesFile
{
    public static RouteTable Load(string path, TimeSpan connectTimeout)
    {
        byte[] json = File.ReadAllBytes(path);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
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
                routes.Add(ReadRoute(ref reader, routes.Count, connectTimeout));
            }
        }

        if (!sawRoutes)
        {
            throw new FormatException("The routes file has no \"routes\" array.");
        }

        return RouteTable.Create(routes);
    }

    private static Route ReadRoute(ref Utf8JsonReader reader, int index, TimeSpan connectTimeout)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new FormatException($"routes[{index}] must be an object.");
        }

        string? sni = null;
        var endpoints = new List<UpstreamEndpoint>();
        while (Read(ref reader) && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("sni"u8))
            {
                Expect(ref reader, JsonTokenType.String, $"routes[{index}].sni must be a string");
                sni = reader.GetString();
            }
            else if (reader.ValueTextEquals("endpoints"u8))
            {
                Expect(ref reader, JsonTokenType.StartArray, $"routes[{index}].endpoints must be an array");
                while (Read(ref reader) && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String || !IPEndPoint.TryParse(reader.GetString()!, out IPEndPoint? endPoint) || endPoint.Port == 0)
                    {
                        throw new FormatException($"routes[{index}].endpoints[{endpoints.Count}] must be a string \"ip:port\" with a non-zero port.");
                    }

                    endpoints.Add(new UpstreamEndpoint(endPoint));
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

        return new Route(sni, new UpstreamCluster(sni, endpoints) { ConnectTimeout = connectTimeout });
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
