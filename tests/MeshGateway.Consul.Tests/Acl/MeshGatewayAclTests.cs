using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

public sealed class MeshGatewayAclTests
{
    public static TheoryData<string, MeshGatewayAclOptions> Scenarios => new()
    {
        { "peering (documented default)", new MeshGatewayAclOptions() },
        { "WAN federation only", new MeshGatewayAclOptions { Peering = false } },
        { "no agent read", new MeshGatewayAclOptions { AgentRead = false } },
        { "custom name", new MeshGatewayAclOptions { ServiceName = "gw-east" } },
        { "name needing escapes", new MeshGatewayAclOptions { ServiceName = "we\"ird\\name\t" } },
        { "Enterprise default partition", new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise } },
        { "Enterprise default partition, WAN only", new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Peering = false } },
        { "Enterprise other partition", new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Partition = "ptn1" } },
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void ToHclAndToJson_ParseBackToTheSameRulesAndSatisfyTheRequirements(string scenario, MeshGatewayAclOptions options)
    {
        AclPolicy hcl = AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToHcl(options), "hcl");
        AclPolicy json = AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToJson(options), "json");
        Assert.Equal(hcl.Rules.Select(AclPolicyParserTests.Shape).Order(StringComparer.Ordinal), json.Rules.Select(AclPolicyParserTests.Shape).Order(StringComparer.Ordinal));

        IReadOnlyList<AclRequirement> requirements = MeshGatewayAcl.Requirements(options);
        var evaluation = new AclEvaluationOptions { Edition = options.Edition, PolicyPartition = options.Partition };
        foreach (AclPolicy policy in new[] { hcl, json })
        {
            AclEvaluationReport report = AclEvaluator.Evaluate([policy], requirements, AclDefaultPolicy.Deny, evaluation);
            Assert.True(report.Results.All(r => r.Satisfied), scenario + ": " + string.Join("; ", report.Missing));
            Assert.All(report.Results, r => Assert.Equal(AclDecision.Allow, r.Decision));
        }
    }

    [Fact]
    public void ToHcl_Community_SameRulesAsConsulsDocumentedPolicy()
    {
        AclPolicy generated = AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToHcl(new MeshGatewayAclOptions()));
        AclPolicy documented = AclPolicyParserTests.ParseOk(AclPolicyParserTests.DocumentedCommunityHcl);
        Assert.Equal(documented.Rules.Select(AclPolicyParserTests.Shape), generated.Rules.Select(AclPolicyParserTests.Shape));
        Assert.Equal(
            "mesh = \"write\"\npeering = \"read\"\nservice \"mesh-gateway\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nagent_prefix \"\" {\n  policy = \"read\"\n}\n",
            MeshGatewayAcl.ToHcl(new MeshGatewayAclOptions()));
    }

    [Fact]
    public void ToJson_Community_SameRulesAsConsulsDocumentedJson()
    {
        AclPolicy generated = AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToJson(new MeshGatewayAclOptions()));
        AclPolicy documented = AclPolicyParserTests.ParseOk(AclPolicyParserTests.DocumentedCommunityJson);
        Assert.Equal(documented.Rules.Select(AclPolicyParserTests.Shape), generated.Rules.Select(AclPolicyParserTests.Shape));
        Assert.Contains("\"mesh-gateway\": [", MeshGatewayAcl.ToJson(new MeshGatewayAclOptions()), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("default", AclPolicyParserTests.DocumentedEnterpriseHcl)]
    [InlineData("ptn1", "mesh = \"write\"\npeering = \"read\"\nnamespace \"default\" {\n  service \"mesh-gateway\" { policy = \"write\" }\n  agent_prefix \"\" { policy = \"read\" }\n}\nnamespace_prefix \"\" {\n  node_prefix \"\" { policy = \"read\" }\n  service_prefix \"\" { policy = \"read\" }\n}")]
    public void ToHclAndToJson_Enterprise_SameRulesAsConsulsDocumentedPolicy(string partition, string documentedRules)
    {
        var options = new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Partition = partition };
        IEnumerable<string> documented = AclPolicyParserTests.ParseOk(documentedRules).Rules.Select(AclPolicyParserTests.Shape).Order(StringComparer.Ordinal);
        Assert.Equal(documented, AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToHcl(options)).Rules.Select(AclPolicyParserTests.Shape).Order(StringComparer.Ordinal));
        Assert.Equal(documented, AclPolicyParserTests.ParseOk(MeshGatewayAcl.ToJson(options)).Rules.Select(AclPolicyParserTests.Shape).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Requirements_PerScenario_ListPermissionsWithReasons()
    {
        Assert.Equal(
            ["service:write on \"gw\"", "service:read on all services", "node:read on all nodes", "mesh:write", "peering:read", "agent:read on all agents (nodes)"],
            MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { ServiceName = "gw" }).Select(r => r.Permission));
        Assert.Equal(
            ["service:write on \"gw\"", "service:read on all services", "node:read on all nodes", "mesh:write"],
            MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { ServiceName = "gw", Peering = false, AgentRead = false }).Select(r => r.Permission));
        IReadOnlyList<AclRequirement> enterprise = MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise });
        Assert.Contains(enterprise, r => r.Resource == AclResource.Peering && r.Partition == AclRequirement.Every);
        Assert.Contains(enterprise, r => r.Resource == AclResource.Service && r.Target == AclTargetKind.All && r.Namespace == AclRequirement.Every);
        Assert.DoesNotContain(MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Partition = "p" }), r => r.Partition == AclRequirement.Every);
        Assert.All(MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()), r => Assert.False(string.IsNullOrWhiteSpace(r.Reason)));
        Assert.Equal([AclResource.Agent], MeshGatewayAcl.Requirements(new MeshGatewayAclOptions()).Where(r => r.IsOptional).Select(r => r.Resource));
    }

    [Fact]
    public void Options_EmptyNames_Rejected()
    {
        Assert.Throws<ArgumentException>(() => MeshGatewayAcl.ToHcl(new MeshGatewayAclOptions { ServiceName = "" }));
        Assert.Throws<ArgumentException>(() => MeshGatewayAcl.Requirements(new MeshGatewayAclOptions { Edition = ConsulEdition.Enterprise, Partition = "" }));
        Assert.Throws<ArgumentNullException>(() => MeshGatewayAcl.ToJson(null!));
    }
}
