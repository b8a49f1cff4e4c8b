using System.Net;

namespace MeshGateway.Routing;

/// <summary>Settings of a <see cref="HostNameRefresher"/>.</summary>
public sealed class HostNameRefresherOptions
{
    /// <summary>The default <see cref="RefreshInterval"/>: 10 s, the refresh rate Consul gives Envoy's DNS clusters (docs/consul-behaviour.md §3).</summary>
    public static readonly TimeSpan DefaultRefreshInterval = TimeSpan.FromSeconds(10);

    /// <summary>The default <see cref="ResolveTimeout"/>: 5 s.</summary>
    public static readonly TimeSpan DefaultResolveTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The resolver. Default <see cref="DnsHostNameResolver.Instance"/> (the system resolver, IPv4 only).</summary>
    public IHostNameResolver Resolver { get; init; } = DnsHostNameResolver.Instance;

    /// <summary>How often every host name of the current table is resolved again. Default <see cref="DefaultRefreshInterval"/>.</summary>
    public TimeSpan RefreshInterval { get; init; } = DefaultRefreshInterval;

    /// <summary>How long one lookup may take before it counts as failed. Default <see cref="DefaultResolveTimeout"/>.</summary>
    public TimeSpan ResolveTimeout { get; init; } = DefaultResolveTimeout;
}

/// <summary>A failed resolution, reported by <see cref="HostNameRefresher.ResolutionFailed"/>.</summary>
/// <param name="HostName">The host name.</param>
/// <param name="Error">Why it failed, one sentence (the resolver's error, a timeout, or no IPv4 address).</param>
/// <param name="IsFirst">Whether the previous resolution of this name succeeded or there was none (log this one louder).</param>
public sealed record HostNameResolutionFailure(string HostName, string Error, bool IsFirst);

/// <summary>
/// Resolves the host-name endpoints of a <see cref="RouteTableSource"/>'s tables in the background, as Envoy's
/// <c>LOGICAL_DNS</c> clusters do for Consul (docs/consul-behaviour.md §3): every <see cref="HostNameRefresherOptions.RefreshInterval"/>
/// for all of them, and at once for the new ones when a table is published. Connections never resolve: they dial the
/// last address published into the endpoint's <see cref="EndpointState"/>.
/// </summary>
/// <remarks>
/// <para>
/// The first IPv4 address of the answer is used (Envoy's <c>LOGICAL_DNS</c> takes the first address, too). Until the
/// first resolution succeeds the endpoint has no address and is not chosen; a later failed lookup keeps the last good
/// address (as Envoy does), so a DNS outage does not cut a working upstream. Each failure is
/// counted (<see cref="Failures"/>, <see cref="EndpointState.ResolutionFailures"/>) and reported through
/// <see cref="ResolutionFailed"/>. Because endpoint states carry over between tables, a table swap does not lose a
/// resolved address. Each host name is looked up once per pass, whatever the number of clusters and ports using it.
/// </para>
/// <para>
/// A hand-written loop rather than a library: the BCL has no DNS cache with refresh, and the only state is the endpoint
/// states the data plane reads anyway. <see cref="DisposeAsync"/> stops the loop and waits for it.
/// </para>
/// </remarks>
public sealed class HostNameRefresher : IAsyncDisposable
{
    private readonly RouteTableSource _routes;
    private readonly HostNameRefresherOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _pass = new(1, 1);
    private readonly Dictionary<string, bool> _lastOk = new(StringComparer.Ordinal);
    private Task? _loop;
    private long _resolutions;
    private long _failures;
    private int _disposed;

    /// <summary>Creates a refresher; call <see cref="Start"/> to run it.</summary>
    /// <param name="routes">The tables whose host names to resolve.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="timeProvider">The clock for the refresh interval and timeouts; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="routes"/> is null, or the options' resolver is.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The interval or the timeout is not positive.</exception>
    public HostNameRefresher(RouteTableSource routes, HostNameRefresherOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(routes);
        _options = options ?? new HostNameRefresherOptions();
        ArgumentNullException.ThrowIfNull(_options.Resolver, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.RefreshInterval, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.ResolveTimeout, TimeSpan.Zero, nameof(options));
        _routes = routes;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Called for each failed lookup (from the refresh loop; must not throw: an exception is swallowed).</summary>
    public Action<HostNameResolutionFailure>? ResolutionFailed { get; init; }

    /// <summary>Successful lookups so far.</summary>
    public long Resolutions => Interlocked.Read(ref _resolutions);

    /// <summary>Failed lookups so far (errors, timeouts, answers without an IPv4 address).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Starts the background loop: a first pass now, then one per interval and one per table swap. Calling it again does nothing.</summary>
    /// <exception cref="ObjectDisposedException">The refresher was disposed.</exception>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_loop is null)
        {
            lock (_stop)
            {
                _loop ??= Task.Run(() => RunAsync(_stop.Token));
            }
        }
    }

    /// <summary>Resolves every host name of the current table now (what each periodic pass does).</summary>
    /// <param name="cancellationToken">Abandons the pass.</param>
    /// <returns>A task that completes when the pass did.</returns>
    public Task RefreshAsync(CancellationToken cancellationToken = default) => PassAsync(onlyNew: false, cancellationToken);

    /// <summary>Stops the loop and waits for it to end.</summary>
    /// <returns>A task that completes when the loop ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_stop)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        long nextFull = 0;
        while (!stop.IsCancellationRequested)
        {
            // Taken before the pass, so a swap during the pass wakes the loop again.
            Task changed = _routes.Changed;
            bool full = _time.GetTimestamp() >= nextFull;
            try
            {
                await PassAsync(onlyNew: !full, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }

            if (full)
            {
                nextFull = _time.GetTimestamp() + (long)(_options.RefreshInterval.TotalSeconds * _time.TimestampFrequency);
            }

            long remaining = nextFull - _time.GetTimestamp();
            if (remaining <= 0)
            {
                continue;
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
            Task delay = Task.Delay(TimeSpan.FromSeconds((double)remaining / _time.TimestampFrequency), _time, wait.Token);
            await Task.WhenAny(changed, delay).ConfigureAwait(false);
            await wait.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One pass: every host-name endpoint of the current table (or only those never resolved), each name looked up once.</summary>
    private async Task PassAsync(bool onlyNew, CancellationToken cancellationToken)
    {
        await _pass.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Dictionary<string, List<(EndpointState State, int Port)>> byHost = Collect(_routes.Current, onlyNew);
            if (byHost.Count == 0)
            {
                return;
            }

            var lookups = new List<Task>(byHost.Count);
            foreach ((string host, List<(EndpointState State, int Port)> states) in byHost)
            {
                lookups.Add(ResolveOneAsync(host, states, cancellationToken));
            }

            await Task.WhenAll(lookups).ConfigureAwait(false);
        }
        finally
        {
            _pass.Release();
        }
    }

    private static Dictionary<string, List<(EndpointState State, int Port)>> Collect(RouteTable table, bool onlyNew)
    {
        var byHost = new Dictionary<string, List<(EndpointState, int)>>(StringComparer.Ordinal);
        var seen = new HashSet<EndpointState>(ReferenceEqualityComparer.Instance);
        foreach (Route route in table.Routes)
        {
            UpstreamCluster cluster = route.Cluster;
            if (!cluster.HasHostNames)
            {
                continue;
            }

            for (int i = 0; i < cluster.Endpoints.Count; i++)
            {
                UpstreamEndpoint endpoint = cluster.Endpoints[i];
                EndpointState state = cluster.GetState(i);
                if (endpoint.HostName is null || (onlyNew && state.ResolutionAttempted) || !seen.Add(state))
                {
                    continue;
                }

                if (!byHost.TryGetValue(endpoint.HostName, out List<(EndpointState, int)>? list))
                {
                    list = [];
                    byHost.Add(endpoint.HostName, list);
                }

                list.Add((state, endpoint.Port));
            }
        }

        return byHost;
    }

    private async Task ResolveOneAsync(string host, List<(EndpointState State, int Port)> states, CancellationToken cancellationToken)
    {
        string? error = null;
        IPAddress? address = null;
        try
        {
            IPAddress[] answer = await _options.Resolver.ResolveAsync(host, cancellationToken)
                .WaitAsync(_options.ResolveTimeout, _time, cancellationToken).ConfigureAwait(false);
            address = Array.Find(answer ?? [], static a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
            error = address is null ? "the answer has no IPv4 address" : null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (TimeoutException)
        {
            error = $"no answer within {_options.ResolveTimeout.TotalSeconds:0.###} s";
        }
#pragma warning disable CA1031 // Any resolver failure (including a faulty injected one) makes the endpoint unavailable, never ends the loop.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex is System.Net.Sockets.SocketException se ? $"{se.SocketErrorCode}: {ex.Message}" : $"{ex.GetType().Name}: {ex.Message}";
        }

        bool first;
        lock (_lastOk)
        {
            first = !_lastOk.TryGetValue(host, out bool ok) || ok;
            _lastOk[host] = error is null;
        }

        if (error is null)
        {
            Interlocked.Increment(ref _resolutions);
            foreach ((EndpointState state, int port) in states)
            {
                IPEndPoint? current = state.Address;
                state.OnResolved(current is not null && current.Address.Equals(address) && current.Port == port ? current : new IPEndPoint(address!, port));
            }

            return;
        }

        Interlocked.Increment(ref _failures);
        foreach ((EndpointState state, _) in states)
        {
            state.OnResolutionFailed(error);
        }

        try
        {
            ResolutionFailed?.Invoke(new HostNameResolutionFailure(host, error, first));
        }
#pragma warning disable CA1031 // A faulty callback must not stop the refresh.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
