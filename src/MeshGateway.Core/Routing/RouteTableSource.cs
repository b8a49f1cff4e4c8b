using System.Diagnostics.CodeAnalysis;

namespace MeshGateway.Routing;

/// <summary>
/// Holds the current <see cref="RouteTable"/> and swaps it atomically. Connections read <see cref="Current"/> once,
/// when their ClientHello is complete, and keep the route they got; a swap never touches established connections.
/// </summary>
/// <remarks>
/// <para>A failed update (<see cref="TryUpdate"/>) keeps the last good table. Safe for concurrent use.</para>
/// <para>
/// <b>Endpoint state carries over.</b> Before a new table is published, each of its endpoints that the current table
/// also has (same <see cref="UpstreamCluster.Name"/>, same <see cref="UpstreamEndpoint.Key"/>) takes over the current
/// table's <see cref="EndpointState"/>: ejections hold, active-connection counts stay exact (a connection started on
/// the old table releases the shared object when it ends) and resolved host names stay resolved. Endpoints of the new
/// table that share a cluster name and key share one state. This costs one dictionary of the endpoints per swap, off
/// the connection path. Publish a given table through one source only: adoption rewires its clusters' states.
/// </para>
/// </remarks>
public sealed class RouteTableSource
{
    private readonly Lock _updateLock = new();
    private volatile RouteTable _current;
    private TaskCompletionSource _changed = NewSignal();
    private long _version;

    /// <summary>Creates a source.</summary>
    /// <param name="initial">The first table; <see cref="RouteTable.Empty"/> when null.</param>
    public RouteTableSource(RouteTable? initial = null)
    {
        RouteTable table = initial ?? RouteTable.Empty;
        Adopt(RouteTable.Empty, table);
        _current = table;
    }

    /// <summary>The table new connections are routed with.</summary>
    public RouteTable Current => _current;

    /// <summary>How many times the table was replaced.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Completes (asynchronously) at the next <see cref="Update"/>; used by the <see cref="HostNameRefresher"/> to resolve new host names at once.</summary>
    internal Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>
    /// Completes with the current table once <paramref name="condition"/> holds for it: checked now and after every
    /// replacement (a change signal, no polling). For start-up probes and tests that wait for a route to appear.
    /// </summary>
    /// <param name="condition">What the table must satisfy; called on the caller's and the updater's threads, must not throw.</param>
    /// <param name="cancellationToken">Ends the wait.</param>
    /// <returns>The first table, from now on, that satisfies <paramref name="condition"/>.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public async Task<RouteTable> WaitForAsync(Func<RouteTable, bool> condition, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        while (true)
        {
            // The signal first: an update between the two reads completes the signal held, so it is never missed.
            Task changed = Changed;
            RouteTable table = _current;
            if (condition(table))
            {
                return table;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Replaces the table, carrying endpoint state over from the current one (see the type's remarks).</summary>
    /// <param name="table">The new table.</param>
    /// <exception cref="ArgumentNullException"><paramref name="table"/> is null.</exception>
    public void Update(RouteTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        lock (_updateLock)
        {
            Adopt(_current, table);
            _current = table;
            Interlocked.Increment(ref _version);
        }

        Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
    }

    /// <summary>Builds a table from <paramref name="routes"/> and publishes it; if the build fails, the current table stays.</summary>
    /// <param name="routes">The complete new set of routes.</param>
    /// <param name="error">Why the build failed.</param>
    /// <returns>Whether the new table was published.</returns>
    public bool TryUpdate(IEnumerable<Route> routes, [NotNullWhen(false)] out string? error)
    {
        RouteTable table;
        try
        {
            table = RouteTable.Create(routes);
        }
        catch (ArgumentException ex)
        {
            error = ex.Message;
            return false;
        }

        Update(table);
        error = null;
        return true;
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Points the endpoints of <paramref name="next"/> at the states <paramref name="previous"/> already has.</summary>
    private static void Adopt(RouteTable previous, RouteTable next)
    {
        if (ReferenceEquals(previous, next))
        {
            return;
        }

        var known = new Dictionary<(string Cluster, string Endpoint), EndpointState>();
        var live = new HashSet<UpstreamCluster>(ReferenceEqualityComparer.Instance);
        foreach (Route route in previous.Routes)
        {
            if (live.Add(route.Cluster))
            {
                route.Cluster.CollectStates(known);
            }
        }

        var seen = new HashSet<UpstreamCluster>(ReferenceEqualityComparer.Instance);
        foreach (Route route in next.Routes)
        {
            // A cluster instance the previous table already routes to keeps its own (live) states.
            if (!live.Contains(route.Cluster) && seen.Add(route.Cluster))
            {
                route.Cluster.AdoptStates(known);
            }
        }
    }
}
