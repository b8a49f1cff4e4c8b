using MeshGateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MeshGateway.Hosting;

/// <summary>Route sources and extras for <see cref="IMeshGatewayBuilder"/>.</summary>
public static class MeshGatewayBuilderExtensions
{
    /// <summary>
    /// Routes the given routes (added to any <see cref="MeshGatewayOptions.Routes"/> from configuration). Calling it
    /// again adds more routes; a pattern given twice fails the start.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="routes">The routes.</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder UseStaticRoutes(this IMeshGatewayBuilder builder, params IEnumerable<Route> routes)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(routes);
        var registry = (StaticRouteRegistry?)builder.Services.FirstOrDefault(static d => d.ServiceType == typeof(StaticRouteRegistry))?.ImplementationInstance;
        if (registry is null)
        {
            registry = new StaticRouteRegistry();
            builder.Services.RemoveAll<StaticRouteRegistry>();
            builder.Services.AddSingleton(registry);
        }

        registry.Routes.AddRange(routes);
        return builder;
    }

    /// <summary>
    /// Routes from a routes file (format: <see cref="RouteFileParser"/>), reloaded when it changes; a file that fails to
    /// load keeps the last good routes and logs the error. The first load failing fails the host start. Same as setting
    /// <see cref="MeshGatewayOptions.RoutesFile"/>.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="path">The file's path (relative paths are relative to the working directory).</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder UseRoutesFile(this IMeshGatewayBuilder builder, string path)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(path);
        builder.Services.Configure<MeshGatewayOptions>(o => o.RoutesFile = path);
        return builder;
    }

    /// <summary>Uses your own route source instead of static routes or a routes file (the last source chosen wins).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="factory">Creates the source.</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder UseRouteSource(this IMeshGatewayBuilder builder, Func<IServiceProvider, IMeshGatewayRouteSource> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.RemoveAll<IMeshGatewayRouteSource>();
        builder.Services.AddSingleton(factory);
        return builder;
    }

    /// <summary>
    /// Routes from Consul's catalog: the gateway watches its datacenter's Connect services and the other datacenters'
    /// mesh gateways with blocking queries, routes each local service's SNI to its instances and each remote
    /// datacenter's wildcard SNI to that datacenter's gateways, and (unless <see cref="MeshGatewayConsulOptions.Register"/>
    /// is false) registers itself as a <c>mesh-gateway</c> while it listens. Settings: <see cref="MeshGatewayOptions.Consul"/>.
    /// The token needs the mesh gateway ACL policy (<c>MeshGatewayAcl</c>; docs/consul-behaviour.md §7.1).
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Sets Consul options in code (after configuration binding); optional.</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder UseConsulCatalog(this IMeshGatewayBuilder builder, Action<MeshGatewayConsulOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure<MeshGatewayOptions>(o => configure(o.Consul));
        }

        return builder.UseRouteSource(static sp => new ConsulCatalogRouteSource(
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshGatewayOptions>>(),
            sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>() ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
            sp.GetService<TimeProvider>())
        {
            PeeringTerminator = sp.GetService<IMeshGatewayPeeringTerminator>(),
            PeeringConnectionTerminator = sp.GetService<IMeshGatewayPeeringConnectionTerminator>(),
        });
    }

    /// <summary>
    /// Adds a readiness health check: healthy once every listener is bound and the first routing table arrived,
    /// unhealthy before and while stopping. Added once, however often it is called.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The check's name. Default <c>meshgateway</c>.</param>
    /// <param name="tags">Tags (for example <c>ready</c>) to filter checks by. Default <c>ready</c>.</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder AddReadinessHealthCheck(this IMeshGatewayBuilder builder, string name = "meshgateway", params IEnumerable<string> tags)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (builder.Services.Any(static d => d.ServiceType == typeof(ReadinessCheckMarker)))
        {
            return builder;
        }

        builder.Services.AddSingleton<ReadinessCheckMarker>();
        string[] tagList = [.. tags];
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            name,
            static sp => new MeshGatewayHealthCheck(sp.GetRequiredService<MeshGatewayRuntime>()),
            failureStatus: HealthStatus.Unhealthy,
            tags: tagList.Length == 0 ? ["ready"] : tagList));
        return builder;
    }

    private sealed class ReadinessCheckMarker;
}
