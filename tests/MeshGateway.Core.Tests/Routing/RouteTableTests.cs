using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using MeshGateway.Routing;

namespace MeshGateway.Tests.Routing;

public sealed class RouteTableTests
{
    private const string Td = "11111111-2222-3333-4444-555555555555.consul";

    private static UpstreamCluster Cluster(string name) => new(name, [new UpstreamEndpoint(new IPEndPoint(IPAddress.Loopback, 1000))]);

    private static RouteTable ConsulLike() => RouteTable.Create(
    [
        new Route($"web.default.dc1.internal.{Td}", Cluster("web")),
        new Route($"v2.web.default.dc1.internal.{Td}", Cluster("web-v2")),
        new Route($"dc2.internal.{Td}", Cluster("dc2-gateways")),
        new Route($"*.dc2.internal.{Td}", Cluster("dc2")),
        new Route($"*.default.dc2.internal.{Td}", Cluster("dc2-default")),
        new Route($"api.default.dc2.internal.{Td}", Cluster("dc2-api-exact")),
        new Route("server.dc2.consul", Cluster("dc2-servers-exact")),
        new Route("*.server.dc2.consul", Cluster("dc2-servers")),
    ]);

    private static string? Match(RouteTable table, string name)
        => table.TryMatch(Encoding.ASCII.GetBytes(name), out Route? route) ? route.Cluster.Name : null;

    [Theory]
    [InlineData("web.default.dc1.internal." + Td, "web")]
    [InlineData("v2.web.default.dc1.internal." + Td, "web-v2")]
    [InlineData("WEB.Default.DC1.internal." + Td, "web")]
    [InlineData("dc2.internal." + Td, "dc2-gateways")]
    [InlineData("db.default.dc2.internal." + Td, "dc2-default")]
    [InlineData("v1.db.default.dc2.internal." + Td, "dc2-default")]
    [InlineData("db.ns1.dc2.internal." + Td, "dc2")]
    [InlineData("api.default.dc2.internal." + Td, "dc2-api-exact")]
    [InlineData("API.DEFAULT.DC2.INTERNAL." + Td, "dc2-api-exact")]
    [InlineData("server.dc2.consul", "dc2-servers-exact")]
    [InlineData("node1.server.dc2.consul", "dc2-servers")]
    [InlineData("a.b.server.dc2.consul", "dc2-servers")]
    public void TryMatch_KnownName_PicksExactThenLongestSuffix(string name, string expected)
        => Assert.Equal(expected, Match(ConsulLike(), name));

    [Theory]
    [InlineData("web.default.dc1.internal." + Td + ".")]
    [InlineData("db.default.dc2.internal." + Td + ".")]
    [InlineData("server.dc2.consul.")]
    [InlineData("db.default.dc1.internal." + Td)]
    [InlineData("internal." + Td)]
    [InlineData(".dc2.internal." + Td)]
    [InlineData("x")]
    [InlineData("")]
    public void TryMatch_UnknownOrTrailingDot_MatchesNothing(string name)
        => Assert.Null(Match(ConsulLike(), name));

    [Fact]
    public void TryMatch_NonAsciiBytes_MatchesNothing()
    {
        byte[] name = Encoding.ASCII.GetBytes("web.default.dc1.internal." + Td);
        name[0] = 0xC3;
        Assert.False(ConsulLike().TryMatch(name, out _));
    }

    [Fact]
    public void TryMatch_Chars_SameAnswerAsBytes()
    {
        Assert.True(ConsulLike().TryMatch("Node1.Server.DC2.consul".AsSpan(), out Route? route));
        Assert.Equal("dc2-servers", route.Cluster.Name);
        Assert.Equal(RouteKind.Wildcard, route.Kind);
    }

    [Fact]
    public void TryMatch_ManyLookups_AllocatesNothing()
    {
        RouteTable table = ConsulLike();
        byte[][] names =
        [
            Encoding.ASCII.GetBytes("WEB.default.dc1.internal." + Td),
            Encoding.ASCII.GetBytes("a.b.c.d.e.default.dc2.internal." + Td),
            Encoding.ASCII.GetBytes("nothing.here.example"),
        ];
        foreach (byte[] name in names)
        {
            table.TryMatch(name, out _);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        int hits = 0;
        for (int i = 0; i < 1000; i++)
        {
            hits += table.TryMatch(names[i % names.Length], out _) ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(667, hits);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a.")]
    [InlineData("*.")]
    [InlineData("a*.b")]
    [InlineData("*.*.b")]
    [InlineData("a..b")]
    [InlineData(".a")]
    [InlineData("a b")]
    [InlineData("é.b")]
    public void Route_InvalidPattern_Throws(string pattern)
        => Assert.Throws<ArgumentException>(() => new Route(pattern, Cluster("c")));

    [Fact]
    public void Route_LongPattern_Throws()
        => Assert.Throws<ArgumentException>(() => new Route(new string('a', 256), Cluster("c")));

    [Fact]
    public void Create_DuplicatePatternIgnoringCase_Throws()
    {
        ArgumentException ex = Assert.Throws<ArgumentException>(() => RouteTable.Create([new Route("a.b", Cluster("1")), new Route("A.B", Cluster("2"))]));
        Assert.Contains("a.b", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_ExactAndWildcardOfSameSuffix_BothKept()
    {
        RouteTable table = RouteTable.Create([new Route("*.a.b", Cluster("w")), new Route("a.b", Cluster("e"))]);
        Assert.Equal(1, table.ExactCount);
        Assert.Equal(1, table.WildcardCount);
        Assert.Equal(RouteKind.Exact, table.Routes[0].Kind);
        Assert.Equal("e", Match(table, "a.b"));
        Assert.Equal("w", Match(table, "x.a.b"));
    }

    [Property]
    public Property TryMatch_RandomNames_AgreesWithReferenceMatcher()
    {
        string[] labels = ["a", "b", "c", "dc2", "internal"];
        Gen<string> name = Gen.Elements(labels).ArrayOf().Where(a => a.Length is > 0 and < 6).Select(a => string.Join('.', a));
        Gen<(string[] Exact, string[] Wild)> tables = Gen.Zip(name.ArrayOf(), name.ArrayOf())
            .Select(t => (t.Item1.Distinct().ToArray(), t.Item2.Distinct().ToArray()));

        return Prop.ForAll(tables.ToArbitrary(), name.ToArbitrary(), Gen.Elements(true, false).ToArbitrary(), (t, query, upper) =>
        {
            RouteTable table = RouteTable.Create(
                t.Exact.Select(e => new Route(e, Cluster("exact:" + e)))
                    .Concat(t.Wild.Select(w => new Route("*." + w, Cluster("wild:" + w)))));
            string asked = upper ? query.ToUpperInvariant() : query;
            string? expected = t.Exact.Contains(query) ? "exact:" + query
                : t.Wild.Where(w => query.EndsWith("." + w, StringComparison.Ordinal)).OrderByDescending(w => w.Length).Select(w => "wild:" + w).FirstOrDefault();
            return Match(table, asked) == expected && Match(table, asked + ".") is null;
        });
    }
}
