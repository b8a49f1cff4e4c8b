using System.Collections.Immutable;
using System.Net;
using MeshGateway.Consul;
using MeshGateway.Hosting;
using MeshGateway.Routing;

namespace MeshGateway.Tests.Hosting;

public sealed class ConsulRouteTablesTests
{
    private const string Td = "7b2a9b3e-5a4e-4c27-9d4b-2d8a0c6f1e01.consul";

    [Fact]
    public void Build_ServicesAndRemoteGateways_ExactAndWildcardRoutes()
    {
        ConsulCatalogView view = View(
            services: [Service("api", [Endpoint("api-1", "10.0.0.7", 20000, healthy: true, weight: 3), Endpoint("api-2", "10.0.0.8", 20000, healthy: false, weight: 1)], TimeSpan.FromMilliseconds(1500))],
            remote: new() { ["dc2"] = [Endpoint("gw", "203.0.113.9", 443, healthy: true, weight: 1, kind: "mesh-gateway")] });

        RouteTable table = ConsulRouteTables.Build(view, TimeSpan.FromSeconds(5), 3, out ConversionStats stats);

        Assert.Equal(new ConversionStats(2, 0, 0), stats);
        Assert.True(table.TryMatch($"api.default.dc1.internal.{Td}", out Route? api));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), api.Cluster.ConnectTimeout);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.7"), 20000), new IPEndPoint(IPAddress.Parse("10.0.0.8"), 20000)], api.Cluster.Endpoints.Select(e => e.EndPoint));
        Assert.Equal([3, 1], api.Cluster.Endpoints.Select(e => e.Weight));
        Assert.Equal([true, false], api.Cluster.Endpoints.Select(e => e.IsHealthy));
        Assert.True(table.TryMatch($"web.default.dc2.internal.{Td}", out Route? remote));
        Assert.Equal(RouteKind.Wildcard, remote.Kind);
        Assert.Equal(TimeSpan.FromSeconds(5), remote.Cluster.ConnectTimeout);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 443), Assert.Single(remote.Cluster.Endpoints).EndPoint);
        Assert.False(table.TryMatch($"api.default.dc3.internal.{Td}", out _));
    }

    [Fact]
    public void Build_HostNameEndpointAndOutOfRangeWeight_SkippedAndClamped()
    {
        ConsulCatalogView view = View(
            services: [Service("api", [Endpoint("a", "api.example.internal", 20000, true, 1), Endpoint("b", "10.0.0.9", 20000, true, 1000)], null)],
            remote: []);

        RouteTable table = ConsulRouteTables.Build(view, TimeSpan.FromSeconds(5), 3, out ConversionStats stats);

        Assert.Equal(1, stats.SkippedHostnameEndpoints);
        UpstreamEndpoint only = Assert.Single(Assert.Single(table.Routes).Cluster.Endpoints);
        Assert.Equal(UpstreamEndpoint.MaxWeight, only.Weight);
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

    private static ConsulCatalogView View(ConsulServiceView[] services, Dictionary<string, ImmutableArray<ConsulEndpoint>> remote) => new()
    {
        TrustDomain = Td,
        Datacenter = "dc1",
        Datacenters = ["dc1", .. remote.Keys],
        Services = services.ToImmutableSortedDictionary(s => s.Name, s => s, StringComparer.Ordinal),
        LocalGateways = [],
        RemoteGateways = remote.ToImmutableSortedDictionary(StringComparer.Ordinal),
    };

    private static ConsulServiceView Service(string name, ConsulEndpoint[] instances, TimeSpan? connectTimeout) => new()
    {
        Name = name,
        Instances = [.. instances],
        Resolver = connectTimeout is null ? null : new ConsulResolverView { ConnectTimeout = connectTimeout, Subsets = ImmutableSortedDictionary<string, ConsulSubsetView>.Empty },
    };

    private static ConsulEndpoint Endpoint(string id, string address, int port, bool healthy, int weight, string kind = "connect-proxy") => new()
    {
        ServiceId = id,
        ServiceName = id,
        Kind = kind,
        Node = "n1",
        Datacenter = "dc1",
        Address = address,
        Port = port,
        Healthy = healthy,
        Weight = weight,
        Status = healthy ? ConsulHealthStatus.Passing : ConsulHealthStatus.Critical,
    };
}
