using System.Net;
using MeshGateway.Hosting;

namespace MeshGateway.Tests.Hosting;

public sealed class ListenerPlanTests
{
    [Fact]
    public void Build_Defaults_IsTheDefaultListenerOnly()
    {
        var errors = new List<string>();

        List<MeshGatewayListenerAddress> plan = ListenerPlan.Build(new MeshGatewayOptions(), errors);

        Assert.Empty(errors);
        MeshGatewayListenerAddress only = Assert.Single(plan);
        Assert.Equal("default:0.0.0.0:8443", only.ToString());
    }

    [Fact]
    public void Build_TaggedAndNamedBinds_SortedByNameWithLaterDuplicatesDropped()
    {
        var options = new MeshGatewayOptions { Address = "10.0.0.5", Port = 8443, LanAddress = "10.0.0.5:8443", WanAddress = "203.0.113.7:443", BindTaggedAddresses = true };
        options.BindAddresses["zz"] = "10.0.0.5:8443";
        options.BindAddresses["extra"] = "[::1]:9443";
        var errors = new List<string>();

        List<MeshGatewayListenerAddress> plan = ListenerPlan.Build(options, errors);

        Assert.Empty(errors);
        // Consul: sort by name; "lan" and "zz" repeat default's address, so they are dropped.
        Assert.Equal(["default", "extra", "wan"], plan.Select(p => p.Name));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9443), plan[1].EndPoint);
    }

    [Fact]
    public void Build_NoDefaultBindWithTaggedAddresses_BindsLanAndWan()
    {
        var options = new MeshGatewayOptions { Address = "10.0.0.5", NoDefaultBind = true, BindTaggedAddresses = true, WanAddress = "203.0.113.7:443" };
        var errors = new List<string>();

        List<MeshGatewayListenerAddress> plan = ListenerPlan.Build(options, errors);

        Assert.Empty(errors);
        Assert.Equal(["lan:10.0.0.5:8443", "wan:203.0.113.7:443"], plan.Select(p => p.ToString()));
    }

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("::1")]
    [InlineData("host:80")]
    [InlineData("10.0.0.1:99999")]
    public void Build_BindAddressWithoutValidPort_ReportsNameAndValue(string value)
    {
        var options = new MeshGatewayOptions();
        options.BindAddresses["x"] = value;
        var errors = new List<string>();

        ListenerPlan.Build(options, errors);

        string error = Assert.Single(errors);
        Assert.Contains("BindAddresses:x", error, StringComparison.Ordinal);
        Assert.Contains(value, error, StringComparison.Ordinal);
    }
}
