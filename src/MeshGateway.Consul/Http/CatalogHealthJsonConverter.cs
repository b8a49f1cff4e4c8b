using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// Reads the health-entry array of <c>/v1/health/service</c> and <c>/v1/health/connect</c> (docs/consul-behaviour.md §8.2) straight into
/// the catalog model (<see cref="CatalogServiceInstance"/>), with no intermediate wire types. AOT-safe (a hand-written
/// <see cref="Utf8JsonReader"/> loop, no reflection), registered on <see cref="ConsulJsonContext"/>.
/// </summary>
/// <remarks>
/// <para>Written by hand rather than generated because the generated reader would need a wire-type family (the model is immutable
/// and compact: shared empty collections, sorted pair arrays instead of dictionaries) and cannot deduplicate strings. Here:</para>
/// <list type="bullet">
/// <item>property names match case-insensitively (Consul sends <c>Address</c>/<c>Port</c>, some docs show lower case); unknown
/// properties are skipped; <c>null</c> reads as absent;</item>
/// <item>each check's <c>Status</c> becomes <see cref="CatalogHealthStatus"/> (<c>passing</c>, <c>warning</c>; anything else is
/// critical), and the status lists are shared (<see cref="CatalogHealthStatuses"/>);</item>
/// <item>repeated strings (node names, addresses, datacenter, service name, kinds, map keys) are deduplicated by a per-response
/// cache, and low-cardinality vocabulary (datacenters, kinds, partitions, namespaces, map keys) by a bounded process-wide cache;</item>
/// <item>an entry without a <c>Service</c> is dropped (nothing to route to); a missing <c>Node</c> reads as a node with empty fields.</item>
/// </list>
/// </remarks>
internal sealed class CatalogHealthJsonConverter : JsonConverter<IReadOnlyList<CatalogServiceInstance>>
{
    private const int MaxNameLength = 64;

    private static readonly (Name Name, byte[] Text)[] s_names =
    [
        (Name.Address, "Address"u8.ToArray()),
        (Name.Checks, "Checks"u8.ToArray()),
        (Name.Connect, "Connect"u8.ToArray()),
        (Name.Datacenter, "Datacenter"u8.ToArray()),
        (Name.DestinationServiceName, "DestinationServiceName"u8.ToArray()),
        (Name.ID, "ID"u8.ToArray()),
        (Name.Kind, "Kind"u8.ToArray()),
        (Name.Meta, "Meta"u8.ToArray()),
        (Name.ModifyIndex, "ModifyIndex"u8.ToArray()),
        (Name.Namespace, "Namespace"u8.ToArray()),
        (Name.Node, "Node"u8.ToArray()),
        (Name.Partition, "Partition"u8.ToArray()),
        (Name.Passing, "Passing"u8.ToArray()),
        (Name.PeerMeta, "PeerMeta"u8.ToArray()),
        (Name.PeerName, "PeerName"u8.ToArray()),
        (Name.Port, "Port"u8.ToArray()),
        (Name.Proxy, "Proxy"u8.ToArray()),
        (Name.SNI, "SNI"u8.ToArray()),
        (Name.Service, "Service"u8.ToArray()),
        (Name.SpiffeID, "SpiffeID"u8.ToArray()),
        (Name.Status, "Status"u8.ToArray()),
        (Name.TaggedAddresses, "TaggedAddresses"u8.ToArray()),
        (Name.Tags, "Tags"u8.ToArray()),
        (Name.Warning, "Warning"u8.ToArray()),
        (Name.Weights, "Weights"u8.ToArray()),
    ];

    private enum Name
    {
        Unknown,
        Address,
        Checks,
        Connect,
        Datacenter,
        DestinationServiceName,
        ID,
        Kind,
        Meta,
        ModifyIndex,
        Namespace,
        Node,
        Partition,
        Passing,
        PeerMeta,
        PeerName,
        Port,
        Proxy,
        SNI,
        Service,
        SpiffeID,
        Status,
        TaggedAddresses,
        Tags,
        Warning,
        Weights,
    }


    /// <inheritdoc />
    public override IReadOnlyList<CatalogServiceInstance> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return [];
        }

        Expect(ref reader, JsonTokenType.StartArray, "the health entries");
        var cache = new StringCache();
        var instances = new List<CatalogServiceInstance>();
        var checks = new List<CatalogHealthStatus>();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            if (ReadEntry(ref reader, cache, checks) is { } instance)
            {
                instances.Add(instance);
            }
        }

        return instances.Count == 0 ? [] : instances.ToArray();
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, IReadOnlyList<CatalogServiceInstance> value, JsonSerializerOptions options) =>
        throw new NotSupportedException("Health entries are read from Consul, never written.");

    private static CatalogServiceInstance? ReadEntry(ref Utf8JsonReader reader, StringCache cache, List<CatalogHealthStatus> checks)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject, "a health entry");
        CatalogNode? node = null;
        CatalogService? service = null;
        IReadOnlyList<CatalogHealthStatus> statuses = [];
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property == Name.Node)
            {
                node = ReadNode(ref reader, cache);
            }
            else if (property == Name.Service)
            {
                service = ReadService(ref reader, cache);
            }
            else if (property == Name.Checks)
            {
                statuses = ReadChecks(ref reader, checks);
            }
            else
            {
                reader.Skip();
            }
        }

        return service is null ? null : new CatalogServiceInstance { Node = node ?? new CatalogNode { Name = string.Empty }, Service = service, Checks = statuses };
    }

    private static CatalogNode? ReadNode(ref Utf8JsonReader reader, StringCache cache)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject, "Node");
        string nodeName = string.Empty;
        string address = string.Empty;
        string datacenter = string.Empty;
        string? partition = null;
        IReadOnlyDictionary<string, string> tagged = CatalogDictionaries.Empty<string>();
        ulong modifyIndex = 0;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property == Name.Node)
            {
                nodeName = cache.String(ref reader, "Node.Node");
            }
            else if (property == Name.Address)
            {
                address = cache.String(ref reader, "Node.Address");
            }
            else if (property == Name.Datacenter)
            {
                datacenter = cache.Vocabulary(ref reader, "Node.Datacenter");
            }
            else if (property == Name.Partition)
            {
                partition = NullIfEmpty(cache.Vocabulary(ref reader, "Node.Partition"));
            }
            else if (property == Name.TaggedAddresses)
            {
                tagged = ReadStringMap(ref reader, cache, "Node.TaggedAddresses");
            }
            else if (property == Name.ModifyIndex)
            {
                modifyIndex = ReadUInt64(ref reader, "Node.ModifyIndex");
            }
            else
            {
                reader.Skip();
            }
        }

        return new CatalogNode { Name = nodeName, Address = address, Datacenter = datacenter, Partition = partition, TaggedAddresses = tagged, ModifyIndex = modifyIndex };
    }

    private static CatalogService? ReadService(ref Utf8JsonReader reader, StringCache cache)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject, "Service");
        string id = string.Empty;
        string serviceName = string.Empty;
        string kind = string.Empty;
        string address = string.Empty;
        int port = 0;
        IReadOnlyDictionary<string, CatalogTaggedAddress> tagged = CatalogDictionaries.Empty<CatalogTaggedAddress>();
        IReadOnlyList<string> tags = [];
        IReadOnlyDictionary<string, string> meta = CatalogDictionaries.Empty<string>();
        CatalogWeights? weights = null;
        string? destination = null;
        string? ns = null;
        string? partition = null;
        string? peerName = null;
        IReadOnlyList<string> peerSni = [];
        IReadOnlyList<string> peerSpiffe = [];
        ulong modifyIndex = 0;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property == Name.ID)
            {
                id = cache.String(ref reader, "Service.ID");
            }
            else if (property == Name.Service)
            {
                serviceName = cache.String(ref reader, "Service.Service");
            }
            else if (property == Name.Kind)
            {
                kind = cache.Vocabulary(ref reader, "Service.Kind");
            }
            else if (property == Name.Address)
            {
                address = cache.String(ref reader, "Service.Address");
            }
            else if (property == Name.Port)
            {
                port = ReadInt32(ref reader, "Service.Port");
            }
            else if (property == Name.TaggedAddresses)
            {
                tagged = ReadServiceAddresses(ref reader, cache);
            }
            else if (property == Name.Tags)
            {
                tags = ReadStrings(ref reader, cache, "Service.Tags", vocabulary: true);
            }
            else if (property == Name.Meta)
            {
                meta = ReadStringMap(ref reader, cache, "Service.Meta");
            }
            else if (property == Name.Weights)
            {
                weights = ReadWeights(ref reader);
            }
            else if (property == Name.Proxy)
            {
                destination = ReadProxyDestination(ref reader, cache);
            }
            else if (property == Name.Connect)
            {
                (peerSni, peerSpiffe) = ReadPeerMeta(ref reader, cache);
            }
            else if (property == Name.Namespace)
            {
                ns = NullIfEmpty(cache.Vocabulary(ref reader, "Service.Namespace"));
            }
            else if (property == Name.Partition)
            {
                partition = NullIfEmpty(cache.Vocabulary(ref reader, "Service.Partition"));
            }
            else if (property == Name.PeerName)
            {
                peerName = NullIfEmpty(cache.Vocabulary(ref reader, "Service.PeerName"));
            }
            else if (property == Name.ModifyIndex)
            {
                modifyIndex = ReadUInt64(ref reader, "Service.ModifyIndex");
            }
            else
            {
                reader.Skip();
            }
        }

        return new CatalogService
        {
            Id = id,
            Name = serviceName,
            Kind = kind,
            Address = address,
            Port = port,
            TaggedAddresses = tagged,
            Tags = tags,
            Meta = meta,
            Weights = weights,
            ProxyDestinationServiceName = destination,
            Namespace = ns,
            Partition = partition,
            PeerName = peerName,
            PeerSni = peerSni,
            PeerSpiffeIds = peerSpiffe,
            ModifyIndex = modifyIndex,
        };
    }

    private static IReadOnlyList<CatalogHealthStatus> ReadChecks(ref Utf8JsonReader reader, List<CatalogHealthStatus> statuses)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return [];
        }

        Expect(ref reader, JsonTokenType.StartArray, "Checks");
        statuses.Clear();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            Expect(ref reader, JsonTokenType.StartObject, "a check");
            CatalogHealthStatus status = CatalogHealthStatus.Critical;
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                Name property = ReadName(ref reader);
                Next(ref reader);
                if (property == Name.Status)
                {
                    // Consul's constants are lower case and compared exactly; anything else (including null) counts as critical.
                    status = reader.TokenType != JsonTokenType.String ? CatalogHealthStatus.Critical
                        : reader.ValueTextEquals("passing"u8) ? CatalogHealthStatus.Passing
                        : reader.ValueTextEquals("warning"u8) ? CatalogHealthStatus.Warning
                        : CatalogHealthStatus.Critical;
                }
                else
                {
                    reader.Skip();
                }
            }

            statuses.Add(status);
        }

        return CatalogHealthStatuses.Create(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(statuses));
    }

    private static CatalogDictionary<string> ReadStringMap(ref Utf8JsonReader reader, StringCache cache, string what)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return CatalogDictionaries.Empty<string>();
        }

        Expect(ref reader, JsonTokenType.StartObject, what);
        List<KeyValuePair<string, string>>? pairs = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            string key = cache.Vocabulary(ref reader, what);
            Next(ref reader);
            string value = cache.String(ref reader, what + "." + key);
            (pairs ??= []).Add(new(key, value));
        }

        return pairs is null ? CatalogDictionaries.Empty<string>() : CatalogDictionaries.Create<string>(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pairs));
    }

    private static CatalogDictionary<CatalogTaggedAddress> ReadServiceAddresses(ref Utf8JsonReader reader, StringCache cache)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return CatalogDictionaries.Empty<CatalogTaggedAddress>();
        }

        Expect(ref reader, JsonTokenType.StartObject, "Service.TaggedAddresses");
        List<KeyValuePair<string, CatalogTaggedAddress>>? pairs = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            string key = cache.Vocabulary(ref reader, "Service.TaggedAddresses");
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.Null)
            {
                continue;
            }

            Expect(ref reader, JsonTokenType.StartObject, "Service.TaggedAddresses." + key);
            string address = string.Empty;
            int port = 0;
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                Name property = ReadName(ref reader);
                Next(ref reader);
                if (property == Name.Address)
                {
                    address = cache.String(ref reader, "Service.TaggedAddresses." + key + ".Address");
                }
                else if (property == Name.Port)
                {
                    port = ReadInt32(ref reader, "Service.TaggedAddresses." + key + ".Port");
                }
                else
                {
                    reader.Skip();
                }
            }

            (pairs ??= []).Add(new(key, cache.TaggedAddress(address, port)));
        }

        return pairs is null ? CatalogDictionaries.Empty<CatalogTaggedAddress>() : CatalogDictionaries.Create<CatalogTaggedAddress>(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pairs));
    }

    private static System.Collections.ObjectModel.ReadOnlyCollection<string> ReadStrings(ref Utf8JsonReader reader, StringCache cache, string what, bool vocabulary)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return [];
        }

        Expect(ref reader, JsonTokenType.StartArray, what);
        List<string>? values = null;
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            (values ??= []).Add(vocabulary ? cache.Vocabulary(ref reader, what) : cache.String(ref reader, what));
        }

        return values is null ? System.Collections.ObjectModel.ReadOnlyCollection<string>.Empty : Array.AsReadOnly(values.ToArray());
    }

    private static CatalogWeights? ReadWeights(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject, "Service.Weights");
        int passing = 0;
        int warning = 0;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property == Name.Passing)
            {
                passing = ReadInt32(ref reader, "Service.Weights.Passing");
            }
            else if (property == Name.Warning)
            {
                warning = ReadInt32(ref reader, "Service.Weights.Warning");
            }
            else
            {
                reader.Skip();
            }
        }

        return new CatalogWeights(passing, warning);
    }

    private static string? ReadProxyDestination(ref Utf8JsonReader reader, StringCache cache)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject, "Service.Proxy");
        string? destination = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property == Name.DestinationServiceName)
            {
                destination = NullIfEmpty(cache.String(ref reader, "Service.Proxy.DestinationServiceName"));
            }
            else
            {
                reader.Skip();
            }
        }

        return destination;
    }

    private static (IReadOnlyList<string> Sni, IReadOnlyList<string> SpiffeIds) ReadPeerMeta(ref Utf8JsonReader reader, StringCache cache)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return ([], []);
        }

        Expect(ref reader, JsonTokenType.StartObject, "Service.Connect");
        IReadOnlyList<string> sni = [];
        IReadOnlyList<string> spiffe = [];
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            Name property = ReadName(ref reader);
            Next(ref reader);
            if (property != Name.PeerMeta || reader.TokenType == JsonTokenType.Null)
            {
                reader.Skip();
                continue;
            }

            Expect(ref reader, JsonTokenType.StartObject, "Service.Connect.PeerMeta");
            while (Next(ref reader) != JsonTokenType.EndObject)
            {
                Name inner = ReadName(ref reader);
                Next(ref reader);
                if (inner == Name.SNI)
                {
                    sni = ReadStrings(ref reader, cache, "Service.Connect.PeerMeta.SNI", vocabulary: false);
                }
                else if (inner == Name.SpiffeID)
                {
                    spiffe = ReadStrings(ref reader, cache, "Service.Connect.PeerMeta.SpiffeID", vocabulary: false);
                }
                else
                {
                    reader.Skip();
                }
            }
        }

        return (sni, spiffe);
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader) => Next(ref reader, "The health entries");

    /// <summary>Reads the next token; <paramref name="what"/> names the value in the error if the input ends early.</summary>
    internal static JsonTokenType Next(ref Utf8JsonReader reader, string what)
    {
        // The serializer hands a converter the whole value, so Read only fails on malformed JSON, which it reports itself.
        if (!reader.Read())
        {
            throw new JsonException($"{what} end early.");
        }

        return reader.TokenType;
    }

    /// <summary>Throws a <see cref="JsonException"/> naming <paramref name="what"/> unless the token is <paramref name="expected"/>.</summary>
    internal static void Expect(ref Utf8JsonReader reader, JsonTokenType expected, string what)
    {
        if (reader.TokenType != expected)
        {
            throw new JsonException($"Expected {(expected == JsonTokenType.StartArray ? "an array" : "an object")} for {what} but found {Describe(reader.TokenType)}.");
        }
    }

    private static Name ReadName(ref Utf8JsonReader reader)
    {
        // Known names are short; a longer one, or one that is not known, reads as Unknown and its value is skipped.
        Span<byte> buffer = stackalloc byte[MaxNameLength];
        int length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        if (length > MaxNameLength)
        {
            return Name.Unknown;
        }

        ReadOnlySpan<byte> name = reader.ValueIsEscaped || reader.HasValueSequence ? buffer[..reader.CopyString(buffer)] : reader.ValueSpan;
        foreach ((Name known, byte[] text) in s_names)
        {
            if (Ascii.EqualsIgnoreCase(name, text))
            {
                return known;
            }
        }

        return Name.Unknown;
    }

    private static int ReadInt32(ref Utf8JsonReader reader, string what)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int value)
            ? value
            : throw new JsonException($"Expected a 32-bit integer for {what} but found {Describe(reader.TokenType)}.");
    }

    /// <summary>An unsigned number (null reads as 0), or a <see cref="JsonException"/> naming <paramref name="what"/>.</summary>
    internal static ulong ReadUInt64(ref Utf8JsonReader reader, string what)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return 0;
        }

        return reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out ulong value)
            ? value
            : throw new JsonException($"Expected an unsigned integer for {what} but found {Describe(reader.TokenType)}.");
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    /// <summary>How a token is named in error messages.</summary>
    internal static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    /// <summary>
    /// Deduplicates the strings of one response (node names and addresses repeat for every instance on a node, the service name for
    /// every instance) and, through a bounded process-wide table, the low-cardinality vocabulary shared by all responses.
    /// </summary>
    internal sealed class StringCache
    {
        private const int MaxCachedLength = 128;

        // Datacenters, kinds, partitions, namespaces, tags and map keys: few distinct values in a real catalog, so the table stays small;
        // the bound keeps a hostile catalog (random meta keys) from growing it without limit (beyond it, strings are only per response).
        private const int MaxVocabulary = 4096;
        private static readonly ConcurrentDictionary<string, string> s_vocabulary = CreateVocabulary();
        private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> s_vocabularyLookup = s_vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();

        private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
        private readonly Dictionary<(string, int), CatalogTaggedAddress> _addresses = [];
        private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        public StringCache() => _lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();

        public string String(ref Utf8JsonReader reader, string what) => Read(ref reader, what, vocabulary: false);

        public string Vocabulary(ref Utf8JsonReader reader, string what) => Read(ref reader, what, vocabulary: true);

        public CatalogTaggedAddress TaggedAddress(string address, int port)
        {
            // The agent adds lan_ipv4/wan_ipv4 equal to the service address and port (docs/consul-behaviour.md §4): one object per response.
            if (!_addresses.TryGetValue((address, port), out CatalogTaggedAddress? tagged))
            {
                tagged = new CatalogTaggedAddress(address, port);
                _addresses.Add((address, port), tagged);
            }

            return tagged;
        }

        private static ConcurrentDictionary<string, string> CreateVocabulary()
        {
            var vocabulary = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
            foreach (string word in (string[])["connect-proxy", "mesh-gateway", "terminating-gateway", "ingress-gateway", "api-gateway", "default", "lan", "lan_ipv4", "lan_ipv6", "wan", "wan_ipv4", "wan_ipv6", "version"])
            {
                vocabulary[word] = word;
            }

            return vocabulary;
        }

        private string Read(ref Utf8JsonReader reader, string what, bool vocabulary)
        {
            if (reader.TokenType == JsonTokenType.Null)
            {
                return string.Empty;
            }

            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
            {
                throw new JsonException($"Expected a string for {what} but found {Describe(reader.TokenType)}.");
            }

            int bytes = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
            if (bytes == 0)
            {
                return string.Empty;
            }

            if (bytes > MaxCachedLength)
            {
                return reader.GetString()!;
            }

            // UTF-8 never needs more UTF-16 code units than bytes, so the buffer always fits.
            Span<char> buffer = stackalloc char[MaxCachedLength];
            ReadOnlySpan<char> chars = buffer[..reader.CopyString(buffer)];
            if (vocabulary && s_vocabularyLookup.TryGetValue(chars, out string? known))
            {
                return known;
            }

            if (_lookup.TryGetValue(chars, out string? seen))
            {
                return seen;
            }

            string value = new(chars);
            if (vocabulary && s_vocabulary.Count < MaxVocabulary)
            {
                value = s_vocabulary.GetOrAdd(value, value);
            }

            _strings.Add(value, value);
            return value;
        }
    }
}
