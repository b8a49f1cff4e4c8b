using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>Registers the hosted mesh gateway.</summary>
/// <example>
/// <code>
/// HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
/// builder.Services.AddMeshGateway().UseRoutesFile("routes.json");
/// await builder.Build().RunAsync();
/// </code>
/// </example>
public static class MeshGatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the mesh gateway with options bound from the <c>MeshGateway</c> section of the application's
    /// <see cref="IConfiguration"/> (when one is registered). Calling it again adds nothing twice.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns>A builder to choose the route source with.</returns>
    public static IMeshGatewayBuilder AddMeshGateway(this IServiceCollection services) => AddMeshGatewayCore(services, null, null);

    /// <summary>Adds the mesh gateway; <paramref name="configure"/> runs after the <c>MeshGateway</c> configuration section is bound.</summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets options in code.</param>
    /// <returns>A builder to choose the route source with.</returns>
    public static IMeshGatewayBuilder AddMeshGateway(this IServiceCollection services, Action<MeshGatewayOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddMeshGatewayCore(services, null, configure);
    }

    /// <summary>Adds the mesh gateway with options bound from <paramref name="section"/> instead of the default <c>MeshGateway</c> section.</summary>
    /// <param name="services">The services.</param>
    /// <param name="section">The configuration section holding <see cref="MeshGatewayOptions"/>.</param>
    /// <returns>A builder to choose the route source with.</returns>
    public static IMeshGatewayBuilder AddMeshGateway(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return AddMeshGatewayCore(services, section, null);
    }

    private static MeshGatewayBuilder AddMeshGatewayCore(IServiceCollection services, IConfiguration? section, Action<MeshGatewayOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<MeshGatewayOptions> options = services.AddOptions<MeshGatewayOptions>();
        if (section is not null)
        {
            // Binding appends to the Routes list: bind each section once however often AddMeshGateway(section) is called.
            if (!services.Any(d => d.ImplementationInstance is BindSection b && ReferenceEquals(b.Section, section)))
            {
                services.AddSingleton<IConfigureOptions<MeshGatewayOptions>>(new BindSection(section));
            }
        }
        else if (!services.Any(static d => d.ServiceType == typeof(IConfigureOptions<MeshGatewayOptions>) && d.ImplementationType == typeof(BindDefaultSection)))
        {
            services.AddSingleton<IConfigureOptions<MeshGatewayOptions>, BindDefaultSection>();
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshGatewayOptions>, MeshGatewayOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshGatewayOptions>, MeshGatewayOptionsCrossValidator>());
        services.TryAddSingleton<StaticRouteRegistry>();
        services.TryAddSingleton<IMeshGatewayRouteSource>(static sp => new OptionsRouteSource(
            sp.GetRequiredService<IOptions<MeshGatewayOptions>>(),
            sp.GetRequiredService<StaticRouteRegistry>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<TimeProvider>()));
        services.TryAddSingleton(static sp => new MeshGatewayRuntime(
            sp.GetRequiredService<IOptions<MeshGatewayOptions>>(),
            sp.GetRequiredService<IMeshGatewayRouteSource>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<IMeterFactory>(),
            sp.GetService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshGatewayHostedService>());
        return new MeshGatewayBuilder(services);
    }

    /// <summary>Binds the <c>MeshGateway</c> section of the application's configuration, when there is one.</summary>
    private sealed class BindDefaultSection : IConfigureOptions<MeshGatewayOptions>
    {
        private readonly IConfiguration? _configuration;

        public BindDefaultSection(IServiceProvider services) => _configuration = services.GetService<IConfiguration>();

        public void Configure(MeshGatewayOptions options) => _configuration?.GetSection(MeshGatewayOptions.DefaultSectionName).Bind(options);
    }

    private sealed class BindSection : IConfigureOptions<MeshGatewayOptions>
    {
        public BindSection(IConfiguration section) => Section = section;

        public IConfiguration Section { get; }

        public void Configure(MeshGatewayOptions options) => Section.Bind(options);
    }
}
