using MeshGateway.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace MeshGateway.Tool;

/// <summary>
/// Builds the gateway host from <see cref="ToolSettings"/> with MeshGateway.Hosting: <c>AddMeshGateway()</c>, then
/// <c>UseConsulCatalog()</c> unless a routes file or static routes are configured (then it needs no agent).
/// </summary>
/// <remarks>
/// Configuration, lowest precedence first: the command's defaults (<c>Consul:Register</c> false: like Consul, the
/// command registers only with <c>-register</c>), the <c>--config</c> JSON file, <c>MeshGateway__*</c> environment
/// variables, the flags. No appsettings.json from the working directory (a command should not pick up a file it was not
/// given). The agent connection's <c>CONSUL_*</c> variables are read by the Consul client for what is not configured.
/// Logs go to standard error, one line each, so standard output carries only the plan (<c>--dry-run</c>) and the ready line.
/// </remarks>
internal static class ToolHost
{
    public static IHost Build(ToolSettings settings, out bool consul)
    {
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["MeshGateway:Consul:Register"] = "false" });
        if (settings.ConfigFile is { } file)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }

        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(settings.Keys);

        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        if (settings.DryRun && builder.Configuration["Logging:LogLevel:Default"] is null)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }

        IConfigurationSection section = builder.Configuration.GetSection(MeshGatewayOptions.DefaultSectionName);
        consul = string.IsNullOrEmpty(section["RoutesFile"]) && !section.GetSection("Routes").Exists();
        IMeshGatewayBuilder gateway = builder.Services.AddMeshGateway().AddReadinessHealthCheck();
        if (consul)
        {
            gateway.UseConsulCatalog();
        }

        // The stop sequence (deregister, keep accepting for PropagationDelay, drain for DrainTimeout) must fit in the
        // host's shutdown deadline, which is 30 s by default: give it both, plus a margin for the agent calls.
        builder.Services.AddOptions<HostOptions>().Configure<Microsoft.Extensions.Options.IOptions<MeshGatewayOptions>>((host, gatewayOptions) =>
        {
            try
            {
                MeshGatewayOptions o = gatewayOptions.Value;
                host.ShutdownTimeout = o.PropagationDelay + o.DrainTimeout + TimeSpan.FromSeconds(5);
            }
            catch (Exception ex) when (ex is Microsoft.Extensions.Options.OptionsValidationException or InvalidOperationException)
            {
                // Invalid options: the command reports them (exit 2) right after Build, before anything starts.
            }
        });
        return builder.Build();
    }
}
