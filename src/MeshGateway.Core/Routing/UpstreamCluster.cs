namespace MeshGateway.Routing;

/// <summary>
/// A named set of <see cref="UpstreamEndpoint"/>s and how to dial them. A cluster also keeps the live state the
/// gateway needs to choose among its endpoints: connections in flight per endpoint and ejections after failed connects.
/// </summary>
/// <remarks>
/// <para>
/// <b>Endpoint choice: weighted power of two choices, least connections.</b> Two distinct candidates are drawn at
/// random with probability proportional to their weights, and the one with fewer connections in flight is taken (a
/// tie keeps the first, weighted draw, so idle traffic follows the weights). This spreads load like least-connections without a global lock or a
/// shared cursor (every pick is lock-free), honours weights even when every endpoint is idle (the draw is weighted),
/// and avoids the herd behaviour of plain least-connections when many connections arrive at once (Mitzenmacher,
/// "The Power of Two Choices in Randomized Load Balancing", 2001; Envoy's <c>LEAST_REQUEST</c> policy does the same).
/// </para>
/// <para>
/// Candidates are the healthy endpoints that are not ejected. If there is none, every endpoint becomes a candidate
/// (panic mode, as Envoy does when too few hosts are healthy) and the caller counts it. An endpoint whose connects
/// fail or time out several times in a row is ejected as <see cref="OutlierDetection"/> says (Envoy's defaults: 5 in a
/// row, 30 s growing with each ejection in a row, at most 10 % of the cluster but always one); a successful connect
/// resets the count and clears the ejection.
/// </para>
/// <para>
/// Endpoints without an address (a host name not resolved yet, or whose last resolution failed) are never candidates,
/// not even in panic mode: there is nothing to dial.
/// </para>
/// <para>
/// Instances are safe for concurrent use. The live state of each endpoint is an <see cref="EndpointState"/>; when a
/// <see cref="RouteTableSource"/> publishes a new table, endpoints that were already present (same cluster
/// <see cref="Name"/>, same <see cref="UpstreamEndpoint.Key"/>) take over the previous table's state objects, so
/// ejections, connection counts and resolved addresses survive the swap.
/// </para>
/// </remarks>
public sealed class UpstreamCluster
{
    /// <summary>The default <see cref="ConnectTimeout"/>: 5000 ms, Consul's <c>connect_timeout_ms</c> default (docs/consul-behaviour.md §6.1).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromMilliseconds(5000);

    /// <summary>The default <see cref="MaxConnectAttempts"/>.</summary>
    public const int DefaultMaxConnectAttempts = 3;

    /// <summary>The largest <see cref="MaxConnectAttempts"/> accepted.</summary>
    public const int MaxAllowedConnectAttempts = 16;

    private readonly UpstreamEndpoint[] _endpoints;
    private readonly EndpointState[] _states;
    private readonly TimeSpan _connectTimeout = DefaultConnectTimeout;
    private readonly OutlierDetection _outlierDetection = OutlierDetection.Default;
    private readonly TimeSpan? _idleTimeout;
    private readonly int _maxConnectAttempts = DefaultMaxConnectAttempts;
    private readonly Lock _ejectionLock = new();

    /// <summary>Creates a cluster.</summary>
    /// <param name="name">The cluster name (for Consul, the SNI-form cluster name); used in logs and metrics.</param>
    /// <param name="endpoints">The endpoints; may be empty (connections routed here then fail with no endpoint, as in Consul).</param>
    /// <exception cref="ArgumentNullException">An argument or an endpoint is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty.</exception>
    public UpstreamCluster(string name, IEnumerable<UpstreamEndpoint> endpoints)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(endpoints);
        _endpoints = [.. endpoints];
        foreach (UpstreamEndpoint endpoint in _endpoints)
        {
            ArgumentNullException.ThrowIfNull(endpoint, nameof(endpoints));
        }

        Name = name;
        _states = new EndpointState[_endpoints.Length];
        for (int i = 0; i < _endpoints.Length; i++)
        {
            _states[i] = new EndpointState(_endpoints[i]);
            HasHostNames |= _endpoints[i].HostName is not null;
        }
    }

    /// <summary>The cluster name.</summary>
    public string Name { get; }

    /// <summary>The endpoints, in the order given.</summary>
    public IReadOnlyList<UpstreamEndpoint> Endpoints => _endpoints;

    /// <summary>Whether any endpoint is a host name (resolved in the background by a <see cref="HostNameRefresher"/>).</summary>
    public bool HasHostNames { get; }

    /// <summary>How long one connect attempt may take before it counts as failed. Default <see cref="DefaultConnectTimeout"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is not positive.</exception>
    public TimeSpan ConnectTimeout
    {
        get => _connectTimeout;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            _connectTimeout = value;
        }
    }

    /// <summary>
    /// How many endpoints one connection may try, one after the other, when connects fail or time out. Retries happen
    /// only before any byte was sent upstream. Default <see cref="DefaultMaxConnectAttempts"/>, at most <see cref="MaxAllowedConnectAttempts"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to <see cref="MaxAllowedConnectAttempts"/>.</exception>
    public int MaxConnectAttempts
    {
        get => _maxConnectAttempts;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxAllowedConnectAttempts);
            _maxConnectAttempts = value;
        }
    }

    /// <summary>When endpoints are left out after failed connects. Default <see cref="OutlierDetection.Default"/> (Envoy's defaults).</summary>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public OutlierDetection OutlierDetection
    {
        get => _outlierDetection;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            _outlierDetection = value;
        }
    }

    /// <summary>
    /// TCP keepalive on connections to this cluster's endpoints, or <see langword="null"/> for none (the default). Consul
    /// turns it on for remote gateways with <c>envoy_gateway_remote_tcp_enable_keepalive</c> (see <see cref="Routing.TcpKeepAlive"/>).
    /// </summary>
    public TcpKeepAlive? TcpKeepAlive { get; init; }

    /// <summary>
    /// How long a connection to this cluster may stay without moving a byte, or <see langword="null"/> (the default) for
    /// the listener's <see cref="Splicing.SpliceOptions.IdleTimeout"/>. For long-lived connections that idle between uses,
    /// such as Consul servers' pooled RPC connections across WAN-federation gateways.
    /// <see cref="Timeout.InfiniteTimeSpan"/> disables it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor infinite.</exception>
    public TimeSpan? IdleTimeout
    {
        get => _idleTimeout;
        init
        {
            if (value is { } v && v != Timeout.InfiniteTimeSpan && v <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(value), v, "An idle timeout must be positive or infinite.");
            }

            _idleTimeout = value;
        }
    }

    /// <summary>The live state of the endpoint at <paramref name="index"/> of <see cref="Endpoints"/> (shared with later tables, see the type's remarks).</summary>
    /// <param name="index">The endpoint's index.</param>
    /// <returns>The state.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside <see cref="Endpoints"/>.</exception>
    public EndpointState GetState(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _states.Length);
        return Volatile.Read(ref _states[index]);
    }

    /// <summary>The number of connections currently spliced to the endpoint at <paramref name="index"/> of <see cref="Endpoints"/>.</summary>
    /// <param name="index">The endpoint's index.</param>
    /// <returns>The count.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside <see cref="Endpoints"/>.</exception>
    public int GetActiveConnections(int index) => GetState(index).ActiveConnections;

    /// <summary>Whether the endpoint at <paramref name="index"/> is currently ejected after a failed connect.</summary>
    /// <param name="index">The endpoint's index.</param>
    /// <param name="timeProvider">The clock the ejection was measured with.</param>
    /// <returns><see langword="true"/> while the ejection lasts.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside <see cref="Endpoints"/>.</exception>
    public bool IsEjected(int index, TimeProvider timeProvider) => GetState(index).IsEjected(timeProvider);

    /// <summary>Chooses an endpoint for a new connection (see the type's remarks). Allocates nothing.</summary>
    /// <param name="exclude">Endpoint indexes already tried by this connection.</param>
    /// <param name="now">The current <see cref="TimeProvider.GetTimestamp"/>.</param>
    /// <param name="panic">Set when no healthy, non-ejected candidate existed and every endpoint was considered.</param>
    /// <returns>The endpoint index, or -1 when every endpoint is excluded or the cluster is empty.</returns>
    internal int Select(ReadOnlySpan<int> exclude, long now, out bool panic)
    {
        panic = false;
        long total = SumWeights(exclude, now, strict: true, out int count);
        if (count == 0)
        {
            total = SumWeights(exclude, now, strict: false, out count);
            if (count == 0)
            {
                return -1;
            }

            panic = true;
        }

        bool strict = !panic;
        int first = Draw(exclude, now, strict, Random.Shared.NextInt64(total), skip: -1);
        long rest = first < 0 ? 0 : total - _endpoints[first].Weight;
        if (count == 1 || rest <= 0)
        {
            // rest <= 0 (or first < 0) only when the state changed between the sum and the draw (an ejection ended,
            // an address was cleared): keep the first draw rather than drawing from an empty range.
            return first;
        }

        int second = Draw(exclude, now, strict, Random.Shared.NextInt64(rest), skip: first);
        if (second < 0)
        {
            return first;
        }

        // Fewer connections in flight wins; a tie keeps the first (weighted) draw, so idle traffic follows the weights.
        int loadFirst = Volatile.Read(ref _states[first]).ActiveConnections;
        int loadSecond = Volatile.Read(ref _states[second]).ActiveConnections;
        return loadSecond < loadFirst ? second : first;
    }

    /// <summary>Records a successful connect to the endpoint: one more active connection, ejection cleared.</summary>
    /// <returns>The state counted on; the connection releases exactly this object with <see cref="EndpointState.OnDisconnected"/>.</returns>
    internal EndpointState OnConnected(int index)
    {
        EndpointState state = Volatile.Read(ref _states[index]);
        state.OnConnected();
        return state;
    }

    /// <summary>
    /// Records a failed or timed-out connect: at <see cref="OutlierDetection.ConsecutiveFailures"/> in a row the endpoint
    /// is ejected, if the cluster's cap on ejected endpoints leaves room (see <see cref="OutlierDetection"/>).
    /// </summary>
    /// <returns>Whether this failure ejected the endpoint.</returns>
    internal bool OnConnectFailed(int index, long now, long timestampFrequency)
    {
        EndpointState state = Volatile.Read(ref _states[index]);
        int consecutive = state.OnConnectFailed();
        OutlierDetection detection = _outlierDetection;
        if (!detection.IsEnabled || consecutive < detection.ConsecutiveFailures)
        {
            return false;
        }

        // The failure path only (never Select): one lock per cluster so two endpoints failing at once cannot both take
        // the last free place under the cap. A table swap builds a new cluster with a new lock; for the moment both
        // tables are in use the cap can be exceeded by the connections still on the old one, which is harmless.
        lock (_ejectionLock)
        {
            if (state.EjectedUntil > now)
            {
                return false;
            }

            int ejected = 0;
            for (int i = 0; i < _states.Length; i++)
            {
                if (Volatile.Read(ref _states[i]).EjectedUntil > now)
                {
                    ejected++;
                }
            }

            if (ejected >= detection.MaxEjected(_states.Length))
            {
                return false;
            }

            state.Eject(detection, now, timestampFrequency);
            return true;
        }
    }

    /// <summary>
    /// Takes over the states of endpoints already known under this cluster's name (see the type's remarks) and adds
    /// this cluster's own states for the others. Called by <see cref="RouteTableSource"/> before it publishes a table.
    /// </summary>
    /// <param name="known">States by (cluster name, endpoint key), from the previous table and the clusters of the new one adopted so far.</param>
    internal void AdoptStates(Dictionary<(string Cluster, string Endpoint), EndpointState> known)
    {
        for (int i = 0; i < _endpoints.Length; i++)
        {
            (string, string) key = (Name, _endpoints[i].Key);
            if (known.TryGetValue(key, out EndpointState? state))
            {
                Volatile.Write(ref _states[i], state);
            }
            else
            {
                known.Add(key, Volatile.Read(ref _states[i]));
            }
        }
    }

    /// <summary>Adds this cluster's states to <paramref name="known"/> (the first state seen for a key wins).</summary>
    internal void CollectStates(Dictionary<(string Cluster, string Endpoint), EndpointState> known)
    {
        for (int i = 0; i < _endpoints.Length; i++)
        {
            known.TryAdd((Name, _endpoints[i].Key), Volatile.Read(ref _states[i]));
        }
    }

    private bool IsCandidate(int index, ReadOnlySpan<int> exclude, long now, bool strict)
    {
        if (exclude.Contains(index))
        {
            return false;
        }

        EndpointState state = Volatile.Read(ref _states[index]);
        if (state.Address is null)
        {
            return false;
        }

        return !strict || (_endpoints[index].IsHealthy && state.EjectedUntil <= now);
    }

    private long SumWeights(ReadOnlySpan<int> exclude, long now, bool strict, out int count)
    {
        long total = 0;
        count = 0;
        for (int i = 0; i < _endpoints.Length; i++)
        {
            if (IsCandidate(i, exclude, now, strict))
            {
                total += _endpoints[i].Weight;
                count++;
            }
        }

        return total;
    }

    private int Draw(ReadOnlySpan<int> exclude, long now, bool strict, long ticket, int skip)
    {
        int last = -1;
        for (int i = 0; i < _endpoints.Length; i++)
        {
            if (i == skip || !IsCandidate(i, exclude, now, strict))
            {
                continue;
            }

            last = i;
            ticket -= _endpoints[i].Weight;
            if (ticket < 0)
            {
                return i;
            }
        }

        // Only reachable if the state changed between the sum and the draw (an ejection ended, an address was
        // cleared): take the last candidate, else the skipped one (-1 for the first draw).
        return last >= 0 ? last : skip;
    }
}
