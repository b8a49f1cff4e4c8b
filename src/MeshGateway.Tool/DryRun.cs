using System.Text.Json;
using System.Text.Json.Serialization;
using MeshGateway.Acl;
using MeshGateway.Consul;
using MeshGateway.Hosting;
using MeshGateway.Preflight;
using MeshGateway.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace MeshGateway.Tool;

/// <summary>
/// <c>--dry-run</c>: the plan as one JSON document on standard output, computed by the code a start runs (the Hosting
/// listener plan and registration body, the Consul preflight, the Consul route table source), without binding a
/// listener or writing to Consul. Keys: <c>mode</c>, <c>listeners</c>, <c>registration</c> (null unless registering),
/// <c>routes</c>, <c>acl</c> (<c>hcl</c>, <c>rules</c>, <c>requirements</c>), <c>preflight</c>.
/// </summary>
/// <remarks>
/// Exit codes: 0 when the plan was printed (preflight findings are printed, and as at start they do not fail it);
/// 1 when the agent cannot be reached or the routes cannot be loaded; 2 when the plan cannot be made from the options
/// (e.g. registering with a wildcard LAN address).
/// </remarks>
internal static class DryRun
{
    public static async Task<int> RunAsync(IServiceProvider services, MeshGatewayOptions options, bool consul, TextWriter output, CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        List<MeshGatewayListenerAddress> listeners = ListenerPlan.Build(options, errors);
        if (errors.Count > 0)
        {
            // Unreachable after validation (the cross validator runs the same plan), kept for safety.
            await Console.Error.WriteLineAsync("meshgateway: invalid configuration: " + string.Join(" ", errors));
            return ExitCodes.Usage;
        }

        ConsulServiceRegistration? registration = null;
        if (consul && options.Consul.Register)
        {
            try
            {
                registration = ConsulCatalogRouteSource.RegistrationFor(options, listeners).ToRegistration();
            }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
            {
                await Console.Error.WriteLineAsync("meshgateway: invalid configuration: " + ex.Message);
                return ExitCodes.Usage;
            }
        }

        var routes = new RouteTableSource();
        ConsulPreflightReport? preflight = null;
        ConsulPreflightOptions preflightOptions = ConsulCatalogRouteSource.PreflightOptionsFor(options.Consul);
        MeshGatewayAclOptions acl = preflightOptions.Acl;
        try
        {
            if (consul)
            {
                using var client = new ConsulClient(ConsulCatalogRouteSource.ClientOptionsFor(options.Consul));
                preflight = await ConsulPreflight.RunAsync(client, preflightOptions, cancellationToken);
                if (preflight.Facts.Errors.TryGetValue("agent/self", out ConsulException? unreachable) && unreachable.StatusCode is null)
                {
                    await Console.Error.WriteLineAsync($"meshgateway: cannot reach the Consul agent at {client.Address}: {unreachable.Message} (set -http-addr or CONSUL_HTTP_ADDR)");
                    return ExitCodes.RuntimeFailure;
                }

                await using var source = new ConsulRouteTableSource(client, routes, ConsulCatalogRouteSource.SourceOptionsFor(options));
                await source.StartAsync(cancellationToken);
            }
            else
            {
                IMeshGatewayRouteSource source = services.GetRequiredService<IMeshGatewayRouteSource>();
                await source.StartAsync(routes, cancellationToken);
                await source.StopAsync(cancellationToken);
            }
        }
        catch (Exception ex) when (ex is ConsulException or TimeoutException or InvalidOperationException or IOException)
        {
            await Console.Error.WriteLineAsync("meshgateway: the routes could not be loaded: " + ex.Message);
            return ExitCodes.RuntimeFailure;
        }

        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions
        {
            Indented = true,

            // For a terminal, not a web page: quotes in the HCL policy stay readable instead of \u0022.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            json.WriteStartObject();
            json.WriteString("mode", consul ? "consul" : "static");
            json.WriteStartArray("listeners");
            foreach (MeshGatewayListenerAddress listener in listeners)
            {
                json.WriteStartObject();
                json.WriteString("name", listener.Name);
                json.WriteString("address", listener.EndPoint.ToString());
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WritePropertyName("registration");
            if (registration is null)
            {
                json.WriteNullValue();
            }
            else
            {
                JsonSerializer.Serialize(json, registration, ToolJsonContext.Default.ConsulServiceRegistration);
            }

            WriteRoutes(json, routes.Current);
            if (consul)
            {
                WriteAcl(json, acl);
            }
            else
            {
                json.WriteNull("acl");
            }

            WritePreflight(json, preflight);
            json.WriteEndObject();
        }

        await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        await output.FlushAsync(cancellationToken);
        return ExitCodes.Ok;
    }

    private static void WriteAcl(Utf8JsonWriter json, MeshGatewayAclOptions acl)
    {
        json.WriteStartObject("acl");
        json.WriteString("hcl", MeshGatewayAcl.ToHcl(acl));
        json.WritePropertyName("rules");
        using (JsonDocument rules = JsonDocument.Parse(MeshGatewayAcl.ToJson(acl)))
        {
            rules.WriteTo(json);
        }

        json.WriteStartArray("requirements");
        foreach (AclRequirement requirement in MeshGatewayAcl.Requirements(acl))
        {
            json.WriteStringValue(requirement.ToString());
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteRoutes(Utf8JsonWriter json, RouteTable table)
    {
        json.WriteStartArray("routes");
        foreach (Route route in table.Routes)
        {
            json.WriteStartObject();
            json.WriteString("sni", route.Pattern);
            json.WriteString("cluster", route.Cluster.Name);
            json.WriteNumber("connectTimeoutMs", (long)route.Cluster.ConnectTimeout.TotalMilliseconds);
            json.WriteStartArray("endpoints");
            foreach (UpstreamEndpoint endpoint in route.Cluster.Endpoints)
            {
                json.WriteStartObject();
                json.WriteString("address", endpoint.Key);
                json.WriteNumber("weight", endpoint.Weight);
                json.WriteBoolean("healthy", endpoint.IsHealthy);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    private static void WritePreflight(Utf8JsonWriter json, ConsulPreflightReport? report)
    {
        json.WritePropertyName("preflight");
        if (report is null)
        {
            json.WriteNullValue();
            return;
        }

        json.WriteStartObject();
        json.WriteString("datacenter", report.Facts.Datacenter);
        json.WriteString("version", report.Facts.Version);
        json.WriteString("trustDomain", report.Facts.TrustDomain);
        json.WriteBoolean("hasErrors", report.HasErrors);
        json.WriteStartArray("findings");
        foreach (PreflightFinding finding in report.Findings)
        {
            json.WriteStartObject();
            json.WriteString("check", finding.Check.ToString());
            json.WriteString("severity", finding.Severity.ToString());
            json.WriteString("datacenter", finding.Datacenter);
            json.WriteString("message", finding.Message);
            json.WriteString("fix", finding.Fix);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("tokenPermissions");
        foreach (ConsulTokenPermissionCheck permission in report.TokenPermissions)
        {
            json.WriteStringValue(permission.ToString());
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}

/// <summary>The registration body as the dry run prints it (the Consul package's own context is internal to it).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ConsulServiceRegistration))]
internal sealed partial class ToolJsonContext : JsonSerializerContext;
