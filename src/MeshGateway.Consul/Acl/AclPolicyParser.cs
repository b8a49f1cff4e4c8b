namespace MeshGateway.Acl;

/// <summary>
/// Parses Consul ACL policy rules (HCL or JSON) into <see cref="AclPolicy"/>, validating them as Consul's
/// <c>acl/policy.go</c> (<c>PolicyRules.Validate</c>) does and more strictly where Consul silently ignores mistakes.
/// </summary>
/// <remarks>
/// <para>Accepted: every resource Consul knows (<c>acl</c>, <c>agent[_prefix]</c>, <c>event[_prefix]</c>,
/// <c>identity[_prefix]</c>, <c>key[_prefix]</c>, <c>keyring</c>, <c>mesh</c>, <c>node[_prefix]</c>, <c>operator</c>,
/// <c>peering</c>, <c>query[_prefix]</c>, <c>service[_prefix]</c>, <c>session[_prefix]</c>) and the Enterprise
/// <c>partition[_prefix]</c> / <c>namespace[_prefix]</c> nesting. Access values are validated case-insensitively, as
/// Consul's <c>isPolicyValid</c> does (<c>WRITE</c> is accepted; <c>list</c> only on key rules).</para>
/// <para>Stricter than Consul: HCL v1 ignores unknown keys, so Consul stores a policy with a misspelt resource and it
/// grants nothing (hashicorp/consul#11352); here that is an error unless <see cref="AclParseOptions.UnknownResources"/>
/// says to ignore it. Errors carry 1-based line and column. Parsing never throws on bad input.</para>
/// </remarks>
public static class AclPolicyParser
{
    /// <summary>The longest rules text accepted (Consul has no documented limit; 1 MiB is far above any real policy).</summary>
    public const int MaxRulesLength = 1 << 20;

    /// <summary>Parses rules, detecting the format as HCL v1 does (JSON when the first non-blank character is <c>{</c>).</summary>
    /// <param name="rules">The rules text (a policy's <c>Rules</c> field).</param>
    /// <param name="policyName">The policy's name, kept for reports.</param>
    /// <param name="format">The syntax, or <see cref="AclRulesFormat.Auto"/>.</param>
    /// <param name="options">Parsing options; <see cref="AclParseOptions.Default"/> when <see langword="null"/>.</param>
    /// <returns>The policy, or the first located error.</returns>
    public static AclParseResult Parse(string rules, string policyName = "policy", AclRulesFormat format = AclRulesFormat.Auto, AclParseOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(policyName);
        options ??= AclParseOptions.Default;
        if (rules.Length > MaxRulesLength)
        {
            return new AclParseResult(null, new AclParseError(AclParseErrorKind.Syntax, 1, 1, "rules are longer than " + MaxRulesLength + " characters"));
        }

        if (format == AclRulesFormat.Auto)
        {
            format = rules.AsSpan().TrimStart().StartsWith('{') ? AclRulesFormat.Json : AclRulesFormat.Hcl;
        }

        try
        {
            List<AclSyntaxNode> nodes = format == AclRulesFormat.Json ? AclJsonReader.Read(rules) : AclHclReader.Read(rules);
            var interpreter = new AclRuleInterpreter(options);
            interpreter.ReadBody(nodes, default, AclRuleInterpreter.Level.TopLevel);
            return new AclParseResult(new AclPolicy(policyName, interpreter.Rules, interpreter.Warnings), null);
        }
        catch (AclParseException e)
        {
            return new AclParseResult(null, e.Error);
        }
    }
}

/// <summary>Turns the syntax tree into rules, validating keywords, shapes, nesting and access values.</summary>
internal sealed class AclRuleInterpreter(AclParseOptions options)
{
    internal enum Level
    {
        TopLevel,
        Partition,
        Namespace,
    }

    public List<AclRule> Rules { get; } = [];

    public List<AclParseError> Warnings { get; } = [];

    public void ReadBody(List<AclSyntaxNode> nodes, AclRuleScope scope, Level level)
    {
        var seenScalars = new Dictionary<string, AclSyntaxNode>(StringComparer.Ordinal);
        foreach (AclSyntaxNode node in nodes)
        {
            string key = node.Key;
            bool prefix = key.EndsWith("_prefix", StringComparison.Ordinal);
            string baseName = prefix ? key[..^"_prefix".Length] : key;
            AclResource resource = AclResources.Parse(baseName);
            if (resource is AclResource.Namespace or AclResource.Partition)
            {
                ReadNesting(node, resource, prefix, scope, level);
                continue;
            }

            if (resource is AclResource.Unknown or AclResource.Intention || (prefix && resource.IsScalar()))
            {
                Unknown(node, AclParseErrorKind.UnknownResource, "unknown ACL resource '" + key + "'" + Suggest(key)
                    + "; Consul ignores unknown keys, so this rule would grant nothing");
                continue;
            }

            if (resource.IsScalar())
            {
                ReadScalar(node, resource, scope, level, seenScalars);
            }
            else
            {
                ReadSegmented(node, resource, prefix, scope);
            }
        }
    }

    private void ReadNesting(AclSyntaxNode node, AclResource resource, bool prefix, AclRuleScope scope, Level level)
    {
        string keyword = node.Key;
        if (resource == AclResource.Partition && level != Level.TopLevel)
        {
            throw Error(node, AclParseErrorKind.InvalidNesting, "'" + keyword + "' is only allowed at the top level of a policy, not inside "
                + (level == Level.Partition ? "a partition" : "a namespace") + " block");
        }

        if (resource == AclResource.Namespace && level == Level.Namespace)
        {
            throw Error(node, AclParseErrorKind.InvalidNesting, "'" + keyword + "' cannot be nested inside another namespace block");
        }

        string label = RequireSingleLabel(node, keyword);
        var selector = new AclBlockSelector(label, prefix);
        AclRuleScope inner = resource == AclResource.Partition ? scope with { Partition = selector } : scope with { Namespace = selector };
        ReadBody(node.Body, inner, resource == AclResource.Partition ? Level.Partition : Level.Namespace);
    }

    private void ReadScalar(AclSyntaxNode node, AclResource resource, AclRuleScope scope, Level level, Dictionary<string, AclSyntaxNode> seen)
    {
        string keyword = node.Key;
        if (node.Kind == AclSyntaxKind.Block)
        {
            throw Error(node, AclParseErrorKind.InvalidShape, "'" + keyword + "' takes a value, not a block: write " + keyword + " = \"read\"");
        }

        // Derived (Enterprise docs): operator and keyring are cluster-wide, mesh and peering are partition-scoped;
        // none of them can be granted per namespace.
        if (level == Level.Namespace && resource is AclResource.Operator or AclResource.Keyring or AclResource.Mesh or AclResource.Peering)
        {
            throw Error(node, AclParseErrorKind.InvalidNesting, "'" + keyword + "' is not allowed inside a namespace block");
        }

        if (level == Level.Partition && resource is AclResource.Operator or AclResource.Keyring)
        {
            throw Error(node, AclParseErrorKind.InvalidNesting, "'" + keyword + "' is not allowed inside a partition block");
        }

        string value = RequireString(node, keyword);
        if (seen.TryGetValue(keyword, out AclSyntaxNode? first))
        {
            throw Error(node, AclParseErrorKind.DuplicateAttribute, "the argument '" + keyword + "' was already set at line " + first.Line
                + ", column " + first.Column + "; each argument can only be defined once");
        }

        seen.Add(keyword, node);

        // Consul validates scalars only when non-empty ("this one is allowed to be empty").
        if (value.Length > 0)
        {
            ValidateAccess(node, value, "Invalid " + keyword + " policy", allowList: false);
        }

        Rules.Add(new AclRule
        {
            Resource = resource,
            Kind = AclRuleKind.Scalar,
            Policy = value,
            Scope = scope,
            Line = node.Line,
            Column = node.Column,
        });
    }

    private void ReadSegmented(AclSyntaxNode node, AclResource resource, bool prefix, AclRuleScope scope)
    {
        string keyword = node.Key;
        if (node.Kind != AclSyntaxKind.Block)
        {
            throw Error(node, AclParseErrorKind.InvalidShape, "'" + keyword + "' is a block with a name: write " + keyword + " \"<name>\" { policy = \"read\" }");
        }

        string segment = RequireSingleLabel(node, keyword);
        string? policy = null;
        string? intentions = null;
        AclSyntaxNode? policyNode = null;
        AclSyntaxNode? intentionsNode = null;
        bool allowsIntentions = resource is AclResource.Service or AclResource.Identity;
        foreach (AclSyntaxNode attribute in node.Body)
        {
            if (attribute.Key == "policy")
            {
                if (policyNode is not null)
                {
                    throw Error(attribute, AclParseErrorKind.DuplicateAttribute, "the argument 'policy' was already set at line " + policyNode.Line + "; each argument can only be defined once");
                }

                policyNode = attribute;
                policy = RequireString(attribute, "policy");
            }
            else if (attribute.Key == "intentions" && allowsIntentions)
            {
                if (intentionsNode is not null)
                {
                    throw Error(attribute, AclParseErrorKind.DuplicateAttribute, "the argument 'intentions' was already set at line " + intentionsNode.Line + "; each argument can only be defined once");
                }

                intentionsNode = attribute;
                intentions = RequireString(attribute, "intentions");
            }
            else
            {
                string what = attribute.Kind == AclSyntaxKind.Block ? "block" : "attribute";
                Unknown(attribute, AclParseErrorKind.UnknownAttribute, "unknown " + what + " '" + attribute.Key + "' in " + keyword + " \"" + segment
                    + "\": a rule takes policy = \"...\"" + (allowsIntentions ? " and optionally intentions = \"...\"" : string.Empty));
            }
        }

        if (policyNode is null)
        {
            throw Error(node, AclParseErrorKind.MissingPolicy, "Invalid " + keyword + " policy: " + keyword + " \"" + segment + "\" has no policy = \"...\"");
        }

        ValidateAccess(policyNode, policy!, "Invalid " + keyword + " policy", allowList: resource == AclResource.Key);
        if (intentionsNode is not null && intentions!.Length > 0)
        {
            ValidateAccess(intentionsNode, intentions, "Invalid " + keyword + " intentions policy", allowList: false);
        }

        Rules.Add(new AclRule
        {
            Resource = resource,
            Kind = prefix ? AclRuleKind.Prefix : AclRuleKind.Exact,
            Segment = segment,
            Policy = policy!,
            Intentions = intentions is { Length: > 0 } ? intentions : null,
            Scope = scope,
            Line = node.Line,
            Column = node.Column,
        });
    }

    private static void ValidateAccess(AclSyntaxNode node, string value, string what, bool allowList)
    {
        if (!AclAccessLevels.TryParse(value, out AclAccessLevel level))
        {
            throw Error(node, AclParseErrorKind.InvalidAccess, what + ": \"" + value + "\" is not a valid access level (read, write, deny"
                + (allowList ? ", list" : string.Empty) + ")");
        }

        if (level == AclAccessLevel.List && !allowList)
        {
            throw Error(node, AclParseErrorKind.InvalidAccess, what + ": \"" + value + "\" is only valid on key and key_prefix rules");
        }
    }

    private static string RequireSingleLabel(AclSyntaxNode node, string keyword)
    {
        if (node.Kind != AclSyntaxKind.Block)
        {
            throw Error(node, AclParseErrorKind.InvalidShape, "'" + keyword + "' is a block with a name: write " + keyword + " \"<name>\" { ... }");
        }

        if (node.Labels.Count != 1)
        {
            throw Error(node, AclParseErrorKind.InvalidShape, node.Labels.Count == 0
                ? "'" + keyword + "' needs a name: write " + keyword + " \"<name>\" { ... } (use \"\" with " + keyword.Replace("_prefix", string.Empty, StringComparison.Ordinal) + "_prefix for all)"
                : "'" + keyword + "' takes one name, found " + node.Labels.Count);
        }

        return node.Labels[0];
    }

    private static string RequireString(AclSyntaxNode node, string keyword)
    {
        if (node.Kind != AclSyntaxKind.StringValue)
        {
            throw Error(node, AclParseErrorKind.InvalidShape, "'" + keyword + "' must be a quoted string such as \"read\"");
        }

        return node.Value!;
    }

    private void Unknown(AclSyntaxNode node, AclParseErrorKind kind, string message)
    {
        (int line, int column) = node.KeyPosition.Line > 0 ? node.KeyPosition : (node.Line, node.Column);
        var error = new AclParseError(kind, line, column, message);
        if (options.UnknownResources == AclUnknownResourceHandling.Reject)
        {
            throw new AclParseException(error);
        }

        Warnings.Add(error);
    }

    private static string Suggest(string key)
    {
        string[] known =
        [
            "acl", "agent", "agent_prefix", "event", "event_prefix", "identity", "identity_prefix", "key", "key_prefix", "keyring",
            "mesh", "node", "node_prefix", "operator", "peering", "query", "query_prefix", "service", "service_prefix", "session",
            "session_prefix", "namespace", "namespace_prefix", "partition", "partition_prefix",
        ];
        foreach (string candidate in known)
        {
            if (string.Equals(candidate, key, StringComparison.OrdinalIgnoreCase) || Distance(candidate, key) <= 2)
            {
                return " (did you mean '" + candidate + "'?)";
            }
        }

        return string.Empty;
    }

    private static int Distance(string a, string b)
    {
        if (Math.Abs(a.Length - b.Length) > 2 || b.Length > 64)
        {
            return int.MaxValue;
        }

        int[] previous = new int[b.Length + 1];
        int[] current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static AclParseException Error(AclSyntaxNode node, AclParseErrorKind kind, string message)
        => new(new AclParseError(kind, node.Line, node.Column, message));
}
