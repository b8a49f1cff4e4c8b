using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MeshGateway.Hosting;

/// <summary>Readiness: healthy once the listeners are bound and the route source published its first table; unhealthy before and while stopping.</summary>
internal sealed class MeshGatewayHealthCheck : IHealthCheck
{
    private readonly MeshGatewayRuntime _runtime;

    public MeshGatewayHealthCheck(MeshGatewayRuntime runtime) => _runtime = runtime;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (_runtime.IsReady)
        {
            return Task.FromResult(HealthCheckResult.Healthy($"Listening on {_runtime.Listeners.Count} addresses with {_runtime.Routes.Current.Routes.Count} routes."));
        }

        string why = _runtime.NotReadyReason ?? "stopping";
        return Task.FromResult(new HealthCheckResult(context?.Registration.FailureStatus ?? HealthStatus.Unhealthy, "Mesh gateway not ready: " + why + "."));
    }
}
