using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

/// <summary>FsCheck properties of the parser and the renderer.</summary>
public sealed class AclPolicyParserPropertyTests
{
    // Fragments of real rules, so random sequences reach deep into the grammar instead of failing at the first byte.
    private static readonly string[] s_fragments =
    [
        "service", "service_prefix", "node_prefix", "mesh", "operator", "namespace", "partition_prefix", "policy", "intentions",
        "\"web\"", "\"\"", "\"read\"", "\"WRITE\"", "\"list\"", "=", "{", "}", "[", "]", ",", ":", "\n", " ", "#", "//", "/*", "*/",
        "\"", "\\", "\\u12", "1", "true", "{\"service\":", "{\"mesh\": \"write\"}", "null",
    ];

    [Property(MaxTest = 500)]
    public Property Parse_AnyFragmentSequence_ResultOrLocatedErrorNeverThrows()
    {
        return Prop.ForAll(
            Gen.Elements(s_fragments).ArrayOf().Select(parts => string.Concat(parts)).ToArbitrary(),
            text =>
            {
                AclParseResult result = AclPolicyParser.Parse(text);
                int lines = text.Count(c => c == '\n') + 1;
                return result.Success
                    ? result.Error is null
                    : result.Policy is null && result.Error!.Line >= 1 && result.Error.Line <= lines && result.Error.Column >= 1 && result.Error.Message.Length > 0;
            });
    }

    [Property(MaxTest = 500)]
    public Property ToHclAndToJson_AnyServiceName_RoundTripsTheName()
    {
        return Prop.ForAll(
            ArbMap.Default.GeneratorFor<NonEmptyString>().Select(s => s.Get).Where(s => !s.Any(char.IsSurrogate)).ToArbitrary(),
            name =>
            {
                var options = new MeshGatewayAclOptions { ServiceName = name };
                AclParseResult hcl = AclPolicyParser.Parse(MeshGatewayAcl.ToHcl(options));
                AclParseResult json = AclPolicyParser.Parse(MeshGatewayAcl.ToJson(options));
                return hcl.Success && json.Success
                    && hcl.Policy!.Rules.Any(r => r.Resource == AclResource.Service && r.Kind == AclRuleKind.Exact && r.Segment == name)
                    && json.Policy!.Rules.Any(r => r.Resource == AclResource.Service && r.Kind == AclRuleKind.Exact && r.Segment == name);
            });
    }
}
