namespace MeshGateway.Acl;

/// <summary>
/// A Consul ACL resource (<c>acl/acl.go</c> <c>Resource</c>). Segmented resources have an exact form (<c>service</c>) and a
/// prefix form (<c>service_prefix</c>); the rest are scalars (<c>mesh = "write"</c>).
/// </summary>
public enum AclResource
{
    /// <summary>Not a resource Consul knows.</summary>
    Unknown = 0,

    /// <summary><c>acl</c> (scalar).</summary>
    Acl,

    /// <summary><c>agent</c> / <c>agent_prefix</c>.</summary>
    Agent,

    /// <summary><c>event</c> / <c>event_prefix</c>.</summary>
    Event,

    /// <summary><c>identity</c> / <c>identity_prefix</c> (Consul 1.17+).</summary>
    Identity,

    /// <summary><c>intention</c>: the permission implied by service rules (the <c>intentions</c> attribute); not a rule keyword.</summary>
    Intention,

    /// <summary><c>key</c> / <c>key_prefix</c>.</summary>
    Key,

    /// <summary><c>keyring</c> (scalar).</summary>
    Keyring,

    /// <summary><c>mesh</c> (scalar; falls back to <c>operator</c> when unset).</summary>
    Mesh,

    /// <summary><c>node</c> / <c>node_prefix</c>.</summary>
    Node,

    /// <summary><c>operator</c> (scalar).</summary>
    Operator,

    /// <summary><c>peering</c> (scalar; falls back to <c>operator</c> when unset).</summary>
    Peering,

    /// <summary><c>query</c> / <c>query_prefix</c> (prepared queries).</summary>
    Query,

    /// <summary><c>service</c> / <c>service_prefix</c>.</summary>
    Service,

    /// <summary><c>session</c> / <c>session_prefix</c>.</summary>
    Session,

    /// <summary><c>namespace</c> (Enterprise; appears in permission-denied messages, and as a nesting block in rules).</summary>
    Namespace,

    /// <summary><c>partition</c> (Enterprise; appears in permission-denied messages, and as a nesting block in rules).</summary>
    Partition,
}

/// <summary>Consul's spelling of <see cref="AclResource"/> values.</summary>
public static class AclResources
{
    /// <summary>The resource name as Consul writes it in rules and in <c>lacks permission '&lt;resource&gt;:&lt;level&gt;'</c>.</summary>
    /// <param name="resource">The resource.</param>
    /// <returns>For example <c>service</c> or <c>query</c>.</returns>
    public static string ToConsulString(this AclResource resource) => resource switch
    {
        AclResource.Acl => "acl",
        AclResource.Agent => "agent",
        AclResource.Event => "event",
        AclResource.Identity => "identity",
        AclResource.Intention => "intention",
        AclResource.Key => "key",
        AclResource.Keyring => "keyring",
        AclResource.Mesh => "mesh",
        AclResource.Node => "node",
        AclResource.Operator => "operator",
        AclResource.Peering => "peering",
        AclResource.Query => "query",
        AclResource.Service => "service",
        AclResource.Session => "session",
        AclResource.Namespace => "namespace",
        AclResource.Partition => "partition",
        _ => "unknown",
    };

    /// <summary>Parses Consul's spelling of a resource (case-sensitive, as Consul writes it).</summary>
    /// <param name="value">For example <c>service</c>.</param>
    /// <returns>The resource, or <see cref="AclResource.Unknown"/>.</returns>
    public static AclResource Parse(ReadOnlySpan<char> value) => value switch
    {
        "acl" => AclResource.Acl,
        "agent" => AclResource.Agent,
        "event" => AclResource.Event,
        "identity" => AclResource.Identity,
        "intention" => AclResource.Intention,
        "key" => AclResource.Key,
        "keyring" => AclResource.Keyring,
        "mesh" => AclResource.Mesh,
        "node" => AclResource.Node,
        "operator" => AclResource.Operator,
        "peering" => AclResource.Peering,
        "query" => AclResource.Query,
        "service" => AclResource.Service,
        "session" => AclResource.Session,
        "namespace" => AclResource.Namespace,
        "partition" => AclResource.Partition,
        _ => AclResource.Unknown,
    };

    /// <summary>Whether the resource is a scalar rule (<c>acl</c>, <c>keyring</c>, <c>operator</c>, <c>mesh</c>, <c>peering</c>).</summary>
    /// <param name="resource">The resource.</param>
    /// <returns><see langword="true"/> for scalar resources.</returns>
    public static bool IsScalar(this AclResource resource)
        => resource is AclResource.Acl or AclResource.Keyring or AclResource.Operator or AclResource.Mesh or AclResource.Peering;
}
