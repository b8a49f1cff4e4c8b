using MeshGateway.Preflight;

namespace MeshGateway.Tests.Preflight;

public sealed class PreflightCheckerTests
{
    private static DatacenterFacts Good(string name, params string[] known) => new()
    {
        Name = name,
        ConsulVersion = "1.15.4",
        ConnectEnabled = true,
        PrimaryDatacenter = "dc1",
        GrpcPort = 8502,
        GrpcTlsPort = -1,
        CentralServiceConfigEnabled = true,
        KnownDatacenters = known.Length == 0 ? ["dc1", "dc2"] : known,
        PeeringEnabled = true,
    };

    private static ClusterFacts Healthy => new() { Datacenters = [Good("dc1"), Good("dc2")] };

    private static readonly PeeringFacts s_goodPeering = new()
    {
        ExportedServicesPresent = true,
        ExportingClusterHasMeshGateway = true,
        UsesLocalMode = true,
        ImportingClusterHasMeshGateway = true,
    };

    [Fact]
    public void Check_AllPrerequisitesMet_NoFindings()
    {
        Assert.Empty(PreflightChecker.Check(Healthy));
        Assert.Empty(PreflightChecker.Check(Healthy with
        {
            Peering = s_goodPeering,
            ModeSettings = [new(GatewayModeSource.ProxyDefaults, "proxy-defaults/global", "local"), new(GatewayModeSource.Upstream, "service web, upstream api", "")],
        }));
    }

    public static TheoryData<string, ClusterFacts, PreflightCheck, PreflightSeverity, string?, string> Findings => new()
    {
        { "old Consul", Healthy with { Datacenters = [Good("dc1") with { ConsulVersion = "1.5.3" }, Good("dc2")] },
          PreflightCheck.ConsulVersion, PreflightSeverity.Error, "dc1", "older than 1.6" },
        { "unknown version", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { ConsulVersion = null }] },
          PreflightCheck.ConsulVersion, PreflightSeverity.Warning, "dc2", "Could not determine the Consul version" },
        { "garbage version", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { ConsulVersion = "banana" }] },
          PreflightCheck.ConsulVersion, PreflightSeverity.Warning, "dc2", "\"banana\" is not a version number" },
        { "Connect off", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { ConnectEnabled = false }] },
          PreflightCheck.ConnectEnabled, PreflightSeverity.Error, "dc2", "Connect (the service mesh) is disabled" },
        { "Connect unknown", Healthy with { Datacenters = [Good("dc1") with { ConnectEnabled = null }, Good("dc2")] },
          PreflightCheck.ConnectEnabled, PreflightSeverity.Warning, "dc1", "Could not determine whether Connect is enabled" },
        { "duplicate names", Healthy with { Datacenters = [Good("dc1", "dc1", "DC1"), Good("DC1", "dc1", "DC1")] },
          PreflightCheck.UniqueDatacenterNames, PreflightSeverity.Error, "DC1", "Two datacenters are named \"dc1\" and \"DC1\"" },
        { "primaries differ", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { PrimaryDatacenter = "dc2" }] },
          PreflightCheck.PrimaryDatacenter, PreflightSeverity.Error, null, "dc1 use \"dc1\"; dc2 use \"dc2\"" },
        { "primary unknown", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { PrimaryDatacenter = "" }] },
          PreflightCheck.PrimaryDatacenter, PreflightSeverity.Warning, "dc2", "Could not determine the primary datacenter" },
        { "primary not checked", new ClusterFacts { Datacenters = [Good("dc2", "dc2") with { PrimaryDatacenter = "dc9" }] },
          PreflightCheck.PrimaryDatacenter, PreflightSeverity.Warning, null, "\"dc9\" is not among the datacenters checked" },
        { "gRPC off", Healthy with { Datacenters = [Good("dc1") with { GrpcPort = -1, GrpcTlsPort = null }, Good("dc2")] },
          PreflightCheck.GrpcPort, PreflightSeverity.Error, "dc1", "gRPC port is disabled" },
        { "gRPC unknown", Healthy with { Datacenters = [Good("dc1") with { GrpcPort = null, GrpcTlsPort = null }, Good("dc2")] },
          PreflightCheck.GrpcPort, PreflightSeverity.Warning, "dc1", "Could not determine whether the gRPC port is enabled" },
        { "central config off with a global mode", Healthy with
          {
              Datacenters = [Good("dc1"), Good("dc2") with { CentralServiceConfigEnabled = false }],
              ModeSettings = [new(GatewayModeSource.ProxyDefaults, "proxy-defaults/global", "remote")],
          },
          PreflightCheck.CentralServiceConfig, PreflightSeverity.Error, "dc2", "proxy-defaults/global sets a mesh-gateway mode" },
        { "central config unknown with a service-level mode", Healthy with
          {
              Datacenters = [Good("dc1") with { CentralServiceConfigEnabled = null }, Good("dc2")],
              ModeSettings = [new(GatewayModeSource.ServiceDefaults, "service-defaults/web", "local")],
          },
          PreflightCheck.CentralServiceConfig, PreflightSeverity.Warning, "dc1", "service-defaults/web sets a gateway mode" },
        { "not WAN-joined", Healthy with { Datacenters = [Good("dc1", "dc1"), Good("dc2")] },
          PreflightCheck.WanJoin, PreflightSeverity.Error, "dc1", "does not see \"dc2\" over the WAN" },
        { "WAN membership unknown", Healthy with { Datacenters = [Good("dc1"), Good("dc2") with { KnownDatacenters = null }] },
          PreflightCheck.WanJoin, PreflightSeverity.Warning, "dc2", "Could not determine which datacenters are WAN-joined" },
        { "unknown mode spelling", Healthy with { ModeSettings = [new(GatewayModeSource.ServiceDefaults, "service-defaults/web", "Remote")] },
          PreflightCheck.GatewayModeValue, PreflightSeverity.Error, null, "\"Remote\", which is not a Consul mode (values are case-sensitive and must not contain spaces: \"remote\")" },
        { "unknown mode value", Healthy with { ModeSettings = [new(GatewayModeSource.Upstream, "service web, upstream api", "bogus")] },
          PreflightCheck.GatewayModeValue, PreflightSeverity.Error, null, "service web, upstream api sets MeshGateway.Mode to \"bogus\"" },
        { "peering on old Consul", Healthy with { Peering = s_goodPeering, Datacenters = [Good("dc1") with { ConsulVersion = "1.12.9" }, Good("dc2")] },
          PreflightCheck.PeeringVersion, PreflightSeverity.Error, "dc1", "has no cluster peering" },
        { "peering beta", Healthy with { Peering = s_goodPeering, Datacenters = [Good("dc1") with { ConsulVersion = "v1.13.2+ent" }, Good("dc2")] },
          PreflightCheck.PeeringVersion, PreflightSeverity.Warning, "dc1", "beta feature" },
        { "peering disabled", Healthy with { Peering = s_goodPeering, Datacenters = [Good("dc1"), Good("dc2") with { PeeringEnabled = false }] },
          PreflightCheck.PeeringEnabled, PreflightSeverity.Error, "dc2", "Cluster peering is disabled" },
        { "peering unknown", Healthy with { Peering = s_goodPeering, Datacenters = [Good("dc1"), Good("dc2") with { PeeringEnabled = null }] },
          PreflightCheck.PeeringEnabled, PreflightSeverity.Warning, "dc2", "Could not determine whether peering is enabled" },
        { "nothing exported", Healthy with { Peering = s_goodPeering with { ExportedServicesPresent = false } },
          PreflightCheck.ExportedServices, PreflightSeverity.Warning, null, "No exported-services config entry" },
        { "exports unknown", Healthy with { Peering = s_goodPeering with { ExportedServicesPresent = null } },
          PreflightCheck.ExportedServices, PreflightSeverity.Warning, null, "Could not determine whether services are exported" },
        { "no exporting gateway", Healthy with { Peering = s_goodPeering with { ExportingClusterHasMeshGateway = false } },
          PreflightCheck.PeeringGateway, PreflightSeverity.Error, null, "The exporting cluster has no mesh gateway" },
        { "exporting gateway unknown", Healthy with { Peering = s_goodPeering with { ExportingClusterHasMeshGateway = null } },
          PreflightCheck.PeeringGateway, PreflightSeverity.Warning, null, "Could not determine whether the exporting cluster has a mesh gateway" },
        { "local mode without importing gateway", Healthy with { Peering = s_goodPeering with { ImportingClusterHasMeshGateway = false } },
          PreflightCheck.PeeringGateway, PreflightSeverity.Error, null, "use mode local, but the importing cluster has no mesh gateway" },
        { "local mode, importing gateway unknown", Healthy with { Peering = s_goodPeering with { ImportingClusterHasMeshGateway = null } },
          PreflightCheck.PeeringGateway, PreflightSeverity.Warning, null, "importing cluster has a mesh gateway (needed by mode local)" },
    };

    [Theory]
    [MemberData(nameof(Findings))]
    public void Check_OnePrerequisiteBroken_ExactlyThatFindingWithAFix(string scenario, ClusterFacts facts, PreflightCheck check, PreflightSeverity severity, string? datacenter, string fragment)
    {
        PreflightFinding finding = Assert.Single(PreflightChecker.Check(facts));
        Assert.True(check == finding.Check, scenario + ": " + finding);
        Assert.Equal(severity, finding.Severity);
        Assert.Equal(datacenter, finding.Datacenter);
        Assert.Contains(fragment, finding.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(finding.Fix));
    }

    private static DatacenterFacts Federating(string name, string[]? primaryGateways = null) => Good(name) with
    {
        IsServer = true,
        MeshGatewayWanFederationEnabled = true,
        VerifyIncoming = true,
        VerifyOutgoing = true,
        VerifyServerHostname = true,
        PrimaryGateways = primaryGateways ?? (name == "dc1" ? [] : ["192.0.2.10:8443"]),
    };

    private static ClusterFacts FederatingCluster(DatacenterFacts? dc2 = null) =>
        new() { Datacenters = [Federating("dc1"), dc2 ?? Federating("dc2")], WanFederationThroughGateways = true };

    [Fact]
    public void Check_WanFederationThroughGateways_AllSettingsRight_NoFindings() => Assert.Empty(PreflightChecker.Check(FederatingCluster()));

    public static TheoryData<string, DatacenterFacts, PreflightSeverity, string> WanFederationFindings => new()
    {
        { "flag off", Federating("dc2") with { MeshGatewayWanFederationEnabled = false }, PreflightSeverity.Error, "enable_mesh_gateway_wan_federation is off" },
        { "no outgoing TLS", Federating("dc2") with { VerifyOutgoing = false }, PreflightSeverity.Error, "without outgoing TLS" },
        { "no incoming TLS", Federating("dc2") with { VerifyIncoming = false }, PreflightSeverity.Warning, "verify_incoming is off" },
        { "no server host name check", Federating("dc2") with { VerifyServerHostname = false }, PreflightSeverity.Warning, "verify_server_hostname is off" },
        { "secondary without primary_gateways", Federating("dc2", primaryGateways: []), PreflightSeverity.Error, "has no primary_gateways" },
        { "a client agent", Federating("dc2") with { IsServer = false }, PreflightSeverity.Warning, "is a client" },
    };

    [Theory]
    [MemberData(nameof(WanFederationFindings))]
    public void Check_WanFederationSettingWrong_ExactlyThatFindingWithAFix(string scenario, DatacenterFacts dc2, PreflightSeverity severity, string fragment)
    {
        PreflightFinding finding = Assert.Single(PreflightChecker.Check(FederatingCluster(dc2)));
        Assert.True(finding.Check == PreflightCheck.WanFederation, scenario + ": " + finding);
        Assert.Equal(severity, finding.Severity);
        Assert.Equal("dc2", finding.Datacenter);
        Assert.Contains(fragment, finding.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(finding.Fix));
    }

    [Fact]
    public void Check_WanFederationSettingsWrong_NotCheckedUnlessTheGatewayFederates() =>
        Assert.Empty(PreflightChecker.Check(FederatingCluster(Federating("dc2") with { VerifyOutgoing = false, PrimaryGateways = [] }) with { WanFederationThroughGateways = false }));

    [Fact]
    public void Check_NothingKnown_ReportsEveryUnknownNeverAnError()
    {
        var facts = new ClusterFacts { Datacenters = [new DatacenterFacts { Name = "dc1" }, new DatacenterFacts { Name = "dc2" }], Peering = new PeeringFacts() };
        IReadOnlyList<PreflightFinding> findings = PreflightChecker.Check(facts);
        Assert.All(findings, f => Assert.Equal(PreflightSeverity.Warning, f.Severity));
        Assert.All(findings, f => Assert.StartsWith("Could not determine", f.Message, StringComparison.Ordinal));
        Assert.Equal(
            [PreflightCheck.ConsulVersion, PreflightCheck.ConnectEnabled, PreflightCheck.GrpcPort, PreflightCheck.PrimaryDatacenter, PreflightCheck.WanJoin, PreflightCheck.PeeringEnabled, PreflightCheck.ExportedServices, PreflightCheck.PeeringGateway],
            findings.Select(f => f.Check).Distinct());
    }

    [Fact]
    public void Check_SingleDatacenter_NoWanJoinCheck()
        => Assert.Empty(PreflightChecker.Check(new ClusterFacts { Datacenters = [Good("dc1", "dc1") with { KnownDatacenters = null }] }));

    [Theory]
    [InlineData("1.8.7", 1, 8, 7)]
    [InlineData("v1.16.0", 1, 16, 0)]
    [InlineData("1.15.2+ent", 1, 15, 2)]
    [InlineData("1.14.0-rc1", 1, 14, 0)]
    [InlineData(" 1.13 ", 1, 13, 0)]
    public void TryParseConsulVersion_ConsulSpellings_Parsed(string text, int major, int minor, int patch)
    {
        Assert.True(PreflightChecker.TryParseConsulVersion(text, out Version version));
        Assert.Equal(new Version(major, minor, patch), version);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("1")]
    [InlineData("1.x.2")]
    [InlineData("1.2.3.4")]
    [InlineData("-1.2.3")]
    public void TryParseConsulVersion_NotAVersion_False(string? text)
        => Assert.False(PreflightChecker.TryParseConsulVersion(text, out _));

    [Fact]
    public void Finding_ToString_HasSeverityDatacenterMessageAndFix()
        => Assert.Equal("error [dc1]: m Fix: f", new PreflightFinding(PreflightCheck.GrpcPort, PreflightSeverity.Error, "dc1", "m", "f").ToString());
}
