using System.Net;
using MeshGateway.Consul;
using MeshGateway.Hosting;

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
}
