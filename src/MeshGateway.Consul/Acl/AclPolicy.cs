namespace MeshGateway.Acl;

/// <summary>The syntax a policy's rules were written in.</summary>
public enum AclRulesFormat
{
    /// <summary>Decide from the text: JSON when the first non-blank character is <c>{</c>, as HCL v1 decides.</summary>
    Auto = 0,

    /// <summary>HCL (version 1, which Consul uses for ACL rules).</summary>
    Hcl,

    /// <summary>JSON.</summary>
    Json,
}

/// <summary>A parsed Consul ACL policy: its name (for reports) and its rules in source order.</summary>
public sealed class AclPolicy
{
    /// <summary>Creates a policy from rules built in code or parsed.</summary>
    /// <param name="name">The policy's name, used in reports (for example <c>mgw-register</c>).</param>
    /// <param name="rules">The rules in source order.</param>
    /// <param name="warnings">Non-fatal findings of the parser (for example ignored unknown resources).</param>
    public AclPolicy(string name, IReadOnlyList<AclRule> rules, IReadOnlyList<AclParseError>? warnings = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(rules);
        Name = name;
        Rules = rules;
        Warnings = warnings ?? [];
    }

    /// <summary>The policy's name.</summary>
    public string Name { get; }

    /// <summary>The rules in source order, including resources this library keeps but does not evaluate (key, session, ...).</summary>
    public IReadOnlyList<AclRule> Rules { get; }

    /// <summary>Non-fatal findings of the parser.</summary>
    public IReadOnlyList<AclParseError> Warnings { get; }

    /// <summary>Parses HCL or JSON rules; see <see cref="AclPolicyParser.Parse(string, string, AclRulesFormat, AclParseOptions?)"/>.</summary>
    /// <param name="rules">The rules text.</param>
    /// <param name="name">The policy's name, used in reports.</param>
    /// <returns>The policy.</returns>
    /// <exception cref="FormatException">The rules are malformed; the message names the line and column.</exception>
    public static AclPolicy Parse(string rules, string name = "policy")
    {
        AclParseResult result = AclPolicyParser.Parse(rules, name);
        return result.Policy ?? throw new FormatException(result.Error!.ToString());
    }
}
