using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Routing;

/// <summary>Resolves the host names of host-name <see cref="UpstreamEndpoint"/>s for a <see cref="HostNameRefresher"/>.</summary>
/// <remarks>Implementations may throw (the refresher counts and reports the failure) and should honour cancellation.</remarks>
public interface IHostNameResolver
{
    /// <summary>Resolves <paramref name="hostName"/> to its IPv4 addresses.</summary>
    /// <param name="hostName">The host name (lower-case, validated by <see cref="UpstreamEndpoint"/>).</param>
    /// <param name="cancellationToken">Abandons the lookup (timeout or shutdown).</param>
    /// <returns>The addresses, in the resolver's order; the first IPv4 one is dialled.</returns>
    public Task<IPAddress[]> ResolveAsync(string hostName, CancellationToken cancellationToken);
}

/// <summary>The system resolver (<see cref="Dns.GetHostAddressesAsync(string, AddressFamily, CancellationToken)"/>), IPv4 only like Consul's DNS clusters.</summary>
public sealed class DnsHostNameResolver : IHostNameResolver
{
    private DnsHostNameResolver()
    {
    }

    /// <summary>The one instance.</summary>
    public static DnsHostNameResolver Instance { get; } = new();

    /// <inheritdoc />
    public Task<IPAddress[]> ResolveAsync(string hostName, CancellationToken cancellationToken)
        => Dns.GetHostAddressesAsync(hostName, AddressFamily.InterNetwork, cancellationToken);
}
