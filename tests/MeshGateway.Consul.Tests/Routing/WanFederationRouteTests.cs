using System.Net;
using MeshGateway.Model;
using MeshGateway.Routing;
using static MeshGateway.Consul.Tests.Routing.RouteTableBuilderTests;
using static MeshGateway.Consul.Tests.Routing.SubsetFilterTests;

namespace MeshGateway.Consul.Tests.Routing;

/// <summary>
/// The server routes of a WAN-federation gateway (docs/consul-watch.md, "WAN federation"; Consul's agent/xds/clusters.go and
/// listeners.go for a gateway with <c>consul-wan-federation = "1"</c>, measured on 1.8.7 in the two-datacenter test).
/// </summary>
public sealed class WanFederationRouteTests
{
    private static readonly ConsulRouteTableOptions Federation = new() { WanFederation = true };

    private static CatalogServiceInstance Server(string node, string address, int port = 8300) =>
        Instance("consul", address: address, port: port, node: node) with { Service = Instance("consul", address: address, port: port).Service with { Name = "consul", Kind = string.Empty } };

    private static ConsulCatalogView FederatedView(params CatalogServiceInstance[] servers) =>
        View(remote: new Dictionary<string, CatalogServiceInstance[]> { ["dc2"] = [Instance("gw2", address: "10.2.0.1", port: 8443, dc: "dc2", serviceWan: new CatalogTaggedAddress("198.51.100.2", 443))] })
            with { LocalServers = [.. servers], DnsDomain = "consul" };

    private static Route Match(RouteTable table, string sni)
    {
        Assert.True(table.TryMatch(sni.AsSpan(), out Route? route), $"no route for {sni}; routes: {string.Join(", ", table.Routes)}");
        return route;
    }

    [Fact]
    public void Convert_Federation_RemoteServerNamesGoToThatDatacentersGatewaysOverTheWan()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(FederatedView(Server("s1", "10.0.0.11")), Federation);

        Assert.True(result.Succeeded, result.Error);
        Route byNode = Match(result.Table, "consul-b.server.dc2.consul");
        Assert.Equal(RouteKind.Wildcard, byNode.Kind);
        Assert.Equal("*.server.dc2.consul", byNode.Pattern);
        Assert.Equal("server.dc2.consul", byNode.Cluster.Name);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("198.51.100.2"), 443)], byNode.Cluster.Endpoints.Select(e => e.EndPoint));
        // The bare name (the default chain's cluster named like the SNI) reaches the same gateways.
        Assert.Same(byNode.Cluster, Match(result.Table, "server.dc2.consul").Cluster);
        Assert.Equal(ConsulRouteTableOptions.DefaultServerIdleTimeout, byNode.Cluster.IdleTimeout);
    }

    [Fact]
    public void Convert_Federation_LocalServersByNodeNameAndAllOfThemByTheBareName()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(
            FederatedView(Server("S1", "10.0.0.11", 8300), Server("s2", "10.0.0.12", 8305)),
            Federation with { ServerIdleTimeout = TimeSpan.FromHours(9) });

        Assert.True(result.Succeeded, result.Error);
        Route one = Match(result.Table, "s1.server.dc1.consul");
        Assert.Equal(RouteKind.Exact, one.Kind);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.11"), 8300)], one.Cluster.Endpoints.Select(e => e.EndPoint));
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.12"), 8305)], Match(result.Table, "s2.server.dc1.consul").Cluster.Endpoints.Select(e => e.EndPoint));
        Route all = Match(result.Table, "server.dc1.consul");
        Assert.Equal(2, all.Cluster.Endpoints.Count);
        Assert.Equal(TimeSpan.FromHours(9), all.Cluster.IdleTimeout);
        // No wildcard for the local datacenter: an unknown local server name has no route.
        Assert.False(result.Table.TryMatch("s3.server.dc1.consul".AsSpan(), out _));
    }

    [Fact]
    public void Convert_OtherDnsDomain_ServerNamesEndInIt()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(FederatedView(Server("s1", "10.0.0.11")) with { DnsDomain = "mesh.example" }, Federation);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("*.server.dc2.mesh.example", Match(result.Table, "x.server.dc2.mesh.example").Pattern);
        Assert.False(result.Table.TryMatch("x.server.dc2.consul".AsSpan(), out _));
        Assert.True(result.Table.TryMatch("s1.server.dc1.mesh.example".AsSpan(), out _));
    }

    [Fact]
    public void Convert_WithoutFederation_NoServerRoutes()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(FederatedView(Server("s1", "10.0.0.11")));

        Assert.True(result.Succeeded, result.Error);
        Assert.DoesNotContain(result.Table.Routes, r => r.Pattern.Contains(".server.", StringComparison.Ordinal) || r.Pattern.StartsWith("server.", StringComparison.Ordinal));
        Assert.True(result.Table.TryMatch($"web.default.dc2.internal.{Td}".AsSpan(), out _)); // the datacenter routes stay
    }

    [Fact]
    public void Convert_FederationOutsideTheDefaultPartition_LeftOutWithAWarning()
    {
        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(FederatedView(Server("s1", "10.0.0.11")), Federation with { Partition = "part1" });

        Assert.True(result.Succeeded, result.Error);
        Assert.False(result.Table.TryMatch("server.dc1.consul".AsSpan(), out _));
        Assert.Contains(result.Warnings, w => w.Contains("default partition", StringComparison.Ordinal) && w.Contains("part1", StringComparison.Ordinal));
    }
}
