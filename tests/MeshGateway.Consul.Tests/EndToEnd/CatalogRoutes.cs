using System.Net;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>
/// The minimal route table of a mesh gateway, built from the catalog the way Consul's gateway does (reference §3, §8.3):
/// each local Connect service's SNI → its instances' LAN addresses; <c>*.&lt;dc&gt;.internal.&lt;td&gt;</c> → the
/// WAN addresses of that datacenter's gateways. Interim until the adapter's route-table converter (branch
/// <c>consul2</c>) is on main.
/// </summary>
internal static class CatalogRoutes
{
    public static async Task<IReadOnlyList<GatewayRoute>> BuildAsync(ConsulClient client, string datacenter, string trustDomain, IEnumerable<string> remoteDatacenters)
    {
        var routes = new List<GatewayRoute>();
        foreach (string name in (await client.GetServicesAsync()).Value.Keys)
        {
            IReadOnlyList<ConsulHealthEntry> entries = (await client.GetHealthConnectAsync(name)).Value;
            List<IPEndPoint> targets = [.. entries.Where(Healthy).Select(e => Endpoint(e, wan: false))];
            if (targets.Count > 0)
            {
                routes.Add(new GatewayRoute($"{name}.default.{datacenter}.internal.{trustDomain}", targets));
            }
        }

        foreach (string remote in remoteDatacenters)
        {
            var gateways = new List<IPEndPoint>();
            foreach (string name in (await client.GetServicesAsync(new ConsulQuery { Datacenter = remote, Filter = "ServiceKind == \"mesh-gateway\"" })).Value.Keys)
            {
                IReadOnlyList<ConsulHealthEntry> entries = (await client.GetHealthServiceAsync(name, passingOnly: false, new ConsulQuery { Datacenter = remote, Filter = "Service.Kind == \"mesh-gateway\"" })).Value;
                gateways.AddRange(entries.Select(e => Endpoint(e, wan: true)));
            }

            if (gateways.Count > 0)
            {
                routes.Add(new GatewayRoute($"*.{remote}.internal.{trustDomain}", gateways));
            }
        }

        return routes;
    }

    private static bool Healthy(ConsulHealthEntry entry) => entry.Checks?.All(c => c.Status != "critical") ?? true;

    private static IPEndPoint Endpoint(ConsulHealthEntry entry, bool wan)
    {
        (string address, int port) = ConsulEndpointRules.BestAddress(entry, wan);
        return new IPEndPoint(IPAddress.Parse(address), port);
    }
}
