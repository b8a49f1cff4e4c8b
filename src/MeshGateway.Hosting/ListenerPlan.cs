using System.Net;
using MeshGateway.Consul;

namespace MeshGateway.Hosting;

/// <summary>One listener: Consul's listener name (<c>default</c>, <c>lan</c>, <c>wan</c> or a bind-address name) and its address.</summary>
/// <param name="Name">The listener's name.</param>
/// <param name="EndPoint">The address to bind.</param>
public sealed record MeshGatewayListenerAddress(string Name, IPEndPoint EndPoint)
{
    /// <summary>Consul's listener naming: <c>name:address:port</c>.</summary>
    /// <returns>The name.</returns>
    public override string ToString() => $"{Name}:{EndPoint.Address}:{EndPoint.Port}";
}

/// <summary>Computes the listener set from the options the way Consul does for gateways (docs/consul-behaviour.md §6.1).</summary>
internal static class ListenerPlan
{
    /// <summary>Builds the listener set, or returns the problems found (each names the option and the value).</summary>
    public static List<MeshGatewayListenerAddress> Build(MeshGatewayOptions options, List<string> errors)
    {
        var candidates = new List<MeshGatewayListenerAddress>();
        IPAddress? defaultAddress = null;
        if (!IPAddress.TryParse(options.Address, out defaultAddress))
        {
            errors.Add($"Address is '{options.Address}' but must be an IP address (IPv4 or IPv6).");
        }

        // An out-of-range port is reported by the generated validator (OptionRange on Port); here it only skips the listener.
        bool portValid = options.Port is >= IPEndPoint.MinPort and <= IPEndPoint.MaxPort;
        if (!portValid)
        {
            defaultAddress = null;
        }

        if (!options.NoDefaultBind && defaultAddress is not null)
        {
            candidates.Add(new MeshGatewayListenerAddress("default", new IPEndPoint(defaultAddress, options.Port)));
        }

        IPEndPoint? lan = Parse(nameof(MeshGatewayOptions.LanAddress), options.LanAddress, errors);
        IPEndPoint? wan = Parse(nameof(MeshGatewayOptions.WanAddress), options.WanAddress, errors);
        if (options.BindTaggedAddresses)
        {
            lan ??= defaultAddress is null ? null : new IPEndPoint(defaultAddress, options.Port);
            if (lan is not null)
            {
                candidates.Add(new MeshGatewayListenerAddress("lan", lan));
            }

            if (wan is not null)
            {
                candidates.Add(new MeshGatewayListenerAddress("wan", wan));
            }
        }

        foreach (KeyValuePair<string, string> bind in options.BindAddresses)
        {
            if (string.IsNullOrWhiteSpace(bind.Key))
            {
                errors.Add("BindAddresses has an entry with an empty name.");
                continue;
            }

            IPEndPoint? endPoint = Parse($"BindAddresses:{bind.Key}", bind.Value, errors);
            if (endPoint is not null)
            {
                candidates.Add(new MeshGatewayListenerAddress(bind.Key, endPoint));
            }
        }

        List<MeshGatewayListenerAddress> result = Finish(candidates);
        if (result.Count == 0 && errors.Count == 0 && portValid)
        {
            errors.Add("No listener: NoDefaultBind is true and neither BindTaggedAddresses nor BindAddresses adds one.");
        }

        return result;
    }

    /// <summary>
    /// The listener set Envoy gets for a gateway registration (hashicorp/consul <c>agent/xds/listeners.go</c>, gateway
    /// listeners): <c>default</c> on the registration's <c>Address</c> (<c>0.0.0.0</c> when empty) and <c>Port</c> unless
    /// <c>envoy_gateway_no_default_bind</c>; with <c>envoy_gateway_bind_tagged_addresses</c> one per tagged address
    /// (named by its key, <c>lan</c>, <c>wan</c>, <c>lan_ipv4</c>, …); one per <c>envoy_gateway_bind_addresses</c> entry.
    /// Addresses must be IP addresses (a listener binds them); each problem names the registration field.
    /// </summary>
    public static List<MeshGatewayListenerAddress> FromRegistration(ConsulAgentService service, ConsulGatewayConfig config, List<string> errors)
    {
        var candidates = new List<MeshGatewayListenerAddress>();
        string id = service.ID ?? service.Service ?? "?";
        if (!config.NoDefaultBind)
        {
            string address = string.IsNullOrEmpty(service.Address) ? "0.0.0.0" : service.Address;
            if (!IPAddress.TryParse(address, out IPAddress? ip))
            {
                errors.Add($"The registration of '{id}' has Address '{address}', which is not an IP address: the default listener cannot bind it (set {ConsulGatewayConfig.NoDefaultBindKey} and {ConsulGatewayConfig.BindAddressesKey}, or register an IP).");
            }
            else if (service.Port is < 1 or > 65535)
            {
                errors.Add($"The registration of '{id}' has Port {service.Port}: the default listener needs 1-65535.");
            }
            else
            {
                candidates.Add(new MeshGatewayListenerAddress("default", new IPEndPoint(ip, service.Port)));
            }
        }

        if (config.BindTaggedAddresses && service.TaggedAddresses is { } tagged)
        {
            foreach (KeyValuePair<string, ConsulServiceAddress> tag in tagged)
            {
                if (!IPAddress.TryParse(tag.Value.Address, out IPAddress? ip) || tag.Value.Port is < 1 or > 65535)
                {
                    errors.Add($"The registration of '{id}' has TaggedAddresses.{tag.Key} '{tag.Value.Address}:{tag.Value.Port}', which {ConsulGatewayConfig.BindTaggedAddressesKey} would bind but is not an IP address and port.");
                    continue;
                }

                candidates.Add(new MeshGatewayListenerAddress(tag.Key, new IPEndPoint(ip, tag.Value.Port)));
            }
        }

        foreach (KeyValuePair<string, IPEndPoint> bind in config.BindAddresses)
        {
            candidates.Add(new MeshGatewayListenerAddress(bind.Key, bind.Value));
        }

        List<MeshGatewayListenerAddress> result = Finish(candidates);
        if (result.Count == 0 && errors.Count == 0)
        {
            errors.Add($"The registration of '{id}' gives no listener: {ConsulGatewayConfig.NoDefaultBindKey} is true and neither {ConsulGatewayConfig.BindTaggedAddressesKey} nor {ConsulGatewayConfig.BindAddressesKey} adds one.");
        }

        return result;
    }

    // Consul sorts by name and keeps the first listener of each address+port (agent/xds/listeners.go).
    private static List<MeshGatewayListenerAddress> Finish(List<MeshGatewayListenerAddress> candidates)
    {
        candidates.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        var result = new List<MeshGatewayListenerAddress>(candidates.Count);
        foreach (MeshGatewayListenerAddress candidate in candidates)
        {
            if (candidate.EndPoint.Port == 0 || !result.Exists(r => r.EndPoint.Equals(candidate.EndPoint)))
            {
                result.Add(candidate);
            }
        }

        return result;
    }

    private static IPEndPoint? Parse(string option, string? text, List<string> errors)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        bool hasPort = text.StartsWith('[') ? text.Contains("]:", StringComparison.Ordinal) : text.Count(c => c == ':') == 1;
        if (hasPort && IPEndPoint.TryParse(text, out IPEndPoint? endPoint))
        {
            return endPoint;
        }

        errors.Add($"{option} is '{text}' but must be 'ip:port' (IPv6 as '[::1]:8443').");
        return null;
    }
}
