namespace MeshGateway.Consul;

/// <summary>
/// <c>GET /v1/acl/token/self</c>: the links of the token in use. The <c>SecretID</c> Consul also returns is deliberately
/// not mapped, so it is never held in memory by this type nor logged.
/// </summary>
public sealed class ConsulAclToken
{
    /// <summary>The token's public ID.</summary>
    public string? AccessorID { get; init; }

    /// <summary>Description.</summary>
    public string? Description { get; init; }

    /// <summary>Linked policies.</summary>
    public IReadOnlyList<ConsulAclLink>? Policies { get; init; }

    /// <summary>Linked roles.</summary>
    public IReadOnlyList<ConsulAclLink>? Roles { get; init; }

    /// <summary>Service identities (each a synthetic policy).</summary>
    public IReadOnlyList<ConsulAclServiceIdentity>? ServiceIdentities { get; init; }

    /// <summary>Node identities (each a synthetic policy).</summary>
    public IReadOnlyList<ConsulAclNodeIdentity>? NodeIdentities { get; init; }

    /// <summary>Whether the token is local to one datacenter.</summary>
    public bool Local { get; init; }
}

/// <summary>A link to a policy or role.</summary>
public sealed class ConsulAclLink
{
    /// <summary>ID.</summary>
    public string? ID { get; init; }

    /// <summary>Name.</summary>
    public string? Name { get; init; }
}

/// <summary>A service identity.</summary>
public sealed class ConsulAclServiceIdentity
{
    /// <summary>The service name.</summary>
    public string? ServiceName { get; init; }

    /// <summary>Datacenters it applies in (empty: all).</summary>
    public IReadOnlyList<string>? Datacenters { get; init; }
}

/// <summary>A node identity.</summary>
public sealed class ConsulAclNodeIdentity
{
    /// <summary>The node name.</summary>
    public string? NodeName { get; init; }

    /// <summary>The datacenter it applies in.</summary>
    public string? Datacenter { get; init; }
}

/// <summary><c>GET /v1/acl/policy/&lt;id&gt;</c>.</summary>
public sealed class ConsulAclPolicy
{
    /// <summary>ID.</summary>
    public string? ID { get; init; }

    /// <summary>Name.</summary>
    public string? Name { get; init; }

    /// <summary>Rules (HCL or JSON).</summary>
    public string? Rules { get; init; }

    /// <summary>Datacenters it applies in (empty: all).</summary>
    public IReadOnlyList<string>? Datacenters { get; init; }
}

/// <summary><c>GET /v1/acl/role/&lt;id&gt;</c>.</summary>
public sealed class ConsulAclRole
{
    /// <summary>ID.</summary>
    public string? ID { get; init; }

    /// <summary>Name.</summary>
    public string? Name { get; init; }

    /// <summary>Linked policies.</summary>
    public IReadOnlyList<ConsulAclLink>? Policies { get; init; }

    /// <summary>Service identities.</summary>
    public IReadOnlyList<ConsulAclServiceIdentity>? ServiceIdentities { get; init; }

    /// <summary>Node identities.</summary>
    public IReadOnlyList<ConsulAclNodeIdentity>? NodeIdentities { get; init; }
}
