using System.Diagnostics.CodeAnalysis;

namespace MeshGateway.Routing;

/// <summary>
/// Holds the current <see cref="RouteTable"/> and swaps it atomically. Connections read <see cref="Current"/> once,
/// when their ClientHello is complete, and keep the route they got; a swap never touches established connections.
/// </summary>
/// <remarks>A failed update (<see cref="TryUpdate"/>) keeps the last good table. Safe for concurrent use.</remarks>
public sealed class RouteTableSource
{
    private volatile RouteTable _current;
    private long _version;

    /// <summary>Creates a source.</summary>
    /// <param name="initial">The first table; <see cref="RouteTable.Empty"/> when null.</param>
    public RouteTableSource(RouteTable? initial = null) => _current = initial ?? RouteTable.Empty;

    /// <summary>The table new connections are routed with.</summary>
    public RouteTable Current => _current;

    /// <summary>How many times the table was replaced.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Replaces the table.</summary>
    /// <param name="table">The new table.</param>
    /// <exception cref="ArgumentNullException"><paramref name="table"/> is null.</exception>
    public void Update(RouteTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        _current = table;
        Interlocked.Increment(ref _version);
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
}
