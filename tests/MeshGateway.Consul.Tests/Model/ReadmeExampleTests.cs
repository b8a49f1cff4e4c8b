using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

/// <summary>The code of the README's "Consul names and gateway modes" example, so the README cannot drift from the API.</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void ReadmeExample_RunsAndGivesTheDocumentedResults()
    {
        const string td = "5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul";
        var catalogView = new MeshCatalogView
        {
            TargetInstances =
            [
                new CatalogServiceInstance
                {
                    Node = new CatalogNode { Name = "n2", Address = "10.2.0.1", Datacenter = "dc2" },
                    Service = new CatalogService { Id = "api-1", Name = "api", Address = "10.2.0.1", Port = 20000 },
                },
            ],
            RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>
            {
                [new GatewayKey("dc2")] =
                [
                    new CatalogServiceInstance
                    {
                        Node = new CatalogNode { Name = "g2", Address = "10.2.0.9", Datacenter = "dc2" },
                        Service = new CatalogService
                        {
                            Id = "mesh-gateway", Name = "mesh-gateway", Address = "10.2.0.9", Port = 8443,
                            TaggedAddresses = new Dictionary<string, CatalogTaggedAddress> { ["wan"] = new("203.0.113.9", 443) },
                        },
                    },
                ],
            },
        };

        string sni = ConsulSniName.ForService("api", null, null, "dc2", td).ToString();
        string wildcard = ConsulSniName.RemoteGatewayWildcard("dc2", "part1", td);
        Assert.Equal($"api.default.dc2.internal.{td}", sni);
        Assert.Equal($"*.part1.dc2.internal-v1.{td}", wildcard);

        Assert.True(ConsulSniName.TryParse("v2.api.default.dc2.internal." + td, td, out ConsulSniName? name, out _));
        Assert.Equal((ConsulSniKind.Service, 2, "v2", "api", "dc2"), (name.Kind, name.Form, name.Subset, name.Service, name.Datacenter));

        MeshGatewayModeResolution mode = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs
            {
                ProxyDefaults = MeshGatewayMode.Local,
                UpstreamOverrides = [new UpstreamModeOverride { Name = "api", MeshGateway = MeshGatewayMode.Remote }],
            },
            new MeshUpstream { Name = "api", Datacenter = "dc2" });
        Assert.Equal("remote", mode.Mode.ToString());
        Assert.Equal(MeshGatewayModeLevel.UpstreamOverride, mode.DecidedBy);

        UpstreamTarget target = UpstreamTargetPlanner.Plan(
            new UpstreamTargetRequest { CallerDatacenter = "dc1", TrustDomain = td, Upstream = new MeshUpstream { Name = "api", Datacenter = "dc2" }, Mode = mode.Mode },
            catalogView);
        Assert.Equal(UpstreamDialKind.TargetGateways, target.DialKind);
        Assert.Equal(sni, target.Sni);
        Assert.Equal("203.0.113.9", Assert.Single(target.Endpoints).Address);
    }
}
