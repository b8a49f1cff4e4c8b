using System.Globalization;
using System.Net;
using System.Text.Json;
using MeshGateway.Routing;

namespace MeshGateway.Consul;

/// <summary>
/// The gateway keys of a registration's <c>Proxy.Config</c>, read the way Consul reads them for Envoy
/// (docs/consul-behaviour.md §6.1): what <see cref="ConsulGatewayRegistrationOptions.ToRegistration"/> writes, and what a gateway registered by
/// someone else (<c>consul services register</c>, an orchestrator) says about its listeners and timeouts.
/// </summary>
/// <remarks>
/// Source: hashicorp/consul <c>agent/xds/config.go</c> (<c>GatewayConfig</c>, <c>ParseGatewayConfig</c>: mapstructure
/// with <c>WeaklyTypedInput</c>, so <c>"true"</c>/<c>"5000"</c> strings are accepted, and the <c>envoy_mesh_gateway_*</c>
/// aliases; <c>connect_timeout_ms</c> below 1 becomes 5000) and <c>agent/xds/listeners.go</c> (the gateway's listener
/// set). Where Consul only warns about a value it cannot decode and carries on with defaults, this reader reports an
/// error naming the key, so a typo fails the start instead of silently changing the gateway's listeners.
/// </remarks>
public sealed class ConsulGatewayConfig
{
    /// <summary><c>envoy_gateway_bind_tagged_addresses</c>.</summary>
    public const string BindTaggedAddressesKey = "envoy_gateway_bind_tagged_addresses";

    /// <summary><c>envoy_gateway_bind_addresses</c>.</summary>
    public const string BindAddressesKey = "envoy_gateway_bind_addresses";

    /// <summary><c>envoy_gateway_no_default_bind</c>.</summary>
    public const string NoDefaultBindKey = "envoy_gateway_no_default_bind";

    /// <summary><c>connect_timeout_ms</c>.</summary>
    public const string ConnectTimeoutKey = "connect_timeout_ms";

    /// <summary><c>envoy_gateway_remote_tcp_enable_keepalive</c>.</summary>
    public const string KeepaliveEnableKey = "envoy_gateway_remote_tcp_enable_keepalive";

    /// <summary><c>envoy_gateway_remote_tcp_keepalive_time</c>.</summary>
    public const string KeepaliveTimeKey = "envoy_gateway_remote_tcp_keepalive_time";

    /// <summary><c>envoy_gateway_remote_tcp_keepalive_interval</c>.</summary>
    public const string KeepaliveIntervalKey = "envoy_gateway_remote_tcp_keepalive_interval";

    /// <summary><c>envoy_gateway_remote_tcp_keepalive_probes</c>.</summary>
    public const string KeepaliveProbesKey = "envoy_gateway_remote_tcp_keepalive_probes";

    /// <summary>Consul's default <c>connect_timeout_ms</c>.</summary>
    public const int DefaultConnectTimeoutMs = 5000;

    /// <summary>Add a listener per tagged address.</summary>
    public bool BindTaggedAddresses { get; init; }

    /// <summary>Skip the listener on the registration's <c>Address:Port</c>.</summary>
    public bool NoDefaultBind { get; init; }

    /// <summary>Extra named listeners.</summary>
    public IReadOnlyDictionary<string, IPEndPoint> BindAddresses { get; init; } = new Dictionary<string, IPEndPoint>(StringComparer.Ordinal);

    /// <summary>The upstream connect timeout in milliseconds (5000 when unset or below 1, as Consul does).</summary>
    public int ConnectTimeoutMs { get; init; } = DefaultConnectTimeoutMs;

    /// <summary>TCP keepalive to remote gateways, or <see langword="null"/> when not enabled.</summary>
    public TcpKeepAlive? RemoteTcpKeepAlive { get; init; }

    /// <summary>
    /// Reads the gateway keys of <paramref name="config"/>; other keys are ignored. Every value that cannot be decoded adds
    /// an error to <paramref name="errors"/> naming the key and the value (and that key keeps its default).
    /// </summary>
    /// <param name="config">The registration's <c>Proxy.Config</c> (may be null).</param>
    /// <param name="errors">Receives the problems found.</param>
    /// <returns>The settings.</returns>
    public static ConsulGatewayConfig Parse(IReadOnlyDictionary<string, JsonElement>? config, ICollection<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        config ??= new Dictionary<string, JsonElement>();
        bool bindTagged = ReadBool(config, BindTaggedAddressesKey, errors);
        bool noDefault = ReadBool(config, NoDefaultBindKey, errors);
        int timeout = ReadInt(config, ConnectTimeoutKey, errors, int.MinValue, int.MaxValue) ?? 0;
        var binds = new Dictionary<string, IPEndPoint>(StringComparer.Ordinal);
        if (TryGet(config, BindAddressesKey, out string key, out JsonElement bindAddresses) && bindAddresses.ValueKind != JsonValueKind.Null)
        {
            if (bindAddresses.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"Proxy.Config key '{key}' is {bindAddresses.GetRawText()} but must be an object of name → {{\"Address\": ip, \"Port\": port}}.");
            }
            else
            {
                foreach (JsonProperty bind in bindAddresses.EnumerateObject())
                {
                    if (ReadBindAddress(key + "." + bind.Name, bind.Value, errors) is { } endPoint)
                    {
                        binds[bind.Name] = endPoint;
                    }
                }
            }
        }

        TcpKeepAlive? keepAlive = null;
        bool keepAliveOn = ReadBool(config, KeepaliveEnableKey, errors);
        int? time = ReadInt(config, KeepaliveTimeKey, errors, 0, TcpKeepAlive.MaxSeconds);
        int? interval = ReadInt(config, KeepaliveIntervalKey, errors, 0, TcpKeepAlive.MaxSeconds);
        int? probes = ReadInt(config, KeepaliveProbesKey, errors, 0, TcpKeepAlive.MaxProbes);
        if (keepAliveOn)
        {
            // 0 (Consul's zero value) leaves the timing to the system, as Envoy does for an unset field.
            keepAlive = new TcpKeepAlive { Time = time is > 0 ? time : null, Interval = interval is > 0 ? interval : null, Probes = probes is > 0 ? probes : null };
        }

        return new ConsulGatewayConfig
        {
            BindTaggedAddresses = bindTagged,
            NoDefaultBind = noDefault,
            BindAddresses = binds,
            ConnectTimeoutMs = timeout < 1 ? DefaultConnectTimeoutMs : timeout,
            RemoteTcpKeepAlive = keepAlive,
        };
    }

    /// <summary>The canonical key, else its <c>envoy_mesh_gateway_*</c> alias (Consul's <c>HookTranslateKeys</c>).</summary>
    private static bool TryGet(IReadOnlyDictionary<string, JsonElement> config, string canonical, out string key, out JsonElement value)
    {
        key = canonical;
        if (config.TryGetValue(canonical, out value))
        {
            return true;
        }

        if (canonical.StartsWith("envoy_gateway_", StringComparison.Ordinal) && canonical is BindTaggedAddressesKey or BindAddressesKey or NoDefaultBindKey)
        {
            key = "envoy_mesh_gateway_" + canonical["envoy_gateway_".Length..];
            return config.TryGetValue(key, out value);
        }

        return false;
    }

    private static bool ReadBool(IReadOnlyDictionary<string, JsonElement> config, string canonical, ICollection<string> errors)
    {
        if (!TryGet(config, canonical, out string key, out JsonElement value))
        {
            return false;
        }

        // mapstructure's weak decoding: bools, numbers (non-zero is true), and strings strconv.ParseBool takes ("" is false).
        switch (value.ValueKind)
        {
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False or JsonValueKind.Null:
                return false;
            case JsonValueKind.Number when value.TryGetDouble(out double number):
                return number != 0;
            case JsonValueKind.String:
                switch (value.GetString())
                {
                    case "1" or "t" or "T" or "true" or "TRUE" or "True":
                        return true;
                    case "" or "0" or "f" or "F" or "false" or "FALSE" or "False":
                        return false;
                }

                break;
        }

        errors.Add($"Proxy.Config key '{key}' is {value.GetRawText()} but must be a boolean (true/false, or \"true\"/\"false\").");
        return false;
    }

    private static int? ReadInt(IReadOnlyDictionary<string, JsonElement> config, string canonical, ICollection<string> errors, int min, int max)
    {
        if (!TryGet(config, canonical, out string key, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        long? number = value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetInt64(out long whole) => whole,
            JsonValueKind.String when value.GetString() is "" => 0,
            JsonValueKind.String when long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed) => parsed,
            _ => null,
        };
        if (number is null)
        {
            errors.Add($"Proxy.Config key '{key}' is {value.GetRawText()} but must be a whole number.");
            return null;
        }

        if (number < min || number > max)
        {
            errors.Add($"Proxy.Config key '{key}' is {number} but must be between {min} and {max}.");
            return null;
        }

        return (int)number;
    }

    private static IPEndPoint? ReadBindAddress(string key, JsonElement value, ICollection<string> errors)
    {
        // structs.ServiceAddress {Address, Port}; mapstructure matches field names ignoring case.
        string? address = null;
        int? port = null;
        if (value.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty field in value.EnumerateObject())
            {
                if (field.Name.Equals("Address", StringComparison.OrdinalIgnoreCase))
                {
                    address = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString() : field.Value.GetRawText();
                }
                else if (field.Name.Equals("Port", StringComparison.OrdinalIgnoreCase))
                {
                    port = field.Value.ValueKind switch
                    {
                        JsonValueKind.Number when field.Value.TryGetInt32(out int p) => p,
                        JsonValueKind.String when int.TryParse(field.Value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out int p) => p,
                        _ => -1,
                    };
                }
            }
        }

        if (value.ValueKind != JsonValueKind.Object || address is null || port is null)
        {
            errors.Add($"Proxy.Config key '{key}' is {value.GetRawText()} but must be {{\"Address\": ip, \"Port\": port}}.");
            return null;
        }

        if (!IPAddress.TryParse(address, out IPAddress? ip))
        {
            errors.Add($"Proxy.Config key '{key}.Address' is '{address}' but must be an IP address (a listener binds it).");
            return null;
        }

        if (port is < 1 or > 65535)
        {
            errors.Add($"Proxy.Config key '{key}.Port' is {value.GetProperty(value.EnumerateObject().First(f => f.Name.Equals("Port", StringComparison.OrdinalIgnoreCase)).Name).GetRawText()} but must be 1-65535.");
            return null;
        }

        return new IPEndPoint(ip, port.Value);
    }
}
