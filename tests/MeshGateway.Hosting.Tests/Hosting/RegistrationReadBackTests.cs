using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshGateway.Consul;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

/// <summary>
/// A gateway registered by someone else (Consul:Register false) gets the listeners and timeouts its registration's
/// Proxy.Config gives Envoy; what the gateway writes when it registers, it reads back the same.
/// </summary>
public sealed class RegistrationReadBackTests
{
    [Fact]
    public async Task RegisteredBySomeoneElse_RealAgent_ListenersAndTimeoutsComeFromProxyConfig()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        (string sni, byte[] hello, RawBackend api) = await HostFixture.RegisterEchoApiAsync(agent);
        await using RawBackend _ = api;

        int lanPort = FreePorts.Next(), wanPort = FreePorts.Next(), extraPort = FreePorts.Next(), defaultPort = FreePorts.Next();

        // As `consul services register` would put it: weakly typed values ("true", "1234"), no check.
        await agent.PutJsonAsync("/v1/agent/service/register", $$$$"""
            {"Kind":"mesh-gateway","ID":"gw-1","Name":"mesh-gateway","Address":"127.0.0.1","Port":{{{{defaultPort}}}},
             "TaggedAddresses":{"lan":{"Address":"127.0.0.1","Port":{{{{lanPort}}}}},"wan":{"Address":"127.0.0.2","Port":{{{{wanPort}}}}}},
             "Proxy":{"Config":{
               "envoy_gateway_bind_tagged_addresses":"true",
               "envoy_gateway_no_default_bind":true,
               "envoy_gateway_bind_addresses":{"extra":{"Address":"127.0.0.1","Port":{{{{extraPort}}}}}},
               "connect_timeout_ms":"1234",
               "envoy_gateway_remote_tcp_enable_keepalive":true,
               "envoy_gateway_remote_tcp_keepalive_time":30,
               "envoy_gateway_remote_tcp_keepalive_interval":"10",
               "envoy_gateway_remote_tcp_keepalive_probes":4}}}
            """);

        using IHost host = HostFixture.Build(g => g.UseConsulCatalog(c =>
        {
            c.Address = agent.HttpAddress.ToString();
            c.Register = false;
            c.ServiceId = "gw-1";
        }));
        await host.StartAsync();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();

        // No default listener (no_default_bind); one per tagged address, including the lan_ipv4 the 1.8.7 agent adds
        // from the service Address:Port (Envoy binds it too; the agent's wan_ipv4 would repeat wan and is dropped as a
        // duplicate); the extra one; sorted by name.
        Assert.Equal(
            [$"extra:127.0.0.1:{extraPort}", $"lan:127.0.0.1:{lanPort}", $"lan_ipv4:127.0.0.1:{defaultPort}", $"wan:127.0.0.2:{wanPort}"],
            runtime.Listeners.Select(l => l.ToString()));

        // connect_timeout_ms on the local service's cluster; the remote keepalive read for remote gateways' clusters.
        Assert.True(runtime.Routes.Current.TryMatch(sni, out Route? route));
        Assert.Equal(TimeSpan.FromMilliseconds(1234), route.Cluster.ConnectTimeout);
        ConsulGatewayConfig readBack = ((ConsulCatalogRouteSource)runtime.RouteSource).ReadBack!;
        Assert.Equal(30, readBack.RemoteTcpKeepAlive!.Time);
        Assert.Equal(10, readBack.RemoteTcpKeepAlive.Interval);
        Assert.Equal(4, readBack.RemoteTcpKeepAlive.Probes);

        // Traffic through the WAN listener, and the registration is left alone (it is someone else's).
        using (Socket client = await HostFixture.ConnectAsync(new IPEndPoint(IPAddress.Parse("127.0.0.2"), wanPort), hello))
        {
            await HostFixture.EchoAsync(client, "through the registration's wan listener"u8.ToArray());
        }

        await host.StopAsync();
        Assert.NotNull((await agent.GetJsonAsync("/v1/agent/services"))!["gw-1"]);

        // Invalid values fail the start with every problem named by its key.
        await agent.PutJsonAsync("/v1/agent/service/register", $$$$$$"""
            {"Kind":"mesh-gateway","ID":"gw-bad","Name":"mesh-gateway","Address":"127.0.0.1","Port":{{{{{{defaultPort}}}}}},
             "Proxy":{"Config":{"connect_timeout_ms":"soon","envoy_gateway_no_default_bind":"maybe",
               "envoy_gateway_bind_addresses":{"pub":{"Address":"gw.example.com","Port":443}}}}}
            """);
        using IHost bad = HostFixture.Build(g => g.UseConsulCatalog(c =>
        {
            c.Address = agent.HttpAddress.ToString();
            c.Register = false;
            c.ServiceId = "gw-bad";
        }));
        InvalidOperationException ex = await Assert.ThrowsAsync<InvalidOperationException>(() => bad.StartAsync());
        Assert.Contains("'connect_timeout_ms' is \"soon\" but must be a whole number", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'envoy_gateway_no_default_bind' is \"maybe\" but must be a boolean", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'envoy_gateway_bind_addresses.pub.Address' is 'gw.example.com' but must be an IP address", ex.Message, StringComparison.Ordinal);

        // No registration at all: the options decide (the default listener on MeshGateway:Address/Port).
        using IHost unregistered = HostFixture.Build(g => g.UseConsulCatalog(c =>
        {
            c.Address = agent.HttpAddress.ToString();
            c.Register = false;
            c.ServiceId = "gw-absent";
        }));
        await unregistered.StartAsync();
        MeshGatewayRuntime fromOptions = unregistered.Services.GetRequiredService<MeshGatewayRuntime>();
        Assert.Equal("default", Assert.Single(fromOptions.Listeners).Name);
        Assert.Null(((ConsulCatalogRouteSource)fromOptions.RouteSource).ReadBack);
        Assert.True(fromOptions.Routes.Current.TryMatch(sni, out Route? optionsRoute));
        Assert.Equal(TimeSpan.FromSeconds(5), optionsRoute.Cluster.ConnectTimeout);
        await unregistered.StopAsync();
    }

    [Fact]
    public void WhatTheGatewayWrites_ItReadsBackTheSame()
    {
        var options = new MeshGatewayOptions
        {
            Address = "127.0.0.1",
            Port = 8443,
            WanAddress = "203.0.113.7:443",
            BindTaggedAddresses = true,
            ConnectTimeout = TimeSpan.FromMilliseconds(2500),
        };
        options.BindAddresses["extra"] = "127.0.0.1:9443";
        options.RemoteTcpKeepalive.Enabled = true;
        options.RemoteTcpKeepalive.Time = 60;
        options.RemoteTcpKeepalive.Probes = 3;
        var listeners = new List<MeshGatewayListenerAddress> { new("default", new IPEndPoint(IPAddress.Loopback, 8443)) };

        ConsulServiceRegistration written = ConsulCatalogRouteSource.RegistrationFor(options, listeners).ToRegistration();

        // Through JSON, as the agent stores and returns it.
        string json = JsonSerializer.Serialize(written.Proxy!.Config);
        Dictionary<string, JsonElement> stored = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;
        var errors = new List<string>();
        ConsulGatewayConfig read = ConsulGatewayConfig.Parse(stored, errors);

        Assert.Empty(errors);
        Assert.True(read.BindTaggedAddresses);
        Assert.True(read.NoDefaultBind);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9443), Assert.Single(read.BindAddresses, b => b.Key == "extra").Value);
        Assert.Equal(2500, read.ConnectTimeoutMs);
        Assert.Equal(60, read.RemoteTcpKeepAlive!.Time);
        Assert.Null(read.RemoteTcpKeepAlive.Interval);
        Assert.Equal(3, read.RemoteTcpKeepAlive.Probes);
    }

    [Theory]
    [InlineData("""{"connect_timeout_ms":0}""", 5000, false)]
    [InlineData("""{"connect_timeout_ms":-5}""", 5000, false)]
    [InlineData("""{"connect_timeout_ms":""}""", 5000, false)]
    [InlineData("""{"connect_timeout_ms":"750"}""", 750, false)]
    [InlineData("""{"envoy_mesh_gateway_no_default_bind":"1"}""", 5000, true)]
    [InlineData("""{"envoy_gateway_no_default_bind":1}""", 5000, true)]
    [InlineData("""{"envoy_gateway_no_default_bind":"F"}""", 5000, false)]
    public void Parse_DecodesWeaklyAsConsulDoes(string config, int connectTimeoutMs, bool noDefaultBind)
    {
        var errors = new List<string>();
        ConsulGatewayConfig read = ConsulGatewayConfig.Parse(JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(config), errors);
        Assert.Empty(errors);
        Assert.Equal(connectTimeoutMs, read.ConnectTimeoutMs);
        Assert.Equal(noDefaultBind, read.NoDefaultBind);
    }

    [Theory]
    [InlineData("""{"connect_timeout_ms":1.5}""", "'connect_timeout_ms' is 1.5 but must be a whole number")]
    [InlineData("""{"envoy_gateway_bind_tagged_addresses":[true]}""", "'envoy_gateway_bind_tagged_addresses' is [true] but must be a boolean")]
    [InlineData("""{"envoy_gateway_bind_addresses":"x"}""", "'envoy_gateway_bind_addresses' is \"x\" but must be an object")]
    [InlineData("""{"envoy_gateway_bind_addresses":{"a":{"Address":"10.0.0.1"}}}""", "'envoy_gateway_bind_addresses.a' is {\"Address\":\"10.0.0.1\"} but must be")]
    [InlineData("""{"envoy_gateway_bind_addresses":{"a":{"address":"10.0.0.1","port":70000}}}""", "'envoy_gateway_bind_addresses.a.Port' is 70000 but must be 1-65535")]
    [InlineData("""{"envoy_gateway_remote_tcp_keepalive_probes":500}""", "'envoy_gateway_remote_tcp_keepalive_probes' is 500 but must be between 0 and 127")]
    [InlineData("""{"envoy_gateway_remote_tcp_keepalive_time":"1h"}""", "'envoy_gateway_remote_tcp_keepalive_time' is \"1h\" but must be a whole number")]
    public void Parse_InvalidValue_NamesTheKey(string config, string expected)
    {
        var errors = new List<string>();
        ConsulGatewayConfig.Parse(JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(config), errors);
        Assert.Contains(expected, Assert.Single(errors), StringComparison.Ordinal);
    }
}
