using System.Text.Json;
using MeshGateway.Model;

namespace TwoDatacenters;

/// <summary>One scenario of mesh-config.json: the three Consul configuration levels that decide web's mode for api.</summary>
public sealed record MeshScenario(string Name, MeshGatewayMode ProxyDefaults, MeshGatewayMode ServiceDefaults, MeshUpstream Upstream);

/// <summary>Reads mesh-config.json with <see cref="Utf8JsonReader"/>; every <c>MeshGateway</c> block goes through <see cref="MeshGatewayModeJson"/> (validated like Consul's own config loading).</summary>
public static class MeshConfig
{
    public static (string TrustDomain, List<MeshScenario> Scenarios) Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        string? trustDomain = null;
        var scenarios = new List<MeshScenario>();
        Next(ref reader, JsonTokenType.StartObject);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("TrustDomain"u8))
            {
                Next(ref reader, JsonTokenType.String);
                trustDomain = reader.GetString();
            }
            else if (reader.ValueTextEquals("Scenarios"u8))
            {
                Next(ref reader, JsonTokenType.StartArray);
                while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                {
                    scenarios.Add(ReadScenario(ref reader));
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return (trustDomain ?? throw new InvalidDataException("mesh-config.json has no TrustDomain."), scenarios);
    }

    private static MeshScenario ReadScenario(ref Utf8JsonReader reader)
    {
        string name = "";
        MeshGatewayMode proxyDefaults = default, serviceDefaults = default, upstreamMode = default;
        string? destination = null, datacenter = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("Name"u8))
            {
                Next(ref reader, JsonTokenType.String);
                name = reader.GetString()!;
            }
            else if (reader.ValueTextEquals("ProxyDefaults"u8))
            {
                proxyDefaults = ReadEntry(ref reader, out _, out _);
            }
            else if (reader.ValueTextEquals("ServiceDefaults"u8))
            {
                serviceDefaults = ReadEntry(ref reader, out _, out _);
            }
            else if (reader.ValueTextEquals("Upstream"u8))
            {
                upstreamMode = ReadEntry(ref reader, out destination, out datacenter);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        var upstream = new MeshUpstream
        {
            Name = destination ?? throw new InvalidDataException($"Scenario '{name}': the upstream has no DestinationName."),
            Datacenter = datacenter,
            MeshGateway = upstreamMode,
        };
        return new MeshScenario(name, proxyDefaults, serviceDefaults, upstream);
    }

    /// <summary>Reads a config entry or upstream object: its <c>MeshGateway</c> block, and <c>DestinationName</c>/<c>Datacenter</c> when present.</summary>
    private static MeshGatewayMode ReadEntry(ref Utf8JsonReader reader, out string? destination, out string? datacenter)
    {
        destination = null;
        datacenter = null;
        MeshGatewayMode mode = default;
        Next(ref reader, JsonTokenType.StartObject);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals(MeshGatewayModeJson.PropertyName))
            {
                reader.Read();
                if (!MeshGatewayModeJson.TryRead(ref reader, validate: true, out mode, out string? error))
                {
                    throw new InvalidDataException(error);
                }
            }
            else if (reader.ValueTextEquals("DestinationName"u8))
            {
                Next(ref reader, JsonTokenType.String);
                destination = reader.GetString();
            }
            else if (reader.ValueTextEquals("Datacenter"u8))
            {
                Next(ref reader, JsonTokenType.String);
                datacenter = reader.GetString();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return mode;
    }

    private static void Next(ref Utf8JsonReader reader, JsonTokenType expected)
    {
        if (!reader.Read() || reader.TokenType != expected)
        {
            throw new InvalidDataException($"mesh-config.json: expected {expected} at byte {reader.TokenStartIndex}, found {reader.TokenType}.");
        }
    }
}
