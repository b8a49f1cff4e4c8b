namespace MeshGateway.Routing;

/// <summary>
/// A named set of <see cref="UpstreamEndpoint"/>s and how to dial them. A cluster also keeps the live state the
/// gateway needs to choose among its endpoints: connections in flight per endpoint and ejections after failed connects.
/// </summary>
/// <remarks>
/// <para>
/// <b>Endpoint choice: weighted power of two choices, least connections.</b> Two distinct candidates are drawn at
/// random with probability proportional to their weights, and the one with fewer connections per unit of weight,
/// <c>(active + 1) / weight</c>, is taken. This spreads load like least-connections without a global lock or a
/// shared cursor (every pick is lock-free), honours weights even when every endpoint is idle (the draw is weighted),
/// and avoids the herd behaviour of plain least-connections when many connections arrive at once (Mitzenmacher,
/// "The Power of Two Choices in Randomized Load Balancing", 2001; Envoy's <c>LEAST_REQUEST</c> policy does the same).
/// </para>
/// <para>
/// Candidates are the healthy endpoints that are not ejected. If there is none, every endpoint becomes a candidate
/// (panic mode, as Envoy does when too few hosts are healthy) and the caller counts it. An endpoint whose connect
/// fails or times out is ejected for <see cref="EjectionTime"/>; a later successful connect clears the ejection.
/// </para>
/// <para>Instances are safe for concurrent use. The live state belongs to this instance: a new routing snapshot with new clusters starts fresh.</para>
/// </remarks>
public sealed class UpstreamCluster
{
    /// <summary>The default <see cref="ConnectTimeout"/>: 5000 ms, Consul's <c>connect_timeout_ms</c> default (reference §6.1).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromMilliseconds(5000);

    /// <summary>The default <see cref="EjectionTime"/>: 30 s, Envoy's outlier-detection <c>base_ejection_time</c>.</summary>
    public static readonly TimeSpan DefaultEjectionTime = TimeSpan.FromSeconds(30);

    /// <summary>The default <see cref="MaxConnectAttempts"/>.</summary>
    public const int DefaultMaxConnectAttempts = 3;

    /// <summary>The largest <see cref="MaxConnectAttempts"/> accepted.</summary>
    public const int MaxAllowedConnectAttempts = 16;

    private readonly UpstreamEndpoint[] _endpoints;
    private readonly int[] _active;
    private readonly long[] _ejectedUntil;
    private readonly TimeSpan _connectTimeout = DefaultConnectTimeout;
    private readonly TimeSpan _ejectionTime = DefaultEjectionTime;
    private readonly int _maxConnectAttempts = DefaultMaxConnectAttempts;

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
        _active = new int[_endpoints.Length];
        _ejectedUntil = new long[_endpoints.Length];
    }

    /// <summary>The cluster name.</summary>
    public string Name { get; }

    /// <summary>The endpoints, in the order given.</summary>
    public IReadOnlyList<UpstreamEndpoint> Endpoints => _endpoints;

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

    /// <summary>How long an endpoint is left out after a failed connect. Default <see cref="DefaultEjectionTime"/>; zero disables ejection.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan EjectionTime
    {
        get => _ejectionTime;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            _ejectionTime = value;
        }
    }

    /// <summary>The number of connections currently spliced to the endpoint at <paramref name="index"/> of <see cref="Endpoints"/>.</summary>
    /// <param name="index">The endpoint's index.</param>
    /// <returns>The count.</returns>
    public int GetActiveConnections(int index) => Volatile.Read(ref _active[index]);

    /// <summary>Whether the endpoint at <paramref name="index"/> is currently ejected after a failed connect.</summary>
    /// <param name="index">The endpoint's index.</param>
    /// <param name="timeProvider">The clock the ejection was measured with.</param>
    /// <returns><see langword="true"/> while the ejection lasts.</returns>
    public bool IsEjected(int index, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return Volatile.Read(ref _ejectedUntil[index]) > timeProvider.GetTimestamp();
    }

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
        if (count == 1)
        {
            return first;
        }

        int second = Draw(exclude, now, strict, Random.Shared.NextInt64(total - _endpoints[first].Weight), skip: first);

        // Fewer connections in flight wins; a tie keeps the first (weighted) draw, so idle traffic follows the weights.
        int loadFirst = Volatile.Read(ref _active[first]);
        int loadSecond = Volatile.Read(ref _active[second]);
        return loadSecond < loadFirst ? second : first;
    }

    /// <summary>Records a successful connect to the endpoint: one more active connection, ejection cleared.</summary>
    internal void OnConnected(int index)
    {
        Interlocked.Increment(ref _active[index]);
        if (Volatile.Read(ref _ejectedUntil[index]) != 0)
        {
            Volatile.Write(ref _ejectedUntil[index], 0);
        }
    }

    /// <summary>Records the end of a connection counted by <see cref="OnConnected"/>.</summary>
    internal void OnDisconnected(int index) => Interlocked.Decrement(ref _active[index]);

    /// <summary>Records a failed or timed-out connect: the endpoint is ejected for <see cref="EjectionTime"/>.</summary>
    internal void OnConnectFailed(int index, long now, long timestampFrequency)
    {
        if (_ejectionTime > TimeSpan.Zero)
        {
            long until = now + (long)(_ejectionTime.TotalSeconds * timestampFrequency);
            Volatile.Write(ref _ejectedUntil[index], Math.Max(until, 1));
        }
    }

    private bool IsCandidate(int index, ReadOnlySpan<int> exclude, long now, bool strict)
    {
        if (exclude.Contains(index))
        {
            return false;
        }

        return !strict || (_endpoints[index].IsHealthy && Volatile.Read(ref _ejectedUntil[index]) <= now);
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

        // Only reachable if the state changed between the sum and the draw (an ejection ended): take the last candidate.
        return last >= 0 ? last : skip;
    }
}
