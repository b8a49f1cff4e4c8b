using System.Net;
using MeshGateway.Consul;
using MeshGateway.Routing;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>
/// The checks that span fields or parse values: listener addresses (and the resulting listener set), static routes,
/// the routes file versus static routes, and Consul settings. Every message names the option and the bad value.
/// </summary>
internal sealed class MeshGatewayOptionsCrossValidator : IValidateOptions<MeshGatewayOptions>
{
    private static readonly TimeSpan s_maxDuration = TimeSpan.FromDays(365);

    public ValidateOptionsResult Validate(string? name, MeshGatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        ListenerPlan.Build(options, errors);
        if (options.MaxConnectionDuration is { } duration && (duration < TimeSpan.FromSeconds(1) || duration > s_maxDuration))
        {
            errors.Add($"MaxConnectionDuration is '{duration}' but must be between 00:00:01 and 365.00:00:00 (or unset for no limit).");
        }

        if (!string.IsNullOrEmpty(options.RoutesFile) && options.Routes.Count > 0)
        {
            errors.Add($"RoutesFile is '{options.RoutesFile}' and Routes has {options.Routes.Count} entries: choose one route source.");
        }

        StaticRoutes.TryBuild(options.Routes, [], options, errors);
        ValidateConsul(options.Consul, errors);
        AdminEndpoint.TryParseBind(options.Admin.Bind, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateConsul(MeshGatewayConsulOptions consul, List<string> errors)
    {
        if (!string.IsNullOrEmpty(consul.Address))
        {
            try
            {
                ConsulClientOptions.ParseAddress(consul.Address);
            }
            catch (ArgumentException ex)
            {
                // ParseAddress's message shows the address without credentials.
                errors.Add($"Consul:Address is invalid: {ex.Message.Split(" (Parameter", 2)[0]}");
            }
        }

        if (string.IsNullOrEmpty(consul.ClientCertificateFile) != string.IsNullOrEmpty(consul.ClientKeyFile))
        {
            errors.Add($"Consul:ClientCertificateFile and Consul:ClientKeyFile must be set together (only {(string.IsNullOrEmpty(consul.ClientKeyFile) ? "ClientCertificateFile" : "ClientKeyFile")} is).");
        }

        if (!string.IsNullOrEmpty(consul.PeeringHttpTerminator) && (!IPEndPoint.TryParse(consul.PeeringHttpTerminator, out IPEndPoint? terminator) || terminator.Port == 0))
        {
            errors.Add($"Consul:PeeringHttpTerminator is '{consul.PeeringHttpTerminator}' but must be ip:port with a port (the L7 terminator's local endpoint).");
        }
        else if (!string.IsNullOrEmpty(consul.PeeringHttpTerminator) && consul.Peering == false)
        {
            errors.Add($"Consul:PeeringHttpTerminator is '{consul.PeeringHttpTerminator}' but Consul:Peering is false: the terminator serves only peered exports.");
        }

        if (!string.IsNullOrEmpty(consul.Token) && !string.IsNullOrEmpty(consul.TokenFile))
        {
            errors.Add($"Consul:Token and Consul:TokenFile ('{consul.TokenFile}') are both set: choose one.");
        }

        if (consul.WanFederationEnabled && !string.IsNullOrEmpty(consul.Partition) && !string.Equals(consul.Partition, "default", StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"Consul:WanFederation (or meta consul-wan-federation = \"1\") works only in the default partition, but Consul:Partition is '{consul.Partition}' (Consul serves WAN federation from default-partition gateways only).");
        }

        if (consul.ServerIdleTimeout != Timeout.InfiniteTimeSpan && consul.ServerIdleTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Consul:ServerIdleTimeout must be positive or infinite (was {consul.ServerIdleTimeout}).");
        }

        foreach (string key in consul.Meta.Keys)
        {
            // Consul reserves the consul- prefix; mesh gateways may set consul-wan-federation (agent/structs/structs.go).
            if (key.StartsWith("consul-", StringComparison.Ordinal) && key != "consul-wan-federation")
            {
                errors.Add($"Consul:Meta has the key '{key}', but keys starting with 'consul-' are reserved by Consul (only 'consul-wan-federation' is allowed for a mesh gateway).");
            }
        }
    }
}

/// <summary>Builds routes from <see cref="MeshGatewayRouteOptions"/>.</summary>
internal static class StaticRoutes
{
    public static List<Route>? TryBuild(IList<MeshGatewayRouteOptions> configured, IReadOnlyList<Route> fromCode, MeshGatewayOptions options, List<string> errors)
    {
        var routes = new List<Route>(fromCode);
        int before = errors.Count;
        OutlierDetection outlierDetection;
        try
        {
            outlierDetection = options.OutlierDetection.ToOutlierDetection();
        }
        catch (ArgumentOutOfRangeException)
        {
            // Out of range: the per-field validator names the option and the value.
            outlierDetection = Routing.OutlierDetection.Default;
        }

        for (int i = 0; i < configured.Count; i++)
        {
            MeshGatewayRouteOptions route = configured[i];
            var endpoints = new List<UpstreamEndpoint>(route.Endpoints.Count);
            for (int j = 0; j < route.Endpoints.Count; j++)
            {
                string text = route.Endpoints[j];
                if (IPEndPoint.TryParse(text, out IPEndPoint? endPoint) && endPoint.Port != 0)
                {
                    endpoints.Add(new UpstreamEndpoint(endPoint));
                }
                else
                {
                    errors.Add($"Routes:{i}:Endpoints:{j} is '{text}' but must be 'ip:port' with a non-zero port.");
                }
            }

            TimeSpan connectTimeout = route.ConnectTimeout ?? options.ConnectTimeout;
            int attempts = route.ConnectAttempts ?? options.ConnectAttempts;
            if (connectTimeout <= TimeSpan.Zero)
            {
                errors.Add($"Routes:{i}:ConnectTimeout is '{connectTimeout}' but must be positive.");
                continue;
            }

            if (attempts < 1 || attempts > UpstreamCluster.MaxAllowedConnectAttempts)
            {
                errors.Add($"Routes:{i}:ConnectAttempts is '{attempts}' but must be between 1 and {UpstreamCluster.MaxAllowedConnectAttempts}.");
                continue;
            }

            try
            {
                var cluster = new UpstreamCluster(route.Cluster ?? route.Sni, endpoints) { ConnectTimeout = connectTimeout, MaxConnectAttempts = attempts, OutlierDetection = outlierDetection };
                routes.Add(new Route(route.Sni, cluster));
            }
            catch (ArgumentException ex)
            {
                errors.Add($"Routes:{i}:Sni is '{route.Sni}': {ex.Message}");
            }
        }

        if (errors.Count > before)
        {
            return null;
        }

        try
        {
            RouteTable.Create(routes);
        }
        catch (ArgumentException ex)
        {
            errors.Add($"Routes: {ex.Message}");
            return null;
        }

        return routes;
    }
}
