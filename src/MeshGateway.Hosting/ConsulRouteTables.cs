using System.Net;
using MeshGateway.Consul;
using MeshGateway.Model;
using MeshGateway.Routing;

namespace MeshGateway.Hosting;

/// <summary>
/// Converts a <see cref="ConsulCatalogView"/> into the gateway's <see cref="RouteTable"/> the way Consul's own mesh
/// gateway builds its clusters (reference §3): one exact route per local Connect service on its default SNI
/// (<c>&lt;svc&gt;.default.&lt;dc&gt;.internal.&lt;trust-domain&gt;</c>) to its instances' LAN addresses, and one wildcard
/// per remote datacenter (<c>*.&lt;dc&gt;.internal.&lt;trust-domain&gt;</c>) to that datacenter's gateways' WAN addresses.
/// </summary>
/// <remarks>
/// Not routed yet (counted in <see cref="ConversionStats"/>): service-resolver subsets (their SNI forms need the
/// subset filter evaluated) and endpoints whose address is a host name rather than an IP literal (no DNS resolution
/// on this path). Weights are clamped to 1..<see cref="Routing.UpstreamEndpoint.MaxWeight"/>.
/// </remarks>
internal static class ConsulRouteTables
{
    public static RouteTable Build(ConsulCatalogView view, TimeSpan connectTimeout, int connectAttempts, out ConversionStats stats)
    {
        var routes = new List<Route>(view.Services.Count + view.RemoteGateways.Count);
        int skippedHostnames = 0;
        int skippedSubsets = 0;
        foreach (ConsulServiceView service in view.Services.Values)
        {
            string sni = ConsulSniName.ForService(service.Name, null, null, view.Datacenter, view.TrustDomain).ToString();
            List<Routing.UpstreamEndpoint> endpoints = Endpoints(service.Instances, ref skippedHostnames);
            skippedSubsets += service.Resolver?.Subsets.Count ?? 0;
            TimeSpan timeout = service.Resolver?.ConnectTimeout is { } t && t > TimeSpan.Zero ? t : connectTimeout;
            if (TryRoute(sni, service.Name + "." + view.Datacenter, endpoints, timeout, connectAttempts) is { } route)
            {
                routes.Add(route);
            }
        }

        foreach (KeyValuePair<string, System.Collections.Immutable.ImmutableArray<ConsulEndpoint>> remote in view.RemoteGateways)
        {
            if (string.Equals(remote.Key, view.Datacenter, StringComparison.Ordinal))
            {
                continue;
            }

            string wildcard = ConsulSniName.RemoteGatewayWildcard(remote.Key, null, view.TrustDomain);
            List<Routing.UpstreamEndpoint> endpoints = Endpoints(remote.Value, ref skippedHostnames);
            if (TryRoute(wildcard, "mesh-gateway." + remote.Key, endpoints, connectTimeout, connectAttempts) is { } route)
            {
                routes.Add(route);
            }
        }

        stats = new ConversionStats(routes.Count, skippedHostnames, skippedSubsets);
        return RouteTable.Create(routes);
    }

    private static Route? TryRoute(string pattern, string clusterName, List<Routing.UpstreamEndpoint> endpoints, TimeSpan timeout, int attempts)
    {
        try
        {
            return new Route(pattern, new UpstreamCluster(clusterName, endpoints) { ConnectTimeout = timeout, MaxConnectAttempts = attempts });
        }
        catch (ArgumentException)
        {
            // A name Consul accepts but that is not a valid SNI host name (RFC 6066 §3): it cannot be dialled by SNI either.
            return null;
        }
    }

    private static List<Routing.UpstreamEndpoint> Endpoints(System.Collections.Immutable.ImmutableArray<ConsulEndpoint> instances, ref int skippedHostnames)
    {
        var endpoints = new List<Routing.UpstreamEndpoint>(instances.Length);
        foreach (ConsulEndpoint instance in instances)
        {
            if (!IPAddress.TryParse(instance.Address, out IPAddress? address) || instance.Port is < 1 or > 65535)
            {
                skippedHostnames++;
                continue;
            }

            endpoints.Add(new Routing.UpstreamEndpoint(new IPEndPoint(address, instance.Port), Math.Clamp(instance.Weight, 1, Routing.UpstreamEndpoint.MaxWeight), instance.Healthy));
        }

        return endpoints;
    }
}

/// <summary>What one conversion produced and left out.</summary>
internal readonly record struct ConversionStats(int Routes, int SkippedHostnameEndpoints, int SkippedSubsets);
