using System.Net;

namespace MeshGateway.Routing;

/// <summary>
/// One address of an <see cref="UpstreamCluster"/>: where to dial (an IP address or a host name, with a port), how
/// much traffic it takes, and whether the catalog says it is healthy.
/// </summary>
/// <remarks>
/// <para>
/// Weights follow Consul's <c>calculateEndpointHealthAndWeight</c> (docs/consul-behaviour.md §3): 1 to <see cref="MaxWeight"/>; an
/// unhealthy endpoint stays in the list and is only used in panic mode (when no endpoint of the cluster is healthy).
/// </para>
/// <para>
/// A host-name endpoint (a cloud load balancer's DNS name, as Consul allows for gateway and service addresses) is
/// dialled at the address a <see cref="HostNameRefresher"/> resolved last (IPv4 only, refreshed in the background like
/// Envoy's <c>LOGICAL_DNS</c> clusters, docs/consul-behaviour.md §3); it is never resolved on the connection path, and until it
/// resolves it is not chosen (see <see cref="EndpointState.Address"/>).
/// </para>
/// </remarks>
public sealed record UpstreamEndpoint
{
    /// <summary>The largest weight Consul sends to Envoy (weights above are clamped there): 128.</summary>
    public const int MaxWeight = 128;

    /// <summary>Creates an endpoint dialled at a fixed IP address.</summary>
    /// <param name="endPoint">The address and port to dial.</param>
    /// <param name="weight">Relative share of new connections, 1 to <see cref="MaxWeight"/>.</param>
    /// <param name="isHealthy">Whether the endpoint may take traffic outside panic mode.</param>
    /// <exception cref="ArgumentNullException"><paramref name="endPoint"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is outside 1 to <see cref="MaxWeight"/>, or the port is 0.</exception>
    public UpstreamEndpoint(IPEndPoint endPoint, int weight = 1, bool isHealthy = true)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        CheckWeight(weight);
        if (endPoint.Port == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(endPoint), endPoint, "An upstream endpoint needs a non-zero port.");
        }

        EndPoint = endPoint;
        Port = endPoint.Port;
        Weight = weight;
        IsHealthy = isHealthy;
        Key = endPoint.ToString();
    }

    /// <summary>Creates an endpoint dialled at whatever IPv4 address <paramref name="hostName"/> resolves to (see the type's remarks).</summary>
    /// <param name="hostName">A DNS host name (not an IP literal: use the other constructor for those).</param>
    /// <param name="port">The port to dial, 1 to 65535.</param>
    /// <param name="weight">Relative share of new connections, 1 to <see cref="MaxWeight"/>.</param>
    /// <param name="isHealthy">Whether the endpoint may take traffic outside panic mode.</param>
    /// <exception cref="ArgumentNullException"><paramref name="hostName"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="hostName"/> is not a valid DNS host name, or is an IP address.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is outside 1 to <see cref="MaxWeight"/>, or <paramref name="port"/> outside 1 to 65535.</exception>
    public UpstreamEndpoint(string hostName, int port, int weight = 1, bool isHealthy = true)
    {
        ArgumentNullException.ThrowIfNull(hostName);
        CheckWeight(weight);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        switch (Uri.CheckHostName(hostName))
        {
            case UriHostNameType.Dns when hostName.Length <= 253 && hostName[^1] != '.':
                break;
            case UriHostNameType.IPv4 or UriHostNameType.IPv6:
                throw new ArgumentException($"'{hostName}' is an IP address; create the endpoint from an IPEndPoint instead.", nameof(hostName));
            default:
                throw new ArgumentException($"'{hostName}' is not a DNS host name (letters, digits, hyphens and dots, at most 253 characters, no trailing dot).", nameof(hostName));
        }

        HostName = hostName.ToLowerInvariant();
        Port = port;
        Weight = weight;
        IsHealthy = isHealthy;
        Key = HostName + ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The address and port to dial, for an IP endpoint; <see langword="null"/> for a host-name endpoint (dialled at its <see cref="EndpointState.Address"/>).</summary>
    public IPEndPoint? EndPoint { get; }

    /// <summary>The host name, lower-cased, for a host-name endpoint; <see langword="null"/> for an IP endpoint.</summary>
    public string? HostName { get; }

    /// <summary>The port to dial.</summary>
    public int Port { get; }

    /// <summary>Relative share of new connections, 1 to <see cref="MaxWeight"/>.</summary>
    public int Weight { get; }

    /// <summary>Whether the endpoint may take traffic outside panic mode.</summary>
    public bool IsHealthy { get; }

    /// <summary>
    /// The endpoint's identity, <c>address:port</c> or <c>host name:port</c>: together with the cluster name it decides
    /// which <see cref="EndpointState"/> a new routing snapshot takes over from the previous one.
    /// </summary>
    public string Key { get; }

    /// <inheritdoc />
    public override string ToString() => Key;

    private static void CheckWeight(int weight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(weight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(weight, MaxWeight);
    }
}
