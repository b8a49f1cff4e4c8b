namespace MeshGateway.Acl;

/// <summary>What a requirement is checked against.</summary>
public enum AclTargetKind
{
    /// <summary>A scalar resource (<c>mesh</c>, <c>peering</c>, <c>operator</c>, ...): no name.</summary>
    Scalar = 0,

    /// <summary>One name, such as <c>service:write</c> on <c>mesh-gateway</c> (Consul's <c>ServiceWrite(name)</c>).</summary>
    Named,

    /// <summary>Every name, such as reading all services (Consul's <c>ServiceReadAll</c>): the <c>""</c> prefix rule must allow
    /// and no more specific rule may deny.</summary>
    All,
}

/// <summary>Which Consul edition's rule semantics apply.</summary>
public enum ConsulEdition
{
    /// <summary>Community edition: only top-level rules count; <c>namespace</c>/<c>partition</c> blocks are ignored.</summary>
    Community = 0,

    /// <summary>Enterprise: rules nested in <c>partition</c>/<c>namespace</c> blocks apply to matching partitions and namespaces.</summary>
    Enterprise,
}

/// <summary>One permission a token needs, with the reason it is needed.</summary>
public sealed record AclRequirement
{
    /// <summary>A namespace or partition value meaning "every one of them" (<c>namespace_prefix ""</c> / <c>partition_prefix ""</c>).</summary>
    public const string Every = "*";

    /// <summary>The resource.</summary>
    public required AclResource Resource { get; init; }

    /// <summary>The level needed: read, list or write.</summary>
    public required AclAccessLevel Access { get; init; }

    /// <summary>Scalar, one name or all names.</summary>
    public AclTargetKind Target { get; init; }

    /// <summary>The name for <see cref="AclTargetKind.Named"/>; <see langword="null"/> otherwise.</summary>
    public string? Name { get; init; }

    /// <summary>Enterprise: the namespace the permission is needed in (<see cref="Every"/> for all). Ignored by Community edition.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>Enterprise: the partition the permission is needed in (<see cref="Every"/> for all). Ignored by Community edition.</summary>
    public string Partition { get; init; } = "default";

    /// <summary>
    /// Consul 1.13+: the service or node read is of data imported from this cluster peer (<c>?peer=</c>). Consul checks such
    /// reads differently (<c>acl/policy_authorizer.go</c> <c>ServiceRead</c>/<c>NodeRead</c> with a peer): allowed with
    /// <c>service:write</c> on any service, else exactly when <c>service:read</c> (<c>node:read</c>) on all of them is; a rule on
    /// the imported name alone does not count. Only read requirements on <see cref="AclResource.Service"/> or
    /// <see cref="AclResource.Node"/> use it; the name does not matter.
    /// </summary>
    public string? Peer { get; init; }

    /// <summary>Whether this is a read of peer-imported data (see <see cref="Peer"/>).</summary>
    public bool IsPeeredRead => !string.IsNullOrEmpty(Peer) && Access == AclAccessLevel.Read && Resource is AclResource.Service or AclResource.Node;

    /// <summary>Why the gateway needs it (docs/consul-behaviour.md §7.1).</summary>
    public required string Reason { get; init; }

    /// <summary>Whether the gateway works without it (for example <c>agent:read</c>, used only for gRPC port discovery).</summary>
    public bool IsOptional { get; init; }

    /// <summary>The permission in Consul's words, for example <c>service:write on "mesh-gateway"</c> or <c>service:read on all services</c>.</summary>
    public string Permission
    {
        get
        {
            string text = Resource.ToConsulString() + ":" + Access.ToConsulString();
            text += Target switch
            {
                AclTargetKind.Named => " on \"" + Name + "\"",
                AclTargetKind.All => " on all " + Plural(Resource),
                _ => string.Empty,
            };
            if (!string.IsNullOrEmpty(Peer))
            {
                text += " imported from peer \"" + Peer + "\"";
            }

            return text;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Permission + (IsOptional ? " (optional)" : string.Empty) + ": " + Reason;

    private static string Plural(AclResource resource) => resource switch
    {
        AclResource.Agent => "agents (nodes)",
        AclResource.Query => "prepared queries",
        _ => resource.ToConsulString() + "s",
    };
}
