using System.Net;

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

/// <summary>Computes the listener set from the options the way Consul does for gateways (reference §6.1).</summary>
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

        // Consul sorts by name and keeps the first listener of each address+port (agent/xds/listeners.go).
        candidates.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        var result = new List<MeshGatewayListenerAddress>(candidates.Count);
        foreach (MeshGatewayListenerAddress candidate in candidates)
        {
            if (candidate.EndPoint.Port == 0 || !result.Exists(r => r.EndPoint.Equals(candidate.EndPoint)))
            {
                result.Add(candidate);
            }
        }

        if (result.Count == 0 && errors.Count == 0 && portValid)
        {
            errors.Add("No listener: NoDefaultBind is true and neither BindTaggedAddresses nor BindAddresses adds one.");
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
