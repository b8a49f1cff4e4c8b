namespace MeshGateway.Routing;

/// <summary>One entry of a <see cref="RouteTable"/>: a server-name pattern and the cluster it sends connections to.</summary>
public sealed class Route
{
    /// <summary>Creates a route.</summary>
    /// <param name="pattern">
    /// An exact name (<c>web.default.dc1.internal.&lt;td&gt;.consul</c>) or a wildcard <c>*.suffix</c>
    /// (<c>*.dc2.internal.&lt;td&gt;.consul</c>). Stored lower-cased; matching ignores ASCII case.
    /// </param>
    /// <param name="cluster">Where matching connections go.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The pattern is empty, longer than 255 bytes, not printable ASCII, ends with a dot, has an empty label, or uses <c>*</c> other than as the whole first label.</exception>
    public Route(string pattern, UpstreamCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(cluster);
        Kind = Validate(pattern);
        Pattern = pattern.ToLowerInvariant();
        PatternBytes = System.Text.Encoding.ASCII.GetBytes(Pattern);
        Cluster = cluster;
    }

    /// <summary>The pattern, lower-cased: an exact name or <c>*.suffix</c>.</summary>
    public string Pattern { get; }

    /// <summary>Whether <see cref="Pattern"/> is exact or a wildcard suffix.</summary>
    public RouteKind Kind { get; }

    /// <summary>Where matching connections go (when <see cref="Terminator"/> is set: only the name used in logs and metrics).</summary>
    public UpstreamCluster Cluster { get; }

    /// <summary>
    /// When set, matching connections are handed to this terminator in process (after the ClientHello was read)
    /// instead of being dialled to <see cref="Cluster"/> and spliced; the cluster's endpoints are then not used.
    /// Null (the default) for passthrough routes.
    /// </summary>
    public MeshGateway.Gateway.ConnectionTerminator? Terminator { get; init; }

    /// <summary>
    /// <see cref="Pattern"/> as bytes (printable ASCII, validated): a connection whose server name is exactly these bytes
    /// keeps a reference to them instead of a copy of the name.
    /// </summary>
    internal byte[] PatternBytes { get; }

    /// <summary>For a wildcard, the suffix after <c>*.</c>; for an exact route, the whole pattern.</summary>
    internal string Key => Kind == RouteKind.Wildcard ? Pattern[2..] : Pattern;

    /// <inheritdoc />
    public override string ToString() => Pattern + " -> " + Cluster.Name;

    private static RouteKind Validate(string pattern)
    {
        if (pattern.Length == 0)
        {
            throw new ArgumentException("A route pattern must not be empty.", nameof(pattern));
        }

        if (pattern.Length > 255)
        {
            throw new ArgumentException($"The route pattern '{pattern[..32]}...' is longer than 255 characters (RFC 1035 §2.3.4).", nameof(pattern));
        }

        foreach (char c in pattern)
        {
            if (c is <= ' ' or > '~')
            {
                throw new ArgumentException($"The route pattern '{pattern}' contains a character that is not printable ASCII.", nameof(pattern));
            }
        }

        if (pattern[^1] == '.')
        {
            throw new ArgumentException($"The route pattern '{pattern}' ends with a dot; RFC 6066 §3 host names carry no trailing dot.", nameof(pattern));
        }

        RouteKind kind = RouteKind.Exact;
        ReadOnlySpan<char> body = pattern;
        if (pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            kind = RouteKind.Wildcard;
            body = body[2..];
            if (body.IsEmpty)
            {
                throw new ArgumentException("The wildcard route '*.' has no suffix.", nameof(pattern));
            }
        }

        if (body.Contains('*'))
        {
            throw new ArgumentException($"The route pattern '{pattern}' may use '*' only as its whole first label ('*.suffix').", nameof(pattern));
        }

        if (body[0] == '.' || body.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"The route pattern '{pattern}' has an empty label.", nameof(pattern));
        }

        return kind;
    }
}
