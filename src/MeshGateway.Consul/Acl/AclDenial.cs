using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace MeshGateway.Acl;

/// <summary>What kind of ACL failure a Consul response reports.</summary>
public enum AclDenialKind
{
    /// <summary>HTTP 403 <c>Permission denied</c>: the token lacks a permission (named in the denial when Consul says which).</summary>
    PermissionDenied = 1,

    /// <summary>HTTP 403 <c>ACL not found</c>: the token is unknown, deleted, expired, or local to another datacenter.</summary>
    AclNotFound,

    /// <summary><c>ACL system must be bootstrapped ...: ACL not found</c>: ACLs are enabled but not bootstrapped yet.</summary>
    AclNotBootstrapped,

    /// <summary><c>ACL support disabled</c>: an ACL endpoint was called on a cluster without ACLs.</summary>
    AclDisabled,

    /// <summary><c>Cannot resolve root ACL</c>: a reserved token name (<c>allow</c>, <c>deny</c>, <c>manage</c>) was used as a token.</summary>
    RootDenied,

    /// <summary>HTTP 500 with <c>Failed to parse ACL rules</c> or <c>Invalid ... policy</c>: Consul rejected a malformed policy
    /// (it answers 500, not 400).</summary>
    MalformedPolicy,
}

/// <summary>A Consul ACL failure mapped back to what is missing. Never holds a token secret (accessor IDs are not secret).</summary>
public sealed record AclDenial
{
    /// <summary>The kind of failure.</summary>
    public required AclDenialKind Kind { get; init; }

    /// <summary>The HTTP status code of the response.</summary>
    public int StatusCode { get; init; }

    /// <summary>The resource whose permission is missing, when Consul named it.</summary>
    public AclResource? Resource { get; init; }

    /// <summary>The access level that is missing, when Consul named it.</summary>
    public AclAccessLevel? Access { get; init; }

    /// <summary>The name the permission was checked on (for example the service name), when Consul named it.</summary>
    public string? Name { get; init; }

    /// <summary>Enterprise: the partition Consul named, if any.</summary>
    public string? Partition { get; init; }

    /// <summary>Enterprise: the namespace Consul named, if any.</summary>
    public string? Namespace { get; init; }

    /// <summary>The accessor ID of the token Consul names (<c>token with AccessorID '...'</c>), if any.</summary>
    public string? AccessorId { get; init; }

    /// <summary>Whether the request carried no token, so Consul used the anonymous token.</summary>
    public bool IsAnonymousToken { get; init; }

    /// <summary>For other <c>Permission denied: &lt;cause&gt;</c> forms: the cause, with anything shaped like a UUID redacted.</summary>
    public string? Cause { get; init; }

    /// <summary>The missing permission in Consul's words, for example <c>service:write on "mesh-gateway"</c>, when known.</summary>
    public string? Permission
        => Resource is null || Access is null
            ? null
            : Resource.Value.ToConsulString() + ":" + Access.Value.ToConsulString() + (Name is null ? string.Empty : " on \"" + Name + "\"")
                + (Partition is null ? string.Empty : " in partition \"" + Partition + "\"")
                + (Namespace is null ? string.Empty : " in namespace \"" + Namespace + "\"");

    /// <summary>A specific message with the fix, safe to log.</summary>
    public string Message => Kind switch
    {
        AclDenialKind.PermissionDenied when Permission is not null && IsAnonymousToken =>
            "the request carried no token, and the anonymous token lacks " + Permission
            + "; configure the gateway's token (a policy from MeshGatewayAcl.ToHcl) rather than granting it to the anonymous token",
        AclDenialKind.PermissionDenied when Permission is not null =>
            (AccessorId is null ? "the token" : "the token with accessor ID " + AccessorId)
            + " lacks " + Permission + "; add a rule granting it to one of the token's policies (MeshGatewayAcl.ToHcl generates the gateway's policy)",
        AclDenialKind.PermissionDenied when Cause is not null => "permission denied: " + Cause,
        AclDenialKind.PermissionDenied => "permission denied (Consul did not say which permission); evaluate the token's policies against MeshGatewayAcl.Requirements",
        AclDenialKind.AclNotFound => "Consul does not know the token (ACL not found): it is wrong, deleted, expired, or a local token used in another datacenter",
        AclDenialKind.AclNotBootstrapped => "Consul's ACL system is not bootstrapped yet: run 'consul acl bootstrap' and use a token it issues",
        AclDenialKind.AclDisabled => "ACLs are disabled on this Consul cluster",
        AclDenialKind.RootDenied => "a reserved name (allow, deny, manage) was sent as the token; send a real token",
        _ => "Consul rejected a malformed ACL policy (HTTP " + StatusCode + "): " + (Cause ?? "no detail"),
    };

    /// <inheritdoc/>
    public override string ToString() => Message;
}

/// <summary>
/// Maps the bodies of Consul's ACL failures (<c>acl/errors.go</c>, <c>agent/http.go</c>) back to what is missing. Every
/// form seen from Consul 1.8 to current is understood; matching is by substring, as Consul itself does.
/// </summary>
/// <remarks>
/// Forms: a bare <c>Permission denied</c> (what Consul 1.8 writes for most denials); <c>Permission denied: Missing
/// service:write on web</c> and <c>Permission denied: Missing operator:read permissions</c> (1.8 causes);
/// <c>Permission denied: anonymous token lacks permission 'key:read' on "foo". The anonymous token is used implicitly ...</c>
/// and the same without <c>on "..."</c> (current; earlier versions named the anonymous token by its accessor ID
/// <see cref="AnonymousAccessorId"/>, which parses to the same denial);
/// <c>Permission denied: token with AccessorID '&lt;id&gt;' lacks permission 'service:write' on "mesh-gateway"</c> (Enterprise adds
/// <c> in partition "p" in namespace "n"</c>); <c>Permission denied: provided token lacks permission 'mesh:write'</c>;
/// <c>Permission denied: &lt;cause&gt;</c>; <c>ACL not found</c>; <c>ACL system must be bootstrapped ...: ACL not found</c>;
/// <c>ACL support disabled</c>; <c>Cannot resolve root ACL</c>; and HTTP 500 for a malformed policy. Any of them may be
/// prefixed by <c>rpc error making call: </c> (once per forwarding hop, <c>agent/pool/pool.go</c>) or wrapped by the Go
/// API client's <c>Unexpected response code: 403 (...)</c>.
/// </remarks>
public static partial class AclDenialParser
{
    /// <summary>The accessor ID of Consul's built-in anonymous token (<c>acl.AnonymousTokenID</c>).</summary>
    public const string AnonymousAccessorId = "00000000-0000-0000-0000-000000000002";

    private const string PermissionDenied = "Permission denied";

    private const string UnexpectedResponse = "Unexpected response code: ";

    private const string AnonymousTail = ". The anonymous token is used implicitly";

    /// <summary>Recognises an ACL failure.</summary>
    /// <param name="statusCode">The HTTP status code (403 for denials and unknown tokens, 500 for malformed policies).</param>
    /// <param name="body">The response body (plain text).</param>
    /// <param name="denial">The mapped failure.</param>
    /// <returns>Whether the response is an ACL failure.</returns>
    public static bool TryParse(int statusCode, string? body, [NotNullWhen(true)] out AclDenial? denial)
    {
        denial = null;
        if (string.IsNullOrEmpty(body))
        {
            return false;
        }

        if (body.Contains("ACL system must be bootstrapped", StringComparison.Ordinal))
        {
            denial = new AclDenial { Kind = AclDenialKind.AclNotBootstrapped, StatusCode = statusCode };
            return true;
        }

        int denied = body.IndexOf(PermissionDenied, StringComparison.Ordinal);
        if (denied >= 0)
        {
            bool wrapped = body.AsSpan(0, denied).Contains(UnexpectedResponse, StringComparison.Ordinal);
            denial = ParsePermissionDenied(statusCode, Unwrap(body.AsSpan(denied + PermissionDenied.Length), wrapped).ToString());
            return true;
        }

        if (body.Contains("ACL not found", StringComparison.Ordinal))
        {
            denial = new AclDenial { Kind = AclDenialKind.AclNotFound, StatusCode = statusCode };
            return true;
        }

        if (body.Contains("ACL support disabled", StringComparison.Ordinal))
        {
            denial = new AclDenial { Kind = AclDenialKind.AclDisabled, StatusCode = statusCode };
            return true;
        }

        if (body.Contains("Cannot resolve root ACL", StringComparison.Ordinal))
        {
            denial = new AclDenial { Kind = AclDenialKind.RootDenied, StatusCode = statusCode };
            return true;
        }

        if (statusCode == 500 && (body.Contains("Failed to parse ACL rules", StringComparison.Ordinal) || InvalidPolicyPattern().IsMatch(body)))
        {
            denial = new AclDenial { Kind = AclDenialKind.MalformedPolicy, StatusCode = statusCode, Cause = Redact(FirstLine(body.Trim())) };
            return true;
        }

        return false;
    }

    private static AclDenial ParsePermissionDenied(int statusCode, string rest)
    {
        if (rest.StartsWith(':'))
        {
            rest = rest[1..].TrimStart();
        }

        if (rest.Length == 0)
        {
            return new AclDenial { Kind = AclDenialKind.PermissionDenied, StatusCode = statusCode };
        }

        // Current acl/errors.go appends this sentence to every anonymous-token denial, named or not; it is not part of
        // the resource name.
        int tail = rest.IndexOf(AnonymousTail, StringComparison.Ordinal);
        if (tail >= 0)
        {
            rest = rest[..tail];
        }

        Match modern = LacksPermissionPattern().Match(rest);
        if (modern.Success)
        {
            string? accessor = modern.Groups["accessor"].Success ? modern.Groups["accessor"].Value : null;
            bool anonymous = modern.Groups["who"].Value == "anonymous token" || accessor == AnonymousAccessorId;
            (string? name, string? partition, string? ns) = SplitTarget(modern.Groups["target"].Success ? modern.Groups["target"].Value : null);
            return new AclDenial
            {
                Kind = AclDenialKind.PermissionDenied,
                StatusCode = statusCode,
                Resource = AclResources.Parse(modern.Groups["resource"].Value) is var r and not AclResource.Unknown ? r : null,
                Access = AclAccessLevels.TryParse(modern.Groups["level"].Value, out AclAccessLevel level) ? level : null,
                Name = name,
                Partition = partition,
                Namespace = ns,

                // Consul versions before the "anonymous token" wording named the anonymous token by its accessor ID;
                // both wordings give the same denial.
                AccessorId = anonymous ? AnonymousAccessorId : accessor,
                IsAnonymousToken = anonymous,
            };
        }

        Match old = MissingPattern().Match(rest);
        if (old.Success)
        {
            return new AclDenial
            {
                Kind = AclDenialKind.PermissionDenied,
                StatusCode = statusCode,
                Resource = AclResources.Parse(old.Groups["resource"].Value) is var r and not AclResource.Unknown ? r : null,
                Access = AclAccessLevels.TryParse(old.Groups["level"].Value, out AclAccessLevel level) ? level : null,
                Name = old.Groups["name"].Success ? old.Groups["name"].Value.Trim() : null,
            };
        }

        return new AclDenial { Kind = AclDenialKind.PermissionDenied, StatusCode = statusCode, Cause = Redact(FirstLine(rest)) };
    }

    // The Go API client's error (api/api.go: "Unexpected response code: %d (%s)") wraps the body in parentheses; a
    // body copied from it parses like the body itself.
    private static ReadOnlySpan<char> Unwrap(ReadOnlySpan<char> rest, bool wrapped)
    {
        rest = rest.Trim();
        return wrapped && rest.EndsWith(')') ? rest[..^1].TrimEnd() : rest;
    }

    // target is: "name"[ in partition "p"][ in namespace "n"] (the anonymous tail is already cut off).
    private static (string? Name, string? Partition, string? Namespace) SplitTarget(string? target)
    {
        if (target is null)
        {
            return (null, null, null);
        }

        target = target.TrimEnd();
        string? ns = TakeSuffix(ref target, " in namespace \"");
        string? partition = TakeSuffix(ref target, " in partition \"");
        string name = target.Length >= 2 && target[0] == '"' && target[^1] == '"' ? target[1..^1] : target;
        return (name, partition, ns);
    }

    private static string? TakeSuffix(ref string target, string marker)
    {
        int at = target.LastIndexOf(marker, StringComparison.Ordinal);
        if (at < 0 || target[^1] != '"')
        {
            return null;
        }

        string value = target[(at + marker.Length)..^1];
        target = target[..at];
        return value;
    }

    private static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        string line = newline >= 0 ? text[..newline] : text;
        return line.Length > 500 ? line[..500] + "..." : line;
    }

    // Free-form causes are not trusted to be free of secrets: anything shaped like a UUID is redacted.
    private static string Redact(string text) => UuidPattern().Replace(text, "<redacted>");

    [GeneratedRegex(@"^(?<who>anonymous token|provided token|token with AccessorID '(?<accessor>[^']*)') lacks permission '(?<resource>[a-z_]+):(?<level>[a-z]+)'(?: on (?<target>.*))?$", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex LacksPermissionPattern();

    // Consul 1.8's causes (agent/acl.go "Missing service:write on %s", "Missing node:write on %s";
    // agent/consul/operator_autopilot_endpoint.go "Missing operator:read permissions").
    [GeneratedRegex(@"^Missing (?<resource>[a-z_]+):(?<level>[a-z]+)(?: permissions)?(?: on (?<name>.+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex MissingPattern();

    [GeneratedRegex(@"Invalid (?:[a-z_]+ )?(?:intentions )?[Pp]olicy", RegexOptions.CultureInvariant)]
    private static partial Regex InvalidPolicyPattern();

    [GeneratedRegex(@"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", RegexOptions.CultureInvariant)]
    private static partial Regex UuidPattern();
}
