using System.Net;

namespace MeshGateway.Routing;

/// <summary>One address of an <see cref="UpstreamCluster"/>: where to dial, how much traffic it takes, and whether the catalog says it is healthy.</summary>
/// <remarks>
/// Weights follow Consul's <c>calculateEndpointHealthAndWeight</c> (reference §3): 1 to <see cref="MaxWeight"/>; an
/// unhealthy endpoint stays in the list and is only used in panic mode (when no endpoint of the cluster is healthy).
/// </remarks>
public sealed record UpstreamEndpoint
{
    /// <summary>The largest weight Consul sends to Envoy (weights above are clamped there): 128.</summary>
    public const int MaxWeight = 128;

    /// <summary>Creates an endpoint.</summary>
    /// <param name="endPoint">The address and port to dial.</param>
    /// <param name="weight">Relative share of new connections, 1 to <see cref="MaxWeight"/>.</param>
    /// <param name="isHealthy">Whether the endpoint may take traffic outside panic mode.</param>
    /// <exception cref="ArgumentNullException"><paramref name="endPoint"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="weight"/> is outside 1 to <see cref="MaxWeight"/>, or the port is 0.</exception>
    public UpstreamEndpoint(IPEndPoint endPoint, int weight = 1, bool isHealthy = true)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentOutOfRangeException.ThrowIfLessThan(weight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(weight, MaxWeight);
        if (endPoint.Port == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(endPoint), endPoint, "An upstream endpoint needs a non-zero port.");
        }

        EndPoint = endPoint;
        Weight = weight;
        IsHealthy = isHealthy;
    }

    /// <summary>The address and port to dial.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Relative share of new connections, 1 to <see cref="MaxWeight"/>.</summary>
    public int Weight { get; }

    /// <summary>Whether the endpoint may take traffic outside panic mode.</summary>
    public bool IsHealthy { get; }
}
