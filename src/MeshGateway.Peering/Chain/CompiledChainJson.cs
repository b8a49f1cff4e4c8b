using System.Text.Json.Serialization;

namespace MeshGateway.Peering.Chain;

// The shape of GET /v1/discovery-chain/<service> (Consul's structs.CompiledDiscoveryChain), as served by a real 1.8.7
// agent (fixture tests/MeshGateway.Peering.Tests/Fixtures/discovery-chain-web.json) and unchanged in the fields read
// here up to 1.13+ (which adds Partition and Peer on targets). Only what the terminator uses is declared.

internal sealed class DiscoveryChainResponse
{
    public CompiledChain? Chain { get; set; }
}

internal sealed class CompiledChain
{
    public string? ServiceName { get; set; }

    public string? Namespace { get; set; }

    public string? Partition { get; set; }

    public string? Datacenter { get; set; }

    public string? Protocol { get; set; }

    public string? StartNode { get; set; }

    public Dictionary<string, ChainNode>? Nodes { get; set; }

    public Dictionary<string, ChainTargetJson>? Targets { get; set; }
}

internal sealed class ChainNode
{
    public string? Type { get; set; }

    public string? Name { get; set; }

    public List<ChainRoute>? Routes { get; set; }

    public List<ChainSplit>? Splits { get; set; }

    public ChainResolver? Resolver { get; set; }
}

internal sealed class ChainRoute
{
    public ChainRouteDefinition? Definition { get; set; }

    public string? NextNode { get; set; }
}

internal sealed class ChainRouteDefinition
{
    public ChainRouteMatch? Match { get; set; }

    public ChainRouteDestination? Destination { get; set; }
}

internal sealed class ChainRouteMatch
{
    public ChainHttpMatch? HTTP { get; set; }
}

internal sealed class ChainHttpMatch
{
    public string? PathExact { get; set; }

    public string? PathPrefix { get; set; }

    public string? PathRegex { get; set; }

    public List<ChainHeaderMatch>? Header { get; set; }

    public List<ChainQueryMatch>? QueryParam { get; set; }

    public List<string>? Methods { get; set; }
}

internal sealed class ChainHeaderMatch
{
    public string? Name { get; set; }

    public bool Present { get; set; }

    public string? Exact { get; set; }

    public string? Prefix { get; set; }

    public string? Suffix { get; set; }

    public string? Regex { get; set; }

    public bool Invert { get; set; }
}

internal sealed class ChainQueryMatch
{
    public string? Name { get; set; }

    public bool Present { get; set; }

    public string? Exact { get; set; }

    public string? Regex { get; set; }
}

internal sealed class ChainRouteDestination
{
    public string? PrefixRewrite { get; set; }

    /// <summary>A Go duration string ("1.5s"), as the real 1.8.7 agent writes it.</summary>
    public string? RequestTimeout { get; set; }

    public int NumRetries { get; set; }

    public bool RetryOnConnectFailure { get; set; }

    public List<int>? RetryOnStatusCodes { get; set; }

    /// <summary>Envoy retry conditions (Consul 1.15+, agent/structs/config_entry_routes.go: <c>RetryOn []string</c>).</summary>
    public List<string>? RetryOn { get; set; }

    /// <summary>A Go duration string (Consul 1.15+: <c>ServiceRouteDestination.MarshalJSON</c> writes it as <c>RequestTimeout</c> is written).</summary>
    public string? IdleTimeout { get; set; }

    public ChainHeaderModifiers? RequestHeaders { get; set; }

    public ChainHeaderModifiers? ResponseHeaders { get; set; }
}

/// <summary>Consul's HTTPHeaderModifiers (1.9+; structs.HTTPHeaderModifiers).</summary>
internal sealed class ChainHeaderModifiers
{
    public Dictionary<string, string>? Add { get; set; }

    public Dictionary<string, string>? Set { get; set; }

    public List<string>? Remove { get; set; }
}

/// <summary>The splitter's own definition of a leg (structs.ServiceSplit), carried by the compiled split (1.9+).</summary>
internal sealed class ChainSplitDefinition
{
    public ChainHeaderModifiers? RequestHeaders { get; set; }

    public ChainHeaderModifiers? ResponseHeaders { get; set; }
}

internal sealed class ChainSplit
{
    public ChainSplitDefinition? Definition { get; set; }

    public double Weight { get; set; }

    public string? NextNode { get; set; }
}

internal sealed class ChainResolver
{
    public string? Target { get; set; }

    /// <summary>
    /// The service-resolver's <c>RequestTimeout</c> (Consul 1.15+). <c>DiscoveryResolver.MarshalJSON</c>
    /// (agent/structs/discovery_chain.go) converts only <c>ConnectTimeout</c> to a string, so this one arrives as Go's
    /// <c>time.Duration</c>, an integer of nanoseconds; a duration string is read too.
    /// </summary>
    public System.Text.Json.JsonElement? RequestTimeout { get; set; }

    public ChainFailover? Failover { get; set; }
}

/// <summary>A resolver's compiled failover (structs.DiscoveryFailover): the targets tried in order when the primary has no healthy instance.</summary>
internal sealed class ChainFailover
{
    public List<string>? Targets { get; set; }
}

internal sealed class ChainTargetJson
{
    public string? ID { get; set; }

    public string? Service { get; set; }

    public string? ServiceSubset { get; set; }

    public string? Namespace { get; set; }

    public string? Partition { get; set; }

    public string? Datacenter { get; set; }

    public string? Peer { get; set; }

    public ChainSubset? Subset { get; set; }
}

internal sealed class ChainSubset
{
    public string? Filter { get; set; }

    public bool OnlyPassing { get; set; }
}

/// <summary>Source-generated metadata: no reflection, trimming/AOT-safe like the Consul client's context.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(DiscoveryChainResponse))]
internal sealed partial class ChainJsonContext : JsonSerializerContext;
