using System.Diagnostics.Metrics;
using MeshGateway.Gateway;
using MeshGateway.Routing;

namespace MeshGateway.Hosting;

/// <summary>
/// Per-cluster (per-route: Consul gives every route its own cluster) instruments, observed from the endpoint states
/// when a metrics reader collects: nothing is recorded on the data path. Tag <c>meshgateway.cluster</c>. An endpoint
/// removed from the catalog takes its counts with it, so a cluster's counters can go down after a catalog change.
/// </summary>
internal sealed class ClusterMetrics : IDisposable
{
    /// <summary>Observable counter: upstream connections opened, per cluster.</summary>
    public const string Connections = "meshgateway.cluster.connections";

    /// <summary>Observable up-down counter: upstream connections open now, per cluster.</summary>
    public const string ActiveConnections = "meshgateway.cluster.connections.active";

    /// <summary>Observable counter: failed or timed-out connects, per cluster.</summary>
    public const string ConnectFailures = "meshgateway.cluster.connect_failures";

    /// <summary>Observable counter: outlier ejections, per cluster.</summary>
    public const string Ejections = "meshgateway.cluster.ejections";

    /// <summary>Observable up-down counter: endpoints per cluster and state (<c>healthy</c>, <c>unhealthy</c>, <c>ejected</c>).</summary>
    public const string Endpoints = "meshgateway.cluster.endpoints";

    /// <summary>Observable up-down counter: routes in the current table.</summary>
    public const string Routes = "meshgateway.routes";

    private const string ClusterTag = "meshgateway.cluster";
    private const string StateTag = "meshgateway.endpoint.state";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public ClusterMetrics(RouteTableSource routes, IMeterFactory? meterFactory, TimeProvider timeProvider)
    {
        if (meterFactory is null)
        {
            _meter = new Meter(GatewayMetricNames.MeterName);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(new MeterOptions(GatewayMetricNames.MeterName));
        }

        _meter.CreateObservableCounter(Connections, () => PerCluster(routes, static s => s.Connections), "{connection}", "Upstream connections opened, per cluster.");
        _meter.CreateObservableUpDownCounter(ActiveConnections, () => PerCluster(routes, static s => s.ActiveConnections), "{connection}", "Upstream connections open now, per cluster.");
        _meter.CreateObservableCounter(ConnectFailures, () => PerCluster(routes, static s => s.ConnectFailures), "{attempt}", "Failed or timed-out upstream connects, per cluster.");
        _meter.CreateObservableCounter(Ejections, () => PerCluster(routes, static s => s.Ejections), "{ejection}", "Outlier ejections, per cluster.");
        _meter.CreateObservableUpDownCounter(Endpoints, () => EndpointCounts(routes, timeProvider), "{endpoint}", "Endpoints per cluster and state.");
        _meter.CreateObservableUpDownCounter(Routes, () => (long)routes.Current.Routes.Count, "{route}", "Routes in the current table.");
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static IEnumerable<UpstreamCluster> Clusters(RouteTableSource routes)
    {
        var seen = new HashSet<UpstreamCluster>(ReferenceEqualityComparer.Instance);
        foreach (Route route in routes.Current.Routes)
        {
            if (seen.Add(route.Cluster))
            {
                yield return route.Cluster;
            }
        }
    }

    private static List<Measurement<long>> PerCluster(RouteTableSource routes, Func<EndpointState, long> value)
    {
        var measurements = new List<Measurement<long>>();
        foreach (UpstreamCluster cluster in Clusters(routes))
        {
            long total = 0;
            for (int i = 0; i < cluster.Endpoints.Count; i++)
            {
                total += value(cluster.GetState(i));
            }

            measurements.Add(new Measurement<long>(total, new KeyValuePair<string, object?>(ClusterTag, cluster.Name)));
        }

        return measurements;
    }

    private static List<Measurement<long>> EndpointCounts(RouteTableSource routes, TimeProvider timeProvider)
    {
        var measurements = new List<Measurement<long>>();
        foreach (UpstreamCluster cluster in Clusters(routes))
        {
            long healthy = 0, unhealthy = 0, ejected = 0;
            for (int i = 0; i < cluster.Endpoints.Count; i++)
            {
                if (cluster.GetState(i).IsEjected(timeProvider))
                {
                    ejected++;
                }
                else if (cluster.Endpoints[i].IsHealthy)
                {
                    healthy++;
                }
                else
                {
                    unhealthy++;
                }
            }

            var tag = new KeyValuePair<string, object?>(ClusterTag, cluster.Name);
            measurements.Add(new Measurement<long>(healthy, tag, new KeyValuePair<string, object?>(StateTag, "healthy")));
            measurements.Add(new Measurement<long>(unhealthy, tag, new KeyValuePair<string, object?>(StateTag, "unhealthy")));
            measurements.Add(new Measurement<long>(ejected, tag, new KeyValuePair<string, object?>(StateTag, "ejected")));
        }

        return measurements;
    }
}
