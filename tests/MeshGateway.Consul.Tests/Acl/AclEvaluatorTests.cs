using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

public sealed class AclEvaluatorTests
{
    private static AclRequirement ServiceWrite(string name = "mesh-gateway")
        => new() { Resource = AclResource.Service, Access = AclAccessLevel.Write, Target = AclTargetKind.Named, Name = name, Reason = "test" };

    private static AclRequirement ServiceRead(string name)
        => new() { Resource = AclResource.Service, Access = AclAccessLevel.Read, Target = AclTargetKind.Named, Name = name, Reason = "test" };

    private static AclRequirement ReadAll(AclResource resource)
        => new() { Resource = resource, Access = AclAccessLevel.Read, Target = AclTargetKind.All, Reason = "test" };

    private static AclRequirement Scalar(AclResource resource, AclAccessLevel access)
        => new() { Resource = resource, Access = access, Reason = "test" };

    private static AclRequirement Intention(AclAccessLevel access, string name = "web")
        => new() { Resource = AclResource.Intention, Access = access, Target = AclTargetKind.Named, Name = name, Reason = "test" };

    private static AclRequirementResult EvaluateOne(AclRequirement requirement, AclDefaultPolicy defaultPolicy, params string[] policies)
    {
        AclPolicy[] parsed = policies.Select((text, i) => AclPolicyParserTests.ParseOk(text, "p" + (i + 1))).ToArray();
        return Assert.Single(AclEvaluator.Evaluate(parsed, [requirement], defaultPolicy).Results);
    }

    // One row per rule of Consul's semantics (acl/policy_authorizer.go, acl/policy_merger.go). Each row: the requirement,
    // the default policy, the policies in token order, whether satisfied, the policies' own decision, and the deciding
    // rule as "policy:line" (or null for the default policy).
    public static TheoryData<string, AclRequirement, AclDefaultPolicy, string[], bool, AclDecision, string?> Semantics => new()
    {
        { "exact beats prefix", ServiceWrite("web"), AclDefaultPolicy.Allow,
          ["service_prefix \"\" { policy = \"write\" }\nservice \"web\" { policy = \"deny\" }"], false, AclDecision.Deny, "p1:2" },
        { "exact beats a longer-looking prefix", ServiceWrite("web"), AclDefaultPolicy.Deny,
          ["service \"web\" { policy = \"write\" }\nservice_prefix \"web\" { policy = \"deny\" }"], true, AclDecision.Allow, "p1:1" },
        { "exact applies to that name only", ServiceWrite("web2"), AclDefaultPolicy.Deny,
          ["service \"web\" { policy = \"write\" }"], false, AclDecision.Default, null },
        { "longest prefix wins (write)", ServiceWrite("mesh-gateway"), AclDefaultPolicy.Deny,
          ["service_prefix \"\" { policy = \"read\" }\nservice_prefix \"mesh-\" { policy = \"write\" }\nservice_prefix \"x\" { policy = \"deny\" }"], true, AclDecision.Allow, "p1:2" },
        { "longest prefix wins (deny)", ServiceWrite("mesh-gateway"), AclDefaultPolicy.Allow,
          ["service_prefix \"mesh\" { policy = \"write\" }", "service_prefix \"mesh-gate\" { policy = \"deny\" }"], false, AclDecision.Deny, "p2:1" },
        { "empty prefix matches every name", ServiceRead("anything"), AclDefaultPolicy.Deny,
          ["service_prefix \"\" { policy = \"read\" }"], true, AclDecision.Allow, "p1:1" },
        { "read is an explicit answer for a write check, even with default allow", ServiceWrite(), AclDefaultPolicy.Allow,
          ["service \"mesh-gateway\" { policy = \"read\" }"], false, AclDecision.Deny, "p1:1" },
        { "write grants read", ServiceRead("web"), AclDefaultPolicy.Deny,
          ["service \"web\" { policy = \"write\" }"], true, AclDecision.Allow, "p1:1" },
        { "merge: deny beats write", ServiceWrite(), AclDefaultPolicy.Allow,
          ["service \"mesh-gateway\" { policy = \"write\" }", "service \"mesh-gateway\" { policy = \"deny\" }"], false, AclDecision.Deny, "p2:1" },
        { "merge: write beats read (read first)", ServiceWrite(), AclDefaultPolicy.Deny,
          ["service \"mesh-gateway\" { policy = \"read\" }", "service \"mesh-gateway\" { policy = \"write\" }"], true, AclDecision.Allow, "p2:1" },
        { "merge: write beats read (write first)", ServiceWrite(), AclDefaultPolicy.Deny,
          ["service \"mesh-gateway\" { policy = \"write\" }", "service \"mesh-gateway\" { policy = \"read\" }"], true, AclDecision.Allow, "p1:1" },
        { "merge: same segment twice in one policy", ServiceWrite(), AclDefaultPolicy.Allow,
          ["service \"mesh-gateway\" { policy = \"write\" }\nservice \"mesh-gateway\" { policy = \"deny\" }"], false, AclDecision.Deny, "p1:2" },
        { "merge: exact and prefix of one segment are separate", ServiceWrite("web"), AclDefaultPolicy.Deny,
          ["service_prefix \"web\" { policy = \"deny\" }", "service \"web\" { policy = \"write\" }"], true, AclDecision.Allow, "p2:1" },
        { "mesh set: no fallback to operator", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Allow,
          ["mesh = \"read\"\noperator = \"write\""], false, AclDecision.Deny, "p1:1" },
        { "mesh unset: falls back to operator write", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["operator = \"write\""], true, AclDecision.Allow, "p1:1" },
        { "mesh unset: falls back to operator read", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Allow,
          ["operator = \"read\""], false, AclDecision.Deny, "p1:1" },
        { "peering unset: falls back to operator", Scalar(AclResource.Peering, AclAccessLevel.Read), AclDefaultPolicy.Deny,
          ["operator = \"read\""], true, AclDecision.Allow, "p1:1" },
        { "peering deny beats operator write", Scalar(AclResource.Peering, AclAccessLevel.Read), AclDefaultPolicy.Allow,
          ["operator = \"write\"", "peering = \"deny\""], false, AclDecision.Deny, "p2:1" },
        { "scalar merge: write beats read across policies", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["mesh = \"read\"", "mesh = \"write\""], true, AclDecision.Allow, "p2:1" },
        { "no rule, default deny", ServiceWrite(), AclDefaultPolicy.Deny, ["node_prefix \"\" { policy = \"write\" }"], false, AclDecision.Default, null },
        { "no rule, default allow", ServiceWrite(), AclDefaultPolicy.Allow, ["node_prefix \"\" { policy = \"write\" }"], true, AclDecision.Default, null },
        { "no policies, default deny", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny, [], false, AclDecision.Default, null },
        { "no policies, default allow", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true, AclDecision.Default, null },
        { "all: empty prefix read allows", ReadAll(AclResource.Service), AclDefaultPolicy.Deny,
          ["service_prefix \"\" { policy = \"read\" }\nservice \"web\" { policy = \"write\" }"], true, AclDecision.Allow, "p1:1" },
        { "all: a more specific deny denies", ReadAll(AclResource.Service), AclDefaultPolicy.Allow,
          ["service_prefix \"\" { policy = \"write\" }\nservice \"secret\" { policy = \"deny\" }"], false, AclDecision.Deny, "p1:2" },
        { "all: a more specific prefix deny denies", ReadAll(AclResource.Node), AclDefaultPolicy.Allow,
          ["node_prefix \"\" { policy = \"read\" }", "node_prefix \"db-\" { policy = \"deny\" }"], false, AclDecision.Deny, "p2:1" },
        { "all: empty prefix deny denies", ReadAll(AclResource.Node), AclDefaultPolicy.Allow,
          ["node_prefix \"\" { policy = \"deny\" }\nnode \"a\" { policy = \"write\" }"], false, AclDecision.Deny, "p1:1" },
        { "all: no empty prefix is default even if every rule allows", ReadAll(AclResource.Service), AclDefaultPolicy.Deny,
          ["service_prefix \"a\" { policy = \"write\" }"], false, AclDecision.Default, null },
        { "all: exact empty-name rule alone is not the prefix", ReadAll(AclResource.Service), AclDefaultPolicy.Deny,
          ["service \"\" { policy = \"read\" }"], false, AclDecision.Default, null },
        { "all: read satisfies a read-all", ReadAll(AclResource.Agent), AclDefaultPolicy.Deny,
          ["agent_prefix \"\" { policy = \"read\" }"], true, AclDecision.Allow, "p1:1" },
        { "case: WRITE alone grants write", ServiceWrite(), AclDefaultPolicy.Deny,
          ["service \"mesh-gateway\" { policy = \"WRITE\" }"], true, AclDecision.Allow, "p1:1" },
        { "case: WRITE plus read ends as read (WRITE first)", ServiceWrite(), AclDefaultPolicy.Allow,
          ["service \"mesh-gateway\" { policy = \"WRITE\" }", "service \"mesh-gateway\" { policy = \"read\" }"], false, AclDecision.Deny, "p2:1" },
        { "case: WRITE plus read ends as read (read first)", ServiceWrite(), AclDefaultPolicy.Allow,
          ["service \"mesh-gateway\" { policy = \"read\" }", "service \"mesh-gateway\" { policy = \"WRITE\" }"], false, AclDecision.Deny, "p1:1" },
        { "case: upper-case scalar is dropped", Scalar(AclResource.Operator, AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["operator = \"WRITE\""], false, AclDecision.Default, null },
        { "case: upper-case mesh is dropped, operator answers", Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["mesh = \"WRITE\"\noperator = \"write\""], true, AclDecision.Allow, "p1:2" },
        { "case: upper-case DENY does not override write", ServiceWrite(), AclDefaultPolicy.Deny,
          ["service \"mesh-gateway\" { policy = \"write\" }", "service \"mesh-gateway\" { policy = \"DENY\" }"], true, AclDecision.Allow, "p1:1" },
        { "intentions: read implied by service read", Intention(AclAccessLevel.Read), AclDefaultPolicy.Deny,
          ["service \"web\" { policy = \"read\" }"], true, AclDecision.Allow, "p1:1" },
        { "intentions: service write implies only read", Intention(AclAccessLevel.Write), AclDefaultPolicy.Allow,
          ["service \"web\" { policy = \"write\" }"], false, AclDecision.Deny, "p1:1" },
        { "intentions: explicit write", Intention(AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["service_prefix \"w\" { policy = \"read\" intentions = \"write\" }"], true, AclDecision.Allow, "p1:1" },
        { "intentions: service deny implies deny", Intention(AclAccessLevel.Read), AclDefaultPolicy.Allow,
          ["service \"web\" { policy = \"deny\" }"], false, AclDecision.Deny, "p1:1" },
        { "intentions: WRITE implies deny (exact-string switch)", Intention(AclAccessLevel.Read), AclDefaultPolicy.Allow,
          ["service \"web\" { policy = \"WRITE\" }"], false, AclDecision.Deny, "p1:1" },
        { "intentions: merged separately from policy", Intention(AclAccessLevel.Write), AclDefaultPolicy.Deny,
          ["service \"web\" { policy = \"write\" }", "service \"web\" { policy = \"read\" intentions = \"write\" }"], true, AclDecision.Allow, "p2:1" },
    };

    [Theory]
    [MemberData(nameof(Semantics))]
    public void Evaluate_ConsulSemantics_DecidesAsConsul(string rule, AclRequirement requirement, AclDefaultPolicy defaultPolicy, string[] policies, bool satisfied, AclDecision decision, string? decidedBy)
    {
        AclRequirementResult result = EvaluateOne(requirement, defaultPolicy, policies);
        Assert.True(satisfied == result.Satisfied, rule + ": " + result.Explanation);
        Assert.Equal(decision, result.Decision);
        Assert.Equal(decidedBy, result.DecidingRule is null ? null : result.DecidingPolicy + ":" + result.DecidingRule.Line);
    }

    // hashicorp/consul acl/static_authorizer.go: allowAll (default_policy "allow") answers every check from defaultAllow
    // except ACLRead, ACLWrite and Snapshot, which only allowManage grants; acl/policy_authorizer.go ACLRead/ACLWrite
    // return Default without an acl rule, so the chained authorizer falls through to that static answer.
    public static TheoryData<AclRequirement, AclDefaultPolicy, string[], bool> DefaultPolicyExceptions => new()
    {
        { Scalar(AclResource.Acl, AclAccessLevel.Read), AclDefaultPolicy.Allow, [], false },
        { Scalar(AclResource.Acl, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], false },
        { Scalar(AclResource.Acl, AclAccessLevel.Read), AclDefaultPolicy.Allow, ["operator = \"write\"\nkeyring = \"write\""], false },
        { Scalar(AclResource.Acl, AclAccessLevel.Read), AclDefaultPolicy.Deny, ["acl = \"read\""], true },
        { Scalar(AclResource.Acl, AclAccessLevel.Write), AclDefaultPolicy.Allow, ["acl = \"read\""], false },
        // hashicorp/consul agent/structs/acl.go: the builtin global-management policy carries acl = "write".
        { Scalar(AclResource.Acl, AclAccessLevel.Write), AclDefaultPolicy.Deny, ["acl = \"write\"\noperator = \"write\""], true },
        // Every other static-authorizer check follows defaultAllow: keyring, operator, mesh, peering and the named ones.
        { Scalar(AclResource.Keyring, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true },
        { Scalar(AclResource.Operator, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true },
        { Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true },
        { Scalar(AclResource.Peering, AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true },
        { ReadAll(AclResource.Node), AclDefaultPolicy.Allow, [], true },
        { Intention(AclAccessLevel.Write), AclDefaultPolicy.Allow, [], true },
        { new AclRequirement { Resource = AclResource.Query, Access = AclAccessLevel.Write, Target = AclTargetKind.Named, Name = "q", Reason = "test" }, AclDefaultPolicy.Allow, [], true },
    };

    [Theory]
    [MemberData(nameof(DefaultPolicyExceptions))]
    public void Evaluate_DefaultAllow_NeverGrantsAclButGrantsEverythingElse(AclRequirement requirement, AclDefaultPolicy defaultPolicy, string[] policies, bool satisfied)
    {
        AclRequirementResult result = EvaluateOne(requirement, defaultPolicy, policies);
        Assert.True(satisfied == result.Satisfied, requirement.Permission + ": " + result.Explanation);
    }

    [Fact]
    public void Evaluate_AclUnderDefaultAllow_ExplainsTheException()
    {
        AclRequirementResult result = EvaluateOne(Scalar(AclResource.Acl, AclAccessLevel.Read), AclDefaultPolicy.Allow);
        Assert.Equal(AclDecision.Default, result.Decision);
        Assert.Equal("acl:read: missing - no rule applies, and Consul's default policy never grants acl (only an acl rule or a management token does)", result.Explanation);
    }

    private static AclRequirement Imported(AclResource resource, string name = "imported-svc", AclAccessLevel access = AclAccessLevel.Read)
        => new() { Resource = resource, Access = access, Target = AclTargetKind.Named, Name = name, Peer = "some-peer", Reason = "test" };

    // hashicorp/consul acl/policy_authorizer_test.go, the "Defaults - from peer" and "Peering - ..." cases, and
    // acl/policy_authorizer.go ServiceRead/NodeRead: with a peer in the context, ServiceWriteAny allowing allows, else
    // ServiceReadAll / NodeReadAll decides (Default falls to the default policy).
    public static TheoryData<string, AclRequirement, AclDefaultPolicy, string[], bool, AclDecision> PeeredReads => new()
    {
        { "Defaults - from peer (service)", Imported(AclResource.Service), AclDefaultPolicy.Deny, [], false, AclDecision.Default },
        { "Defaults - from peer (node)", Imported(AclResource.Node), AclDefaultPolicy.Deny, [], false, AclDecision.Default },
        { "Defaults - from peer, default allow", Imported(AclResource.Service), AclDefaultPolicy.Allow, [], true, AclDecision.Default },
        { "ServiceRead allowed with service:write", Imported(AclResource.Service), AclDefaultPolicy.Deny,
          ["service \"foo\" { policy = \"write\" intentions = \"write\" }"], true, AclDecision.Allow },
        { "ServiceRead allowed with service:read on all", Imported(AclResource.Service), AclDefaultPolicy.Deny,
          ["service_prefix \"\" { policy = \"read\" intentions = \"read\" }"], true, AclDecision.Allow },
        { "ServiceRead not allowed with service:read on single service", Imported(AclResource.Service, "same-name-as-imported"), AclDefaultPolicy.Deny,
          ["service \"same-name-as-imported\" { policy = \"read\" intentions = \"read\" }"], false, AclDecision.Default },
        { "NodeRead allowed with service:write", Imported(AclResource.Node), AclDefaultPolicy.Deny,
          ["service \"foo\" { policy = \"write\" }"], true, AclDecision.Allow },
        { "NodeRead allowed with node:read on all", Imported(AclResource.Node), AclDefaultPolicy.Deny,
          ["node_prefix \"\" { policy = \"read\" }"], true, AclDecision.Allow },
        { "NodeRead not allowed with node:read on single node", Imported(AclResource.Node, "same-name-as-imported"), AclDefaultPolicy.Deny,
          ["node \"same-name-as-imported\" { policy = \"read\" }"], false, AclDecision.Default },
        // policy_authorizer.go allAllowed: a more specific deny still denies the read-all alternative.
        { "read on all, but one service denied", Imported(AclResource.Service), AclDefaultPolicy.Allow,
          ["service_prefix \"\" { policy = \"read\" }\nservice \"secret\" { policy = \"deny\" }"], false, AclDecision.Deny },
        // anyAllowed: a write prefix rule on any segment is service:write on some service.
        { "service_prefix write on a segment is ServiceWriteAny", Imported(AclResource.Node), AclDefaultPolicy.Deny,
          ["service_prefix \"web-\" { policy = \"write\" }\nnode_prefix \"\" { policy = \"deny\" }"], true, AclDecision.Allow },
        // Without a peer the same rule is an ordinary exact match.
        { "local read unchanged", ServiceRead("same-name-as-imported"), AclDefaultPolicy.Deny,
          ["service \"same-name-as-imported\" { policy = \"read\" }"], true, AclDecision.Allow },
    };

    [Theory]
    [MemberData(nameof(PeeredReads))]
    public void Evaluate_PeerImportedReads_DecideAsConsul(string rule, AclRequirement requirement, AclDefaultPolicy defaultPolicy, string[] policies, bool satisfied, AclDecision decision)
    {
        AclRequirementResult result = EvaluateOne(requirement, defaultPolicy, policies);
        Assert.True(satisfied == result.Satisfied, rule + ": " + result.Explanation);
        Assert.Equal(decision, result.Decision);
    }

    [Fact]
    public void Evaluate_PeerImportedRead_Missing_NamesTheTwoPermissionsConsulChecks()
    {
        AclRequirementResult service = EvaluateOne(Imported(AclResource.Service, "api"), AclDefaultPolicy.Deny, "service \"api\" { policy = \"read\" }");
        Assert.False(service.Satisfied);
        Assert.Equal("service:write on any service, or service:read on all services", service.MissingPermission);
        Assert.StartsWith("service:read on \"api\" imported from peer \"some-peer\": missing - Consul (1.13+) allows reads of data imported from a peer with service:write on any service, or service:read on all services, not by a rule on the imported name;", service.Explanation, StringComparison.Ordinal);

        AclRequirementResult node = EvaluateOne(Imported(AclResource.Node), AclDefaultPolicy.Deny);
        Assert.Equal("service:write on any service, or node:read on all nodes", node.MissingPermission);

        AclRequirementResult granted = EvaluateOne(Imported(AclResource.Node), AclDefaultPolicy.Deny, "service \"mesh-gateway\" { policy = \"write\" }");
        Assert.True(granted.GrantedByServiceWriteAny);
        Assert.Null(granted.MissingPermission);
        Assert.Equal(1, granted.DecidingRule!.Line);

        // Local requirements name themselves.
        Assert.Equal("service:write on \"mesh-gateway\"", EvaluateOne(ServiceWrite(), AclDefaultPolicy.Deny).MissingPermission);
    }

    // Writes are not peer-aware in Consul (ServiceWrite ignores the context's peer): a write requirement with a peer is an
    // ordinary write check.
    [Fact]
    public void Evaluate_PeerOnAWriteRequirement_OrdinaryCheck()
    {
        AclRequirement write = Imported(AclResource.Service, "api", AclAccessLevel.Write);
        Assert.False(write.IsPeeredRead);
        Assert.False(EvaluateOne(write, AclDefaultPolicy.Deny, "service \"foo\" { policy = \"write\" }").Satisfied);
        Assert.True(EvaluateOne(write, AclDefaultPolicy.Deny, "service \"api\" { policy = \"write\" }").Satisfied);
    }

    [Fact]
    public void Evaluate_OperatorFallback_FlaggedAndExplained()
    {
        AclRequirementResult result = EvaluateOne(Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny, "operator = \"write\"");
        Assert.True(result.FellBackToOperator);
        Assert.Contains("falls back to operator", result.Explanation, StringComparison.Ordinal);
        Assert.False(EvaluateOne(Scalar(AclResource.Mesh, AclAccessLevel.Write), AclDefaultPolicy.Deny, "mesh = \"write\"").FellBackToOperator);
    }

    [Fact]
    public void Evaluate_Explanations_NamePolicyLineOrDefaultPolicy()
    {
        AclRequirementResult denied = EvaluateOne(ServiceWrite(), AclDefaultPolicy.Allow, "mesh = \"write\"\nservice \"mesh-gateway\" { policy = \"read\" }");
        Assert.Equal("service:write on \"mesh-gateway\": missing - not granted by service \"mesh-gateway\" { policy = \"read\" } (policy \"p1\", line 2)", denied.Explanation);
        AclRequirementResult byDefault = EvaluateOne(ReadAll(AclResource.Node), AclDefaultPolicy.Deny);
        Assert.Equal("node:read on all nodes: missing - no rule applies, so the default policy (deny) decides", byDefault.Explanation);
        AclRequirementResult deny = EvaluateOne(ServiceWrite(), AclDefaultPolicy.Allow, "service_prefix \"\" { policy = \"deny\" }");
        Assert.StartsWith("service:write on \"mesh-gateway\": missing - denied by service_prefix", deny.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_DocumentedCommunityPolicy_SatisfiesEveryRequirementUnderDefaultDeny()
    {
        AclEvaluationReport report = AclEvaluator.Evaluate(
            [AclPolicyParserTests.ParseOk(AclPolicyParserTests.DocumentedCommunityHcl)],
            MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()),
            AclDefaultPolicy.Deny);
        Assert.True(report.AllRequiredSatisfied);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Notes);
    }

    [Fact]
    public void Evaluate_PolicyMissingMeshAndNodeRead_ReportsExactlyThose()
    {
        AclEvaluationReport report = AclEvaluator.Evaluate(
            [AclPolicyParserTests.ParseOk("service \"mesh-gateway\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }\npeering = \"read\"\nagent_prefix \"\" { policy = \"read\" }")],
            MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()),
            AclDefaultPolicy.Deny);
        Assert.False(report.AllRequiredSatisfied);
        Assert.Equal(["node:read on all nodes", "mesh:write"], report.Missing.Select(m => m.Requirement.Permission));
    }

    [Fact]
    public void Evaluate_OptionalMissing_StillAllRequiredSatisfied()
    {
        const string WithoutAgent = "mesh = \"write\"\npeering = \"read\"\nservice \"mesh-gateway\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }";
        AclEvaluationReport report = AclEvaluator.Evaluate([AclPolicyParserTests.ParseOk(WithoutAgent)], MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()), AclDefaultPolicy.Deny);
        Assert.True(report.AllRequiredSatisfied);
        AclRequirementResult missing = Assert.Single(report.Missing);
        Assert.True(missing.Requirement.IsOptional);
        Assert.Equal(AclResource.Agent, missing.Requirement.Resource);
    }

    [Fact]
    public void Evaluate_CommunityEdition_IgnoresNestedRulesWithNote()
    {
        AclEvaluationReport report = AclEvaluator.Evaluate(
            [AclPolicyParserTests.ParseOk(AclPolicyParserTests.DocumentedEnterpriseHcl)],
            MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()),
            AclDefaultPolicy.Deny);
        Assert.Equal(["service:write on \"mesh-gateway\"", "service:read on all services", "node:read on all nodes", "agent:read on all agents (nodes)"],
            report.Missing.Select(m => m.Requirement.Permission));
        Assert.Contains(report.Notes, n => n.Contains("only Consul Enterprise", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("default", AclPolicyParserTests.DocumentedEnterpriseHcl)]
    [InlineData("default", AclPolicyParserTests.DocumentedEnterpriseJson)]
    [InlineData("ptn1", "mesh = \"write\"\npeering = \"read\"\nnamespace \"default\" {\n  service \"mesh-gateway\" { policy = \"write\" }\n  agent_prefix \"\" { policy = \"read\" }\n}\nnamespace_prefix \"\" {\n  node_prefix \"\" { policy = \"read\" }\n  service_prefix \"\" { policy = \"read\" }\n}")]
    public void Evaluate_DocumentedEnterprisePolicies_SatisfyEnterpriseRequirements(string partition, string rules)
    {
        var options = new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Partition = partition };
        AclEvaluationReport report = AclEvaluator.Evaluate(
            [AclPolicyParserTests.ParseOk(rules)],
            MeshGatewayAcl.Requirements(options),
            AclDefaultPolicy.Deny,
            new AclEvaluationOptions { Edition = ConsulEdition.Enterprise, PolicyPartition = partition });
        Assert.True(report.AllRequiredSatisfied, string.Join("\n", report.Missing));
        Assert.Empty(report.Missing);
    }

    [Fact]
    public void Evaluate_Enterprise_ExactNamespaceBeforePrefixAndTopLevelOnlyForOwnNamespace()
    {
        var options = new AclEvaluationOptions { Edition = ConsulEdition.Enterprise };
        AclPolicy policy = AclPolicyParserTests.ParseOk("""
            service "web" { policy = "write" }
            namespace_prefix "" { service_prefix "" { policy = "read" } }
            namespace "team" { service "web" { policy = "deny" } }
            """);
        AclRequirement InNamespace(string ns) => ServiceWrite("web") with { Namespace = ns };

        IReadOnlyList<AclRequirementResult> results = AclEvaluator.Evaluate([policy], [InNamespace("default"), InNamespace("team"), InNamespace("other")], AclDefaultPolicy.Allow, options).Results;
        Assert.Equal([false, false, false], results.Select(r => r.Satisfied));
        Assert.Equal([2, 3, 2], results.Select(r => r.DecidingRule!.Line)); // namespace_prefix "" answers (deny for write) before top-level
        Assert.True(AclEvaluator.Evaluate([AclPolicyParserTests.ParseOk("service \"web\" { policy = \"write\" }")], [InNamespace("default")], AclDefaultPolicy.Deny, options).Results[0].Satisfied);
        Assert.False(AclEvaluator.Evaluate([AclPolicyParserTests.ParseOk("service \"web\" { policy = \"write\" }")], [InNamespace("other")], AclDefaultPolicy.Deny, options).Results[0].Satisfied);
    }

    [Fact]
    public void Evaluate_Enterprise_TopLevelNodeRuleCoversNodesButTopLevelServiceRuleOnlyItsNamespace()
    {
        var options = new AclEvaluationOptions { Edition = ConsulEdition.Enterprise };
        AclPolicy policy = AclPolicyParserTests.ParseOk(AclPolicyParserTests.DocumentedCommunityHcl);
        AclEvaluationReport report = AclEvaluator.Evaluate([policy], MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise }), AclDefaultPolicy.Deny, options);
        Assert.Equal(["service:read on all services", "peering:read"], report.Missing.Select(m => m.Requirement.Permission));
        Assert.Equal([AclRequirement.Every, AclRequirement.Every], report.Missing.Select(m => m.Requirement.Resource == AclResource.Service ? m.Requirement.Namespace : m.Requirement.Partition));
    }

    [Fact]
    public void Evaluate_Enterprise_PartitionBlocksApplyToMatchingPartitions()
    {
        var options = new AclEvaluationOptions { Edition = ConsulEdition.Enterprise };
        AclPolicy policy = AclPolicyParserTests.ParseOk("partition_prefix \"eu-\" { mesh = \"write\" }\npartition \"eu-west\" { mesh = \"read\" }");
        AclRequirement MeshWrite(string partition) => Scalar(AclResource.Mesh, AclAccessLevel.Write) with { Partition = partition };
        IReadOnlyList<AclRequirementResult> results = AclEvaluator.Evaluate([policy], [MeshWrite("eu-north"), MeshWrite("eu-west"), MeshWrite("us")], AclDefaultPolicy.Deny, options).Results;
        Assert.Equal([(true, AclDecision.Allow), (false, AclDecision.Deny), (false, AclDecision.Default)], results.Select(r => (r.Satisfied, r.Decision)));
    }
}
