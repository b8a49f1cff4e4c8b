using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

public sealed class AclPolicyParserTests
{
    // Consul's documented CE mesh-gateway policy (create-a-mesh-gateway-token.mdx), verbatim.
    internal const string DocumentedCommunityHcl = """
        mesh = "write"
        peering = "read"
        service "mesh-gateway" {
           policy = "write"
        }
        service_prefix "" {
           policy = "read"
        }
        node_prefix "" {
           policy = "read"
        }
        agent_prefix "" {
           policy = "read"
        }
        """;

    internal const string DocumentedCommunityJson = """
        {
          "mesh": "write",
          "peering": "read",
          "service": {
            "mesh-gateway": [{
              "policy": "write"
            }]
          },
          "service_prefix": {
            "": [{
              "policy": "read"
            }]
          },
          "node_prefix": {
            "": [{
              "policy": "read"
            }]
          },
          "agent_prefix": {
            "": [{
              "policy": "read"
            }]
          }
        }
        """;

    internal const string DocumentedEnterpriseHcl = """
        mesh = "write"
        peering = "read"
        partition_prefix "" {
          peering = "read"
        }
        namespace "default" {
          service "mesh-gateway" {
             policy = "write"
          }
          agent_prefix "" {
             policy = "read"
          }
        }
        namespace_prefix "" {
          node_prefix "" {
          	policy = "read"
          }
          service_prefix "" {
             policy = "read"
          }
        }
        """;

    internal const string DocumentedEnterpriseJson = """
        {
          "mesh": "write",
          "peering": "read",
          "partition_prefix": {
            "": [{
              "peering": "read"
            }]
          },
          "namespace": {
            "default": [{
              "agent_prefix": {
                "": [{
                  "policy": "read"
                }]
              },
              "service": {
                "mesh-gateway": [{
                  "policy": "write"
                }]
              }
            }]
          },
          "namespace_prefix": {
            "": [{
              "node_prefix": {
                "": [{
                  "policy": "read"
                }]
              },
              "service_prefix": {
                "": [{
                  "policy": "read"
                }]
              }
            }]
          }
        }
        """;

    internal static AclPolicy ParseOk(string text, string name = "p", AclParseOptions? options = null)
    {
        AclParseResult result = AclPolicyParser.Parse(text, name, AclRulesFormat.Auto, options);
        Assert.True(result.Success, result.Error?.ToString());
        return result.Policy!;
    }

    internal static string Shape(AclRule r) => $"{r.Scope}|{r.Keyword}|{r.Segment}|{r.Policy}|{r.Intentions}";

    [Fact]
    public void Parse_DocumentedCommunityHcl_ReadsEveryRuleWithItsLine()
    {
        AclPolicy policy = ParseOk(DocumentedCommunityHcl, "mgw-register");
        Assert.Equal("mgw-register", policy.Name);
        Assert.Equal(
            ["top level|mesh||write|", "top level|peering||read|", "top level|service|mesh-gateway|write|",
             "top level|service_prefix||read|", "top level|node_prefix||read|", "top level|agent_prefix||read|"],
            policy.Rules.Select(Shape));
        Assert.Equal([1, 2, 3, 6, 9, 12], policy.Rules.Select(r => r.Line));
        Assert.All(policy.Rules, r => Assert.Equal(1, r.Column));
    }

    [Fact]
    public void Parse_DocumentedCommunityJson_SameRulesAsHcl()
    {
        AclPolicy hcl = ParseOk(DocumentedCommunityHcl);
        AclPolicy json = ParseOk(DocumentedCommunityJson);
        Assert.Equal(hcl.Rules.Select(Shape), json.Rules.Select(Shape));
        Assert.Equal(5, json.Rules.Single(r => r.Resource == AclResource.Service && r.Kind == AclRuleKind.Exact).Line); // at its label
    }

    [Fact]
    public void Parse_DocumentedEnterpriseHclAndJson_SameNestedRules()
    {
        string[] expected =
        [
            "top level|mesh||write|", "top level|peering||read|", "partition_prefix \"\"|peering||read|",
            "namespace \"default\"|service|mesh-gateway|write|", "namespace \"default\"|agent_prefix||read|",
            "namespace_prefix \"\"|node_prefix||read|", "namespace_prefix \"\"|service_prefix||read|",
        ];
        Assert.Equal(expected, ParseOk(DocumentedEnterpriseHcl).Rules.Select(Shape));
        Assert.Equal(expected.OrderBy(s => s, StringComparer.Ordinal), ParseOk(DocumentedEnterpriseJson).Rules.Select(Shape).OrderBy(s => s, StringComparer.Ordinal));
    }

    public static TheoryData<string, AclResource, AclRuleKind, string, string> EveryResource => new()
    {
        { "service \"web\" { policy = \"read\" }", AclResource.Service, AclRuleKind.Exact, "web", "read" },
        { "service_prefix \"we\" { policy = \"write\" }", AclResource.Service, AclRuleKind.Prefix, "we", "write" },
        { "node \"n1\" { policy = \"deny\" }", AclResource.Node, AclRuleKind.Exact, "n1", "deny" },
        { "node_prefix \"\" { policy = \"read\" }", AclResource.Node, AclRuleKind.Prefix, "", "read" },
        { "agent \"n1\" { policy = \"read\" }", AclResource.Agent, AclRuleKind.Exact, "n1", "read" },
        { "agent_prefix \"\" { policy = \"write\" }", AclResource.Agent, AclRuleKind.Prefix, "", "write" },
        { "mesh = \"write\"", AclResource.Mesh, AclRuleKind.Scalar, "", "write" },
        { "peering = \"read\"", AclResource.Peering, AclRuleKind.Scalar, "", "read" },
        { "operator = \"deny\"", AclResource.Operator, AclRuleKind.Scalar, "", "deny" },
        { "acl = \"read\"", AclResource.Acl, AclRuleKind.Scalar, "", "read" },
        { "keyring = \"write\"", AclResource.Keyring, AclRuleKind.Scalar, "", "write" },
        { "key \"a/b\" { policy = \"list\" }", AclResource.Key, AclRuleKind.Exact, "a/b", "list" },
        { "key_prefix \"a/\" { policy = \"list\" }", AclResource.Key, AclRuleKind.Prefix, "a/", "list" },
        { "session \"n\" { policy = \"write\" }", AclResource.Session, AclRuleKind.Exact, "n", "write" },
        { "session_prefix \"\" { policy = \"read\" }", AclResource.Session, AclRuleKind.Prefix, "", "read" },
        { "event \"deploy\" { policy = \"write\" }", AclResource.Event, AclRuleKind.Exact, "deploy", "write" },
        { "event_prefix \"\" { policy = \"read\" }", AclResource.Event, AclRuleKind.Prefix, "", "read" },
        { "query \"q\" { policy = \"write\" }", AclResource.Query, AclRuleKind.Exact, "q", "write" },
        { "query_prefix \"\" { policy = \"read\" }", AclResource.Query, AclRuleKind.Prefix, "", "read" },
        { "identity \"web\" { policy = \"write\" }", AclResource.Identity, AclRuleKind.Exact, "web", "write" },
        { "identity_prefix \"\" { policy = \"read\" }", AclResource.Identity, AclRuleKind.Prefix, "", "read" },
        { "service \"web\" { policy = \"WRITE\" }", AclResource.Service, AclRuleKind.Exact, "web", "WRITE" },
        { "{\"node\": {\"n1\": {\"policy\": \"read\"}}}", AclResource.Node, AclRuleKind.Exact, "n1", "read" },
        { "{\"operator\": \"Read\"}", AclResource.Operator, AclRuleKind.Scalar, "", "Read" },
    };

    [Theory]
    [MemberData(nameof(EveryResource))]
    public void Parse_EachResource_ReadsResourceKindSegmentAndValue(string text, AclResource resource, AclRuleKind kind, string segment, string policy)
    {
        AclRule rule = Assert.Single(ParseOk(text).Rules);
        Assert.Equal(resource, rule.Resource);
        Assert.Equal(kind, rule.Kind);
        Assert.Equal(segment, rule.Segment);
        Assert.Equal(policy, rule.Policy);
    }

    [Fact]
    public void Parse_CommentsOfEveryKind_IgnoredAndLinesStillRight()
    {
        const string Text = """
            # hash comment
            // slash comment
            /* block
               comment */ mesh = "write" /* inline */
            service "web" { # trailing
              policy = "read" // trailing
            }
            """;
        AclPolicy policy = ParseOk(Text);
        Assert.Equal(["top level|mesh||write|", "top level|service|web|read|"], policy.Rules.Select(Shape));
        Assert.Equal((4, 15), (policy.Rules[0].Line, policy.Rules[0].Column));
        Assert.Equal(5, policy.Rules[1].Line);
    }

    [Theory]
    [InlineData("service \"x\" { policy = \"read\" intentions = \"read\" }")]
    [InlineData("service \"x\" { policy = \"read\", intentions = \"read\" }")]
    [InlineData("service \"x\" {\n  policy = \"read\"\n  intentions = \"read\"\n}")]
    [InlineData("{\"service\": {\"x\": {\"policy\": \"read\", \"intentions\": \"read\"}}}")]
    [InlineData("{\"service\": [{\"x\": [{\"policy\": \"read\", \"intentions\": \"read\"}]}]}")]
    public void Parse_ServiceWithIntentions_EveryLayout_SameRule(string text)
        => Assert.Equal("top level|service|x|read|read", Shape(Assert.Single(ParseOk(text).Rules)));

    [Fact]
    public void Parse_LabelWithEscapes_Unescaped()
        => Assert.Equal("we\"b\\\u00e9", Assert.Single(ParseOk("service \"we\\\"b\\\\\\u00e9\" { policy = \"read\" }").Rules).Segment);

    [Fact]
    public void Parse_EmptyRules_NoRules()
    {
        Assert.Empty(ParseOk(string.Empty).Rules);
        Assert.Empty(ParseOk("  # nothing\n").Rules);
        Assert.Empty(ParseOk("{}").Rules);
    }

    [Fact]
    public void Parse_PartitionWithNamespaceAndScalars_Scoped()
    {
        const string Text = """
            partition "example" {
              mesh = "write"
              node "my-node" { policy = "write" }
              namespace_prefix "exns-" {
                service_prefix "" { policy = "read" }
              }
            }
            """;
        Assert.Equal(
            ["partition \"example\"|mesh||write|", "partition \"example\"|node|my-node|write|", "partition \"example\" / namespace_prefix \"exns-\"|service_prefix||read|"],
            ParseOk(Text).Rules.Select(Shape));
    }

    public static TheoryData<string, AclParseErrorKind, int, int, string> Errors => new()
    {
        { "service \"web\" {\n  policy = \"read\n}", AclParseErrorKind.Syntax, 2, 12, "not terminated" },
        { "service \"web\" {\n  policy = \"read\"\n", AclParseErrorKind.Syntax, 3, 1, "no closing '}'" },
        { "mesh = \"write\"\n}", AclParseErrorKind.Syntax, 2, 1, "unexpected '}'" },
        { "mesh = \"write\"\n/* open", AclParseErrorKind.Syntax, 2, 1, "comment not terminated" },
        { "service \"web\" {\n  policy = read\n}", AclParseErrorKind.Syntax, 2, 12, "'read' (values must be quoted strings)" },
        { "mesh = [\"write\"]", AclParseErrorKind.Syntax, 1, 8, "a list" },
        { "service \"web\" = \"read\"", AclParseErrorKind.Syntax, 1, 15, "labelled rule is a block" },
        { "service \"web\"\n", AclParseErrorKind.Syntax, 2, 1, "expected '=' or '{'" },
        { "\"quoted\" ! x", AclParseErrorKind.Syntax, 1, 10, "expected '=' or '{'" },
        { "mesh = \"write\"\n  servic \"web\" { policy = \"read\" }", AclParseErrorKind.UnknownResource, 2, 3, "did you mean 'service'" },
        { "mesh_prefix \"\" { policy = \"read\" }", AclParseErrorKind.UnknownResource, 1, 1, "'mesh_prefix'" },
        { "intention \"web\" { policy = \"read\" }", AclParseErrorKind.UnknownResource, 1, 1, "'intention'" },
        { "service \"web\" {\n  policy = \"list\"\n}", AclParseErrorKind.InvalidAccess, 2, 3, "only valid on key and key_prefix rules" },
        { "operator = \"list\"", AclParseErrorKind.InvalidAccess, 1, 1, "Invalid operator policy" },
        { "mesh = \"admin\"", AclParseErrorKind.InvalidAccess, 1, 1, "\"admin\" is not a valid access level" },
        { "key \"k\" { policy = \"all\" }", AclParseErrorKind.InvalidAccess, 1, 11, "(read, write, deny, list)" },
        { "service \"web\" { policy = \"read\" intentions = \"list\" }", AclParseErrorKind.InvalidAccess, 1, 33, "intentions" },
        { "service \"web\" {}", AclParseErrorKind.MissingPolicy, 1, 1, "Invalid service policy" },
        { "service \"\" {\n  service = \"write\"\n}", AclParseErrorKind.UnknownAttribute, 2, 3, "unknown attribute 'service'" },
        { "node_prefix \"\" { policy = \"read\" intentions = \"read\" }", AclParseErrorKind.UnknownAttribute, 1, 34, "'intentions'" },
        { "partition \"a\" {\n  partition \"b\" {}\n}", AclParseErrorKind.InvalidNesting, 2, 3, "only allowed at the top level" },
        { "namespace \"a\" {\n  partition_prefix \"b\" {}\n}", AclParseErrorKind.InvalidNesting, 2, 3, "only allowed at the top level" },
        { "namespace \"a\" {\n  namespace_prefix \"b\" {}\n}", AclParseErrorKind.InvalidNesting, 2, 3, "inside another namespace" },
        { "namespace \"a\" {\n  operator = \"read\"\n}", AclParseErrorKind.InvalidNesting, 2, 3, "not allowed inside a namespace" },
        { "partition \"a\" {\n  keyring = \"read\"\n}", AclParseErrorKind.InvalidNesting, 2, 3, "not allowed inside a partition" },
        { "service { policy = \"read\" }", AclParseErrorKind.InvalidShape, 1, 1, "needs a name" },
        { "service \"a\" \"b\" { policy = \"read\" }", AclParseErrorKind.InvalidShape, 1, 1, "takes one name" },
        { "mesh \"x\" { policy = \"write\" }", AclParseErrorKind.InvalidShape, 1, 1, "takes a value, not a block" },
        { "service = \"read\"", AclParseErrorKind.InvalidShape, 1, 1, "is a block with a name" },
        { "service = { x = 1 }", AclParseErrorKind.InvalidShape, 1, 11, "not supported" },
        { "operator = \"read\"\noperator = \"write\"", AclParseErrorKind.DuplicateAttribute, 2, 1, "already set at line 1" },
        { "service \"x\" {\n  policy = \"read\"\n  policy = \"write\"\n}", AclParseErrorKind.DuplicateAttribute, 3, 3, "already set at line 2" },
        { "{\n  \"mesh\": \"write\",\n  \"service\": {\n    \"web\": [{ \"policy\": \"list\" }]\n  }\n}", AclParseErrorKind.InvalidAccess, 4, 15, "only valid on key" },
        { "{\n  \"mesh\": 1\n}", AclParseErrorKind.InvalidShape, 2, 3, "must be a quoted string" },
        { "{\n  \"mesh\": \"write\",\n  \"peering\": \n}", AclParseErrorKind.Syntax, 4, 1, "malformed JSON" },
        { "{\"mesh\": \"write\"} x", AclParseErrorKind.Syntax, 1, 19, "malformed JSON" },
        { "{\"servic\": {\"web\": {\"policy\": \"read\"}}}", AclParseErrorKind.UnknownResource, 1, 2, "did you mean 'service'" },
        { "{\"mesh\": \"write\", \"mesh\": \"read\"}", AclParseErrorKind.DuplicateAttribute, 1, 19, "already set" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void Parse_MalformedRules_LocatedSpecificError(string text, AclParseErrorKind kind, int line, int column, string fragment)
    {
        AclParseResult result = AclPolicyParser.Parse(text);
        Assert.False(result.Success);
        Assert.Null(result.Policy);
        AclParseError error = result.Error!;
        Assert.Equal(kind, error.Kind);
        Assert.Equal((line, column), (error.Line, error.Column));
        Assert.Contains(fragment, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownResourceIgnoredByOption_WarnsAndKeepsTheRest()
    {
        AclPolicy policy = ParseOk("mesh = \"write\"\nfoo \"x\" { policy = \"read\" }\nservice \"a\" { policy = \"read\" extra = \"1\" }",
            options: new AclParseOptions { UnknownResources = AclUnknownResourceHandling.IgnoreWithWarning });
        Assert.Equal(["top level|mesh||write|", "top level|service|a|read|"], policy.Rules.Select(Shape));
        Assert.Equal([(AclParseErrorKind.UnknownResource, 2), (AclParseErrorKind.UnknownAttribute, 3)], policy.Warnings.Select(w => (w.Kind, w.Line)));
    }

    [Fact]
    public void Parse_ForcedFormat_Respected()
    {
        Assert.Equal(AclParseErrorKind.Syntax, AclPolicyParser.Parse("mesh = \"write\"", format: AclRulesFormat.Json).Error!.Kind);
        Assert.Equal(AclParseErrorKind.Syntax, AclPolicyParser.Parse("{\"mesh\": \"write\"}", format: AclRulesFormat.Hcl).Error!.Kind);
    }

    [Fact]
    public void Parse_DeepNestingAndHugeInput_ErrorNotCrash()
    {
        string deep = string.Concat(Enumerable.Repeat("namespace \"a\" {", 40));
        Assert.False(AclPolicyParser.Parse(deep).Success);
        string deepJson = string.Concat(Enumerable.Repeat("{\"a\":", 100)) + "1" + new string('}', 100);
        Assert.Equal(AclParseErrorKind.Syntax, AclPolicyParser.Parse(deepJson).Error!.Kind);
        Assert.False(AclPolicyParser.Parse(new string(' ', AclPolicyParser.MaxRulesLength + 1)).Success);
    }

    [Fact]
    public void PolicyParse_Malformed_ThrowsFormatExceptionWithLocation()
    {
        var e = Assert.Throws<FormatException>(() => AclPolicy.Parse("mesh = \"root\""));
        Assert.StartsWith("line 1, column 1:", e.Message, StringComparison.Ordinal);
    }
}
