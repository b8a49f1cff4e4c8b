namespace MeshGateway.Routing;

/// <summary>How a <see cref="Route"/> matches a server name.</summary>
public enum RouteKind
{
    /// <summary>
    /// The whole name must equal the pattern (ignoring ASCII case). Local services and subsets, local servers and the
    /// names of remote gateway clusters themselves (docs/consul-behaviour.md §3, step 4: Envoy's <c>sni_cluster</c> default chain).
    /// </summary>
    Exact = 0,

    /// <summary>
    /// The pattern is <c>*.suffix</c>: one or more leading labels followed by <c>.suffix</c> (docs/consul-behaviour.md §3, step 3: a
    /// remote datacenter's <c>*.dc2.internal.&lt;trust-domain&gt;.consul</c>). The longest matching suffix wins.
    /// </summary>
    Wildcard = 1,
}
