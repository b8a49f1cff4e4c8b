using MeshGateway.Acl;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Preflight;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Preflight;

/// <summary>
/// Three dev agents that are deliberately not WAN-joined: <c>dca</c> (its own primary), <c>dcb</c> (names <c>dca</c> as
/// primary but never joined it) and <c>dcc</c> (names a primary <c>dc-gone</c> that does not exist).
/// </summary>
public sealed class UnjoinedDatacentersFixture : IAsyncLifetime
{
    internal ConsulAgent A { get; private set; } = null!;

    internal ConsulAgent B { get; private set; } = null!;

    internal ConsulAgent C { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        try
        {
            A = await ConsulAgent.StartAsync(new ConsulAgentSettings("dca"));
            B = await ConsulAgent.StartAsync(new ConsulAgentSettings("dcb") { PrimaryDatacenter = "dca" });
            C = await ConsulAgent.StartAsync(new ConsulAgentSettings("dcc") { PrimaryDatacenter = "dc-gone" });
            await ConsulWait.TrustDomainAsync(A);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        foreach (ConsulAgent? agent in new[] { C, B, A })
        {
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }
        }
    }
}

[CollectionDefinition("consul-unjoined")]
public sealed class UnjoinedDatacentersGroup : ICollectionFixture<UnjoinedDatacentersFixture>;

[Collection("consul-unjoined")]
public sealed class PreflightUnjoinedTests(UnjoinedDatacentersFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task RunAsync_TwoDatacentersNotWanJoined_ReportsWanJoinErrorsBothWays()
    {
        using ConsulClient a = fixture.A.CreateClient();
        using ConsulClient b = fixture.B.CreateClient();

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(a, new ConsulPreflightOptions { OtherDatacenters = [b] });
        output.WriteLine(report.ToString());

        Assert.True(report.HasErrors);
        PreflightFinding[] wan = [.. report.Findings.Where(f => f.Check == PreflightCheck.WanJoin)];
        Assert.Equal(["dca", "dcb"], wan.Select(f => f.Datacenter ?? string.Empty).Order(StringComparer.Ordinal).ToArray());
        Assert.All(wan, f => Assert.Equal(PreflightSeverity.Error, f.Severity));
        Assert.Contains("\"dcb\"", wan.Single(f => f.Datacenter == "dca").Message, StringComparison.Ordinal);
        Assert.Contains("retry_join_wan", wan[0].Fix, StringComparison.Ordinal);
        Assert.DoesNotContain(report.Findings, f => f.Message.Contains("disagree", StringComparison.Ordinal)); // both name dca
        PreflightFinding primary = Assert.Single(report.Findings, f => f.Check == PreflightCheck.PrimaryReachable);
        Assert.Equal("dcb", primary.Datacenter); // dcb cannot reach its primary
        Assert.DoesNotContain(report.Findings, f => f.Check == PreflightCheck.PrimaryDatacenter);
        Assert.Equal(["dca"], report.ClusterFacts.Datacenters[0].KnownDatacenters!.ToArray());
    }

    [Fact]
    public async Task RunAsync_SecondaryWhosePrimaryIsMissing_ReportsPrimaryUnreachable()
    {
        using ConsulClient c = fixture.C.CreateClient();

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(c);
        output.WriteLine(report.ToString());

        PreflightFinding[] primary = [.. report.Findings.Where(f => f.Check == PreflightCheck.PrimaryDatacenter)];
        PreflightFinding unreachable = Assert.Single(report.Findings, f => f.Check == PreflightCheck.PrimaryReachable);
        Assert.Equal(PreflightSeverity.Error, unreachable.Severity);
        Assert.DoesNotContain(primary, f => f.Severity == PreflightSeverity.Error);
        Assert.Equal("dcc", unreachable.Datacenter);
        Assert.Contains("\"dc-gone\" is not among the datacenters this agent knows over the WAN", unreachable.Message, StringComparison.Ordinal);
        Assert.Contains("primary_datacenter", unreachable.Fix, StringComparison.Ordinal);
        Assert.Contains(primary, f => f.Severity == PreflightSeverity.Warning && f.Message.Contains("\"dc-gone\" is not among the datacenters checked", StringComparison.Ordinal)); // the model's own check
        Assert.Equal("dc-gone", report.Facts.PrimaryDatacenter);
        Assert.Equal(["dcc"], report.Facts.Datacenters.ToArray());
        Assert.True(report.HasErrors);
    }

    [Fact]
    public async Task RunAsync_WanFederationOnAPlainSecondary_ReportsTheMissingFlagTlsAndPrimaryGateways()
    {
        using ConsulClient b = fixture.B.CreateClient();

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(b, new ConsulPreflightOptions { WanFederation = true });
        output.WriteLine(report.ToString());

        PreflightFinding[] federation = [.. report.Findings.Where(f => f.Check == PreflightCheck.WanFederation)];
        Assert.All(federation, f => Assert.Equal("dcb", f.Datacenter));
        Assert.Contains(federation, f => f.Severity == PreflightSeverity.Error && f.Message.Contains("enable_mesh_gateway_wan_federation is off", StringComparison.Ordinal));
        Assert.Contains(federation, f => f.Severity == PreflightSeverity.Error && f.Message.Contains("verify_outgoing is off", StringComparison.Ordinal));
        Assert.Contains(federation, f => f.Severity == PreflightSeverity.Error && f.Message.Contains("no primary_gateways", StringComparison.Ordinal) && f.Fix.Contains("dca", StringComparison.Ordinal));
        Assert.Equal(false, report.Facts.VerifyOutgoing);
        Assert.Equal(true, report.Facts.Server);

        // The same agent without the mode: none of these.
        ConsulPreflightReport plain = await ConsulPreflight.RunAsync(b);
        Assert.DoesNotContain(plain.Findings, f => f.Check == PreflightCheck.WanFederation);
    }

    [Fact]
    public async Task RunAsync_DatacentersDisagreeOnPrimary_ReportsPrimaryError()
    {
        using ConsulClient a = fixture.A.CreateClient();
        using ConsulClient c = fixture.C.CreateClient();

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(a, new ConsulPreflightOptions { OtherDatacenters = [c] });

        PreflightFinding primary = Assert.Single(report.Findings, f => f.Check == PreflightCheck.PrimaryDatacenter && f.Datacenter is null);
        Assert.Equal(PreflightSeverity.Error, primary.Severity);
        Assert.Contains("disagree", primary.Message, StringComparison.Ordinal);
        Assert.Contains("dcc use \"dc-gone\"", primary.Message, StringComparison.Ordinal);
        Assert.Contains("primary_datacenter", primary.Fix, StringComparison.Ordinal);
    }
}

[Collection("consul-dc1-dc2")]
public sealed class PreflightFederatedTests(TwoDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task RunAsync_WanJoinedDatacentersSharingPrimary_NoClusterErrors()
    {
        using ConsulClient dc1 = fixture.Dc1.CreateClient();
        using ConsulClient dc2 = fixture.Dc2.CreateClient();

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(dc1, new ConsulPreflightOptions { OtherDatacenters = [dc2] });
        output.WriteLine(report.ToString());

        Assert.DoesNotContain(report.Findings, f => f.Severity == PreflightSeverity.Error);
        Assert.Equal(["dc1", "dc2"], report.ClusterFacts.Datacenters.Select(d => d.Name).ToArray());
        Assert.All(report.TokenPermissions, p => Assert.Equal(ConsulTokenPermissionStatus.Granted, p.Status)); // ACLs disabled
        Assert.False(report.HasErrors);
    }
}

[Collection("consul-acl")]
public sealed class PreflightTokenTests(AclAgentFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task RunAsync_TokenLackingServiceRead_ReportsItMissingWithFix()
    {
        string token = await fixture.CreateTokenAsync("""service "mesh-gateway" { policy = "write" }""");
        using ConsulClient client = fixture.Agent.CreateClient(token);

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(client, new ConsulPreflightOptions { Acl = new MeshGatewayAclOptions { Peering = false } });
        output.WriteLine(report.ToString());

        ConsulTokenPermissionCheck serviceRead = report.TokenPermissions.Single(p => p.Requirement is { Resource: AclResource.Service, Access: AclAccessLevel.Read });
        Assert.Equal(ConsulTokenPermissionStatus.Missing, serviceRead.Status);
        Assert.True(serviceRead.IsError);
        Assert.Contains("removed by ACLs", serviceRead.Evidence, StringComparison.Ordinal);
        Assert.Contains("service:read", serviceRead.Fix, StringComparison.Ordinal);
        ConsulTokenPermissionCheck write = report.TokenPermissions.Single(p => p.Requirement is { Resource: AclResource.Service, Access: AclAccessLevel.Write });
        Assert.Equal(ConsulTokenPermissionStatus.Granted, write.Status); // leaf-certificate probe
        ConsulTokenPermissionCheck agent = report.TokenPermissions.Single(p => p.Requirement.Resource == AclResource.Agent);
        Assert.Equal((ConsulTokenPermissionStatus.Missing, false), (agent.Status, agent.IsError)); // optional
        PreflightFinding[] tokenFindings = [.. report.Findings.Where(f => f.Check == PreflightCheck.TokenPermissions)];
        Assert.Contains(tokenFindings, f => f.Severity == PreflightSeverity.Error && f.Message.Contains(serviceRead.Requirement.Permission, StringComparison.Ordinal));
        Assert.Contains(tokenFindings, f => f.Severity == PreflightSeverity.Warning && f.Message.Contains(agent.Requirement.Permission, StringComparison.Ordinal));
        Assert.True(report.HasErrors);
        Assert.DoesNotContain(token, report.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_TokenWithGatewayPermissions_ProbedPermissionsGranted()
    {
        string token = await fixture.CreateTokenAsync("""
            service "mesh-gateway" { policy = "write" }
            service_prefix "" { policy = "read" }
            node_prefix "" { policy = "read" }
            agent_prefix "" { policy = "read" }
            """);
        using ConsulClient client = fixture.Agent.CreateClient(token);

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(client, new ConsulPreflightOptions { Acl = new MeshGatewayAclOptions { Peering = true } });
        output.WriteLine(report.ToString());

        Assert.All(report.TokenPermissions.Where(p => p.Requirement.Resource is AclResource.Service or AclResource.Agent),
            p => Assert.Equal(ConsulTokenPermissionStatus.Granted, p.Status));
        Assert.Equal(ConsulTokenPermissionStatus.NotApplicable, report.TokenPermissions.Single(p => p.Requirement.Resource == AclResource.Mesh).Status); // Consul 1.8
        Assert.All(report.TokenPermissions.Where(p => p.Requirement.Resource == AclResource.Peering), p => Assert.Equal(ConsulTokenPermissionStatus.NotApplicable, p.Status));
        Assert.Equal(ConsulTokenPermissionStatus.Unknown, report.TokenPermissions.Single(p => p.Requirement.Resource == AclResource.Node).Status);
        Assert.DoesNotContain(report.TokenPermissions, p => p.IsError);
    }
}

[Collection("consul-acl")]
public sealed class PreflightTokenPolicyTests(AclAgentFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task RunAsync_TokenAbleToReadItsPolicies_EvaluatesUnprobedPermissions()
    {
        // acl:read lets the preflight read the policies; node:read is missing and no probe could tell.
        string token = await fixture.CreateTokenAsync("""
            service "mesh-gateway" { policy = "write" }
            service_prefix "" { policy = "read" }
            acl = "read"
            """);
        using ConsulClient client = fixture.Agent.CreateClient(token);

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(client, new ConsulPreflightOptions { Acl = new MeshGatewayAclOptions { Peering = false, AgentRead = false } });
        output.WriteLine(report.ToString());

        ConsulTokenPermissionCheck node = report.TokenPermissions.Single(p => p.Requirement.Resource == AclResource.Node);
        Assert.Equal(ConsulTokenPermissionStatus.Missing, node.Status);
        Assert.StartsWith("from the token's policies", node.Evidence, StringComparison.Ordinal);
        Assert.True(node.IsError);
        Assert.Contains("node:read", node.Fix, StringComparison.Ordinal);
        Assert.Equal(ConsulTokenPermissionStatus.Granted, report.TokenPermissions.Single(p => p.Requirement is { Resource: AclResource.Service, Access: AclAccessLevel.Read }).Status);
        Assert.True(report.HasErrors);
    }

    [Fact]
    public async Task RunAsync_TokenWithServiceIdentityOnly_EvaluatedWithoutAclRead()
    {
        System.Text.Json.Nodes.JsonNode? created = await fixture.Agent.PutJsonAsync("/v1/acl/token",
            """{"Description": "identity token", "ServiceIdentities": [{"ServiceName": "mesh-gateway"}]}""");
        string token = created!["SecretID"]!.GetValue<string>();
        using ConsulClient client = fixture.Agent.CreateClient(token);

        ConsulPreflightReport report = await ConsulPreflight.RunAsync(client, new ConsulPreflightOptions { Acl = new MeshGatewayAclOptions { Peering = false } });
        output.WriteLine(report.ToString());

        ConsulTokenPermissionCheck node = report.TokenPermissions.Single(p => p.Requirement.Resource == AclResource.Node);
        Assert.Equal(ConsulTokenPermissionStatus.Granted, node.Status);
        Assert.Contains("service-identity:mesh-gateway", node.Evidence, StringComparison.Ordinal);
        Assert.Equal(ConsulTokenPermissionStatus.Granted, report.TokenPermissions.Single(p => p.Requirement is { Resource: AclResource.Service, Access: AclAccessLevel.Write }).Status);
        Assert.Equal(ConsulTokenPermissionStatus.Granted, report.TokenPermissions.Single(p => p.Requirement is { Resource: AclResource.Service, Access: AclAccessLevel.Read }).Status);
        // Without agent:read the Consul version is unknown, so mesh:write (1.11+) cannot be ruled out as not applicable:
        // the identity does not grant it, and that is the only blocking gap reported.
        ConsulTokenPermissionCheck blocking = Assert.Single(report.TokenPermissions, p => p.IsError);
        Assert.Equal(AclResource.Mesh, blocking.Requirement.Resource);
        Assert.Null(report.Facts.Version);
        Assert.DoesNotContain(token, report.ToString(), StringComparison.Ordinal);
    }
}
