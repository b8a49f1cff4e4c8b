using System.Text.Json;
using System.Text.Json.Serialization;
using MeshGateway.Routing;

namespace MeshGateway.Hosting;

/// <summary>The admin endpoint's <c>/routes</c> document: the current route table with each endpoint's state.</summary>
internal static class AdminRouteJson
{
    public static byte[] Render(MeshGatewayRuntime runtime, TimeProvider timeProvider)
    {
        RouteTable table = runtime.Routes.Current;
        var routes = new List<AdminRoute>(table.Routes.Count);
        foreach (Route route in table.Routes)
        {
            UpstreamCluster cluster = route.Cluster;
            var endpoints = new List<AdminEndpointState>(cluster.Endpoints.Count);
            for (int i = 0; i < cluster.Endpoints.Count; i++)
            {
                UpstreamEndpoint endpoint = cluster.Endpoints[i];
                EndpointState state = cluster.GetState(i);
                endpoints.Add(new AdminEndpointState
                {
                    Endpoint = endpoint.Key,
                    Address = state.Address?.ToString(),
                    HostName = endpoint.HostName,
                    Weight = endpoint.Weight,
                    Healthy = endpoint.IsHealthy,
                    Ejected = state.IsEjected(timeProvider),
                    ActiveConnections = state.ActiveConnections,
                    Connections = state.Connections,
                    ConnectFailures = state.ConnectFailures,
                    ConsecutiveFailures = state.ConsecutiveFailures,
                    Ejections = state.Ejections,
                    ResolutionFailures = state.ResolutionFailures,
                    LastResolutionError = state.LastResolutionError,
                });
            }

            routes.Add(new AdminRoute
            {
                Sni = route.Pattern,
                Kind = route.Kind == RouteKind.Exact ? "exact" : "wildcard",
                Cluster = new AdminCluster
                {
                    Name = cluster.Name,
                    ConnectTimeoutMs = cluster.ConnectTimeout.TotalMilliseconds,
                    MaxConnectAttempts = cluster.MaxConnectAttempts,
                    TcpKeepAlive = cluster.TcpKeepAlive is null ? null : new AdminTcpKeepAlive { Time = cluster.TcpKeepAlive.Time, Interval = cluster.TcpKeepAlive.Interval, Probes = cluster.TcpKeepAlive.Probes },
                    ActiveConnections = endpoints.Sum(static e => (long)e.ActiveConnections),
                    Connections = endpoints.Sum(static e => e.Connections),
                    ConnectFailures = endpoints.Sum(static e => e.ConnectFailures),
                    Ejections = endpoints.Sum(static e => e.Ejections),
                    Endpoints = endpoints,
                },
            });
        }

        var document = new AdminRouteDocument
        {
            Version = runtime.Routes.Version,
            Ready = runtime.NotReadyReason is null,
            Listeners = [.. runtime.Listeners.Select(static l => new AdminListener { Name = l.Name, Address = l.EndPoint.ToString() })],
            Routes = routes,
        };
        return JsonSerializer.SerializeToUtf8Bytes(document, AdminJsonContext.Default.AdminRouteDocument);
    }
}

/// <summary>The <c>/routes</c> document.</summary>
internal sealed class AdminRouteDocument
{
    /// <summary>The route table's version (0 before the first table).</summary>
    public long Version { get; init; }

    /// <summary>Whether <c>/ready</c> answers 200.</summary>
    public bool Ready { get; init; }

    /// <summary>The bound listeners.</summary>
    public required List<AdminListener> Listeners { get; init; }

    /// <summary>Every route.</summary>
    public required List<AdminRoute> Routes { get; init; }
}

/// <summary>A listener.</summary>
internal sealed class AdminListener
{
    public required string Name { get; init; }

    public required string Address { get; init; }
}

/// <summary>A route.</summary>
internal sealed class AdminRoute
{
    public required string Sni { get; init; }

    public required string Kind { get; init; }

    public required AdminCluster Cluster { get; init; }
}

/// <summary>A route's cluster with counters summed over its endpoints.</summary>
internal sealed class AdminCluster
{
    public required string Name { get; init; }

    public double ConnectTimeoutMs { get; init; }

    public int MaxConnectAttempts { get; init; }

    public AdminTcpKeepAlive? TcpKeepAlive { get; init; }

    public long ActiveConnections { get; init; }

    public long Connections { get; init; }

    public long ConnectFailures { get; init; }

    public long Ejections { get; init; }

    public required List<AdminEndpointState> Endpoints { get; init; }
}

/// <summary>TCP keepalive of a cluster's connections.</summary>
internal sealed class AdminTcpKeepAlive
{
    public int? Time { get; init; }

    public int? Interval { get; init; }

    public int? Probes { get; init; }
}

/// <summary>An endpoint and its state.</summary>
internal sealed class AdminEndpointState
{
    public required string Endpoint { get; init; }

    public string? Address { get; init; }

    public string? HostName { get; init; }

    public int Weight { get; init; }

    public bool Healthy { get; init; }

    public bool Ejected { get; init; }

    public int ActiveConnections { get; init; }

    public long Connections { get; init; }

    public long ConnectFailures { get; init; }

    public int ConsecutiveFailures { get; init; }

    public long Ejections { get; init; }

    public long ResolutionFailures { get; init; }

    public string? LastResolutionError { get; init; }
}

/// <summary>Source-generated serialization of the admin documents (no reflection: trimming and Native AOT stay clean).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(AdminRouteDocument))]
internal sealed partial class AdminJsonContext : JsonSerializerContext
{
}
