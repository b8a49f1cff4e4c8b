using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace MeshGateway.Routing;

/// <summary>
/// An immutable, complete routing snapshot: exact names and <c>*.suffix</c> wildcards, each pointing at an
/// <see cref="UpstreamCluster"/>. Build one with <see cref="Create"/> and publish it through a <see cref="RouteTableSource"/>.
/// </summary>
/// <remarks>
/// <para>Matching follows what Consul's Envoy configuration does (docs/consul-behaviour.md §3 and §13):</para>
/// <list type="number">
/// <item>ASCII case is ignored (Envoy lower-cases the SNI before matching <c>server_names</c>).</item>
/// <item>A name that ends with a dot matches nothing (RFC 6066 §3 forbids the dot; Envoy never strips it and closes).</item>
/// <item>An exact route beats any wildcard.</item>
/// <item>Wildcards are tried from the longest suffix to the shortest: the name loses one leading label at a time and
/// <c>*.</c> + the rest is looked up, so <c>*.a.b.c</c> beats <c>*.b.c</c>. A wildcard needs at least one non-empty
/// leading label: <c>*.b.c</c> does not match <c>b.c</c> (that is the exact route of the remote gateway cluster).</item>
/// </list>
/// <para>Lookups allocate nothing and are safe from any number of threads.</para>
/// </remarks>
public sealed class RouteTable
{
    private readonly Dictionary<string, Route> _exact;
    private readonly Dictionary<string, Route> _wildcards;
    private readonly Dictionary<string, Route>.AlternateLookup<ReadOnlySpan<char>> _exactLookup;
    private readonly Dictionary<string, Route>.AlternateLookup<ReadOnlySpan<char>> _wildcardLookup;
    private readonly Route[] _routes;

    private RouteTable(Route[] routes, Dictionary<string, Route> exact, Dictionary<string, Route> wildcards)
    {
        _routes = routes;
        _exact = exact;
        _wildcards = wildcards;
        _exactLookup = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcardLookup = wildcards.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>A table with no routes: every connection is refused.</summary>
    public static RouteTable Empty { get; } = Create([]);

    /// <summary>Every route, exact ones first, in the order given.</summary>
    public IReadOnlyList<Route> Routes => _routes;

    /// <summary>The number of exact routes.</summary>
    public int ExactCount => _exact.Count;

    /// <summary>The number of wildcard routes.</summary>
    public int WildcardCount => _wildcards.Count;

    /// <summary>Builds a table. The input is validated as a whole: a table is either complete or not built.</summary>
    /// <param name="routes">The routes; patterns must be unique (ignoring case).</param>
    /// <returns>The table.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="routes"/> or one of its items is null.</exception>
    /// <exception cref="ArgumentException">Two routes have the same pattern.</exception>
    public static RouteTable Create(IEnumerable<Route> routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        var exact = new Dictionary<string, Route>(StringComparer.Ordinal);
        var wildcards = new Dictionary<string, Route>(StringComparer.Ordinal);
        var ordered = new List<Route>();
        foreach (Route route in routes)
        {
            ArgumentNullException.ThrowIfNull(route, nameof(routes));
            Dictionary<string, Route> target = route.Kind == RouteKind.Exact ? exact : wildcards;
            if (!target.TryAdd(route.Key, route))
            {
                throw new ArgumentException($"The route pattern '{route.Pattern}' appears more than once.", nameof(routes));
            }

            ordered.Add(route);
        }

        ordered.Sort(static (a, b) => a.Kind.CompareTo(b.Kind));
        return new RouteTable([.. ordered], exact, wildcards);
    }

    /// <summary>Finds the route for a server name given as the bytes of the TLS <c>host_name</c> (ASCII, any case). Allocates nothing.</summary>
    /// <param name="serverName">The name as sent.</param>
    /// <param name="route">The route, when found.</param>
    /// <returns>Whether a route matched.</returns>
    public bool TryMatch(ReadOnlySpan<byte> serverName, [NotNullWhen(true)] out Route? route)
    {
        route = null;
        if (serverName.IsEmpty || serverName.Length > 255)
        {
            return false;
        }

        Span<char> name = stackalloc char[serverName.Length];
        if (Ascii.ToLower(serverName, name, out int written) != OperationStatus.Done)
        {
            return false;
        }

        return TryMatchLowerCase(name[..written], out route);
    }

    /// <summary>Finds the route for a server name given as characters (any case). Allocates nothing.</summary>
    /// <param name="serverName">The name.</param>
    /// <param name="route">The route, when found.</param>
    /// <returns>Whether a route matched.</returns>
    public bool TryMatch(ReadOnlySpan<char> serverName, [NotNullWhen(true)] out Route? route)
    {
        route = null;
        if (serverName.IsEmpty || serverName.Length > 255)
        {
            return false;
        }

        Span<char> name = stackalloc char[serverName.Length];
        if (Ascii.ToLower(serverName, name, out int written) != OperationStatus.Done)
        {
            return false;
        }

        return TryMatchLowerCase(name[..written], out route);
    }

    private bool TryMatchLowerCase(ReadOnlySpan<char> name, [NotNullWhen(true)] out Route? route)
    {
        route = null;
        if (name[^1] == '.')
        {
            return false;
        }

        if (_exactLookup.TryGetValue(name, out route))
        {
            return true;
        }

        if (_wildcards.Count == 0)
        {
            return false;
        }

        // Drop one leading label at a time: the first hit is the longest suffix. The label dropped must be non-empty.
        for (int dot = name.IndexOf('.'); dot >= 0; dot = IndexOfNext(name, dot))
        {
            if (dot > 0 && dot + 1 < name.Length && _wildcardLookup.TryGetValue(name[(dot + 1)..], out route))
            {
                return true;
            }
        }

        return false;
    }

    private static int IndexOfNext(ReadOnlySpan<char> name, int dot)
    {
        int next = name[(dot + 1)..].IndexOf('.');
        return next < 0 ? -1 : dot + 1 + next;
    }
}
