using System.Text.Json;
using MeshGateway.Routing;

namespace MeshGateway.Consul;

/// <summary>How the gateway registers itself with its local agent (docs/consul-behaviour.md §6).</summary>
public sealed class ConsulGatewayRegistrationOptions
{
    /// <summary>Service instance ID. Default <c>mesh-gateway</c>.</summary>
    public string ServiceId { get; set; } = "mesh-gateway";

    /// <summary>Service name (the token needs <c>service:write</c> on it). Default <c>mesh-gateway</c>.</summary>
    public string ServiceName { get; set; } = "mesh-gateway";

    /// <summary>The LAN address local services and local sidecars reach the gateway on (registration <c>Address</c>, <c>lan</c> tag, TCP check).</summary>
    public required string LanAddress { get; set; }

    /// <summary>The LAN port (registration <c>Port</c>).</summary>
    public required int LanPort { get; set; }

    /// <summary>The WAN address remote gateways reach this one on (<c>wan</c> tag). Default: the LAN address.</summary>
    public string? WanAddress { get; set; }

    /// <summary>The WAN port; 0 means the LAN port (as <c>consul connect envoy -wan-address</c> does).</summary>
    public int WanPort { get; set; }

    /// <summary>Service metadata (keys starting <c>consul-</c> are reserved by Consul).</summary>
    public Dictionary<string, string> Meta { get; } = new(StringComparer.Ordinal);

    /// <summary>Adds meta <c>consul-wan-federation = "1"</c> (WAN federation through gateways). Default false.</summary>
    public bool WanFederation { get; set; }

    /// <summary>Sets <c>envoy_gateway_bind_tagged_addresses</c> and <c>envoy_gateway_no_default_bind</c> (listen on each tagged address). Default false.</summary>
    public bool BindTaggedAddresses { get; set; }

    /// <summary>Sets <c>envoy_gateway_no_default_bind</c> (no listener on the registration's address and port). Default false.</summary>
    public bool NoDefaultBind { get; set; }

    /// <summary>Extra named listeners, written as <c>envoy_gateway_bind_addresses</c> (<c>{"name": {"Address": ip, "Port": port}}</c>). Default none.</summary>
    public Dictionary<string, System.Net.IPEndPoint> BindAddresses { get; } = new(StringComparer.Ordinal);

    /// <summary><c>connect_timeout_ms</c>, when set.</summary>
    public int? ConnectTimeoutMs { get; set; }

    /// <summary>
    /// TCP keepalive to remote gateways, written as <c>envoy_gateway_remote_tcp_enable_keepalive</c> and the
    /// <c>envoy_gateway_remote_tcp_keepalive_time</c> / <c>_interval</c> / <c>_probes</c> keys that are set. Default none.
    /// </summary>
    public TcpKeepAlive? RemoteTcpKeepAlive { get; set; }

    /// <summary>Further <c>Proxy.Config</c> keys (docs/consul-behaviour.md §6.1), written as given.</summary>
    public Dictionary<string, JsonElement> ProxyConfig { get; } = new(StringComparer.Ordinal);

    /// <summary>Interval of the TCP check on the LAN address. Default 10 s (the CLI's choice).</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Consul removes the registration after its check has been critical this long. Default none.</summary>
    public TimeSpan? DeregisterCriticalServiceAfter { get; set; }

    /// <summary>Throws when an option is invalid.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(ServiceId);
        ArgumentException.ThrowIfNullOrEmpty(ServiceName);
        ArgumentException.ThrowIfNullOrEmpty(LanAddress);
        if (LanPort is < 1 or > 65535)
        {
            throw new ArgumentException("LanPort must be 1-65535 (Consul rejects a gateway with port 0).", nameof(LanPort));
        }

        if (WanPort is < 0 or > 65535)
        {
            throw new ArgumentException("WanPort must be 0-65535.", nameof(WanPort));
        }

        if (CheckInterval < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException("CheckInterval must be at least 1 s.", nameof(CheckInterval));
        }

        foreach (string key in Meta.Keys)
        {
            if (key.StartsWith("consul-", StringComparison.Ordinal) && key != "consul-wan-federation")
            {
                throw new ArgumentException($"Meta key '{key}' is reserved by Consul.", nameof(Meta));
            }
        }
    }

    /// <summary>Builds the <c>PUT /v1/agent/service/register</c> body.</summary>
    /// <returns>The registration.</returns>
    public ConsulServiceRegistration ToRegistration()
    {
        Validate();
        string wanAddress = string.IsNullOrEmpty(WanAddress) ? LanAddress : WanAddress;
        int wanPort = WanPort == 0 ? LanPort : WanPort;
        var meta = new Dictionary<string, string>(Meta, StringComparer.Ordinal);
        if (WanFederation)
        {
            meta["consul-wan-federation"] = "1";
        }

        var config = new Dictionary<string, JsonElement>(ProxyConfig, StringComparer.Ordinal);
        if (BindTaggedAddresses)
        {
            config["envoy_gateway_no_default_bind"] = Literal("true");
            config["envoy_gateway_bind_tagged_addresses"] = Literal("true");
        }

        if (NoDefaultBind)
        {
            config["envoy_gateway_no_default_bind"] = Literal("true");
        }

        if (BindAddresses.Count > 0)
        {
            config[ConsulGatewayConfig.BindAddressesKey] = BindAddressesJson(BindAddresses);
        }

        if (ConnectTimeoutMs is { } timeout)
        {
            config["connect_timeout_ms"] = Literal(timeout.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (RemoteTcpKeepAlive is { } keepAlive)
        {
            config["envoy_gateway_remote_tcp_enable_keepalive"] = Literal("true");
            AddSeconds(config, "envoy_gateway_remote_tcp_keepalive_time", keepAlive.Time);
            AddSeconds(config, "envoy_gateway_remote_tcp_keepalive_interval", keepAlive.Interval);
            AddSeconds(config, "envoy_gateway_remote_tcp_keepalive_probes", keepAlive.Probes);
        }

        string hostForCheck = LanAddress.Contains(':', StringComparison.Ordinal) && !LanAddress.StartsWith('[') ? "[" + LanAddress + "]" : LanAddress;
        return new ConsulServiceRegistration
        {
            Kind = "mesh-gateway",
            ID = ServiceId,
            Name = ServiceName,
            Address = LanAddress,
            Port = LanPort,
            TaggedAddresses = new Dictionary<string, ConsulServiceAddress>(StringComparer.Ordinal)
            {
                ["lan"] = new() { Address = LanAddress, Port = LanPort },
                ["wan"] = new() { Address = wanAddress, Port = wanPort },
            },
            Meta = meta.Count == 0 ? null : meta,
            Proxy = new ConsulProxyRegistration { Config = config },
            Check = new ConsulCheckRegistration
            {
                Name = ServiceName + " listening",
                TCP = hostForCheck + ":" + LanPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Interval = GoDuration.Format(CheckInterval),
                DeregisterCriticalServiceAfter = DeregisterCriticalServiceAfter is { } after ? GoDuration.Format(after) : null,
            },
        };
    }

    private static void AddSeconds(Dictionary<string, JsonElement> config, string key, int? value)
    {
        if (value is { } v)
        {
            config[key] = Literal(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private static JsonElement BindAddressesJson(Dictionary<string, System.Net.IPEndPoint> binds)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (KeyValuePair<string, System.Net.IPEndPoint> bind in binds.OrderBy(static b => b.Key, StringComparer.Ordinal))
            {
                writer.WriteStartObject(bind.Key);
                writer.WriteString("Address", bind.Value.Address.ToString());
                writer.WriteNumber("Port", bind.Value.Port);
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        using JsonDocument document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    private static JsonElement Literal(string json)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
