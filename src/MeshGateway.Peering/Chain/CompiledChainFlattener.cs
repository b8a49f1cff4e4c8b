using System.Text.Json;
using MeshGateway.Peering.Chain;

namespace MeshGateway.Peering;

/// <summary>A chain target the Consul side must resolve to sidecar endpoints (<c>/v1/health/connect/&lt;service&gt;</c> with the subset filter).</summary>
public sealed record ChainTargetReference
{
    /// <summary>The target id, as <see cref="WeightedTarget.TargetId"/> names it.</summary>
    public required string Id { get; init; }

    /// <summary>The service (after resolver redirects).</summary>
    public required string Service { get; init; }

    /// <summary>The subset name, if any.</summary>
    public string? ServiceSubset { get; init; }

    /// <summary>The namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The partition (<c>default</c> when the agent does not name one).</summary>
    public required string Partition { get; init; }

    /// <summary>The datacenter (always the gateway's: others are left out).</summary>
    public required string Datacenter { get; init; }

    /// <summary>The subset's catalog filter (bexpr), if any.</summary>
    public string? SubsetFilter { get; init; }

    /// <summary>Whether the subset takes passing instances only.</summary>
    public bool OnlyPassing { get; init; }

    /// <summary>The resolver's failover targets in this datacenter and partition, in order (ids of other references of the chain).</summary>
    public IReadOnlyList<string> FailoverTargetIds { get; init; } = [];
}

/// <summary>A compiled discovery chain turned into terminator route rules.</summary>
public sealed record FlattenedChain
{
    /// <summary>The chain's protocol (<c>http</c>, <c>http2</c>, <c>grpc</c>, or <c>tcp</c>, which is not terminated).</summary>
    public required string Protocol { get; init; }

    /// <summary>Route rules in order, for <see cref="ExportedHttpService.Routes"/>.</summary>
    public required IReadOnlyList<HttpRouteRule> Routes { get; init; }

    /// <summary>The targets the rules use: give each its endpoints and SPIFFE ID for <see cref="ExportedHttpService.Targets"/>.</summary>
    public required IReadOnlyList<ChainTargetReference> Targets { get; init; }

    /// <summary>What was left out and why (targets in another datacenter or partition, or on a peer; empty rules).</summary>
    public required IReadOnlyList<string> Warnings { get; init; }
}

/// <summary>
/// Turns Consul's compiled discovery chain (<c>GET /v1/discovery-chain/&lt;service&gt;</c>) into the terminator's route
/// rules: a router's routes in order (each with its match, <c>PrefixRewrite</c> and next node), a splitter's weighted
/// legs, a resolver's single target. Resolver subsets and redirects arrive already compiled into targets.
/// </summary>
/// <remarks>
/// As Consul's exporting gateway does (docs/consul-behaviour.md §11), targets outside the gateway's datacenter and partition or on a
/// peer are ignored with a warning; a rule whose legs are all ignored is dropped. A router route's request timeout and
/// retries (<c>RequestTimeout</c>, <c>IdleTimeout</c>, <c>NumRetries</c>, <c>RetryOnConnectFailure</c>, <c>RetryOnStatusCodes</c>,
/// <c>RetryOn</c>; a resolver start node's <c>RequestTimeout</c> onto its one rule) and header
/// modifiers go onto its rule, a splitter leg's header modifiers onto its leg, a resolver's local failover targets onto
/// its target (<see cref="ChainTargetReference.FailoverTargetIds"/>).
/// </remarks>
public static class CompiledChainFlattener
{
    /// <summary>Flattens the JSON body of <c>/v1/discovery-chain/&lt;service&gt;</c>.</summary>
    /// <param name="discoveryChainJson">The response body.</param>
    /// <param name="localDatacenter">The gateway's datacenter.</param>
    /// <param name="localPartition">The gateway's partition; <c>default</c> when null.</param>
    /// <returns>The rules, the targets they use and the warnings.</returns>
    /// <exception cref="FormatException">The body is not a compiled chain (malformed JSON, a missing start node, a node or target that is named but absent).</exception>
    public static FlattenedChain Flatten(ReadOnlySpan<byte> discoveryChainJson, string localDatacenter, string? localPartition = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(localDatacenter);
        DiscoveryChainResponse? response;
        try
        {
            response = JsonSerializer.Deserialize(discoveryChainJson, ChainJsonContext.Default.DiscoveryChainResponse);
        }
        catch (JsonException ex)
        {
            throw new FormatException("The discovery-chain response is not valid JSON: " + ex.Message, ex);
        }

        CompiledChain chain = response?.Chain ?? throw new FormatException("The discovery-chain response has no Chain.");
        Dictionary<string, ChainNode> nodes = chain.Nodes ?? [];
        Dictionary<string, ChainTargetJson> targets = chain.Targets ?? [];
        string partition = string.IsNullOrEmpty(localPartition) ? "default" : localPartition;
        var warnings = new List<string>();
        var used = new Dictionary<string, ChainTargetReference>(StringComparer.Ordinal);
        var rules = new List<HttpRouteRule>();
        ChainNode start = Node(nodes, chain.StartNode, "StartNode");
        if (start.Type == "router")
        {
            foreach (ChainRoute route in start.Routes ?? [])
            {
                AddRule(route.Definition?.Match?.HTTP, route.Definition?.Destination, Node(nodes, route.NextNode, "a route's NextNode"));
            }
        }
        else
        {
            // A chain that starts at its resolver: the resolver's own request timeout is the route's (Consul 1.15+,
            // agent/xds/routes.go: "if startNode.Resolver.RequestTimeout > 0"; only for a resolver start node).
            AddRule(null, null, start, ResolverTimeout(start.Type == "resolver" ? start.Resolver?.RequestTimeout : null));
        }

        return new FlattenedChain { Protocol = chain.Protocol ?? "tcp", Routes = rules, Targets = [.. used.Values], Warnings = warnings };

        void AddRule(ChainHttpMatch? match, ChainRouteDestination? destination, ChainNode next, TimeSpan? resolverTimeout = null)
        {
            var legs = new List<WeightedTarget>();
            if (next.Type == "splitter")
            {
                foreach (ChainSplit split in next.Splits ?? [])
                {
                    AddLeg(legs, Node(nodes, split.NextNode, "a split's NextNode"), split.Weight, split.Definition);
                }
            }
            else
            {
                AddLeg(legs, next, 100, null);
            }

            if (legs.Count == 0)
            {
                warnings.Add($"A route of {chain.ServiceName} was left out: none of its targets is in datacenter {localDatacenter}, partition {partition}.");
                return;
            }

            rules.Add(new HttpRouteRule
            {
                Match = ToMatch(match),
                PrefixRewrite = string.IsNullOrEmpty(destination?.PrefixRewrite) ? null : destination.PrefixRewrite,
                Splits = legs,
                RequestTimeout = resolverTimeout ?? Timeout(destination?.RequestTimeout, "RequestTimeout", negative: null),
                IdleTimeout = Timeout(destination?.IdleTimeout, "IdleTimeout", negative: System.Threading.Timeout.InfiniteTimeSpan),
                NumRetries = Math.Max(0, destination?.NumRetries ?? 0),
                RetryOnConnectFailure = destination?.RetryOnConnectFailure ?? false,
                RetryOnStatusCodes = destination?.RetryOnStatusCodes ?? [],
                RetryOn = destination?.RetryOn ?? [],
                RequestHeaders = Modifiers(destination?.RequestHeaders),
                ResponseHeaders = Modifiers(destination?.ResponseHeaders),
            });
        }

        // Consul's 0 is "not set"; a negative value turns the limit off (agent/xds/routes.go: "Disable the timeout if user
        // specifies negative value", Envoy's 0): no request timeout (null here too), no idle timeout (infinite).
        TimeSpan? Timeout(string? text, string field, TimeSpan? negative)
        {
            if (string.IsNullOrEmpty(text))
            {
                return null;
            }

            if (!GoDuration.TryParse(text, out TimeSpan timeout))
            {
                throw new FormatException($"A route of {chain.ServiceName} has {field} '{text}', which is not a duration.");
            }

            return timeout == TimeSpan.Zero ? null : timeout < TimeSpan.Zero ? negative : timeout;
        }

        TimeSpan? ResolverTimeout(JsonElement? value)
        {
            TimeSpan timeout;
            switch (value)
            {
                case { ValueKind: JsonValueKind.Number } number when number.TryGetInt64(out long nanoseconds):
                    timeout = TimeSpan.FromTicks(nanoseconds / 100);
                    break;
                case { ValueKind: JsonValueKind.String } text when GoDuration.TryParse(text.GetString(), out timeout):
                    break;
                case null or { ValueKind: JsonValueKind.Null }:
                    return null;
                default:
                    throw new FormatException($"The resolver of {chain.ServiceName} has RequestTimeout {value}, which is not a duration.");
            }

            return timeout > TimeSpan.Zero ? timeout : null;
        }

        void AddLeg(List<WeightedTarget> legs, ChainNode resolver, double weight, ChainSplitDefinition? split)
        {
            if (resolver.Type != "resolver" || resolver.Resolver?.Target is not { } id)
            {
                throw new FormatException($"The chain node '{resolver.Name}' of {chain.ServiceName} is a {resolver.Type} where a resolver was expected.");
            }

            if (!targets.TryGetValue(id, out ChainTargetJson? target))
            {
                throw new FormatException($"The chain of {chain.ServiceName} names target '{id}', which is not in its Targets.");
            }

            if (Reference(id, target) is not { } reference)
            {
                return;
            }

            // The resolver's failover targets (tried in order when the primary has no healthy instance), the local ones.
            var failovers = new List<string>();
            foreach (string failoverId in resolver.Resolver.Failover?.Targets ?? [])
            {
                if (!targets.TryGetValue(failoverId, out ChainTargetJson? failover))
                {
                    throw new FormatException($"The chain of {chain.ServiceName} names failover target '{failoverId}', which is not in its Targets.");
                }

                if (failoverId != id && Reference(failoverId, failover) is not null)
                {
                    failovers.Add(failoverId);
                }
            }

            // Set, not added: a target first met as another's failover gets its own failover list as a leg's target.
            used[id] = reference with { FailoverTargetIds = failovers };
            legs.Add(new WeightedTarget(id, weight) { RequestHeaders = Modifiers(split?.RequestHeaders), ResponseHeaders = Modifiers(split?.ResponseHeaders) });
        }

        ChainTargetReference? Reference(string id, ChainTargetJson target)
        {
            string targetPartition = string.IsNullOrEmpty(target.Partition) ? "default" : target.Partition;
            if (!string.IsNullOrEmpty(target.Peer) || target.Datacenter != localDatacenter || targetPartition != partition)
            {
                string warning = $"Target {id} of {chain.ServiceName} is ignored: it leaves datacenter {localDatacenter}, partition {partition} (Consul's exporting gateway does the same).";
                if (!warnings.Contains(warning))
                {
                    // Once per target, however many legs and failovers name it.
                    warnings.Add(warning);
                }

                return null;
            }

            if (used.TryGetValue(id, out ChainTargetReference? known))
            {
                return known;
            }

            var reference = new ChainTargetReference
            {
                Id = id,
                Service = target.Service ?? throw new FormatException($"Target '{id}' of {chain.ServiceName} has no Service."),
                ServiceSubset = string.IsNullOrEmpty(target.ServiceSubset) ? null : target.ServiceSubset,
                Namespace = string.IsNullOrEmpty(target.Namespace) ? "default" : target.Namespace,
                Partition = targetPartition,
                Datacenter = target.Datacenter!,
                SubsetFilter = string.IsNullOrEmpty(target.Subset?.Filter) ? null : target.Subset.Filter,
                OnlyPassing = target.Subset?.OnlyPassing ?? false,
            };
            used.Add(id, reference);
            return reference;
        }
    }

    /// <summary>Consul's header modifiers, or null when they change nothing.</summary>
    private static HttpHeaderModifiers? Modifiers(ChainHeaderModifiers? json) =>
        json is null || ((json.Add?.Count ?? 0) == 0 && (json.Set?.Count ?? 0) == 0 && (json.Remove?.Count ?? 0) == 0)
            ? null
            : new HttpHeaderModifiers { Add = json.Add ?? [], Set = json.Set ?? [], Remove = json.Remove ?? [] };

    private static ChainNode Node(Dictionary<string, ChainNode> nodes, string? name, string what) =>
        name is not null && nodes.TryGetValue(name, out ChainNode? node) ? node : throw new FormatException($"The discovery chain's {what} '{name}' is not among its Nodes.");

    private static HttpRouteMatch? ToMatch(ChainHttpMatch? http)
    {
        if (http is null)
        {
            return null;
        }

        var match = new HttpRouteMatch
        {
            PathExact = Empty(http.PathExact),
            PathPrefix = Empty(http.PathPrefix),
            PathRegex = Empty(http.PathRegex),
            Headers = [.. (http.Header ?? []).Select(h => new HttpHeaderMatch { Name = h.Name ?? "", Present = h.Present, Exact = Empty(h.Exact), Prefix = Empty(h.Prefix), Suffix = Empty(h.Suffix), Regex = Empty(h.Regex), Invert = h.Invert })],
            QueryParameters = [.. (http.QueryParam ?? []).Select(q => new HttpQueryMatch { Name = q.Name ?? "", Present = q.Present, Exact = Empty(q.Exact), Regex = Empty(q.Regex) })],
            Methods = http.Methods ?? [],
        };

        // Consul's catch-all default route is PathPrefix "/" and nothing else: no match at all.
        bool catchAll = match.PathPrefix == "/" && match.PathExact is null && match.PathRegex is null && match.Headers.Count == 0 && match.QueryParameters.Count == 0 && match.Methods.Count == 0;
        return catchAll ? null : match;

        static string? Empty(string? value) => string.IsNullOrEmpty(value) ? null : value;
    }
}
