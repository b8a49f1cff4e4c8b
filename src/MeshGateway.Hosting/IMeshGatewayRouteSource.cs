using MeshGateway.Routing;

namespace MeshGateway.Hosting;

/// <summary>
/// Where the hosted gateway's routes come from: static routes, a routes file, Consul's catalog, or your own. Exactly
/// one source serves a gateway; the last one chosen on the builder wins.
/// </summary>
/// <remarks>
/// The gateway is ready once the source published its first table (<see cref="RouteTableSource.Version"/> &gt; 0).
/// A source that cannot publish a first table should throw from <see cref="StartAsync"/>, which fails the host start.
/// </remarks>
public interface IMeshGatewayRouteSource
{
    /// <summary>Starts publishing tables to <paramref name="routes"/>; called before the listeners are bound.</summary>
    /// <param name="routes">The table holder the gateway routes with.</param>
    /// <param name="cancellationToken">Cancelled when the host start is abandoned.</param>
    /// <returns>A task that completes when the source is running.</returns>
    public Task StartAsync(RouteTableSource routes, CancellationToken cancellationToken);

    /// <summary>Stops publishing; called after the listeners stopped accepting.</summary>
    /// <param name="cancellationToken">Cancelled when the host's shutdown timeout passes.</param>
    /// <returns>A task that completes when the source stopped.</returns>
    public Task StopAsync(CancellationToken cancellationToken);
}
