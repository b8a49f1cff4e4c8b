using MeshGateway.Hosting;
using MeshGateway.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace GatewaySample;

/// <summary>
/// Builds the gateway host. With a <c>MeshGateway:Consul</c> section it routes from Consul's catalog and registers
/// itself; with <c>MeshGateway:RoutesFile</c> or <c>MeshGateway:Routes</c> it routes statically. With none of them it runs the embedded demo: a TLS demo backend on loopback, a static route to it, and one
/// call through the gateway at start so something visible happens. Otherwise it is a production gateway configured
/// from appsettings.json, <c>MeshGateway__*</c> environment variables and <c>--MeshGateway:*</c> arguments.
/// </summary>
public static class GatewayHost
{
    /// <summary>The demo service's server name (what a client puts in SNI).</summary>
    public const string DemoServerName = "demo.default.dc1.internal.00000000-0000-4000-8000-000000000000.consul";

    public static IHost Build(string[] args)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
        IConfigurationSection section = builder.Configuration.GetSection(MeshGatewayOptions.DefaultSectionName);
        bool consul = section.GetSection("Consul").Exists();
        bool embedded = !consul && string.IsNullOrEmpty(section["RoutesFile"]) && !section.GetSection("Routes").Exists();

        IMeshGatewayBuilder gateway = builder.Services.AddMeshGateway().AddReadinessHealthCheck();
        if (consul)
        {
            gateway.UseConsulCatalog();
        }
        else if (embedded)
        {
            // Lowest precedence: any configured Address/Port still wins.
            builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
            {
                InitialData = new Dictionary<string, string?> { ["MeshGateway:Address"] = "127.0.0.1", ["MeshGateway:Port"] = "8443" },
            });
            var backend = new DemoBackend(DemoServerName);
            builder.Services.AddSingleton(backend);
            gateway.UseStaticRoutes(new Route(DemoServerName, new UpstreamCluster("demo", [new UpstreamEndpoint(backend.EndPoint)])));
            builder.Services.AddHostedService<DemoCaller>();
        }

        return builder.Build();
    }
}
