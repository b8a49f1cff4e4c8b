using System.Collections.Immutable;
using System.Text.Json;
using MeshGateway.Model;
using MeshGateway.Routing;
using static MeshGateway.Consul.Tests.Routing.RouteTableBuilderTests;

namespace MeshGateway.Consul.Tests.Routing;

/// <summary>
/// Consul features newer than 1.8 (exported-services, cluster peering, admin partitions) cannot run on the pinned agent;
/// these JSON fixtures follow the shapes of docs/consul-behaviour.md §8.2, §8.4 and §11, go through our JSON readers and the converter.
/// </summary>
public sealed class NewerFeatureFixtureTests
{
    private const string ExporterTd = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.consul";

    // docs/consul-behaviour.md §8.4, extended with a wildcard name, a 1.13 PeerName consumer and a sameness group.
    private const string ExportedServicesJson = """
        {"Kind": "exported-services", "Name": "default",
         "Services": [{"Name": "api", "Namespace": "default",
                       "Consumers": [{"Peer": "cluster-02"}, {"Partition": "part1"}, {"PeerName": "cluster-03"}]},
                      {"Name": "billing", "Consumers": [{"Peer": "cluster-02"}]},
                      {"Name": "web", "Consumers": [{"SamenessGroup": "east"}]}],
         "CreateIndex": 120, "ModifyIndex": 130}
        """;

    // docs/consul-behaviour.md §11, importing side: the peer's copy of "api" = one of the exporter's gateways, kind connect-proxy,
    // <svc>-sidecar-proxy, one overall check, PeerMeta with the form-8 SNI; §8.2 extra fields (PeerName, Partition).
    private const string ImportedApiJson = $$$"""
        [{"Node": {"ID": "", "Node": "cluster-01-gw-node", "Address": "10.1.0.9", "Datacenter": "dc1", "PeerName": "cluster-01", "Partition": "default",
                   "TaggedAddresses": {"lan": "10.1.0.9", "wan": "203.0.113.9"}, "Meta": {}, "CreateIndex": 40, "ModifyIndex": 40},
          "Service": {"Kind": "connect-proxy", "ID": "mesh-gateway", "Service": "api-sidecar-proxy", "Tags": [], "Address": "10.1.0.9", "Port": 8443,
                      "TaggedAddresses": {"lan": {"Address": "10.1.0.9", "Port": 8443}, "wan": {"Address": "203.0.113.9", "Port": 443}},
                      "Meta": {}, "Namespace": "default", "Partition": "default", "PeerName": "cluster-01",
                      "Connect": {"PeerMeta": {"SNI": ["api.default.default.cluster-02.external.{{{ExporterTd}}}"],
                                               "SpiffeID": ["spiffe://{{{ExporterTd}}}/ns/default/dc/dc1/svc/mesh-gateway"], "Protocol": "tcp"}},
                      "CreateIndex": 41, "ModifyIndex": 41},
          "Checks": [{"Node": "cluster-01-gw-node", "CheckID": "mesh-gateway:overall-check", "Name": "overall", "Status": "passing",
                      "ServiceID": "mesh-gateway", "ServiceName": "api-sidecar-proxy", "PeerName": "cluster-01", "Type": "", "CreateIndex": 42, "ModifyIndex": 42}]},
         {"Node": {"Node": "cluster-01-gw-node-2", "Address": "10.1.0.10", "PeerName": "cluster-01"},
          "Service": {"Kind": "connect-proxy", "ID": "mesh-gateway-2", "Service": "api-sidecar-proxy", "Address": "10.1.0.10", "Port": 8443,
                      "TaggedAddresses": {"wan": {"Address": "203.0.113.10", "Port": 443}}, "PeerName": "cluster-01",
                      "Connect": {"PeerMeta": {"SNI": ["api.default.default.cluster-02.external.{{{ExporterTd}}}"], "Protocol": "tcp"} }},
          "Checks": [{"CheckID": "mesh-gateway-2:overall-check", "Status": "critical", "ServiceID": "mesh-gateway-2"}]},
         {"Node": {"Node": "local-node", "Address": "10.0.0.1"},
          "Service": {"Kind": "connect-proxy", "ID": "no-meta", "Service": "other-sidecar-proxy", "Address": "10.0.0.1", "Port": 21000, "PeerName": "cluster-01"},
          "Checks": []}]
        """;

    // Admin partitions: a health entry of a service in partition part1 (docs/consul-behaviour.md §8.2 extra fields).
    private const string PartitionEntryJson = """
        [{"Node": {"Node": "n-p1", "Address": "10.2.0.5", "Datacenter": "dc1", "Partition": "part1"},
          "Service": {"Kind": "connect-proxy", "ID": "api-sidecar-proxy-1", "Service": "api-sidecar-proxy", "Address": "10.2.0.5", "Port": 21000,
                      "Namespace": "default", "Partition": "part1", "Meta": {"version": "v2"}, "Weights": {"Passing": 3, "Warning": 1}},
          "Checks": [{"CheckID": "c", "Status": "passing", "ServiceID": "api-sidecar-proxy-1"}]}]
        """;

    private static IReadOnlyList<CatalogServiceInstance> Entries(string json) => JsonSerializer.Deserialize(json, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance)!;

    [Fact]
    public void Convert_ExportedServices_Form8ExactRoutesPerPeerConsumerToLocalInstances()
    {
        ConsulExportedServices exported = JsonSerializer.Deserialize(ExportedServicesJson, ConsulJsonContext.Default.ConsulExportedServices)!;
        ConsulCatalogView view = View([Service("api", null, SubsetFilterTests.Instance("api-1", address: "10.0.0.21", port: 21000)),
                                       Service("web", null, SubsetFilterTests.Instance("web-1", address: "10.0.0.22", port: 21001))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, extras: new ConsulRouteExtras { ExportedServices = exported });

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(("exported-services", "default", 3), (exported.Kind, exported.Name, exported.Services!.Count));
        Route toPeer2 = Assert.IsType<Route>(Find(result.Table, $"api.default.default.cluster-02.external.{Td}"));
        Route toPeer3 = Assert.IsType<Route>(Find(result.Table, $"api.default.default.cluster-03.external.{Td}")); // 1.13 "PeerName"
        Assert.Equal(RouteKind.Exact, toPeer2.Kind);
        Assert.Equal($"exported~api.default.dc1.internal.{Td}", toPeer2.Cluster.Name);
        Assert.Equal("10.0.0.21:21000", Assert.Single(toPeer3.Cluster.Endpoints).Key);
        Assert.Null(Find(result.Table, $"api.default.default.part1.external.{Td}")); // partition consumers: no peer route
        Assert.Null(Find(result.Table, $"api.default.default.cluster-09.external.{Td}")); // not a consumer
        Assert.Contains(result.Warnings, w => w.Contains("'billing' has no Connect-capable instance", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("sameness group 'east'", StringComparison.Ordinal));
        Assert.NotNull(Find(result.Table, $"api.default.dc1.internal.{Td}")); // local routes unchanged
    }

    [Fact]
    public void Convert_ExportedWildcardName_ExportsEveryLocalService()
    {
        var exported = new ConsulExportedServices
        {
            Kind = "exported-services",
            Name = "default",
            Services = [new ConsulExportedService { Name = "*", Namespace = "default", Consumers = [new ConsulExportedServiceConsumer { Peer = "p1" }] }],
        };
        ConsulCatalogView view = View([Service("a", null, SubsetFilterTests.Instance("a1")), Service("b", null, SubsetFilterTests.Instance("b1"))]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, extras: new ConsulRouteExtras { ExportedServices = exported });

        Assert.NotNull(Find(result.Table!, $"a.default.default.p1.external.{Td}"));
        Assert.NotNull(Find(result.Table!, $"b.default.default.p1.external.{Td}"));
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public void Convert_PeerImportedInstances_ExactRouteOnPeerSniToExporterGatewaysWanAddress()
    {
        IReadOnlyList<CatalogServiceInstance> imported = Entries(ImportedApiJson);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(View(), extras: new ConsulRouteExtras { ImportedPeerInstances = imported });

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("cluster-01", imported[0].Service.PeerName);
        Assert.Equal([$"api.default.default.cluster-02.external.{ExporterTd}"], imported[0].Service.PeerSni);
        string sni = $"api.default.default.cluster-02.external.{ExporterTd}";
        Route route = Assert.IsType<Route>(Find(result.Table, sni));
        Assert.Equal((RouteKind.Exact, sni), (route.Kind, route.Cluster.Name));
        Assert.Equal([("203.0.113.9:443", true), ("203.0.113.10:443", false)], route.Cluster.Endpoints.Select(e => (e.Key, e.IsHealthy)).ToArray());
        Assert.Contains("'no-meta' has no Service.Connect.PeerMeta.SNI", Assert.Single(result.Warnings), StringComparison.Ordinal);
        Assert.Null(Find(result.Table, $"x.api.default.default.cluster-02.external.{ExporterTd}"));
    }

    [Fact]
    public void Convert_HttpLikeExports_MarkedForTerminationNotPassedThrough_OneWarningPerService()
    {
        ConsulExportedServices exported = JsonSerializer.Deserialize(ExportedServicesJson, ConsulJsonContext.Default.ConsulExportedServices)!;
        ConsulCatalogView view = View([Service("api", null, SubsetFilterTests.Instance("api-1", address: "10.0.0.21", port: 21000))]);
        var extras = new ConsulRouteExtras { ExportedServices = exported, Protocols = new Dictionary<string, string> { ["api"] = "GRPC" } };

        ConsulRouteConversion without = ConsulRouteTableBuilder.Convert(view, extras: extras);
        ConsulRouteConversion with = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { PeeringHttpTerminator = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9443) }, extras);

        Assert.Null(Find(without.Table!, $"api.default.default.cluster-02.external.{Td}"));
        Assert.Equal([("cluster-02", "grpc", false), ("cluster-03", "grpc", false)], without.TerminatedExports.Select(e => (e.Peer, e.Protocol, e.Routed)).ToArray());
        string warning = Assert.Single(without.Warnings, w => w.Contains("needs HTTP termination", StringComparison.Ordinal));
        Assert.Contains("'api' (protocol grpc)", warning, StringComparison.Ordinal);
        Assert.Contains("'cluster-02', 'cluster-03'", warning, StringComparison.Ordinal);

        Route routed = Assert.IsType<Route>(Find(with.Table!, $"api.default.default.cluster-03.external.{Td}"));
        Assert.Equal(($"terminated~api.default.dc1.internal.{Td}", "127.0.0.1:9443"), (routed.Cluster.Name, Assert.Single(routed.Cluster.Endpoints).Key));
        Assert.All(with.TerminatedExports, e => Assert.True(e.Routed));
        Assert.DoesNotContain(with.Warnings, w => w.Contains("needs HTTP termination", StringComparison.Ordinal));
    }

    [Fact]
    public void Convert_HttpLikeExport_WithInProcessTerminator_GetsExactRoutesHandedToIt_WinningOverTheEndPoint()
    {
        ConsulExportedServices exported = JsonSerializer.Deserialize(ExportedServicesJson, ConsulJsonContext.Default.ConsulExportedServices)!;
        ConsulCatalogView view = View([Service("api", null, SubsetFilterTests.Instance("api-1", address: "10.0.0.21", port: 21000))]);
        var extras = new ConsulRouteExtras { ExportedServices = exported, Protocols = new Dictionary<string, string> { ["api"] = "http" } };
        var terminator = new NeverTerminator();

        ConsulRouteConversion with = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions
        {
            PeeringTerminator = terminator, PeeringHttpTerminator = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9443),
        }, extras);

        foreach (string peer in new[] { "cluster-02", "cluster-03" })
        {
            Route routed = Assert.IsType<Route>(Find(with.Table!, $"api.default.default.{peer}.external.{Td}"));
            Assert.Same(terminator, routed.Terminator);
            Assert.Equal($"terminated~api.default.dc1.internal.{Td}", routed.Cluster.Name);
            Assert.Empty(routed.Cluster.Endpoints);
        }

        Assert.All(with.TerminatedExports, e => Assert.True(e.Routed));
        Assert.Same(view, with.View);
        Assert.DoesNotContain(with.Warnings, w => w.Contains("needs HTTP termination", StringComparison.Ordinal));
    }

    private sealed class NeverTerminator : MeshGateway.Gateway.ConnectionTerminator
    {
        public override Task RunAsync(MeshGateway.Gateway.TerminatedConnection connection) => throw new InvalidOperationException("not called in a conversion");
    }

    [Fact]
    public void Convert_PeerThroughMeshGateways_VotersOnGrpcTlsPortAndDialedPeersByServerName()
    {
        // Health entries of the "consul" service as a 1.14+ server registers itself (Service.Meta: grpc_tls_port, read_replica).
        IReadOnlyList<CatalogServiceInstance> servers = Entries("""
            [{"Node": {"Node": "s1", "Address": "10.0.0.1", "Datacenter": "dc1"}, "Service": {"ID": "consul", "Service": "consul", "Port": 8300, "Meta": {"grpc_tls_port": "8503"}}, "Checks": []},
             {"Node": {"Node": "s2", "Address": "10.0.0.2", "Datacenter": "dc1"}, "Service": {"ID": "consul", "Service": "consul", "Port": 8300, "Meta": {"grpc_tls_port": "8503", "read_replica": "true"}}, "Checks": []},
             {"Node": {"Node": "s3", "Address": "10.0.0.3", "Datacenter": "dc1"}, "Service": {"ID": "consul", "Service": "consul", "Port": 8300, "Meta": {}}, "Checks": []}]
            """);

        // /v1/peerings (api/peering.go): p1 dialed by IPs, p2 by a host name beside an IP, p3 established by the peer (no addresses),
        // p4 terminated, p0 an older peering to the same servers as p1 (the newest ModifyIndex wins, as in mesh_gateway.go).
        IReadOnlyList<ConsulPeering> peerings = JsonSerializer.Deserialize("""
            [{"Name": "p0", "State": "ACTIVE", "PeerServerName": "server.dc2.peering.x.consul", "PeerServerAddresses": ["10.9.0.9:8503"], "ModifyIndex": 5},
             {"Name": "p1", "State": "ACTIVE", "PeerServerName": "server.dc2.peering.x.consul", "PeerServerAddresses": ["10.9.0.2:8503", "10.9.0.1:8503"], "ModifyIndex": 9},
             {"Name": "p2", "State": "FAILING", "PeerServerName": "server.dc3.peering.y.consul", "PeerServerAddresses": ["10.8.0.1:8503", "servers.dc3.example:8503"], "ModifyIndex": 7},
             {"Name": "p3", "State": "ACTIVE", "PeerServerName": "server.dc4.peering.z.consul", "ModifyIndex": 8},
             {"Name": "p4", "State": "TERMINATED", "PeerServerName": "server.dc5.peering.w.consul", "PeerServerAddresses": ["10.7.0.1:8503"], "ModifyIndex": 8}]
            """, ConsulJsonContext.Default.ListConsulPeering)!;
        ConsulCatalogView view = View() with
        {
            Peering = new ConsulPeeringView { PeerThroughMeshGateways = true, Servers = [.. servers], Peerings = [.. peerings] },
        };

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view);

        Assert.True(result.Succeeded, result.Error);
        Route local = Assert.IsType<Route>(Find(result.Table, $"server.dc1.peering.{Td}"));
        Assert.Equal(["10.0.0.1:8503"], local.Cluster.Endpoints.Select(e => e.Key).ToArray()); // s2 is a read replica, s3 has no port
        Assert.Contains(result.Warnings, w => w.Contains("'s3'", StringComparison.Ordinal) && w.Contains("grpc_tls_port", StringComparison.Ordinal));
        Assert.Equal(["10.9.0.1:8503", "10.9.0.2:8503"], Find(result.Table, "server.dc2.peering.x.consul")!.Cluster.Endpoints.Select(e => e.Key).ToArray());
        Assert.Equal(["servers.dc3.example:8503"], Find(result.Table, "server.dc3.peering.y.consul")!.Cluster.Endpoints.Select(e => e.Key).ToArray());
        Assert.Null(Find(result.Table, "server.dc4.peering.z.consul"));
        Assert.Null(Find(result.Table, "server.dc5.peering.w.consul"));

        ConsulRouteConversion off = ConsulRouteTableBuilder.Convert(view with { Peering = view.Peering with { PeerThroughMeshGateways = false } });
        Assert.Null(Find(off.Table!, $"server.dc1.peering.{Td}"));
        Assert.Null(Find(off.Table!, "server.dc2.peering.x.consul"));
    }

    [Fact]
    public void Convert_NonDefaultPartition_Form3And4NamesFromPartitionEntries()
    {
        IReadOnlyList<CatalogServiceInstance> entries = Entries(PartitionEntryJson);
        ImmutableArray<CatalogServiceInstance> instances = CatalogInstances.Sorted(entries, gatewaysOnly: false);
        var resolver = new ConsulResolverView
        {
            Subsets = new Dictionary<string, ConsulSubsetView> { ["v2"] = new("Service.Meta.version == v2", false) }.ToImmutableSortedDictionary(StringComparer.Ordinal),
        };
        ConsulCatalogView view = View([new ConsulServiceView { Name = "api", Instances = instances, Resolver = resolver }]);

        ConsulRouteConversion result = ConsulRouteTableBuilder.Convert(view, new ConsulRouteTableOptions { Partition = "part1" });

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(("part1", "part1"), (entries[0].Node.Partition, entries[0].Service.Partition));
        Route service = Assert.IsType<Route>(Find(result.Table, $"api.default.part1.dc1.internal-v1.{Td}"));
        Route subset = Assert.IsType<Route>(Find(result.Table, $"v2.api.default.part1.dc1.internal-v1.{Td}"));
        Assert.Equal(("10.2.0.5:21000", 3), (Assert.Single(service.Cluster.Endpoints).Key, service.Cluster.Endpoints[0].Weight));
        Assert.Single(subset.Cluster.Endpoints);
        Assert.Null(Find(result.Table, $"api.default.dc1.internal.{Td}"));
    }

    private static Route? Find(RouteTable table, string sni) => table.TryMatch(sni.AsSpan(), out Route? route) ? route : null;
}
