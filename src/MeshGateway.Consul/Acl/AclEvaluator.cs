namespace MeshGateway.Acl;

/// <summary>
/// Evaluates a token's policies against requirements with Consul's semantics (<c>acl/policy_merger.go</c>,
/// <c>acl/policy_authorizer.go</c>, <c>acl/policy.go</c>), then applies the default policy.
/// </summary>
/// <remarks>
/// <para>Merge: the policies' rules are merged per resource, form and segment in policy order; a value replaces the
/// one kept so far only if it takes precedence (<c>takesPrecedenceOver</c>: deny, then write, then list, then read),
/// compared as exact strings. Enforcement parses the kept value case-insensitively. So <c>WRITE</c> alone grants
/// write, <c>WRITE</c> with <c>read</c> ends as read, and a scalar <c>operator = "WRITE"</c> never replaces the initial
/// empty value and is dropped.</para>
/// <para>Lookup: an exact rule on the name wins; otherwise the longest matching prefix (<c>getPolicy</c>). "All" checks
/// (<c>allAllowed</c>) need the <c>""</c> prefix rule to allow and no rule to deny. <c>mesh</c> and <c>peering</c> fall
/// back to <c>operator</c> when unset. Service rules also grant intentions: their <c>intentions</c> value, else
/// <c>read</c> when the policy is exactly <c>read</c> or <c>write</c>, else <c>deny</c>. No applicable rule is <see cref="AclDecision.Default"/>, which the default policy
/// turns into allow or deny, except for <c>acl</c>: Consul's default-policy authorizers (<c>acl/static_authorizer.go</c>)
/// never grant <c>acl:read</c> or <c>acl:write</c>, so without an <c>acl</c> rule they are missing even under
/// <c>default_policy = "allow"</c>.</para>
/// <para>Reads of peer-imported data (<see cref="AclRequirement.Peer"/>, Consul 1.13+): allowed when any service rule grants
/// write (<c>ServiceWriteAny</c>), else decided as a read of all services (nodes); the result's
/// <see cref="AclRequirementResult.MissingPermission"/> names both alternatives.</para>
/// <para>Enterprise (Derived: the Enterprise authorizer is not public): nested blocks are consulted from the most specific
/// to the least (exact partition, then partition prefixes longest first; inside each, exact namespace, namespace
/// prefixes longest first, then the partition's own rules; then the policy's top-level namespace blocks and top-level
/// rules for the policy's own partition/namespace), the first non-default answer winning.</para>
/// </remarks>
public static class AclEvaluator
{
    /// <summary>Evaluates <paramref name="policies"/> (a token's policies, in the token's order) against <paramref name="requirements"/>.</summary>
    /// <param name="policies">The policies.</param>
    /// <param name="requirements">The requirements, for example <see cref="MeshGatewayAcl.Requirements"/>.</param>
    /// <param name="defaultPolicy">The agent's <c>acl.default_policy</c>.</param>
    /// <param name="options">Edition and policy location; defaults when <see langword="null"/>.</param>
    /// <returns>One result per requirement.</returns>
    public static AclEvaluationReport Evaluate(
        IReadOnlyList<AclPolicy> policies,
        IReadOnlyList<AclRequirement> requirements,
        AclDefaultPolicy defaultPolicy,
        AclEvaluationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(requirements);
        options ??= new AclEvaluationOptions();
        var merged = new Dictionary<AclRuleScope, MergedRules>();
        var notes = new List<string>();
        bool ignoredNested = false;
        foreach (AclPolicy policy in policies)
        {
            foreach (AclRule rule in policy.Rules)
            {
                if (options.Edition == ConsulEdition.Community && !rule.Scope.IsTopLevel)
                {
                    ignoredNested = true;
                    continue;
                }

                if (!merged.TryGetValue(rule.Scope, out MergedRules? set))
                {
                    set = new MergedRules();
                    merged.Add(rule.Scope, set);
                }

                set.Merge(rule, policy.Name);
            }
        }

        if (ignoredNested)
        {
            notes.Add("rules inside namespace/partition blocks were ignored: only Consul Enterprise reads them (Community edition's policy decoder drops them silently)");
        }

        var results = new List<AclRequirementResult>(requirements.Count);
        foreach (AclRequirement requirement in requirements)
        {
            results.Add(EvaluateOne(merged, requirement, defaultPolicy, options));
        }

        return new AclEvaluationReport(results, notes);
    }

    private static AclRequirementResult EvaluateOne(Dictionary<AclRuleScope, MergedRules> merged, AclRequirement requirement, AclDefaultPolicy defaultPolicy, AclEvaluationOptions options)
    {
        Verdict verdict = default;
        foreach (AclRuleScope scope in ScopesFor(merged, requirement, options))
        {
            verdict = merged[scope].Check(requirement);
            if (verdict.Decision != AclDecision.Default)
            {
                break;
            }
        }

        bool managementOnly = IsManagementOnly(requirement.Resource);
        bool satisfied = verdict.Decision == AclDecision.Allow
            || (verdict.Decision == AclDecision.Default && defaultPolicy == AclDefaultPolicy.Allow && !managementOnly);
        string explanation = requirement.Permission + ": " + (satisfied ? "satisfied" : "missing") + " - ";
        string? peeredCheck = requirement.IsPeeredRead ? PeeredAlternatives(requirement.Resource) : null;
        if (peeredCheck is not null)
        {
            explanation += "Consul (1.13+) allows reads of data imported from a peer with " + peeredCheck + ", not by a rule on the imported name; ";
        }

        if (verdict.Decision == AclDecision.Default && managementOnly)
        {
            explanation += "no rule applies, and Consul's default policy never grants " + requirement.Resource.ToConsulString()
                + " (only an acl rule or a management token does)";
        }
        else if (verdict.Decision == AclDecision.Default)
        {
            explanation += "no rule applies, so the default policy (" + (defaultPolicy == AclDefaultPolicy.Allow ? "allow" : "deny") + ") decides";
            if (requirement.Resource is AclResource.Mesh or AclResource.Peering)
            {
                explanation += " (neither " + requirement.Resource.ToConsulString() + " nor operator is set)";
            }
        }
        else
        {
            explanation += (satisfied ? "granted by " : verdict.Rule!.Access == AclAccessLevel.Deny ? "denied by " : "not granted by ")
                + Describe(verdict.Rule!, verdict.PolicyName!);
            if (verdict.FellBack)
            {
                explanation += " (" + requirement.Resource.ToConsulString() + " is not set, so Consul falls back to operator)";
            }
        }

        if (verdict.ServiceWriteAny)
        {
            explanation += " (service:write on some service: Consul treats the token as a local service's, which may read imported data)";
        }

        return new AclRequirementResult
        {
            Requirement = requirement,
            Satisfied = satisfied,
            Decision = verdict.Decision,
            DecidingRule = verdict.Rule,
            DecidingPolicy = verdict.PolicyName,
            FellBackToOperator = verdict.FellBack,
            MissingPermission = satisfied ? null : peeredCheck ?? requirement.Permission,
            GrantedByServiceWriteAny = verdict.ServiceWriteAny,
            Explanation = explanation,
        };
    }

    // acl/policy_authorizer.go ServiceRead/NodeRead with a peer in the context: ServiceWriteAny, else ServiceReadAll / NodeReadAll.
    private static string PeeredAlternatives(AclResource resource) =>
        "service:write on any service, or " + (resource == AclResource.Node ? "node:read on all nodes" : "service:read on all services");

    // acl/static_authorizer.go: the default-policy authorizers (allowAll for "allow", denyAll for "deny") answer every
    // check from defaultAllow except ACLRead, ACLWrite and Snapshot, which only allowManage (a management token)
    // grants. Snapshot has no rule keyword of its own (policy_authorizer.go checks it as acl = "write"), so acl is the
    // only resource with this exception; keyring, operator, mesh and peering follow defaultAllow.
    private static bool IsManagementOnly(AclResource resource) => resource == AclResource.Acl;

    private static string Describe(AclRule rule, string policyName)
    {
        string where = "policy \"" + policyName + "\"" + (rule.Line > 0 ? ", line " + rule.Line : string.Empty);
        return rule + " (" + where + ")";
    }

    private static IEnumerable<AclRuleScope> ScopesFor(Dictionary<AclRuleScope, MergedRules> merged, AclRequirement requirement, AclEvaluationOptions options)
    {
        var top = default(AclRuleScope);
        if (options.Edition == ConsulEdition.Community)
        {
            if (merged.ContainsKey(top))
            {
                yield return top;
            }

            yield break;
        }

        bool partitionScoped = requirement.Resource is AclResource.Mesh or AclResource.Peering or AclResource.Operator or AclResource.Acl or AclResource.Keyring;
        var partitions = new List<AclBlockSelector>();
        var namespacesByPartition = new Dictionary<(bool Nested, AclBlockSelector Partition), List<AclBlockSelector>>();
        foreach (AclRuleScope scope in merged.Keys)
        {
            if (scope.Partition is { } p && !partitions.Contains(p) && MatchesName(p, requirement.Partition))
            {
                partitions.Add(p);
            }

            if (scope.Namespace is { } n && MatchesName(n, requirement.Namespace))
            {
                var partitionKey = (scope.Partition.HasValue, scope.Partition.GetValueOrDefault());
                if (!namespacesByPartition.TryGetValue(partitionKey, out List<AclBlockSelector>? list))
                {
                    list = [];
                    namespacesByPartition.Add(partitionKey, list);
                }

                if (!list.Contains(n))
                {
                    list.Add(n);
                }
            }
        }

        partitions.Sort(MostSpecificFirst);
        foreach (List<AclBlockSelector> list in namespacesByPartition.Values)
        {
            list.Sort(MostSpecificFirst);
        }

        foreach (AclBlockSelector partition in partitions)
        {
            if (!partitionScoped && namespacesByPartition.TryGetValue((true, partition), out List<AclBlockSelector>? namespaces))
            {
                foreach (AclBlockSelector ns in namespaces)
                {
                    yield return new AclRuleScope(partition, ns);
                }
            }

            var own = new AclRuleScope(partition, null);
            if (merged.ContainsKey(own))
            {
                yield return own;
            }
        }

        if (!string.Equals(requirement.Partition, options.PolicyPartition, StringComparison.Ordinal))
        {
            yield break;
        }

        if (!partitionScoped && namespacesByPartition.TryGetValue((false, default), out List<AclBlockSelector>? topNamespaces))
        {
            foreach (AclBlockSelector ns in topNamespaces)
            {
                yield return new AclRuleScope(null, ns);
            }
        }

        if (merged.ContainsKey(top) && (partitionScoped || string.Equals(requirement.Namespace, options.PolicyNamespace, StringComparison.Ordinal)))
        {
            yield return top;
        }
    }

    // "*" (every namespace/partition) is matched only by the "" prefix, which applies to all names.
    private static bool MatchesName(AclBlockSelector selector, string name)
        => name == AclRequirement.Every ? selector.IsPrefix && selector.Name.Length == 0 : selector.Matches(name);

    private static int MostSpecificFirst(AclBlockSelector a, AclBlockSelector b)
    {
        if (a.IsPrefix != b.IsPrefix)
        {
            return a.IsPrefix ? 1 : -1;
        }

        return b.Name.Length.CompareTo(a.Name.Length);
    }

    /// <summary>Consul's <c>takesPrecedenceOver</c>: exact string comparison, so upper-case values never take precedence.</summary>
    internal static bool TakesPrecedenceOver(string a, string b)
    {
        if (a == "deny")
        {
            return true;
        }

        if (b == "deny")
        {
            return false;
        }

        if (a == "write")
        {
            return true;
        }

        if (b == "write")
        {
            return false;
        }

        if (a == "list")
        {
            return true;
        }

        if (b == "list")
        {
            return false;
        }

        return a == "read";
    }

    private readonly record struct Verdict(AclDecision Decision, AclRule? Rule, string? PolicyName, bool FellBack, bool ServiceWriteAny = false);

    private sealed class Kept(AclRule rule, string policyName, string? value = null)
    {
        public AclRule Rule { get; set; } = rule;

        public string PolicyName { get; set; } = policyName;

        /// <summary>The kept access value (the rule's policy, or a service rule's derived intentions value).</summary>
        public string Value { get; set; } = value ?? rule.Policy;

        // Service rules only: the merged intentions value and the rule that supplied it.
        public string Intentions { get; set; } = rule.Intentions ?? string.Empty;

        public AclRule? IntentionsRule { get; set; } = rule.Intentions is null ? null : rule;

        public string IntentionsPolicyName { get; set; } = policyName;

        public AclAccessLevel Access => AclAccessLevels.TryParse(Value, out AclAccessLevel level) ? level : AclAccessLevel.Unknown;
    }

    /// <summary>The merged rules of one scope (Consul's <c>policyRulesMergeContext</c> plus the authorizer's radix leaves).</summary>
    private sealed class MergedRules
    {
        private readonly Dictionary<AclResource, Kept> _scalars = [];
        private readonly Dictionary<(AclResource Resource, AclRuleKind Kind, string Segment), Kept> _named = [];
        private bool _intentionsAdded;

        public void Merge(AclRule rule, string policyName)
        {
            if (rule.Kind == AclRuleKind.Scalar)
            {
                // Scalars start from "" and only change when the new value takes precedence.
                string current = _scalars.TryGetValue(rule.Resource, out Kept? kept) ? kept.Value : string.Empty;
                if (TakesPrecedenceOver(rule.Policy, current))
                {
                    _scalars[rule.Resource] = new Kept(rule, policyName);
                }

                return;
            }

            var key = (rule.Resource, rule.Kind, rule.Segment);
            if (!_named.TryGetValue(key, out Kept? existing))
            {
                _named.Add(key, new Kept(rule, policyName));
                return;
            }

            if (TakesPrecedenceOver(rule.Policy, existing.Value))
            {
                existing.Rule = rule;
                existing.PolicyName = policyName;
                existing.Value = rule.Policy;
            }

            // Service rules merge their intentions value separately (policy_merger.go).
            if (TakesPrecedenceOver(rule.Intentions ?? string.Empty, existing.Intentions))
            {
                existing.Intentions = rule.Intentions!;
                existing.IntentionsRule = rule;
                existing.IntentionsPolicyName = policyName;
            }
        }

        public Verdict Check(AclRequirement requirement)
        {
            if (requirement.Resource == AclResource.Intention)
            {
                AddIntentionRules();
            }

            if (requirement.IsPeeredRead)
            {
                // acl/policy_authorizer.go: "When reading a service [node] imported from a peer we consider it to be allowed
                // when the request comes from a locally authenticated service (service:write on some name), or the requester
                // can read all services [nodes] in its local cluster."
                Verdict any = CheckAny(AclResource.Service, AclAccessLevel.Write);
                return any.Decision == AclDecision.Allow ? any with { ServiceWriteAny = true } : CheckAll(requirement.Resource, AclAccessLevel.Read);
            }

            return requirement.Target switch
            {
                AclTargetKind.Scalar => CheckScalar(requirement.Resource, requirement.Access),
                AclTargetKind.Named => CheckNamed(requirement.Resource, requirement.Name ?? string.Empty, requirement.Access),
                _ => CheckAll(requirement.Resource, requirement.Access),
            };
        }

        // policy_authorizer.go loadRules: each merged service rule also gives an intention rule on the same segment: its
        // intentions value, or read when the policy is exactly "read" or "write" (an exact-string switch, so "WRITE"
        // gives deny), else deny.
        private void AddIntentionRules()
        {
            if (_intentionsAdded)
            {
                return;
            }

            _intentionsAdded = true;
            foreach (KeyValuePair<(AclResource Resource, AclRuleKind Kind, string Segment), Kept> entry in _named.ToArray())
            {
                if (entry.Key.Resource != AclResource.Service)
                {
                    continue;
                }

                Kept service = entry.Value;
                Kept intention = service.Intentions.Length > 0
                    ? new Kept(service.IntentionsRule!, service.IntentionsPolicyName, service.Intentions)
                    : new Kept(service.Rule, service.PolicyName, service.Value is "read" or "write" ? "read" : "deny");
                _named[(AclResource.Intention, entry.Key.Kind, entry.Key.Segment)] = intention;
            }
        }

        private Verdict CheckScalar(AclResource resource, AclAccessLevel access)
        {
            if (_scalars.TryGetValue(resource, out Kept? kept))
            {
                return Enforce(kept, access, fellBack: false);
            }

            if (resource is AclResource.Mesh or AclResource.Peering && _scalars.TryGetValue(AclResource.Operator, out Kept? op))
            {
                return Enforce(op, access, fellBack: true);
            }

            return default;
        }

        // getPolicy: the exact rule on the name, else the longest prefix rule that is a prefix of the name.
        private Verdict CheckNamed(AclResource resource, string name, AclAccessLevel access)
        {
            if (_named.TryGetValue((resource, AclRuleKind.Exact, name), out Kept? exact))
            {
                return Enforce(exact, access, fellBack: false);
            }

            Kept? best = null;
            foreach (KeyValuePair<(AclResource Resource, AclRuleKind Kind, string Segment), Kept> entry in _named)
            {
                if (entry.Key.Resource == resource && entry.Key.Kind == AclRuleKind.Prefix
                    && name.StartsWith(entry.Key.Segment, StringComparison.Ordinal)
                    && (best is null || entry.Key.Segment.Length > best.Rule.Segment.Length))
                {
                    best = entry.Value;
                }
            }

            return best is null ? default : Enforce(best, access, fellBack: false);
        }

        // anyAllowed (ServiceWriteAny): the "" prefix rule allowing decides at once; otherwise any leaf that allows (its prefix
        // rule, else its exact rule) allows; otherwise the "" prefix rule's answer, or default.
        private Verdict CheckAny(AclResource resource, AclAccessLevel access)
        {
            Verdict decision = default;
            if (_named.TryGetValue((resource, AclRuleKind.Prefix, string.Empty), out Kept? root))
            {
                decision = Enforce(root, access, fellBack: false);
                if (decision.Decision == AclDecision.Allow)
                {
                    return decision;
                }
            }

            foreach (string segment in SegmentsOf(resource))
            {
                _named.TryGetValue((resource, AclRuleKind.Prefix, segment), out Kept? prefix);
                _named.TryGetValue((resource, AclRuleKind.Exact, segment), out Kept? exact);
                Verdict leaf = prefix is null ? default : Enforce(prefix, access, fellBack: false);
                if (leaf.Decision != AclDecision.Allow && exact is not null)
                {
                    leaf = Enforce(exact, access, fellBack: false);
                }

                if (leaf.Decision == AclDecision.Allow)
                {
                    return leaf;
                }
            }

            return decision;
        }

        /// <summary>Every name that has a rule of <paramref name="resource"/>, in order.</summary>
        private SortedSet<string> SegmentsOf(AclResource resource)
        {
            var segments = new SortedSet<string>(StringComparer.Ordinal);
            foreach ((AclResource Resource, AclRuleKind Kind, string Segment) key in _named.Keys)
            {
                if (key.Resource == resource)
                {
                    segments.Add(key.Segment);
                }
            }

            return segments;
        }

        // allAllowed: the "" prefix rule must allow, and no leaf may deny (a leaf's exact rule overrides its prefix rule
        // unless the prefix rule denies).
        private Verdict CheckAll(AclResource resource, AclAccessLevel access)
        {
            Verdict decision = default;
            _named.TryGetValue((resource, AclRuleKind.Prefix, string.Empty), out Kept? root);
            if (root is not null)
            {
                decision = Enforce(root, access, fellBack: false);
                if (decision.Decision == AclDecision.Deny)
                {
                    return decision;
                }
            }

            foreach (string segment in SegmentsOf(resource))
            {
                _named.TryGetValue((resource, AclRuleKind.Prefix, segment), out Kept? prefix);
                _named.TryGetValue((resource, AclRuleKind.Exact, segment), out Kept? exact);
                Verdict prefixDecision = prefix is null ? default : Enforce(prefix, access, fellBack: false);
                Verdict leaf = prefixDecision;
                if (prefixDecision.Decision != AclDecision.Deny && exact is not null)
                {
                    Verdict exactDecision = Enforce(exact, access, fellBack: false);
                    if (exactDecision.Decision != AclDecision.Default)
                    {
                        leaf = exactDecision;
                    }
                }

                if (leaf.Decision == AclDecision.Deny)
                {
                    return leaf;
                }
            }

            return decision;
        }

        private static Verdict Enforce(Kept kept, AclAccessLevel required, bool fellBack)
        {
            AclAccessLevel granted = kept.Access;
            if (granted == AclAccessLevel.Unknown)
            {
                return default;
            }

            AclDecision decision = granted.Grants(required) ? AclDecision.Allow : AclDecision.Deny;
            return new Verdict(decision, kept.Rule, kept.PolicyName, fellBack);
        }
    }
}
