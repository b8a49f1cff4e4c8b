using Microsoft.Extensions.DependencyInjection;

namespace MeshGateway.Hosting;

/// <summary>Configures the hosted mesh gateway; returned by <c>AddMeshGateway</c>. Route sources and extras are extension methods.</summary>
public interface IMeshGatewayBuilder
{
    /// <summary>The service collection the gateway is registered in.</summary>
    public IServiceCollection Services { get; }
}

internal sealed class MeshGatewayBuilder : IMeshGatewayBuilder
{
    public MeshGatewayBuilder(IServiceCollection services) => Services = services;

    public IServiceCollection Services { get; }
}
