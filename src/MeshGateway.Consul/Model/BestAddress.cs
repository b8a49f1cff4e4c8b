using System.Globalization;

namespace MeshGateway.Model;

/// <summary>Where <see cref="BestAddress"/> took an address from.</summary>
public enum BestAddressSource
{
    /// <summary><c>Service.Address</c>.</summary>
    ServiceAddress = 0,

    /// <summary><c>Service.TaggedAddresses["wan"].Address</c> (WAN only).</summary>
    ServiceWanTaggedAddress,

    /// <summary><c>Node.TaggedAddresses["wan"]</c> (WAN only, when the service gave no address).</summary>
    NodeWanTaggedAddress,

    /// <summary><c>Node.Address</c> (when the service gave no address).</summary>
    NodeAddress,
}

/// <summary>
/// The address and port Consul dials for an instance (Consul <c>agent/structs/structs.go</c>:
/// <c>CheckServiceNode.BestAddress</c>, <c>NodeService.BestAddress</c>, <c>Node.BestAddress</c>; docs/consul-behaviour.md §4).
/// </summary>
/// <param name="Address">The chosen address; empty when every source was empty (Consul then dials an empty host).</param>
/// <param name="Port">The chosen port.</param>
/// <param name="AddressSource">Where the address came from.</param>
/// <param name="PortFromWanTaggedAddress">Whether the port came from the service's <c>wan</c> tagged address rather than <c>Service.Port</c>.</param>
public readonly record struct BestAddress(string Address, int Port, BestAddressSource AddressSource, bool PortFromWanTaggedAddress)
{
    /// <summary>The tagged-address key Consul consults for WAN; <c>wan_ipv4</c>, <c>wan_ipv6</c> and the <c>lan*</c> keys play no part.</summary>
    public const string WanTag = "wan";

    /// <summary>
    /// Chooses the address exactly as Consul does:
    /// <list type="number">
    /// <item>start from <c>Service.Address</c> and <c>Service.Port</c>;</item>
    /// <item>if <paramref name="wan"/> and the service has a <c>wan</c> tagged address, take its address (even when empty) and its port when non-zero;</item>
    /// <item>if the address is still empty, take the node's <c>wan</c> tagged address when <paramref name="wan"/> and the key exists (even when its
    /// value is empty), else <c>Node.Address</c>; the port stays.</item>
    /// </list>
    /// LAN selection never reads the <c>lan</c> tagged addresses.
    /// </summary>
    /// <param name="node">The node.</param>
    /// <param name="service">The service instance.</param>
    /// <param name="wan">Whether the viewer is in another datacenter/partition or a peer (see <see cref="IsWan"/>).</param>
    /// <returns>The address and port and where they came from.</returns>
    public static BestAddress Select(CatalogNode node, CatalogService service, bool wan)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(service);

        string address = service.Address;
        int port = service.Port;
        BestAddressSource source = BestAddressSource.ServiceAddress;
        bool portFromTag = false;

        if (wan && service.TaggedAddresses.TryGetValue(WanTag, out CatalogTaggedAddress? serviceWan))
        {
            address = serviceWan.Address;
            source = BestAddressSource.ServiceWanTaggedAddress;
            if (serviceWan.Port != 0)
            {
                port = serviceWan.Port;
                portFromTag = true;
            }
        }

        if (string.IsNullOrEmpty(address))
        {
            if (wan && node.TaggedAddresses.TryGetValue(WanTag, out string? nodeWan))
            {
                address = nodeWan;
                source = BestAddressSource.NodeWanTaggedAddress;
            }
            else
            {
                address = node.Address;
                source = BestAddressSource.NodeAddress;
            }
        }

        return new BestAddress(address ?? string.Empty, port, source, portFromTag);
    }

    /// <summary>Chooses the address of a health entry; see <see cref="Select(CatalogNode, CatalogService, bool)"/>.</summary>
    /// <param name="instance">The health entry.</param>
    /// <param name="wan">Whether to prefer WAN addresses.</param>
    /// <returns>The address and port.</returns>
    public static BestAddress Select(CatalogServiceInstance instance, bool wan)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return Select(instance.Node, instance.Service, wan);
    }

    /// <summary>
    /// Whether a viewer sees an instance over the WAN: the instance was imported from a peer, or its node's datacenter or
    /// partition differs from the viewer's (<c>!localKey.Matches(ep.Node.Datacenter, ep.Node.PartitionOrDefault())</c> in
    /// <c>agent/xds/endpoints.go</c>).
    /// </summary>
    /// <param name="viewer">The viewer's datacenter and partition.</param>
    /// <param name="instance">The instance.</param>
    /// <returns>True for WAN.</returns>
    public static bool IsWan(GatewayKey viewer, CatalogServiceInstance instance)
    {
        ArgumentNullException.ThrowIfNull(instance);
        return !string.IsNullOrEmpty(instance.Service.PeerName) || viewer != new GatewayKey(instance.Node.Datacenter, instance.Node.Partition);
    }

    /// <summary>The endpoint as <c>address:port</c>, with IPv6 addresses in brackets.</summary>
    /// <returns>The endpoint text.</returns>
    public override string ToString() => Address.Contains(':', StringComparison.Ordinal)
        ? string.Create(CultureInfo.InvariantCulture, $"[{Address}]:{Port}")
        : string.Create(CultureInfo.InvariantCulture, $"{Address}:{Port}");
}
