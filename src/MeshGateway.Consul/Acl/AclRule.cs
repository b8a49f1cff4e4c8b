namespace MeshGateway.Acl;

/// <summary>How a rule names what it applies to.</summary>
public enum AclRuleKind
{
    /// <summary>A scalar rule without a segment, such as <c>mesh = "write"</c>.</summary>
    Scalar = 0,

    /// <summary>An exact rule, such as <c>service "web" { ... }</c>: applies to that name only.</summary>
    Exact,

    /// <summary>A prefix rule, such as <c>service_prefix "" { ... }</c>: applies to every name starting with the segment.</summary>
    Prefix,
}

/// <summary>An Enterprise <c>namespace</c>/<c>partition</c> block a rule is nested in: its label and whether it is the <c>_prefix</c> form.</summary>
/// <param name="Name">The block's label (a name or, for the prefix form, a prefix; <c>""</c> matches all).</param>
/// <param name="IsPrefix">Whether the block is <c>namespace_prefix</c>/<c>partition_prefix</c>.</param>
public readonly record struct AclBlockSelector(string Name, bool IsPrefix)
{
    /// <summary>Whether this selector applies to <paramref name="name"/>: equal for the exact form, a prefix for the prefix form.</summary>
    /// <param name="name">A namespace or partition name.</param>
    /// <returns><see langword="true"/> when it applies.</returns>
    public bool Matches(string name)
        => IsPrefix ? name.StartsWith(Name, StringComparison.Ordinal) : string.Equals(name, Name, StringComparison.Ordinal);
}

/// <summary>Where a rule sits: top level, or inside Enterprise <c>partition</c> and/or <c>namespace</c> blocks.</summary>
/// <param name="Partition">The enclosing partition block, or <see langword="null"/> when not nested in one.</param>
/// <param name="Namespace">The enclosing namespace block, or <see langword="null"/> when not nested in one.</param>
public readonly record struct AclRuleScope(AclBlockSelector? Partition, AclBlockSelector? Namespace)
{
    /// <summary>Whether the rule is at the top level of its policy (the only place Consul CE reads rules from).</summary>
    public bool IsTopLevel => Partition is null && Namespace is null;

    /// <inheritdoc/>
    public override string ToString()
    {
        string text = string.Empty;
        if (Partition is { } p)
        {
            text = (p.IsPrefix ? "partition_prefix \"" : "partition \"") + p.Name + "\"";
        }

        if (Namespace is { } n)
        {
            text += (text.Length == 0 ? string.Empty : " / ") + (n.IsPrefix ? "namespace_prefix \"" : "namespace \"") + n.Name + "\"";
        }

        return text.Length == 0 ? "top level" : text;
    }
}

/// <summary>
/// One rule of a Consul ACL policy, as written: the resource, its form and segment, the access value exactly as spelled
/// (Consul merges policies by exact string but enforces case-insensitively, so the spelling matters) and where it was.
/// </summary>
public sealed record AclRule
{
    /// <summary>The resource.</summary>
    public required AclResource Resource { get; init; }

    /// <summary>Scalar, exact or prefix.</summary>
    public required AclRuleKind Kind { get; init; }

    /// <summary>The segment (the label: a name or prefix); empty for scalar rules.</summary>
    public string Segment { get; init; } = string.Empty;

    /// <summary>The access value exactly as written (<c>policy = "..."</c>, or the scalar's value), for example <c>read</c> or <c>WRITE</c>.</summary>
    public required string Policy { get; init; }

    /// <summary>The <c>intentions</c> value of a service rule as written, or <see langword="null"/> when not set.</summary>
    public string? Intentions { get; init; }

    /// <summary>The Enterprise blocks the rule is nested in.</summary>
    public AclRuleScope Scope { get; init; }

    /// <summary>1-based line of the rule in its policy text (0 when built in code).</summary>
    public int Line { get; init; }

    /// <summary>1-based column of the rule in its policy text (0 when built in code).</summary>
    public int Column { get; init; }

    /// <summary>The rule keyword, for example <c>service_prefix</c> or <c>mesh</c>.</summary>
    public string Keyword => Kind == AclRuleKind.Prefix ? Resource.ToConsulString() + "_prefix" : Resource.ToConsulString();

    /// <summary>The access level the value enforces (case-insensitive, as Consul enforces it).</summary>
    public AclAccessLevel Access => AclAccessLevels.TryParse(Policy, out AclAccessLevel level) ? level : AclAccessLevel.Unknown;

    /// <inheritdoc/>
    public override string ToString()
    {
        string rule = Kind == AclRuleKind.Scalar
            ? Keyword + " = \"" + Policy + "\""
            : Keyword + " \"" + Segment + "\" { policy = \"" + Policy + "\" }";
        return Scope.IsTopLevel ? rule : Scope + " / " + rule;
    }
}
