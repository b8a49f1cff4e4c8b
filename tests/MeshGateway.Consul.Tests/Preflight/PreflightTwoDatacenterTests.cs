using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Preflight;

[Collection("consul-dc1-dc2")]
public sealed class PreflightTwoDatacenterTests(TwoDatacenterFixture fixture)
{
    [Fact]
    public async Task GatherAsync_SecondaryDatacenter_ReportsPrimaryWanJoinConnectAndTrustDomain()
    {
        using ConsulClient client = fixture.Dc2.CreateClient();

        ConsulPreflightFacts facts = await ConsulPreflight.GatherAsync(client);

        Assert.Empty(facts.Errors);
        Assert.Equal(("dc2", "dc1", "1.8.7"), (facts.Datacenter, facts.PrimaryDatacenter, facts.Version));
        Assert.Equal(["dc1", "dc2"], facts.Datacenters.Order(StringComparer.Ordinal).ToArray());
        Assert.Equal(fixture.TrustDomain, facts.TrustDomain);
        Assert.True(facts.ConnectEnabled);
        Assert.True(facts.CentralServiceConfig);
        Assert.Equal(fixture.Dc2.GrpcPort, facts.GrpcPort);
        Assert.Equal((ConsulPermissionProbe.Allowed, ConsulPermissionProbe.Allowed), (facts.AgentRead, facts.ServiceRead));
    }
}

[Collection("consul-dc1")]
public sealed class PreflightSingleDatacenterTests(SingleDatacenterFixture fixture)
{
    [Fact]
    public async Task GatherAsync_LoneDatacenter_ShowsNoWanJoinAndAbsentProxyDefaults()
    {
        using ConsulClient client = fixture.Agent.CreateClient();

        ConsulPreflightFacts facts = await ConsulPreflight.GatherAsync(client);

        Assert.Equal(["dc1"], facts.Datacenters.ToArray());
        Assert.Equal("dc1", facts.PrimaryDatacenter);
        Assert.Null(facts.ProxyDefaults);
        Assert.Empty(facts.Errors);
    }
}

[Collection("consul-acl")]
public sealed class PreflightAclTests(AclAgentFixture fixture)
{
    [Fact]
    public async Task GatherAsync_TokenLackingServiceAndAgentRead_ReportsDeniedAndFiltered()
    {
        string token = await fixture.CreateTokenAsync("""service "mesh-gateway" { policy = "write" }""");
        using ConsulClient client = fixture.Agent.CreateClient(token);

        ConsulPreflightFacts facts = await ConsulPreflight.GatherAsync(client);

        Assert.Equal(ConsulPermissionProbe.Denied, facts.AgentRead);
        Assert.Equal(ConsulPermissionProbe.Filtered, facts.ServiceRead);
        Assert.StartsWith("Permission denied", Assert.IsType<ConsulPermissionDeniedException>(facts.Errors["agent/self"]).Body);
        Assert.Equal(["dc1"], facts.Datacenters.ToArray()); // needs no ACL
        Assert.NotNull(facts.TrustDomain);                 // needs no ACL
    }

    [Fact]
    public async Task GatherAsync_UnknownToken_ReportsTokenNotFound()
    {
        using ConsulClient client = fixture.Agent.CreateClient(Guid.NewGuid().ToString());

        ConsulPreflightFacts facts = await ConsulPreflight.GatherAsync(client);

        Assert.Equal((ConsulPermissionProbe.TokenNotFound, ConsulPermissionProbe.TokenNotFound), (facts.AgentRead, facts.ServiceRead));
    }
}
