namespace MeshGateway.Acl;

/// <summary>What is wrong with a policy's rules.</summary>
public enum AclParseErrorKind
{
    /// <summary>Malformed HCL or JSON (unterminated string or comment, missing brace, unexpected token, ...).</summary>
    Syntax = 1,

    /// <summary>A resource keyword Consul does not know (Consul itself ignores it silently, so the rule grants nothing).</summary>
    UnknownResource,

    /// <summary>An attribute inside a rule block other than <c>policy</c> (and <c>intentions</c> for service rules).</summary>
    UnknownAttribute,

    /// <summary>An access value that is not <c>read</c>, <c>write</c> or <c>deny</c> (or <c>list</c> on key rules).</summary>
    InvalidAccess,

    /// <summary>A rule block without a <c>policy</c> (Consul: <c>Invalid service policy</c>).</summary>
    MissingPolicy,

    /// <summary>A block in a place Consul does not allow it (for example <c>partition</c> inside <c>namespace</c>).</summary>
    InvalidNesting,

    /// <summary>A rule written in the wrong shape: a label missing or extra, a block where a value belongs or the reverse.</summary>
    InvalidShape,

    /// <summary>The same attribute twice in one block (Consul: <c>Each argument can only be defined once</c>).</summary>
    DuplicateAttribute,
}

/// <summary>A located parse error (or warning) in a policy's rules.</summary>
/// <param name="Kind">What is wrong.</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
/// <param name="Message">A specific description, naming the keyword or value at fault.</param>
public sealed record AclParseError(AclParseErrorKind Kind, int Line, int Column, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => "line " + Line + ", column " + Column + ": " + Message;
}

/// <summary>The outcome of parsing a policy: the policy, or the first error.</summary>
public sealed class AclParseResult
{
    internal AclParseResult(AclPolicy? policy, AclParseError? error)
    {
        Policy = policy;
        Error = error;
    }

    /// <summary>The policy, or <see langword="null"/> when parsing failed.</summary>
    public AclPolicy? Policy { get; }

    /// <summary>The first error, or <see langword="null"/> on success.</summary>
    public AclParseError? Error { get; }

    /// <summary>Whether parsing succeeded.</summary>
    public bool Success => Policy is not null;
}

/// <summary>What to do with resources Consul does not know.</summary>
public enum AclUnknownResourceHandling
{
    /// <summary>Fail with <see cref="AclParseErrorKind.UnknownResource"/> (default): a typo would silently grant nothing.</summary>
    Reject = 0,

    /// <summary>Skip them with a warning, as Consul itself does (HCL v1 ignores unknown keys; hashicorp/consul#11352).</summary>
    IgnoreWithWarning,
}

/// <summary>Options for <see cref="AclPolicyParser"/>.</summary>
public sealed record AclParseOptions
{
    /// <summary>The defaults: strict.</summary>
    public static AclParseOptions Default { get; } = new();

    /// <summary>What to do with unknown resources and unknown rule attributes. Default <see cref="AclUnknownResourceHandling.Reject"/>.</summary>
    public AclUnknownResourceHandling UnknownResources { get; init; }
}
