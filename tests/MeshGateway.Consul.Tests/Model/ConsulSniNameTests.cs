using MeshGateway.Model;

namespace MeshGateway.Tests.Model;

/// <summary>Every form of docs/consul-behaviour.md §2 (examples from Consul's <c>agent/connect/sni_test.go</c> where it has them).</summary>
public sealed class ConsulSniNameTests
{
    internal const string TD = "5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul";
    internal const string TD2 = "b2e8c5a4-1111-2222-3333-444455556666.consul";

    public static TheoryData<string, ConsulSniName, int> AllForms => new()
    {
        { $"api.default.dc2.internal.{TD}", ConsulSniName.ForService("api", null, null, "dc2", TD), 1 },
        { $"v2.api.default.dc2.internal.{TD}", ConsulSniName.ForService("api", "", "", "dc2", TD, "v2"), 2 },
        { $"api.default.part1.dc2.internal-v1.{TD}", ConsulSniName.ForService("api", "default", "part1", "dc2", TD), 3 },
        { $"canary.api.neighbor.part1.foo.internal-v1.{TD}", ConsulSniName.ForService("api", "neighbor", "part1", "foo", TD, "canary"), 4 },
        { $"dc2.internal.{TD}", ConsulSniName.ForGateway("dc2", null, TD), 5 },
        { $"part1.dc2.internal-v1.{TD}", ConsulSniName.ForGateway("dc2", "part1", TD), 6 },
        { $"magicquery.default.foo.query.{TD}", ConsulSniName.ForPreparedQuery("magicquery", "foo", TD), 7 },
        { $"api.default.default.cluster-02.external.{TD2}", ConsulSniName.ForPeeredService("api", null, null, "cluster-02", TD2), 8 },
        { $"api.default.dc1-peer.external.{TD2}", ConsulSniName.ForImportedPeerCluster("api", "", "dc1-peer", TD2), 9 },
        { "server.dc2.consul", ConsulSniName.ForWanFederationServers("dc2"), 10 },
        { "consul-a.server.dc1.consul", ConsulSniName.ForWanFederationServer("consul-a", "dc1", "consul."), 11 },
        { $"server.dc1.peering.{TD}", ConsulSniName.ForPeeringServers("dc1", TD), 12 },
    };

    [Theory]
    [MemberData(nameof(AllForms))]
    public void ToString_EveryForm_MatchesConsul(string expected, ConsulSniName name, int form)
    {
        Assert.Equal(expected, name.ToString());
        Assert.Equal(form, name.Form);
        Assert.Equal(expected.Length, name.Length);
    }

    [Theory]
    [MemberData(nameof(AllForms))]
    public void TryParse_EveryForm_GivesTheParts(string text, ConsulSniName expected, int form)
    {
        string tdForForm = form is 8 or 9 ? TD2 : TD;
        Assert.True(ConsulSniName.TryParse(text, tdForForm, out ConsulSniName? parsed, out ConsulSniParseError error), error.ToString());
        Assert.Equal(ConsulSniParseError.None, error);
        Assert.Equal(expected, parsed);
        Assert.Equal(form, parsed.Form);
        Assert.Equal(text, parsed.ToString());
    }

    [Theory]
    [MemberData(nameof(AllForms))]
    public void TryParse_AsciiBytes_SameAsChars(string text, ConsulSniName expected, int form)
    {
        string tdForForm = form is 8 or 9 ? TD2 : TD;
        Assert.True(ConsulSniName.TryParse(System.Text.Encoding.ASCII.GetBytes(text), tdForForm, null, out ConsulSniName? parsed, out _));
        Assert.Equal(expected, parsed);
    }

    [Theory]
    [MemberData(nameof(AllForms))]
    public void TryFormat_EveryForm_WritesCharsAndUtf8WithoutSlack(string expected, ConsulSniName name, int form)
    {
        _ = form;
        Span<char> chars = stackalloc char[expected.Length];
        Assert.True(name.TryFormat(chars, out int written));
        Assert.Equal(expected, chars[..written].ToString());
        Assert.False(name.TryFormat(chars[..^1], out written));
        Assert.Equal(0, written);

        Span<byte> bytes = stackalloc byte[expected.Length];
        Assert.True(name.TryFormatUtf8(bytes, out int bytesWritten));
        Assert.Equal(expected, System.Text.Encoding.ASCII.GetString(bytes[..bytesWritten]));
        Assert.False(name.TryFormatUtf8(bytes[..^1], out bytesWritten));
        Assert.Equal(0, bytesWritten);
        Assert.Equal(expected, $"{name}");
    }

    [Fact]
    public void TryParse_ServiceForm_ReturnsEveryPart()
    {
        ConsulSniName name = ConsulSniName.Parse($"canary.api.neighbor.part1.foo.internal-v1.{TD}", TD);
        Assert.Equal(ConsulSniKind.Service, name.Kind);
        Assert.Equal("canary", name.Subset);
        Assert.Equal("api", name.Service);
        Assert.Equal("neighbor", name.Namespace);
        Assert.Equal("part1", name.Partition);
        Assert.Equal("foo", name.Datacenter);
        Assert.Equal(TD, name.TrustDomain);
        Assert.Null(name.Peer);
        Assert.Null(name.DnsDomain);
        Assert.False(name.IsDefaultPartition);
    }

    [Fact]
    public void TryParse_PeeredForms_SeparatedByLabelCountBeforeExternal()
    {
        ConsulSniName wire = ConsulSniName.Parse($"api.ns1.ap1.cluster-02.external.{TD2}", TD2);
        Assert.Equal(ConsulSniKind.PeeredService, wire.Kind);
        Assert.Equal(("api", "ns1", "ap1", "cluster-02"), (wire.Service, wire.Namespace, wire.Partition, wire.Peer));

        ConsulSniName cluster = ConsulSniName.Parse($"api.ns1.cluster-02.external.{TD2}", TD2);
        Assert.Equal(ConsulSniKind.ImportedPeerCluster, cluster.Kind);
        Assert.Equal(("api", "ns1", "cluster-02"), (cluster.Service, cluster.Namespace, cluster.Peer));
        Assert.Null(cluster.Partition);
    }

    [Fact]
    public void TryParse_SameShapeAsPeered_KindLabelDecides()
    {
        // Form 3 and form 8 both have four labels before the kind label.
        Assert.Equal(ConsulSniKind.Service, ConsulSniName.Parse($"api.default.part1.dc2.internal-v1.{TD}", TD).Kind);
        Assert.Equal(ConsulSniKind.PeeredService, ConsulSniName.Parse($"api.default.part1.dc2.external.{TD}", TD).Kind);
        // Form 1 and form 9 both have three.
        Assert.Equal(ConsulSniKind.Service, ConsulSniName.Parse($"api.default.dc2.internal.{TD}", TD).Kind);
        Assert.Equal(ConsulSniKind.ImportedPeerCluster, ConsulSniName.Parse($"api.default.dc2.external.{TD}", TD).Kind);
    }

    // envoyproxy/envoy source/common/network/connection_socket_impl.h (setRequestedServerName lower-cases the SNI) and
    // source/common/listener_manager/filter_chain_manager_impl.cc (server_names lower-cased): Envoy compares names
    // ASCII case-insensitively, so the parser returns the parts as Envoy sees them.
    [Fact]
    public void TryParse_MixedCase_EveryPartLowerCasedAsEnvoySeesIt()
    {
        string upper = $"API.Default.DC2.INTERNAL.{TD.ToUpperInvariant()}";
        Assert.True(ConsulSniName.TryParse(upper, TD.ToUpperInvariant(), out ConsulSniName? name, out _));
        Assert.Equal("api", name.Service);
        Assert.Equal("default", name.Namespace);
        Assert.Equal("dc2", name.Datacenter);
        Assert.Equal(TD, name.TrustDomain);
        Assert.Equal($"api.default.dc2.internal.{TD}", name.ToString());
        Assert.Equal(("v2", "web", "ns", "ap", "dc1"), ConsulSniName.Parse($"V2.Web.NS.AP.DC1.internal-v1.{TD}", TD) is var p ? (p.Subset, p.Service, p.Namespace, p.Partition, p.Datacenter) : default);
        Assert.Equal(("node-a", "dc1", "consul"), ConsulSniName.Parse("Node-A.SERVER.DC1.CONSUL", TD) is var s ? (s.Node, s.Datacenter, s.DnsDomain) : default);
        Assert.Equal(("api", "peer-b"), ConsulSniName.Parse($"API.default.default.PEER-B.external.{TD}", TD) is var e ? (e.Service, e.Peer) : default);

        Assert.Equal(ConsulSniKind.WanFederationServer, ConsulSniName.Parse("Node-A.SERVER.dc1.CONSUL", TD).Kind);
        Assert.Equal(ConsulSniKind.PeeringServers, ConsulSniName.Parse($"Server.dc1.PEERING.{TD}", TD).Kind);
        Assert.Equal(ConsulSniKind.Gateway, ConsulSniName.Parse($"part1.dc2.Internal-V1.{TD}", TD).Kind);
    }

    // hashicorp/consul agent/connect/sni.go dotJoin keeps the case it is given; Envoy (see above) compares ignoring ASCII
    // case, so a name built from "Web" is the same name as the parse of "web...".
    [Fact]
    public void Equals_IgnoresAsciiCaseAsEnvoyCompares()
    {
        ConsulSniName built = ConsulSniName.ForService("Web", null, null, "dc1", TD);
        ConsulSniName parsed = ConsulSniName.Parse($"web.default.dc1.internal.{TD}", TD);
        Assert.Equal(built, parsed);
        Assert.Equal(built.GetHashCode(), parsed.GetHashCode());
        Assert.Equal($"Web.default.dc1.internal.{TD}", built.ToString());
        Assert.Equal(built, ConsulSniName.Parse(built.ToString(), TD));
        Assert.NotEqual(built, ConsulSniName.ForService("Web2", null, null, "dc1", TD));
        Assert.NotEqual(built, ConsulSniName.ForService("Web", null, null, "dc1", TD, "v1"));
        // Subset "v2" of "api" and service "v2.api" (a dot in a name) format alike but are different names.
        Assert.NotEqual(ConsulSniName.ForService("api", null, null, "dc1", TD, "v2"), ConsulSniName.ForService("v2.api", null, null, "dc1", TD));
        // sni.go's ordinal "default" check: partition "Default" formats as a named partition, so it is another name.
        Assert.NotEqual(ConsulSniName.ForService("web", null, "Default", "dc1", TD), ConsulSniName.ForService("web", null, "default", "dc1", TD));
    }

    // A '*' label is a server_names pattern: hashicorp/consul agent/xds/listeners.go writes "*.<dc>.internal.<TD>" for
    // remote datacenters and "*.server.<dc>.<domain>" for remote servers in WAN federation (makeMeshGatewayListener),
    // while tlsutil/config.go ServerSNI only ever names a real node. It is never a node, service or subset named "*".
    [Theory]
    [InlineData("*.server.dc2.consul")]
    [InlineData("*.dc2.internal." + TD)]
    [InlineData("*.part1.dc2.internal-v1." + TD)]
    [InlineData("*.default.dc2.internal." + TD)]
    [InlineData("*.api.default.dc2.internal." + TD)]
    [InlineData("api*.default.dc2.internal." + TD)]
    public void TryParse_WildcardPattern_IsNotAName(string pattern)
    {
        Assert.False(ConsulSniName.TryParse(pattern, TD, out ConsulSniName? name, out ConsulSniParseError error));
        Assert.Null(name);
        Assert.Equal(ConsulSniParseError.WildcardLabel, error);
        Assert.Contains("pattern", ConsulSniName.DescribeParseError(error), StringComparison.Ordinal);
        Assert.False(ConsulSniName.TryParse(System.Text.Encoding.ASCII.GetBytes(pattern), TD, null, out _, out error));
        Assert.Equal(ConsulSniParseError.WildcardLabel, error);
    }

    [Fact]
    public void Wildcards_FormattedByTheLibrary_AreRejectedAsNames()
    {
        Assert.Equal("*.server.dc2.consul", ConsulSniName.WanFederationServerWildcard("dc2"));
        Assert.False(ConsulSniName.TryParse(ConsulSniName.WanFederationServerWildcard("dc2"), TD, out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.WildcardLabel, error);
        Assert.False(ConsulSniName.TryParse(ConsulSniName.RemoteGatewayWildcard("dc2", "part1", TD), TD, out _, out error));
        Assert.Equal(ConsulSniParseError.WildcardLabel, error);
    }

    [Fact]
    public void ForService_KeepsCaseAndNormalisesEmptyParts()
    {
        Assert.Equal($"Web.default.DC1.internal.{TD}", ConsulSniName.ForService("Web", "", null, "DC1", TD).ToString());
        // sni.go compares the partition with "default" ordinally: "Default" is a named partition.
        Assert.Equal($"web.default.Default.dc1.internal-v1.{TD}", ConsulSniName.ForService("web", null, "Default", "dc1", TD).ToString());
    }

    [Fact]
    public void ForPeeredService_DefaultPartition_IsStillWritten()
    {
        Assert.Equal($"api.default.default.peer1.external.{TD}", ConsulSniName.ForPeeredService("api", "", "", "peer1", TD).ToString());
    }

    [Theory]
    [InlineData("", ConsulSniParseError.Empty)]
    [InlineData("api.default.dc2.internal." + TD + ".", ConsulSniParseError.TrailingDot)]
    [InlineData("server.dc2.consul.", ConsulSniParseError.TrailingDot)]
    [InlineData("api.default.dc2.internal." + TD2, ConsulSniParseError.WrongSuffix)]
    [InlineData("api.default.dc2.internal.consul", ConsulSniParseError.WrongSuffix)]
    [InlineData("example.com", ConsulSniParseError.WrongSuffix)]
    [InlineData(TD, ConsulSniParseError.WrongSuffix)]
    [InlineData("x" + TD, ConsulSniParseError.WrongSuffix)]
    [InlineData("api.default.dc2.internal2." + TD, ConsulSniParseError.UnknownKind)]
    [InlineData("api.default.dc2." + TD, ConsulSniParseError.UnknownKind)]
    [InlineData("internal." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("default.dc2.internal." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("a.b.c.d.e.internal." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("a.b.c.d.e.f.g.h.internal." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("dc2.internal-v1." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("ns.part1.dc2.internal-v1." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("a.b.c.d.e.f.internal-v1." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("default.dc2.internal-v1." + TD, ConsulSniParseError.DefaultPartitionInPartitionForm)]
    [InlineData("api.default.DEFAULT.dc2.internal-v1." + TD, ConsulSniParseError.DefaultPartitionInPartitionForm)]
    [InlineData("v1.api.ns.default.dc2.internal-v1." + TD, ConsulSniParseError.DefaultPartitionInPartitionForm)]
    [InlineData("q.ns1.dc1.query." + TD, ConsulSniParseError.QueryNamespaceNotDefault)]
    [InlineData("q.dc1.query." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("default.ns.api.a.b.external." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("api.peer.external." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("client.dc1.peering." + TD, ConsulSniParseError.NotAServerName)]
    [InlineData("x.server.dc1.peering." + TD, ConsulSniParseError.WrongLabelCount)]
    [InlineData("client.dc1.consul", ConsulSniParseError.NotAServerName)]
    [InlineData("a.b.server.dc1.consul", ConsulSniParseError.WrongSuffix)]
    [InlineData("api..dc2.internal." + TD, ConsulSniParseError.EmptyLabel)]
    [InlineData(".api.default.dc2.internal." + TD, ConsulSniParseError.EmptyLabel)]
    [InlineData(".server.dc1.consul", ConsulSniParseError.EmptyLabel)]
    [InlineData("api default.dc2.internal." + TD, ConsulSniParseError.InvalidCharacter)]
    [InlineData("ap\u00e9.default.dc2.internal." + TD, ConsulSniParseError.InvalidCharacter)]
    [InlineData("api.default.dc2.internal\0." + TD, ConsulSniParseError.InvalidCharacter)]
    public void TryParse_NotAConsulName_FailsWithReason(string name, ConsulSniParseError expected)
    {
        Assert.False(ConsulSniName.TryParse(name, TD, out ConsulSniName? result, out ConsulSniParseError error));
        Assert.Null(result);
        Assert.Equal(expected, error);
        Assert.False(string.IsNullOrWhiteSpace(ConsulSniName.DescribeParseError(error)));
        FormatException e = Assert.Throws<FormatException>(() => ConsulSniName.Parse(name, TD));
        Assert.Contains(ConsulSniName.DescribeParseError(error), e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".consul")]
    [InlineData("abc.consul.")]
    [InlineData("a..consul")]
    [InlineData("a b.consul")]
    public void TryParse_BadTrustDomainArgument_FailsWithoutThrowing(string trustDomain)
    {
        Assert.False(ConsulSniName.TryParse($"api.default.dc2.internal.{TD}", trustDomain, out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.InvalidSuffixArgument, error);
    }

    [Fact]
    public void TryParse_NullTrustDomain_FailsWithoutThrowing()
    {
        Assert.False(ConsulSniName.TryParse("server.dc1.consul", null!, out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.InvalidSuffixArgument, error);
    }

    [Fact]
    public void TryParse_CustomDnsDomainWithDots_ServerForms()
    {
        ConsulSniName name = ConsulSniName.Parse("node1.server.dc1.corp.example", TD, "corp.example.");
        Assert.Equal(ConsulSniKind.WanFederationServer, name.Kind);
        Assert.Equal("node1", name.Node);
        Assert.Equal("dc1", name.Datacenter);
        Assert.Equal("corp.example", name.DnsDomain);
        Assert.False(ConsulSniName.TryParse("server.dc1.consul", TD, "corp.example", out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.WrongSuffix, error);
    }

    [Fact]
    public void TryParse_TrustDomainFailureThenServerForm_ReportsTrustDomainReason()
    {
        // Ends with the TD (whose last label is the DNS domain "consul") but is neither a TD form nor a server form.
        Assert.False(ConsulSniName.TryParse($"a.b.c.bogus.{TD}", TD, out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.UnknownKind, error);
    }

    [Fact]
    public void TryParse_LongAsciiBytes_UsesPooledBufferAndFails()
    {
        byte[] name = System.Text.Encoding.ASCII.GetBytes(new string('a', 600) + ".default.dc2.internal." + TD);
        Assert.True(ConsulSniName.TryParse(name, TD, null, out ConsulSniName? parsed, out _));
        Assert.Equal(600, parsed.Service!.Length);
        Assert.False(ConsulSniName.TryParse([(byte)'a', 0xC3, 0xA9], TD, null, out _, out ConsulSniParseError error));
        Assert.Equal(ConsulSniParseError.InvalidCharacter, error);
    }

    [Fact]
    public void RemoteGatewayWildcard_DefaultAndNamedPartition()
    {
        Assert.Equal($"*.dc2.internal.{TD}", ConsulSniName.RemoteGatewayWildcard("dc2", null, TD));
        Assert.Equal($"*.dc2.internal.{TD}", ConsulSniName.RemoteGatewayWildcard("dc2", "default", TD));
        Assert.Equal($"*.part1.dc2.internal-v1.{TD}", ConsulSniName.RemoteGatewayWildcard("dc2", "part1", TD));
        Assert.Equal("*.server.dc2.consul", ConsulSniName.WanFederationServerWildcard("dc2"));
        Assert.Equal("*.server.dc2.corp", ConsulSniName.WanFederationServerWildcard("dc2", "corp."));
    }

    [Fact]
    public void Factories_MissingRequiredPart_Throw()
    {
        Assert.Throws<ArgumentException>(() => ConsulSniName.ForService("", null, null, "dc1", TD));
        Assert.Throws<ArgumentNullException>(() => ConsulSniName.ForService("api", null, null, null!, TD));
        Assert.Throws<ArgumentException>(() => ConsulSniName.ForGateway("dc1", null, ""));
        Assert.Throws<ArgumentException>(() => ConsulSniName.ForPeeredService("api", null, null, "", TD));
        Assert.Throws<ArgumentException>(() => ConsulSniName.ForWanFederationServer("", "dc1"));
    }

    [Fact]
    public void Equality_OverPartsIgnoringAsciiCaseOnly()
    {
        Assert.Equal(ConsulSniName.ForService("api", null, null, "dc1", TD), ConsulSniName.ForService("api", "default", "default", "dc1", TD));
        Assert.Equal(ConsulSniName.ForService("api", null, null, "dc1", TD), ConsulSniName.ForService("API", null, null, "dc1", TD));
        // Envoy's absl::AsciiStrToLower folds ASCII letters only.
        Assert.NotEqual(ConsulSniName.ForService("caf\u00e9", null, null, "dc1", TD), ConsulSniName.ForService("CAF\u00c9", null, null, "dc1", TD));
    }

    [Theory]
    [InlineData(null, "dc1", "web", null, "spiffe://" + TD + "/ns/default/dc/dc1/svc/web")]
    [InlineData("ns1", "dc2", "api", "default", "spiffe://" + TD + "/ns/ns1/dc/dc2/svc/api")]
    [InlineData("", "dc2", "api", "part1", "spiffe://" + TD + "/ap/part1/ns/default/dc/dc2/svc/api")]
    [InlineData("ns", "dc", "a b", null, "spiffe://" + TD + "/ns/ns/dc/dc/svc/a%20b")]
    [InlineData("ns", "dc", "a:b@c~d", null, "spiffe://" + TD + "/ns/ns/dc/dc/svc/a:b@c~d")]
    [InlineData("ns", "dc", "caf\u00e9?", null, "spiffe://" + TD + "/ns/ns/dc/dc/svc/caf%C3%A9%3F")]
    public void SpiffeForService_MatchesConsulUri(string? ns, string dc, string service, string? partition, string expected)
    {
        Assert.Equal(expected, ConsulSpiffeId.ForService(TD, ns, dc, service, partition));
    }
}
