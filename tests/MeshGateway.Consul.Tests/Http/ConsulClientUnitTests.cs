using System.Net;
using System.Net.Sockets;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Model;

namespace MeshGateway.Consul.Tests.Http;

public sealed class ConsulClientUnitTests
{
    private const string Secret = "0b8e1b5e-5f55-4c1e-a58d-6d2f0f1d9c11";

    private static ConsulClient Client(FakeConsulHandler handler, string? token = Secret, string? dc = null) =>
        new(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:8500"), Token = token, Handler = handler, Datacenter = dc });

    [Fact]
    public async Task GetHealthServiceAsync_SectionEightTwoShape_DecodesBothTaggedAddressFormsIntoTheModel()
    {
        // docs/consul-behaviour.md §8.2 sample; the service tagged addresses use lower-case keys inside, as some docs show.
        const string service = """
            {"Kind": "mesh-gateway", "ID": "mesh-gateway", "Service": "mesh-gateway", "Tags": [], "Address": "10.0.1.5", "Port": 8443,
             "TaggedAddresses": {"lan": {"address": "10.0.1.5", "port": 8443}, "wan": {"Address": "198.51.100.5", "Port": 443}},
             "Meta": {}, "Weights": {"Passing": 3, "Warning": 1},
             "Proxy": {"Config": {"envoy_gateway_bind_tagged_addresses": true}, "MeshGateway": {"Mode": "LOCAL-ish"},
                       "Upstreams": [{"DestinationName": "api", "Datacenter": "dc9", "MeshGateway": {"Mode": "bogus"}}]},
             "Connect": {"PeerMeta": {"SNI": ["api.default.default.peer.external.td"], "SpiffeID": ["spiffe://td/ns/default/dc/dc1/svc/api"], "Protocol": "tcp"}},
             "CreateIndex": 10, "ModifyIndex": 10, "SomeFutureField": {"x": 1}}
            """;
        const string body = $$"""
            [{"Node": {"ID": "uuid", "Node": "node-1", "Address": "10.0.1.5", "Datacenter": "dc2",
                       "TaggedAddresses": {"lan": "10.0.1.5", "wan": "198.51.100.5"}, "Meta": {}, "CreateIndex": 5, "ModifyIndex": 9},
              "Service": {{service}},
              "Checks": [{"Node": "node-1", "CheckID": "service:mesh-gateway", "Name": "x", "Status": "passing", "ServiceID": "mesh-gateway",
                          "ServiceName": "mesh-gateway", "ServiceTags": [], "Type": "tcp", "CreateIndex": 11, "ModifyIndex": 11}]}]
            """;
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, body, index: 42, r =>
        {
            r.Headers.Add("X-Consul-KnownLeader", "true");
            r.Headers.Add("X-Consul-LastContact", "15");
        });
        handler.Enqueue(HttpStatusCode.OK, service); // the same registration as /v1/agent/service/<id> shows it
        using ConsulClient client = Client(handler);

        ConsulResponse<IReadOnlyList<CatalogServiceInstance>> response = await client.GetHealthServiceAsync("mesh-gateway", passingOnly: true, new ConsulQuery { Datacenter = "dc2", Filter = "Service.Kind == \"mesh-gateway\"" });
        ConsulAgentService agent = (await client.GetAgentServiceAsync("mesh-gateway")).Value;

        CatalogServiceInstance entry = Assert.Single(response.Value);
        Assert.Equal(42UL, response.Index);
        Assert.True(response.KnownLeader);
        Assert.Equal(TimeSpan.FromMilliseconds(15), response.LastContact);
        Assert.Equal(("node-1", "10.0.1.5", "dc2", 9UL), (entry.Node.Name, entry.Node.Address, entry.Node.Datacenter, entry.Node.ModifyIndex));
        Assert.Equal("198.51.100.5", entry.Node.TaggedAddresses["wan"]);
        Assert.Equal("10.0.1.5", entry.Service.TaggedAddresses["lan"].Address);
        Assert.Equal(8443, entry.Service.TaggedAddresses["lan"].Port);
        Assert.Equal(443, entry.Service.TaggedAddresses["wan"].Port);
        Assert.Equal(("mesh-gateway", "mesh-gateway", "mesh-gateway", 10UL), (entry.Service.Kind, entry.Service.Id, entry.Service.Name, entry.Service.ModifyIndex));
        Assert.Equal(["api.default.default.peer.external.td"], entry.Service.PeerSni);
        Assert.Equal(new CatalogWeights(3, 1), entry.Service.Weights);
        Assert.Equal([CatalogHealthStatus.Passing], entry.Checks);
        Assert.Equal("LOCAL-ish", agent.Proxy!.MeshGateway!.Mode);
        Assert.Equal("bogus", agent.Proxy.Upstreams![0].MeshGateway!.Mode);
        Assert.True(agent.Proxy.Config!["envoy_gateway_bind_tagged_addresses"].GetBoolean());
        string uri = handler.Requests[0].PathAndQuery;
        Assert.StartsWith("/v1/health/service/mesh-gateway?dc=dc2&filter=Service.Kind%20%3D%3D%20%22mesh-gateway%22&passing=true", uri);
        Assert.Equal(Secret, handler.Tokens[0]);
    }

    [Fact]
    public async Task ConfigEntries_ReferenceShapes_Decode()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, """{"Kind": "service-defaults", "Name": "web", "Protocol": "http", "MeshGateway": {"Mode": "remote"}, "UpstreamConfig": {"Defaults": {"MeshGateway": {"Mode": "local"}}, "Overrides": [{"Name": "api", "Peer": "", "MeshGateway": {"Mode": "remote"}}]}}""");
        handler.Enqueue(HttpStatusCode.OK, """{"Kind": "proxy-defaults", "Name": "global", "Config": {}, "MeshGateway": {"Mode": "local"}}""");
        handler.Enqueue(HttpStatusCode.OK, """{"Kind": "mesh", "Name": "mesh", "Peering": {"PeerThroughMeshGateways": true}}""");
        handler.Enqueue(HttpStatusCode.OK, """{"Kind": "exported-services", "Name": "default", "Services": [{"Name": "api", "Namespace": "default", "Consumers": [{"Peer": "cluster-02"}, {"Partition": "part1"}]}]}""");
        handler.Enqueue(HttpStatusCode.OK, """[{"Kind": "service-resolver", "Name": "api", "DefaultSubset": "v1", "ConnectTimeout": "15s", "Subsets": {"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2", "OnlyPassing": true}}}, {"Kind": "service-resolver", "Name": "db", "ConnectTimeout": 2500000000}]""");
        using ConsulClient client = Client(handler);

        ConsulServiceDefaults sd = (await client.GetServiceDefaultsAsync("web")).Value;
        ConsulProxyDefaults pd = (await client.GetProxyDefaultsAsync()).Value;
        ConsulMeshConfigEntry mesh = (await client.GetMeshAsync()).Value;
        ConsulExportedServices exported = (await client.GetExportedServicesAsync()).Value;
        IReadOnlyList<ConsulServiceResolver> resolvers = (await client.ListServiceResolversAsync()).Value;

        Assert.Equal("remote", sd.MeshGateway!.Mode);
        Assert.Equal("local", sd.UpstreamConfig!.Defaults!.MeshGateway!.Mode);
        Assert.Equal("api", sd.UpstreamConfig.Overrides![0].Name);
        Assert.Equal("local", pd.MeshGateway!.Mode);
        Assert.True(mesh.Peering!.PeerThroughMeshGateways);
        Assert.Equal("cluster-02", exported.Services![0].Consumers![0].Peer);
        Assert.Equal("part1", exported.Services[0].Consumers![1].Partition);
        Assert.Equal(TimeSpan.FromSeconds(15), resolvers[0].ConnectTimeout);
        Assert.True(resolvers[0].Subsets!["v2"].OnlyPassing);
        Assert.Equal(TimeSpan.FromSeconds(2.5), resolvers[1].ConnectTimeout);
    }

    [Theory]
    [InlineData(403, "Permission denied: token with AccessorID 'a1' lacks permission 'service:write' on \"mesh-gateway\"", typeof(ConsulPermissionDeniedException))]
    [InlineData(403, "Permission denied", typeof(ConsulPermissionDeniedException))]
    [InlineData(403, "ACL not found", typeof(ConsulAclNotFoundException))]
    [InlineData(403, "ACL system must be bootstrapped before making any requests that require authorization: ACL not found", typeof(ConsulAclNotFoundException))]
    [InlineData(404, "Config entry not found for \"service-resolver\" / \"api\"", typeof(ConsulNotFoundException))]
    [InlineData(500, "No path to datacenter", typeof(ConsulNoPathToDatacenterException))]
    [InlineData(500, "rpc error: oops", typeof(ConsulHttpException))]
    [InlineData(400, "Invalid wait time", typeof(ConsulHttpException))]
    public async Task Send_ErrorStatus_MapsToTypedExceptionKeepingBodyWithoutToken(int status, string body, Type expected)
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue((HttpStatusCode)status, body);
        using ConsulClient client = Client(handler, dc: "dc7");

        ConsulException error = await Assert.ThrowsAnyAsync<ConsulException>(() => client.GetServiceResolverAsync("api"));

        Assert.IsType(expected, error);
        Assert.Equal(body, ((ConsulStatusException)error).Body);
        Assert.Equal((HttpStatusCode)status, error.StatusCode);
        Assert.Contains("/v1/config/service-resolver/api?dc=dc7", error.Request);
        Assert.DoesNotContain(Secret, error.ToString());
        if (error is ConsulNoPathToDatacenterException noPath)
        {
            Assert.Equal("dc7", noPath.Datacenter);
        }
    }

    [Fact]
    public async Task Send_ConnectionRefused_ThrowsTransportExceptionWithoutToken()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        using var client = new ConsulClient(new ConsulClientOptions { Address = new Uri($"http://127.0.0.1:{port}"), Token = Secret });

        ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        Assert.False(error.IsTimeout);
        Assert.Null(error.StatusCode);
        Assert.DoesNotContain(Secret, error.ToString());
        Assert.DoesNotContain(Secret, client.ToString());
        Assert.DoesNotContain(Secret, client.Options.ToString());
    }

    [Fact]
    public async Task Send_NoAnswerWithinTimeout_ThrowsTimeoutTransportException()
    {
        var handler = new FakeConsulHandler(); // nothing scripted: the request hangs
        using var client = new ConsulClient(new ConsulClientOptions { Handler = handler, RequestTimeout = TimeSpan.FromMilliseconds(200) });

        ConsulTransportException error = await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetDatacentersAsync());

        Assert.True(error.IsTimeout);
    }

    [Fact]
    public async Task Send_CallerCancels_ThrowsOperationCanceled()
    {
        var handler = new FakeConsulHandler();
        using var client = new ConsulClient(new ConsulClientOptions { Handler = handler });
        using var cts = new CancellationTokenSource();
        Task call = client.GetDatacentersAsync(cts.Token);
        await handler.NextRequestAsync();

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public async Task Send_BlockingQuery_SendsIndexAndWait()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, "{}", index: 8);
        using var client = new ConsulClient(new ConsulClientOptions { Handler = handler });

        await client.GetServicesAsync(new ConsulQuery { Index = 7, Wait = TimeSpan.FromSeconds(30) });

        Assert.Equal("/v1/catalog/services?index=7&wait=30s", handler.Requests[0].PathAndQuery);
    }

    [Fact]
    public async Task Token_FromFileOrEnvironment_IsSentAsHeader()
    {
        string file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "  file-secret\n");
            var handler = new FakeConsulHandler();
            handler.Enqueue(HttpStatusCode.OK, "[]");
            using var fromFile = new ConsulClient(new ConsulClientOptions { Handler = handler, TokenFile = file });
            await fromFile.GetDatacentersAsync();
            Assert.Equal("file-secret", handler.Tokens[0]);
            Assert.True(fromFile.HasToken);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task RegisterServiceAsync_GatewayOptions_SendsSectionSixBody()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, string.Empty);
        using ConsulClient client = Client(handler);
        var options = new ConsulGatewayRegistrationOptions { LanAddress = "10.0.0.5", LanPort = 8443, WanAddress = "203.0.113.7", WanPort = 443, WanFederation = true, BindTaggedAddresses = true };

        await client.RegisterServiceAsync(options.ToRegistration(), replaceExistingChecks: true);

        Assert.Equal("/v1/agent/service/register?replace-existing-checks=true", handler.Requests[0].PathAndQuery);
        var json = System.Text.Json.Nodes.JsonNode.Parse(handler.Bodies[0]!)!;
        Assert.Equal("mesh-gateway", (string?)json["Kind"]);
        Assert.Equal("mesh-gateway", (string?)json["ID"]);
        Assert.Equal(8443, (int)json["Port"]!);
        Assert.Equal("10.0.0.5", (string?)json["TaggedAddresses"]!["lan"]!["Address"]);
        Assert.Equal("203.0.113.7", (string?)json["TaggedAddresses"]!["wan"]!["Address"]);
        Assert.Equal(443, (int)json["TaggedAddresses"]!["wan"]!["Port"]!);
        Assert.Equal("1", (string?)json["Meta"]!["consul-wan-federation"]);
        Assert.True((bool)json["Proxy"]!["Config"]!["envoy_gateway_bind_tagged_addresses"]!);
        Assert.Equal("10.0.0.5:8443", (string?)json["Check"]!["TCP"]);
        Assert.Equal("10s", (string?)json["Check"]!["Interval"]);
        Assert.Null(json["Proxy"]!["Config"]!["envoy_gateway_remote_tcp_enable_keepalive"]);
    }

    [Fact]
    public async Task RegisterServiceAsync_RemoteTcpKeepAlive_WritesConsulsProxyConfigKeys()
    {
        var handler = new FakeConsulHandler();
        handler.Enqueue(HttpStatusCode.OK, string.Empty);
        using ConsulClient client = Client(handler);
        var options = new ConsulGatewayRegistrationOptions { LanAddress = "10.0.0.5", LanPort = 8443, RemoteTcpKeepAlive = new MeshGateway.Routing.TcpKeepAlive { Time = 120, Probes = 7 } };

        await client.RegisterServiceAsync(options.ToRegistration(), replaceExistingChecks: true);

        var config = System.Text.Json.Nodes.JsonNode.Parse(handler.Bodies[0]!)!["Proxy"]!["Config"]!;
        Assert.True((bool)config["envoy_gateway_remote_tcp_enable_keepalive"]!);
        Assert.Equal(120, (int)config["envoy_gateway_remote_tcp_keepalive_time"]!);
        Assert.Null(config["envoy_gateway_remote_tcp_keepalive_interval"]);
        Assert.Equal(7, (int)config["envoy_gateway_remote_tcp_keepalive_probes"]!);
    }

    [Fact]
    public async Task SendAsync_BodyReadFails_DisposesResponseAndThrowsTransportError()
    {
        var handler = new FakeConsulHandler();
        var content = new FailingContent();
        handler.Enqueue(HttpStatusCode.OK, "\"x\"", index: 1, r => r.Content = content);
        using ConsulClient client = Client(handler);

        await Assert.ThrowsAsync<ConsulTransportException>(() => client.GetLeaderAsync());

        // The response (and with it the pooled connection) must be released, not left to the finaliser.
        Assert.True(content.Disposed);
    }

    private sealed class FailingContent : HttpContent
    {
        public bool Disposed { get; private set; }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            Task.FromException(new IOException("connection reset while reading the body"));

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
