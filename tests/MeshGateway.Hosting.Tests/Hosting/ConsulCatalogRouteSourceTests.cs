using System.Net;
using MeshGateway.Consul;
using MeshGateway.Hosting;
using MeshGateway.Preflight;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshGateway.Tests.Hosting;

/// <summary>How the Hosting options map onto the Consul package's route table source and registrar.</summary>
public sealed class ConsulCatalogRouteSourceTests
{
    [Fact]
    public void SourceOptionsFor_HostingOptions_MapsConnectSettingsDatacenterPartitionAndStartupTimeout()
    {
        var options = new MeshGatewayOptions { ConnectTimeout = TimeSpan.FromMilliseconds(1500), ConnectAttempts = 4 };
        options.Consul.Datacenter = "dc7";
        options.Consul.Partition = "team-a";
        options.Consul.StartupTimeout = TimeSpan.FromSeconds(9);

        ConsulRouteTableSourceOptions mapped = ConsulCatalogRouteSource.SourceOptionsFor(options);

        Assert.Equal((TimeSpan.FromMilliseconds(1500), 4, "team-a"), (mapped.Routes.ConnectTimeout, mapped.Routes.MaxConnectAttempts, mapped.Routes.Partition));
        Assert.Equal("dc7", mapped.Watcher.Datacenter);
        Assert.Equal(TimeSpan.FromSeconds(9), mapped.StartupTimeout);
        Assert.Equal(MeshGateway.Routing.OutlierDetection.Default, mapped.Routes.OutlierDetection);
    }

    [Fact]
    public void SourceOptionsFor_OutlierDetection_MapsEverySetting()
    {
        var options = new MeshGatewayOptions();
        options.OutlierDetection.ConsecutiveFailures = 3;
        options.OutlierDetection.BaseEjectionTime = TimeSpan.FromSeconds(5);
        options.OutlierDetection.MaxEjectionTime = TimeSpan.FromSeconds(50);
        options.OutlierDetection.MaxEjectionPercent = 40;
        options.OutlierDetection.Interval = TimeSpan.FromSeconds(2);

        MeshGateway.Routing.OutlierDetection mapped = ConsulCatalogRouteSource.SourceOptionsFor(options).Routes.OutlierDetection;

        Assert.Equal((3, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(50), 40, TimeSpan.FromSeconds(2)), (mapped.ConsecutiveFailures, mapped.BaseEjectionTime, mapped.MaxEjectionTime, mapped.MaxEjectionPercent, mapped.Interval));
    }

    [Fact]
    public void SourceAndRegistration_RemoteTcpKeepalive_ReachClustersAndProxyConfig()
    {
        var options = new MeshGatewayOptions();
        Assert.Null(ConsulCatalogRouteSource.SourceOptionsFor(options).Routes.RemoteGatewayTcpKeepAlive);
        options.RemoteTcpKeepalive.Enabled = true;
        options.RemoteTcpKeepalive.Time = 120;
        options.RemoteTcpKeepalive.Interval = 60;

        MeshGateway.Routing.TcpKeepAlive? mapped = ConsulCatalogRouteSource.SourceOptionsFor(options).Routes.RemoteGatewayTcpKeepAlive;
        ConsulGatewayRegistrationOptions registration = ConsulCatalogRouteSource.RegistrationFor(options, [new MeshGatewayListenerAddress("default", new IPEndPoint(IPAddress.Loopback, 8443))]);

        Assert.Equal(new MeshGateway.Routing.TcpKeepAlive { Time = 120, Interval = 60 }, mapped);
        Assert.Equal(mapped, registration.RemoteTcpKeepAlive);
    }

    [Fact]
    public void ClientOptionsFor_EmptyStrings_MeanNotSet()
    {
        var consul = new MeshGatewayOptions().Consul;
        consul.Address = "http://127.0.0.1:8501";
        consul.Token = string.Empty;
        consul.Datacenter = string.Empty;
        consul.Partition = "team-a";

        ConsulClientOptions mapped = ConsulCatalogRouteSource.ClientOptionsFor(consul);

        Assert.Equal(new Uri("http://127.0.0.1:8501"), mapped.Address);
        Assert.Equal((null, null, null, "team-a"), (mapped.Token, mapped.TokenFile, mapped.Datacenter, mapped.Partition));
    }

    [Fact]
    public void ClientOptionsFor_ConnectionOptions_AreMappedAndConsulAddressFormsParse()
    {
        var consul = new MeshGatewayOptions().Consul;
        consul.Address = "10.0.0.9:8501";
        consul.UseHttps = true;
        consul.CaPath = "/etc/consul/cas";
        consul.ClientCertificateFile = "/etc/consul/c.pem";
        consul.ClientKeyFile = "/etc/consul/k.pem";
        consul.TlsServerName = "server.dc1.consul";
        consul.VerifyServerCertificate = false;
        consul.MaxConnections = 12;

        ConsulClientOptions mapped = ConsulCatalogRouteSource.ClientOptionsFor(consul);

        Assert.Equal(new Uri("http://10.0.0.9:8501"), mapped.Address); // upgraded to https by UseHttps in the client
        Assert.Equal((true, "/etc/consul/cas", "/etc/consul/c.pem", "/etc/consul/k.pem", "server.dc1.consul", false, 12),
            (mapped.UseHttps, mapped.CaPath, mapped.ClientCertificateFile, mapped.ClientKeyFile, mapped.TlsServerName, mapped.VerifyServerCertificate, mapped.MaxConnections));
        Assert.Null(ConsulCatalogRouteSource.ClientOptionsFor(new MeshGatewayOptions().Consul).Address);
    }

    [Fact]
    public void CrossValidator_AddressWithCredentials_FailsWithoutShowingThem()
    {
        var options = new MeshGatewayOptions();
        options.Consul.Address = "http://ops:s3cr3t@127.0.0.1:8500";
        options.Consul.ClientCertificateFile = "/c.pem";

        ValidateOptionsResult result = new MeshGatewayOptionsCrossValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("credentials", result.FailureMessage);
        Assert.Contains("ClientKeyFile", result.FailureMessage);
        Assert.DoesNotContain("s3cr3t", result.FailureMessage);
        Assert.DoesNotContain("ops:", result.FailureMessage);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void PeeringOption_MapsToTheWatcherAndTheTokenRequirements(bool? peering, bool peeringReadChecked)
    {
        var options = new MeshGatewayOptions();
        options.Consul.Peering = peering;
        options.Consul.PeeringHttpTerminator = peering == false ? null : "127.0.0.1:9443";

        ConsulRouteTableSourceOptions mapped = ConsulCatalogRouteSource.SourceOptionsFor(options);
        ConsulPreflightOptions preflight = ConsulCatalogRouteSource.PreflightOptionsFor(options.Consul);

        Assert.Equal(peering, mapped.Watcher.Peering);
        Assert.Equal(peering == false ? null : new IPEndPoint(IPAddress.Loopback, 9443), mapped.Routes.PeeringHttpTerminator);
        Assert.Equal(peeringReadChecked, preflight.Acl.Peering);
        Assert.True(new MeshGatewayOptionsCrossValidator().Validate(null, options).Succeeded);
    }

    [Theory]
    [InlineData("localhost:9443", null, "must be ip:port")]
    [InlineData("127.0.0.1", null, "must be ip:port")]
    [InlineData("127.0.0.1:9443", false, "Consul:Peering is false")]
    public void CrossValidator_BadPeeringTerminator_FailsNamingTheOption(string terminator, bool? peering, string expected)
    {
        var options = new MeshGatewayOptions();
        options.Consul.PeeringHttpTerminator = terminator;
        options.Consul.Peering = peering;

        ValidateOptionsResult result = new MeshGatewayOptionsCrossValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("Consul:PeeringHttpTerminator", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains(expected, result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void RegistrationFor_Listeners_UsesBoundPortAndWanAddress()
    {
        var options = new MeshGatewayOptions { Address = "10.0.0.5", WanAddress = "203.0.113.7:443", BindTaggedAddresses = true };
        options.Consul.ServiceName = "mgw";
        options.Consul.Meta["consul-wan-federation"] = "1";

        var registration = ConsulCatalogRouteSource.RegistrationFor(options, [new MeshGatewayListenerAddress("default", new IPEndPoint(IPAddress.Parse("10.0.0.5"), 8443))]);

        Assert.Equal(("mgw", "mgw", "10.0.0.5", 8443, "203.0.113.7", 443), (registration.ServiceName, registration.ServiceId, registration.LanAddress, registration.LanPort, registration.WanAddress, registration.WanPort));
        Assert.True(registration.BindTaggedAddresses);
        Assert.Equal("1", registration.Meta["consul-wan-federation"]);
    }

    [Fact]
    public void RegistrationFor_WildcardAddressWithoutLanAddress_FailsNamingTheOptions()
    {
        var options = new MeshGatewayOptions();

        var ex = Assert.Throws<InvalidOperationException>(() => ConsulCatalogRouteSource.RegistrationFor(options, [new MeshGatewayListenerAddress("default", new IPEndPoint(IPAddress.Any, 8443))]));

        Assert.Contains("LanAddress", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0.0.0.0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LogPreflight_ErrorAndWarningFindings_LoggedAtTheirLevelsWithFix()
    {
        var report = new ConsulPreflightReport
        {
            Facts = new ConsulPreflightFacts { Datacenter = "dc1", Version = "1.21.0", ConnectEnabled = true, TrustDomain = "td.consul" },
            ClusterFacts = new ClusterFacts { Datacenters = [] },
            Findings =
            [
                new PreflightFinding(PreflightCheck.TokenPermissions, PreflightSeverity.Error, "dc1", "The gateway's token lacks service:read.", "Grant service:read."),
                new PreflightFinding(PreflightCheck.PrimaryDatacenter, PreflightSeverity.Warning, null, "Could not determine the primary datacenter.", "Check agent:read."),
            ],
            TokenPermissions = [],
        };
        var logger = new ListLogger();

        ConsulCatalogRouteSource.LogPreflight(logger, "http://127.0.0.1:8500", report);

        Assert.Equal(3, logger.Entries.Count);
        Assert.Contains("dc1", logger.Entries[0].Message, StringComparison.Ordinal);
        Assert.Equal((LogLevel.Error, "ConsulPreflightError"), (logger.Entries[1].Level, logger.Entries[1].EventName));
        Assert.Contains("TokenPermissions", logger.Entries[1].Message, StringComparison.Ordinal);
        Assert.Contains("Fix: Grant service:read.", logger.Entries[1].Message, StringComparison.Ordinal);
        Assert.Equal((LogLevel.Warning, "ConsulPreflightProblem"), (logger.Entries[2].Level, logger.Entries[2].EventName));
        Assert.Contains("(all)", logger.Entries[2].Message, StringComparison.Ordinal);
    }
}
