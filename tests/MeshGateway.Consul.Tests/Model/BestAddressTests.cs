using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

/// <summary>docs/consul-behaviour.md §4 (Consul <c>agent/structs/structs.go</c> BestAddress), case by case.</summary>
public sealed class BestAddressTests
{
    internal static CatalogNode Node(string address = "10.0.0.1", string? wan = null, string dc = "dc1", params (string Key, string Value)[] extra)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        if (wan is not null)
        {
            tags["wan"] = wan;
        }

        foreach ((string key, string value) in extra)
        {
            tags[key] = value;
        }

        return new CatalogNode { Name = "node-1", Address = address, Datacenter = dc, TaggedAddresses = tags };
    }

    internal static CatalogService Service(string address = "10.0.0.5", int port = 8443, CatalogTaggedAddress? wan = null, params (string Key, CatalogTaggedAddress Value)[] extra)
    {
        var tags = new Dictionary<string, CatalogTaggedAddress>(StringComparer.Ordinal);
        if (wan is not null)
        {
            tags["wan"] = wan;
        }

        foreach ((string key, CatalogTaggedAddress value) in extra)
        {
            tags[key] = value;
        }

        return new CatalogService { Id = "svc-1", Name = "svc", Address = address, Port = port, TaggedAddresses = tags };
    }

    public static TheoryData<string, CatalogNode, CatalogService, bool, string, int, BestAddressSource> Cases => new()
    {
        { "LAN: service address and port", Node(), Service(wan: new("203.0.113.7", 443)), false, "10.0.0.5", 8443, BestAddressSource.ServiceAddress },
        { "LAN: never reads the lan tagged address", Node(), Service(extra: ("lan", new("192.168.0.9", 9))), false, "10.0.0.5", 8443, BestAddressSource.ServiceAddress },
        { "LAN: empty service address falls back to the node address, never its wan", Node(wan: "198.51.100.5"), Service(address: ""), false, "10.0.0.1", 8443, BestAddressSource.NodeAddress },
        { "WAN: service wan tagged address and port", Node(), Service(wan: new("203.0.113.7", 443)), true, "203.0.113.7", 443, BestAddressSource.ServiceWanTaggedAddress },
        { "WAN: service wan with port 0 keeps the service port", Node(), Service(wan: new("203.0.113.7", 0)), true, "203.0.113.7", 8443, BestAddressSource.ServiceWanTaggedAddress },
        { "WAN: service wan with empty address still supplies its port; address from node wan", Node(wan: "198.51.100.5"), Service(wan: new("", 443)), true, "198.51.100.5", 443, BestAddressSource.NodeWanTaggedAddress },
        { "WAN: service wan with empty address and no node wan: node address", Node(), Service(wan: new("", 443)), true, "10.0.0.1", 443, BestAddressSource.NodeAddress },
        { "WAN: no service wan falls back to the service address, not the node wan", Node(wan: "198.51.100.5"), Service(), true, "10.0.0.5", 8443, BestAddressSource.ServiceAddress },
        { "WAN: only the key wan counts (wan_ipv4, wan_ipv6 ignored)", Node(extra: ("wan_ipv4", "198.51.100.4")), Service(extra: [("wan_ipv4", new("203.0.113.4", 4)), ("wan_ipv6", new("2001:db8::1", 6))]), true, "10.0.0.5", 8443, BestAddressSource.ServiceAddress },
        { "WAN: key comparison is case-sensitive", Node(), Service(extra: ("WAN", new("203.0.113.9", 9))), true, "10.0.0.5", 8443, BestAddressSource.ServiceAddress },
        { "WAN: empty service address uses the node wan", Node(wan: "198.51.100.5"), Service(address: ""), true, "198.51.100.5", 8443, BestAddressSource.NodeWanTaggedAddress },
        { "WAN: empty service address, no node wan: node address", Node(), Service(address: ""), true, "10.0.0.1", 8443, BestAddressSource.NodeAddress },
        { "WAN: node wan present but empty is taken as is", Node(wan: ""), Service(address: ""), true, "", 8443, BestAddressSource.NodeWanTaggedAddress },
        { "WAN: node wan_ipv4 is not a fallback", Node(extra: ("wan_ipv4", "198.51.100.4")), Service(address: ""), true, "10.0.0.1", 8443, BestAddressSource.NodeAddress },
        { "WAN: hostname addresses are kept", Node(), Service(wan: new("gw.example.com", 443)), true, "gw.example.com", 443, BestAddressSource.ServiceWanTaggedAddress },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Select_EveryCase_MatchesConsul(string description, CatalogNode node, CatalogService service, bool wan, string address, int port, BestAddressSource source)
    {
        BestAddress best = BestAddress.Select(node, service, wan);
        Assert.True(address == best.Address, description);
        Assert.Equal(port, best.Port);
        Assert.Equal(source, best.AddressSource);
        Assert.Equal(port != service.Port, best.PortFromWanTaggedAddress);
        Assert.Equal(best, BestAddress.Select(new CatalogServiceInstance { Node = node, Service = service }, wan));
    }

    // hashicorp/consul agent/structs/structs_test.go TestCheckServiceNode_BestAddress, every case with its values
    // (nodeAddr 10.1.2.3, nodeWANAddr 198.18.19.20, serviceAddr 10.2.3.4:1234, serviceWANAddr 198.19.20.21:987).
    public static TheoryData<string, CatalogNode, CatalogService, string, int, string, int> ConsulTestVectors
    {
        get
        {
            CatalogNode node = Node("10.1.2.3");
            CatalogNode nodeWithWan = Node("10.1.2.3", wan: "198.18.19.20");
            var wan = new CatalogTaggedAddress("198.19.20.21", 987);
            return new()
            {
                { "node-address", node, Service(address: "", port: 1234), "10.1.2.3", 1234, "10.1.2.3", 1234 },
                { "node-wan-address", nodeWithWan, Service(address: "", port: 1234), "10.1.2.3", 1234, "198.18.19.20", 1234 },
                { "service-address", nodeWithWan, Service("10.2.3.4", 1234), "10.2.3.4", 1234, "10.2.3.4", 1234 },
                { "service-wan-address", nodeWithWan, Service("10.2.3.4", 1234, wan), "10.2.3.4", 1234, "198.19.20.21", 987 },
                { "service-wan-address-default-port", nodeWithWan, Service("10.2.3.4", 1234, wan with { Port = 0 }), "10.2.3.4", 1234, "198.19.20.21", 1234 },
                { "service-wan-address-node-lan", nodeWithWan, Service("", 1234, wan), "10.1.2.3", 1234, "198.19.20.21", 987 },
            };
        }
    }

    [Theory]
    [MemberData(nameof(ConsulTestVectors))]
    public void Select_ConsulsOwnTestVectors(string name, CatalogNode node, CatalogService service, string lanAddress, int lanPort, string wanAddress, int wanPort)
    {
        BestAddress lan = BestAddress.Select(node, service, wan: false);
        BestAddress wan = BestAddress.Select(node, service, wan: true);
        Assert.True((lanAddress, lanPort) == (lan.Address, lan.Port), name + " (lan): " + lan);
        Assert.True((wanAddress, wanPort) == (wan.Address, wan.Port), name + " (wan): " + wan);
    }

    // An empty wan tag, as agent/structs/structs.go reads it: NodeService.BestAddress takes the service wan tag's address
    // even when empty (so CheckServiceNode.BestAddress falls to the node) and its port when non-zero; Node.BestAddress
    // returns the node's wan tag whenever the key exists, even when empty. LAN never reads either.
    [Theory]
    [InlineData("", 0, null, "10.1.2.3", 1234, BestAddressSource.NodeAddress)]
    [InlineData("", 987, null, "10.1.2.3", 987, BestAddressSource.NodeAddress)]
    [InlineData("", 987, "198.18.19.20", "198.18.19.20", 987, BestAddressSource.NodeWanTaggedAddress)]
    [InlineData("", 0, "", "", 1234, BestAddressSource.NodeWanTaggedAddress)]
    public void Select_EmptyServiceWanTag_FallsToTheNodeAsConsulDoes(string serviceWanAddress, int serviceWanPort, string? nodeWan, string address, int port, BestAddressSource source)
    {
        CatalogService service = Service("10.2.3.4", 1234, new CatalogTaggedAddress(serviceWanAddress, serviceWanPort));
        BestAddress wan = BestAddress.Select(Node("10.1.2.3", wan: nodeWan), service, wan: true);
        Assert.Equal((address, port, source), (wan.Address, wan.Port, wan.AddressSource));
        Assert.Equal(("10.2.3.4", 1234), (BestAddress.Select(Node("10.1.2.3", wan: nodeWan), service, wan: false) is var lan ? (lan.Address, lan.Port) : default));
    }

    [Fact]
    public void ToString_BracketsIpv6()
    {
        Assert.Equal("10.0.0.5:8443", new BestAddress("10.0.0.5", 8443, BestAddressSource.ServiceAddress, false).ToString());
        Assert.Equal("[2001:db8::1]:443", new BestAddress("2001:db8::1", 443, BestAddressSource.ServiceAddress, false).ToString());
    }

    [Theory]
    [InlineData("dc1", null, null, false)]
    [InlineData("dc1", "default", null, false)]
    [InlineData("dc2", null, null, true)]
    [InlineData("dc1", "part1", null, true)]
    [InlineData("dc1", null, "peer1", true)]
    public void IsWan_DatacenterPartitionOrPeer(string nodeDc, string? nodePartition, string? peer, bool expected)
    {
        var instance = new CatalogServiceInstance
        {
            Node = Node(dc: nodeDc) with { Partition = nodePartition },
            Service = Service() with { PeerName = peer },
        };
        Assert.Equal(expected, BestAddress.IsWan(new GatewayKey("dc1", ""), instance));
    }

    [Fact]
    public void GatewayKey_NormalisesPartitionAndRendersLikeConsul()
    {
        Assert.Equal(new GatewayKey("dc1"), new GatewayKey("dc1", "default"));
        Assert.Equal("dc1", new GatewayKey("dc1", "").ToString());
        Assert.Equal("part1.dc1", new GatewayKey("dc1", "part1").ToString());
        Assert.Equal("default", default(GatewayKey).Partition);
        Assert.Equal(string.Empty, default(GatewayKey).Datacenter);
    }

    [Theory]
    [InlineData(false, new[] { CatalogHealthStatus.Passing, CatalogHealthStatus.Warning }, true)]
    [InlineData(true, new[] { CatalogHealthStatus.Passing, CatalogHealthStatus.Warning }, false)]
    [InlineData(false, new[] { CatalogHealthStatus.Passing, CatalogHealthStatus.Critical }, false)]
    [InlineData(true, new CatalogHealthStatus[0], true)]
    public void IsHealthy_CriticalOrOnlyPassing(bool onlyPassing, CatalogHealthStatus[] checks, bool expected)
    {
        Assert.Equal(expected, new CatalogServiceInstance { Node = Node(), Service = Service(), Checks = checks }.IsHealthy(onlyPassing));
    }
}
