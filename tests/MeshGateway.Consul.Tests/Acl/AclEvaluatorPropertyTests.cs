using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

/// <summary>FsCheck properties of the evaluator.</summary>
public sealed class AclEvaluatorPropertyTests
{
    // Small alphabets so that rules collide on segments and prefixes often.
    private static readonly string[] s_segments = ["", "m", "mesh-", "mesh-gateway", "w", "web", "web2"];

    // "WRITE" exercises the exact-string merge quirk; it is the only non-canonical spelling, because two different
    // non-canonical spellings (say "WRITE" and "DENY") make Consul's own merge order-dependent (first one kept).
    private static readonly string[] s_values = ["read", "write", "deny", "WRITE"];

    private static readonly Gen<AclRule> s_rule =
        Gen.Frequency(
            (3, from resource in Gen.Elements(AclResource.Service, AclResource.Node, AclResource.Agent)
                from kind in Gen.Elements(AclRuleKind.Exact, AclRuleKind.Prefix)
                from segment in Gen.Elements(s_segments)
                from value in Gen.Elements(s_values)
                select new AclRule { Resource = resource, Kind = kind, Segment = segment, Policy = value }),
            (1, from resource in Gen.Elements(AclResource.Mesh, AclResource.Peering, AclResource.Operator)
                from value in Gen.Elements(s_values)
                select new AclRule { Resource = resource, Kind = AclRuleKind.Scalar, Policy = value }));

    private static readonly Gen<AclPolicy[]> s_policies =
        from count in Gen.Choose(0, 4)
        from rules in s_rule.ArrayOf().Select(r => r.Take(6).ToArray()).ArrayOf().Select(p => p.Take(count).ToArray())
        select rules.Select((r, i) => new AclPolicy("p" + i, r)).ToArray();

    private static readonly AclRequirement[] s_requirements =
    [
        .. MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()),
        .. s_segments.SelectMany(name => new[] { AclAccessLevel.Read, AclAccessLevel.Write }.SelectMany(access => new[] { AclResource.Service, AclResource.Node, AclResource.Agent, AclResource.Intention }
            .Select(resource => new AclRequirement { Resource = resource, Access = access, Target = AclTargetKind.Named, Name = name, Reason = "property" }))),
        new AclRequirement { Resource = AclResource.Operator, Access = AclAccessLevel.Write, Reason = "property" },
        new AclRequirement { Resource = AclResource.Peering, Access = AclAccessLevel.Write, Reason = "property" },
        new AclRequirement { Resource = AclResource.Agent, Access = AclAccessLevel.Write, Target = AclTargetKind.All, Reason = "property" },
        new AclRequirement { Resource = AclResource.Service, Access = AclAccessLevel.Read, Target = AclTargetKind.Named, Name = "web", Peer = "p", Reason = "property" },
        new AclRequirement { Resource = AclResource.Node, Access = AclAccessLevel.Read, Target = AclTargetKind.Named, Name = "m", Peer = "p", Reason = "property" },
    ];

    private static (bool, AclDecision)[] Verdicts(AclPolicy[] policies, AclDefaultPolicy defaultPolicy)
        => AclEvaluator.Evaluate(policies, s_requirements, defaultPolicy).Results.Select(r => (r.Satisfied, r.Decision)).ToArray();

    [Property(MaxTest = 400)]
    public Property Evaluate_AnyPolicyOrder_SameVerdicts()
    {
        return Prop.ForAll(
            (from policies in s_policies
             from keys in Gen.Choose(0, 1000).ArrayOf()
             from defaultPolicy in Gen.Elements(AclDefaultPolicy.Allow, AclDefaultPolicy.Deny)
             select (policies, keys, defaultPolicy)).ToArbitrary(),
            t =>
            {
                AclPolicy[] shuffled = t.policies.Select((p, i) => (p, key: i < t.keys.Length ? t.keys[i] : -i)).OrderBy(x => x.key).Select(x => x.p).ToArray();
                return Verdicts(t.policies, t.defaultPolicy).SequenceEqual(Verdicts(shuffled, t.defaultPolicy));
            });
    }

    [Property(MaxTest = 400)]
    public Property Evaluate_AddingADeny_NeverSatisfiesAMissingPermission()
    {
        Gen<AclRule> denyRule = s_rule.Select(r => r with { Policy = "deny" });
        return Prop.ForAll(
            (from policies in s_policies
             from deny in denyRule
             from position in Gen.Choose(0, 4)
             from ownPolicy in Gen.Elements(true, false)
             from defaultPolicy in Gen.Elements(AclDefaultPolicy.Allow, AclDefaultPolicy.Deny)
             select (policies, deny, position, ownPolicy, defaultPolicy)).ToArbitrary(),
            t =>
            {
                List<AclPolicy> with = [.. t.policies];
                int at = Math.Min(t.position, with.Count);
                if (t.ownPolicy || with.Count == 0)
                {
                    with.Insert(at, new AclPolicy("deny", [t.deny]));
                }
                else
                {
                    AclPolicy target = with[Math.Min(at, with.Count - 1)];
                    with[with.IndexOf(target)] = new AclPolicy(target.Name, [.. target.Rules, t.deny]);
                }

                (bool, AclDecision)[] before = Verdicts(t.policies, t.defaultPolicy);
                (bool, AclDecision)[] after = Verdicts([.. with], t.defaultPolicy);
                return before.Zip(after).All(pair => pair.First.Item1 || !pair.Second.Item1);
            });
    }
}
