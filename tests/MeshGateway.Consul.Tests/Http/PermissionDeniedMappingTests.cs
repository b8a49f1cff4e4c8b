using System.Net;
using MeshGateway.Acl;
using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Http;

public sealed class PermissionDeniedMappingTests
{
    private const string Secret = "6c0fb1a4-3b1a-4a39-9f7e-0d7f8e2b1c55";

    private static ConsulClient Client(FakeConsulHandler handler) =>
        new(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:8500"), Token = Secret, Handler = handler });

    [Theory]
    [InlineData("Permission denied: token with AccessorID 'a1b2c3d4-0000-4000-8000-000000000001' lacks permission 'service:read' on \"api\"", "service:read on \"api\"", AclResource.Service, AclAccessLevel.Read)]
    [InlineData("Permission denied: Missing service:write on mesh-gateway", "service:write on \"mesh-gateway\"", AclResource.Service, AclAccessLevel.Write)]
    [InlineData("Permission denied: provided token lacks permission 'mesh:write'", "mesh:write", AclResource.Mesh, AclAccessLevel.Write)]
    [InlineData("Permission denied: anonymous token lacks permission 'agent:read' on \"node-1\". The anonymous token is used implicitly when a request does not specify a token.", "agent:read on \"node-1\"", AclResource.Agent, AclAccessLevel.Read)]
    public async Task Send_403WithNamedPermission_ExceptionNamesItAndNeverTheToken(string body, string permission, AclResource resource, AclAccessLevel access)
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.Forbidden, body);
        using ConsulClient client = Client(handler);

        ConsulPermissionDeniedException error = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => client.GetServicesAsync());

        Assert.Equal(permission, error.MissingPermission);
        Assert.Equal((resource, access), (error.Resource, error.Access));
        Assert.Equal(AclDenialKind.PermissionDenied, error.Denial!.Kind);
        Assert.Contains(permission, error.Message, StringComparison.Ordinal);
        Assert.Contains("MeshGatewayAcl", error.Message, StringComparison.Ordinal); // the fix
        Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_Bare403PermissionDenied_SaysWhichPermissionIsUnknown()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.Forbidden, "Permission denied"); // Consul 1.8 names nothing
        using ConsulClient client = Client(handler);

        ConsulPermissionDeniedException error = await Assert.ThrowsAsync<ConsulPermissionDeniedException>(() => client.GetAgentSelfAsync());

        Assert.Null(error.MissingPermission);
        Assert.Equal(AclDenialKind.PermissionDenied, error.Denial!.Kind);
        Assert.Contains("did not say which permission", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_403AclNotBootstrapped_MappedWithFix()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.Forbidden, "ACL system must be bootstrapped before making any requests that require authorization: ACL not found");
        using ConsulClient client = Client(handler);

        ConsulAclNotFoundException error = await Assert.ThrowsAsync<ConsulAclNotFoundException>(() => client.GetServicesAsync());

        Assert.Equal(AclDenialKind.AclNotBootstrapped, error.Denial!.Kind);
        Assert.Contains("consul acl bootstrap", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
    }
}
