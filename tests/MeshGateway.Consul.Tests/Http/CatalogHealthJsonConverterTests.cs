using System.Text.Json;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Http;

/// <summary>Health entries (docs/consul-behaviour.md §8.2) read straight into the catalog model.</summary>
public sealed class CatalogHealthJsonConverterTests
{
    private static IReadOnlyList<CatalogServiceInstance> Parse(string json) =>
        JsonSerializer.Deserialize(json, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance)!;

    private static CatalogServiceInstance Entry(string serviceAddress, int port, string tagged = "{}", string nodeAddress = "10.0.0.9", string? nodeWan = null) =>
        Assert.Single(Parse($$"""
            [{"Node": {"Node": "n1", "Address": "{{nodeAddress}}", "TaggedAddresses": {{(nodeWan is null ? "null" : $"{{\"wan\": \"{nodeWan}\"}}")}}},
              "Service": {"ID": "gw", "Service": "gw", "Kind": "mesh-gateway", "Address": "{{serviceAddress}}", "Port": {{port}}, "TaggedAddresses": {{tagged}}},
              "Checks": []}]
            """));

    private static (string, int) Best(CatalogServiceInstance instance, bool wan)
    {
        BestAddress best = BestAddress.Select(instance, wan);
        return (best.Address, best.Port);
    }

    [Fact]
    public void BestAddress_SectionFourCasesFromTheWire_MatchConsul()
    {
        const string wanTag = """{"wan": {"Address": "198.51.100.5", "Port": 443}, "lan": {"Address": "10.0.0.5", "Port": 8443}}""";
        const string wanPortOnly = """{"wan": {"Address": "", "Port": 9443}}""";
        const string wanAddressOnly = """{"wan": {"address": "198.51.100.6", "port": 0}}""";
        const string onlyWanIpv4 = """{"wan_ipv4": {"Address": "198.51.100.7", "Port": 1}}""";

        Assert.Equal(("198.51.100.5", 443), Best(Entry("10.0.0.5", 8443, wanTag), wan: true));
        Assert.Equal(("10.0.0.5", 8443), Best(Entry("10.0.0.5", 8443, wanTag), wan: false)); // LAN never reads the lan tag
        Assert.Equal(("198.51.100.6", 8443), Best(Entry("10.0.0.5", 8443, wanAddressOnly), wan: true)); // port 0 keeps the service port
        Assert.Equal(("10.0.0.9", 9443), Best(Entry("10.0.0.5", 8443, wanPortOnly), wan: true)); // empty wan address: node address, wan port
        Assert.Equal(("10.0.0.5", 8443), Best(Entry("10.0.0.5", 8443, onlyWanIpv4), wan: true)); // wan_ipv4 plays no part
        Assert.Equal(("203.0.113.1", 8443), Best(Entry("", 8443, nodeWan: "203.0.113.1"), wan: true));
        Assert.Equal(("10.0.0.9", 8443), Best(Entry("", 8443, nodeWan: "203.0.113.1"), wan: false));
        Assert.Equal(("10.0.0.5", 8443), Best(Entry("10.0.0.5", 8443, nodeWan: "203.0.113.1"), wan: true)); // service Address beats node wan
        Assert.Equal((string.Empty, 8443), Best(Entry("", 8443, nodeWan: string.Empty), wan: true)); // an empty node wan is taken as is (Consul-exact)
    }

    [Fact]
    public void Read_StatusesWeightsProxyAndPeerFields_MappedIntoTheModel()
    {
        IReadOnlyList<CatalogServiceInstance> entries = Parse("""
            [{"node": {"node": "n1", "address": "10.0.0.1", "datacenter": "dc1", "partition": "", "modifyIndex": 7, "Meta": {"a": "b"}, "Locality": {"Region": "x"}},
              "service": {"kind": "connect-proxy", "id": "api-sidecar", "service": "api-sidecar-proxy", "tags": ["canary", "http"], "address": "10.0.0.1", "port": 21000,
                          "meta": {"version": "v2", "zone": "a", "version": "v3"}, "weights": {"passing": 5, "warning": 2},
                          "proxy": {"destinationServiceName": "api", "Upstreams": [{"DestinationName": "db"}], "Config": {"x": [1, {"y": null}]}},
                          "connect": {"Native": false, "peerMeta": {"sni": ["a.b"], "Protocol": "tcp"}},
                          "namespace": "ns1", "peerName": "", "modifyIndex": 12, "Future": [[{}]]},
              "checks": [{"Status": "passing"}, {"Status": "warning"}, {"Status": "maintenance?"}, {"Status": null}, {"CheckID": "no-status"}, {"Status": "PASSING"}]},
             {"Node": null, "Service": {"ID": "x", "Service": "x"}, "Checks": null},
             {"Node": {"Node": "n9"}, "Checks": [{"Status": "passing"}]},
             null]
            """);

        Assert.Equal(2, entries.Count); // the entry without a Service is dropped
        CatalogServiceInstance e = entries[0];
        Assert.Equal(("n1", "10.0.0.1", "dc1", null, 7UL), (e.Node.Name, e.Node.Address, e.Node.Datacenter, e.Node.Partition, e.Node.ModifyIndex));
        Assert.Equal(("connect-proxy", "api-sidecar", "api-sidecar-proxy", "10.0.0.1", 21000, 12UL), (e.Service.Kind, e.Service.Id, e.Service.Name, e.Service.Address, e.Service.Port, e.Service.ModifyIndex));
        Assert.Equal(["canary", "http"], e.Service.Tags);
        Assert.Equal([new("version", "v3"), new("zone", "a")], e.Service.Meta.ToArray()); // a repeated key: the last wins, as in Go
        Assert.Equal(new CatalogWeights(5, 2), e.Service.Weights);
        Assert.Equal(("api", "ns1", null), (e.Service.ProxyDestinationServiceName, e.Service.Namespace, e.Service.PeerName));
        Assert.Equal(["a.b"], e.Service.PeerSni);
        Assert.Equal(
            [CatalogHealthStatus.Passing, CatalogHealthStatus.Warning, CatalogHealthStatus.Critical, CatalogHealthStatus.Critical, CatalogHealthStatus.Critical, CatalogHealthStatus.Critical],
            e.Checks); // unknown, null, missing and wrongly cased statuses are critical
        Assert.Equal((false, 2), e.HealthAndWeight(onlyPassing: false));
        CatalogServiceInstance bare = entries[1];
        Assert.Equal((string.Empty, null, 0), (bare.Node.Name, bare.Service.Weights, bare.Checks.Count));
        Assert.Same(CatalogDictionaries.Empty<string>(), bare.Service.Meta);
        Assert.Equal((true, 1), bare.HealthAndWeight(onlyPassing: true));
    }

    [Fact]
    public void Read_RepeatedStringsAndStatusLists_AreShared()
    {
        IReadOnlyList<CatalogServiceInstance> entries = Parse("""
            [{"Node": {"Node": "node-a", "Address": "10.0.0.1", "Datacenter": "dc1"},
              "Service": {"ID": "api-1", "Service": "api", "Address": "10.0.0.1", "Port": 1, "TaggedAddresses": {"lan_ipv4": {"Address": "10.0.0.1", "Port": 1}, "wan_ipv4": {"Address": "10.0.0.1", "Port": 1}}},
              "Checks": [{"Status": "passing"}, {"Status": "passing"}]},
             {"Node": {"Node": "node-a", "Address": "10.0.0.1", "Datacenter": "dc1"},
              "Service": {"ID": "api-2", "Service": "api", "Address": "10.0.0.1", "Port": 2},
              "Checks": [{"Status": "passing"}, {"Status": "passing"}]}]
            """);
        IReadOnlyList<CatalogServiceInstance> again = Parse("""[{"Node": {"Node": "node-b", "Datacenter": "dc1"}, "Service": {"ID": "w", "Service": "w"}, "Checks": [{"Status": "passing"}, {"Status": "passing"}]}]""");

        Assert.Same(entries[0].Node.Name, entries[1].Node.Name);
        Assert.Same(entries[0].Node.Address, entries[1].Service.Address);
        Assert.Same(entries[0].Service.Name, entries[1].Service.Name);
        Assert.Same(entries[0].Service.TaggedAddresses["lan_ipv4"], entries[0].Service.TaggedAddresses["wan_ipv4"]);
        Assert.Same(entries[0].Node.Datacenter, again[0].Node.Datacenter); // vocabulary is shared across responses
        Assert.Same(entries[0].Checks, again[0].Checks);
    }

    [Theory]
    [InlineData("""{"Node": {}}""", "Expected an array for the health entries but found an object")]
    [InlineData("""[{"Service": {"ID": "a", "Port": "8080"}}]""", "Expected a 32-bit integer for Service.Port but found a string")]
    [InlineData("""[{"Service": {"ID": "a", "Port": 99999999999}}]""", "Expected a 32-bit integer for Service.Port")]
    [InlineData("""[{"Service": {"ID": 5}}]""", "Expected a string for Service.ID but found a number")]
    [InlineData("""[{"Service": {"ID": "a", "Tags": "x"}}]""", "Expected an array for Service.Tags but found a string")]
    [InlineData("""[{"Node": {"TaggedAddresses": {"wan": 1}}, "Service": {}}]""", "Expected a string for Node.TaggedAddresses.wan but found a number")]
    public void Read_WrongShapes_ClearJsonError(string json, string message)
    {
        JsonException error = Assert.Throws<JsonException>(() => Parse(json));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_IsNotSupported()
    {
        IReadOnlyList<CatalogServiceInstance> value = [];

        Assert.Throws<NotSupportedException>(() => JsonSerializer.Serialize(value, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance));
    }
}
