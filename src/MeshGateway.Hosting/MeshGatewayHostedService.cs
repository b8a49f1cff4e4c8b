using Microsoft.Extensions.Hosting;

namespace MeshGateway.Hosting;

/// <summary>
/// Starts the gateway in <see cref="StartAsync"/> (so a bad endpoint fails the host start rather than a background
/// task) and, on stop, deregisters from Consul, keeps accepting for <see cref="MeshGatewayOptions.PropagationDelay"/>,
/// then stops accepting and drains until <see cref="MeshGatewayOptions.DrainTimeout"/> or the host's shutdown deadline,
/// whichever comes first.
/// </summary>
internal sealed class MeshGatewayHostedService : IHostedService
{
    private readonly MeshGatewayRuntime _runtime;

    public MeshGatewayHostedService(MeshGatewayRuntime runtime) => _runtime = runtime;

    public Task StartAsync(CancellationToken cancellationToken) => _runtime.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => _runtime.StopAsync(cancellationToken);
}
