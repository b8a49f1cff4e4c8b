using MeshGateway.Acl;

namespace MeshGateway.Tests.Acl;

public sealed class AclDenialParserTests
{
    private const string Accessor = "7e6ecc7b-6d6f-4a0c-9ad6-5d5a5ec0a8ec";

    private const string Anonymous = AclDenialParser.AnonymousAccessorId;

    // Sources in hashicorp/consul: acl/errors.go (every version: 1.8's Cause-only PermissionDeniedError, then "provided
    // token"/"token with AccessorID", then the anonymous wording) and acl/errors_test.go; 1.8 causes from agent/acl.go and
    // agent/consul/operator_autopilot_endpoint.go; the RPC prefix from agent/pool/pool.go; the client wrapper from
    // api/api.go as asserted in api/acl_test.go.
    public static TheoryData<string, int, string, AclDenialKind, string?, string?, bool> Forms => new()
    {
        { "bare (acl/errors.go, 1.8 and current)", 403, "Permission denied", AclDenialKind.PermissionDenied, null, null, false },
        { "Missing form (agent/acl.go 1.8 vetServiceRegister)", 403, "Permission denied: Missing service:write on web", AclDenialKind.PermissionDenied, "service:write on \"web\"", null, false },
        { "Missing form without name", 403, "Permission denied: Missing operator:read", AclDenialKind.PermissionDenied, "operator:read", null, false },
        { "Missing ... permissions (agent/consul/operator_autopilot_endpoint.go)", 403, "Permission denied: Missing operator:read permissions", AclDenialKind.PermissionDenied, "operator:read", null, false },
        { "anonymous, named (acl/errors.go)", 403, "Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The anonymous token is used implicitly when a request does not specify a token.",
          AclDenialKind.PermissionDenied, "key:read on \"foo\"", Anonymous, true },
        { "anonymous, unnamed (acl/errors_test.go)", 403, "Permission denied: anonymous token lacks permission 'service:read'. The anonymous token is used implicitly when a request does not specify a token.",
          AclDenialKind.PermissionDenied, "service:read", Anonymous, true },
        { "anonymous by accessor ID (acl/errors.go before the anonymous wording)", 403, "Permission denied: token with AccessorID '" + Anonymous + "' lacks permission 'acl:read'",
          AclDenialKind.PermissionDenied, "acl:read", Anonymous, true },
        { "modern", 403, "Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"mesh-gateway\"",
          AclDenialKind.PermissionDenied, "service:write on \"mesh-gateway\"", Accessor, false },
        { "modern unnamed", 403, "Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'mesh:write'", AclDenialKind.PermissionDenied, "mesh:write", Accessor, false },
        { "provided token, Enterprise", 403, "Permission denied: provided token lacks permission 'service:read' on \"foobar\" in partition \"foo\" in namespace \"bar\"",
          AclDenialKind.PermissionDenied, "service:read on \"foobar\" in partition \"foo\" in namespace \"bar\"", null, false },
        { "provided token unnamed", 403, "Permission denied: provided token lacks permission 'peering:read'", AclDenialKind.PermissionDenied, "peering:read", null, false },
        { "wrapped by an RPC error", 403, "rpc error making call: Permission denied: token with AccessorID '' lacks permission 'node:read' on \"n1\"\n",
          AclDenialKind.PermissionDenied, "node:read on \"n1\"", "", false },
        { "cause form", 403, "Permission denied: simon says", AclDenialKind.PermissionDenied, null, null, false },
        { "ACL not found", 403, "ACL not found", AclDenialKind.AclNotFound, null, null, false },
        { "ACL not found wrapped", 403, "rpc error making call: ACL not found", AclDenialKind.AclNotFound, null, null, false },
        { "not bootstrapped", 403, "ACL system must be bootstrapped before making any requests that require authorization: ACL not found", AclDenialKind.AclNotBootstrapped, null, null, false },
        { "ACL disabled", 401, "ACL support disabled", AclDenialKind.AclDisabled, null, null, false },
        { "root denied", 403, "Cannot resolve root ACL", AclDenialKind.RootDenied, null, null, false },
        { "malformed policy, parse", 500, "Failed to parse ACL rules: At 1:9: illegal char", AclDenialKind.MalformedPolicy, null, null, false },
        { "malformed policy, wrapped", 500, "Unexpected response code: 500 (Invalid Policy: Failed to parse ACL rules: At 2:3: key 'x' expected start of object ('{') or assignment ('='))",
          AclDenialKind.MalformedPolicy, null, null, false },
        { "malformed policy, validate", 500, "Invalid service policy: &acl.ServiceRule{Name:\"\", Policy:\"\"}", AclDenialKind.MalformedPolicy, null, null, false },
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void TryParse_EveryConsulForm_MapsToMissingPermission(string form, int status, string body, AclDenialKind kind, string? permission, string? accessor, bool anonymous)
    {
        Assert.True(AclDenialParser.TryParse(status, body, out AclDenial? denial), form);
        Assert.Equal(kind, denial.Kind);
        Assert.Equal(status, denial.StatusCode);
        Assert.Equal(permission, denial.Permission);
        Assert.Equal(accessor, denial.AccessorId);
        Assert.Equal(anonymous, denial.IsAnonymousToken);
        Assert.False(string.IsNullOrWhiteSpace(denial.Message));
    }

    // Every wording Consul has used for one denial, with and without forwarding and client wrappers, parses to the same
    // denial. Sources (hashicorp/consul): acl/errors.go and acl/errors_test.go (named/unnamed, anonymous wording, accessor
    // wording; acl.AnonymousTokenID), acl/errors_ent_test.go (partition/namespace), agent/pool/pool.go
    // ("rpc error making call: %v", once per hop), api/api.go and api/acl_test.go ("Unexpected response code: 403 (...)").
    public static TheoryData<string, string[]> SameDenial => new()
    {
        { "anonymous, named", [
            "Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The anonymous token is used implicitly when a request does not specify a token.",
            "Permission denied: token with AccessorID '" + Anonymous + "' lacks permission 'key:read' on \"foo\"",
            "rpc error making call: Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The anonymous token is used implicitly when a request does not specify a token.",
            "rpc error making call: rpc error making call: Permission denied: token with AccessorID '" + Anonymous + "' lacks permission 'key:read' on \"foo\"\n",
            "Unexpected response code: 403 (Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The anonymous token is used implicitly when a request does not specify a token.)",
        ] },
        { "anonymous, unnamed", [
            "Permission denied: anonymous token lacks permission 'acl:read'. The anonymous token is used implicitly when a request does not specify a token.",
            "Permission denied: token with AccessorID '" + Anonymous + "' lacks permission 'acl:read'",
            "rpc error making call: Permission denied: anonymous token lacks permission 'acl:read'. The anonymous token is used implicitly when a request does not specify a token.\n",
            "Unexpected response code: 403 (Permission denied: anonymous token lacks permission 'acl:read'. The anonymous token is used implicitly when a request does not specify a token.)",
        ] },
        { "anonymous, Enterprise target", [
            "Permission denied: anonymous token lacks permission 'service:read' on \"foobar\" in partition \"foo\" in namespace \"bar\". The anonymous token is used implicitly when a request does not specify a token.",
            "Permission denied: token with AccessorID '" + Anonymous + "' lacks permission 'service:read' on \"foobar\" in partition \"foo\" in namespace \"bar\"",
        ] },
        { "token, named", [
            "Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"web\"",
            "rpc error making call: Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"web\"",
            "rpc error making call: rpc error making call: Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"web\"\n",
            "Unexpected response code: 403 (rpc error making call: Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"web\")",
        ] },
        { "provided token, unnamed", [
            "Permission denied: provided token lacks permission 'mesh:write'",
            "rpc error making call: Permission denied: provided token lacks permission 'mesh:write'",
            "Unexpected response code: 403 (Permission denied: provided token lacks permission 'mesh:write')",
        ] },
        { "1.8 cause, named", [
            "Permission denied: Missing service:write on web",
            "rpc error making call: Permission denied: Missing service:write on web",
            "Unexpected response code: 403 (Permission denied: Missing service:write on web)",
        ] },
        { "bare", [
            "Permission denied",
            "Permission denied\n",
            "rpc error making call: Permission denied",
            "rpc error making call: rpc error making call: Permission denied",
            "Unexpected response code: 403 (Permission denied)",
        ] },
    };

    [Theory]
    [MemberData(nameof(SameDenial))]
    public void TryParse_EveryWordingOfOneDenial_SameDenial(string denial, string[] bodies)
    {
        Assert.True(AclDenialParser.TryParse(403, bodies[0], out AclDenial? expected), denial);
        Assert.Null(expected.Cause);
        foreach (string body in bodies.Skip(1))
        {
            Assert.True(AclDenialParser.TryParse(403, body, out AclDenial? actual), body);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void TryParse_AnonymousUnnamed_StructuredFieldsAndMessage()
    {
        Assert.True(AclDenialParser.TryParse(403, "Permission denied: anonymous token lacks permission 'acl:read'. The anonymous token is used implicitly when a request does not specify a token.", out AclDenial? d));
        Assert.Equal((AclResource.Acl, AclAccessLevel.Read, (string?)null), (d.Resource, d.Access, d.Name));
        Assert.Equal("the request carried no token, and the anonymous token lacks acl:read; configure the gateway's token (a policy from MeshGatewayAcl.ToHcl) rather than granting it to the anonymous token", d.Message);
    }

    [Fact]
    public void TryParse_Modern_StructuredFields()
    {
        Assert.True(AclDenialParser.TryParse(403, "Permission denied: token with AccessorID '" + Accessor + "' lacks permission 'service:write' on \"mesh-gateway\"", out AclDenial? d));
        Assert.Equal((AclResource.Service, AclAccessLevel.Write, "mesh-gateway"), (d.Resource, d.Access, d.Name));
        Assert.Equal("the token with accessor ID " + Accessor + " lacks service:write on \"mesh-gateway\"; add a rule granting it to one of the token's policies (MeshGatewayAcl.ToHcl generates the gateway's policy)", d.Message);
        Assert.True(AclDenialParser.TryParse(403, "Permission denied: provided token lacks permission 'service:read' on \"a\" in partition \"p\" in namespace \"n\"", out d));
        Assert.Equal(("a", "p", "n"), (d.Name, d.Partition, d.Namespace));
    }

    [Fact]
    public void TryParse_Anonymous_MessageSaysNoTokenWasSent()
    {
        Assert.True(AclDenialParser.TryParse(403, "Permission denied: anonymous token lacks permission 'key:read' on \"foo\". The anonymous token is used implicitly when a request does not specify a token.", out AclDenial? d));
        Assert.Equal("foo", d.Name);
        Assert.StartsWith("the request carried no token", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_FreeFormCause_RedactsAnythingShapedLikeASecret()
    {
        const string Secret = "b1946ac9-2d6e-4b51-a63b-4bd3d4f0c7a1";
        Assert.True(AclDenialParser.TryParse(403, "Permission denied: token " + Secret + " is not allowed", out AclDenial? d));
        Assert.DoesNotContain(Secret, d.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Secret, d.Cause!, StringComparison.OrdinalIgnoreCase);
        Assert.True(AclDenialParser.TryParse(500, "Failed to parse ACL rules: token " + Secret, out d));
        Assert.DoesNotContain(Secret, d.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(404, "Config entry not found for \"proxy-defaults\" / \"global\"")]
    [InlineData(500, "No path to datacenter")]
    [InlineData(500, "Invalid Mesh Gateway Mode: \"x\"")]
    [InlineData(403, "")]
    [InlineData(403, null)]
    public void TryParse_NotAnAclFailure_False(int status, string? body)
    {
        Assert.False(AclDenialParser.TryParse(status, body, out AclDenial? denial));
        Assert.Null(denial);
    }
}
