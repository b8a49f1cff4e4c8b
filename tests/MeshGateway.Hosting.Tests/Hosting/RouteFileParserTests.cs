using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Routing;

namespace MeshGateway.Tests.Hosting;

public sealed class RouteFileParserTests
{
    [Fact]
    public void TryParse_HarnessFormat_BuildsRoutes()
    {
        byte[] json = """{"routes":[{"sni":"web.default.dc1.internal.u.consul","endpoints":["127.0.0.1:19440"]},{"sni":"*.dc2.internal.u.consul","endpoints":[]}]}"""u8.ToArray();

        Assert.True(RouteFileParser.TryParse(json, TimeSpan.FromSeconds(2), 2, out RouteTable? table, out string? error), error);

        Assert.Equal(1, table.ExactCount);
        Assert.Equal(1, table.WildcardCount);
        Assert.True(table.TryMatch("x.dc2.internal.u.consul", out Route? wildcard));
        Assert.Equal(RouteKind.Wildcard, wildcard.Kind);
        Route exact = table.Routes.Single(r => r.Kind == RouteKind.Exact);
        Assert.Equal(TimeSpan.FromSeconds(2), exact.Cluster.ConnectTimeout);
        Assert.Equal(2, exact.Cluster.MaxConnectAttempts);
    }

    [Fact]
    public void TryParse_Extensions_WeightsHealthAndClusterSettings()
    {
        byte[] json = """
            // comments and trailing commas are fine
            {"routes":[{"sni":"api.x","cluster":"dc2","connectTimeoutMs":250,"connectAttempts":5,"ejectionTimeMs":0,
              "consecutiveFailures":2,"maxEjectionTimeMs":60000,"maxEjectionPercent":50,"tcpKeepalive":{"time":30,"probes":3},
              "endpoints":[{"address":"10.0.0.7:8443","weight":3},{"address":"[::1]:8443","healthy":false},],"future":{"a":[1]}}]}
            """u8.ToArray();

        Assert.True(RouteFileParser.TryParse(json, TimeSpan.FromSeconds(5), 3, out RouteTable? table, out string? error), error);

        UpstreamCluster cluster = Assert.Single(table.Routes).Cluster;
        Assert.Equal("dc2", cluster.Name);
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.ConnectTimeout);
        Assert.Equal(5, cluster.MaxConnectAttempts);
        Assert.Equal(
            OutlierDetection.Default with { BaseEjectionTime = TimeSpan.Zero, ConsecutiveFailures = 2, MaxEjectionTime = TimeSpan.FromMinutes(1), MaxEjectionPercent = 50 },
            cluster.OutlierDetection);
        Assert.False(cluster.OutlierDetection.IsEnabled);
        Assert.Equal(new TcpKeepAlive { Time = 30, Probes = 3 }, cluster.TcpKeepAlive);
        Assert.Equal(3, cluster.Endpoints[0].Weight);
        Assert.False(cluster.Endpoints[1].IsHealthy);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("{", "not valid JSON")]
    [InlineData("[]", "JSON object")]
    [InlineData("{}", "no \"routes\"")]
    [InlineData("""{"routes":[{"endpoints":[]}]}""", "routes[0] has no \"sni\"")]
    [InlineData("""{"routes":[{"sni":"a","endpoints":["127.0.0.1"]}]}""", "routes[0].endpoints[0]")]
    [InlineData("""{"routes":[{"sni":"a","endpoints":[{"weight":2}]}]}""", "routes[0].endpoints[0] has no \"address\"")]
    [InlineData("""{"routes":[{"sni":"a","endpoints":[{"address":"1.2.3.4:5","weight":0}]}]}""", "weight")]
    [InlineData("""{"routes":[{"sni":"a","connectAttempts":17}]}""", "connectAttempts")]
    [InlineData("""{"routes":[{"sni":"a.*"}]}""", "routes[0].sni")]
    [InlineData("""{"routes":[{"sni":"a","consecutiveFailures":0}]}""", "routes[0].consecutiveFailures")]
    [InlineData("""{"routes":[{"sni":"a","maxEjectionPercent":101}]}""", "routes[0].maxEjectionPercent")]
    [InlineData("""{"routes":[{"sni":"a","tcpKeepalive":1}]}""", "routes[0].tcpKeepalive must be")]
    [InlineData("""{"routes":[{"sni":"a","tcpKeepalive":{"probes":128}}]}""", "routes[0].tcpKeepalive.probes")]
    [InlineData("""{"routes":[{"sni":"a"},{"sni":"a"}]}""", "more than once")]
    [InlineData("""{"routes":[{"sni":"a"}""", "not valid JSON")]
    public void TryParse_InvalidFile_ReturnsSpecificError(string json, string expected)
    {
        Assert.False(RouteFileParser.TryParse(Encoding.UTF8.GetBytes(json), TimeSpan.FromSeconds(1), 1, out RouteTable? table, out string? error));

        Assert.Null(table);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Property]
    public Property TryParse_AnyTruncationOrByteFlip_NeverThrows()
    {
        byte[] valid = """{"routes":[{"sni":"web.x","cluster":"c","endpoints":["127.0.0.1:1",{"address":"[::1]:2","weight":2,"healthy":true}]}]}"""u8.ToArray();
        return Prop.ForAll(
            Gen.Choose(0, valid.Length).ToArbitrary(),
            Gen.Choose(0, valid.Length - 1).ToArbitrary(),
            Gen.Choose(0, 255).ToArbitrary(),
            (cut, flipAt, flipTo) =>
            {
                byte[] mutated = (byte[])valid.Clone();
                mutated[flipAt] = (byte)flipTo;
                RouteFileParser.TryParse(valid.AsSpan(0, cut), TimeSpan.FromSeconds(1), 1, out _, out _);
                RouteFileParser.TryParse(mutated, TimeSpan.FromSeconds(1), 1, out _, out _);
            });
    }
}
