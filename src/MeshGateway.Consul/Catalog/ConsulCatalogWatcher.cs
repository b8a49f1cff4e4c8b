using System.Collections.Immutable;
using System.Threading.Channels;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// Keeps a <see cref="ConsulCatalogView"/> current from Consul within a small, fixed number of agent connections
/// whatever the catalog size, and publishes each changed, complete view on <see cref="Views"/> (bounded(1),
/// drop-oldest: a slow reader only ever sees the newest view).
/// </summary>
/// <remarks>
/// <para>Design (measured against the alternatives in docs/consul-watch.md): <b>change triggers plus bounded refetches</b>.
/// Exactly <see cref="ConsulCatalogWatcherOptions.LongPollCount"/> blocking queries stay open: <c>/v1/catalog/services</c>
/// (names and tags; its index moves on any registration change), <c>/v1/health/state/any</c> (every check; its index moves
/// on any check change, and the check list says which service or node changed), and one per config-entry kind used
/// (<c>/v1/config/proxy-defaults</c>, <c>service-defaults</c>, <c>service-resolver</c>: a blocked list query wakes only for
/// writes of its own kind). What changed is then refetched with non-blocking <c>/v1/health/connect/&lt;name&gt;</c> queries
/// per changed service. Every request holds one of <c>MaxConnections − 1</c> permits while in flight
/// (<see cref="ConsulClientOptions.MaxConnections"/>; one connection stays free for registration and other calls), which
/// leaves <c>MaxConnections − LongPollCount − 1</c> refetch lanes (until the first view is complete the long-polls do not
/// block, so the initial build has <c>MaxConnections − 2</c>). A registration that moves the service index but shows in
/// neither the names nor the checks (a port, address, weight or metadata change) is found by a sweep, within the same
/// lanes, once the checks trigger has answered for that index without naming it (a re-registration that carries its
/// unchanged checks moves the checks index too, with no check to say which service it was); it stops if a later check
/// answer names a check changed at that index. The sweep goes by
/// nodes when there are fewer nodes than services (<c>/v1/catalog/node-services/&lt;node&gt;</c> gives every instance's
/// <c>ModifyIndex</c>; the services whose Connect instances changed are refetched and published as soon as their node has
/// answered, and the sweep stops at the instance that carries the index it looks for), else by refetching every service.
/// A stopped sweep, and a round that was explained, are verified by a later full sweep
/// (<see cref="ConsulCatalogWatcherOptions.VerificationSweepDelay"/>), since another such change may hide in it. Sweeps
/// are paced by a credit of sweep time that accrues at a quarter of the time (capped at two full sweeps): a sweep for an
/// unexplained change runs while there is credit, a verification sweep only on a full credit.
/// Mesh gateways of every datacenter and the CA roots (trust domain) are polled
/// (<see cref="ConsulCatalogWatcherOptions.GatewayPollInterval"/>), as is <c>/v1/catalog/datacenters</c>.</para>
/// <para>Failures: each long-poll backs off with jittered exponential delays (<see cref="BlockingQueryOptions"/>), the
/// refetches as one unit, each datacenter's gateway poll on its own; the error rate is therefore bounded by the number of
/// loops, not by the catalog size. Every failure is counted (<see cref="ErrorCount"/>); <see cref="ErrorObserved"/> is
/// called once per distinct cause of a source, and <see cref="Recovered"/> once when it answers again. The last view
/// stays in force during an outage; the watches resume by themselves and a lower index (a restarted or rebuilt agent)
/// resynchronises everything.</para>
/// <para>A view is published only once complete (trust domain, datacenters, every local service's instances,
/// config entries, and a first answer, or failure, from every datacenter's gateway discovery) and only when it differs
/// from the previous one. Consul 1.8 ignores a <c>filter</c> on <c>/v1/catalog/services</c>, so each name of a
/// datacenter is probed once (<c>/v1/health/service/&lt;name&gt;?filter=Service.Kind == "mesh-gateway"</c>) to learn
/// whether it holds gateways; local names already known as Connect services or sidecars are not probed.</para>
/// </remarks>
public sealed class ConsulCatalogWatcher : IAsyncDisposable
{
    private const string GatewayCatalogFilter = "ServiceKind == \"mesh-gateway\"";
    private const string GatewayHealthFilter = "Service.Kind == \"mesh-gateway\"";
    private const string GatewayKind = "mesh-gateway";
    private const string WanFederationMetaKey = "consul-wan-federation";
    private const string ProxyKind = "connect-proxy";
    private const string RefetchSource = "health/connect/*";
    private const string SidecarSuffix = "-sidecar-proxy";

    private readonly ConsulClient _client;
    private readonly ConsulCatalogWatcherOptions _options;
    private readonly TimeProvider _time;
    private readonly Channel<ConsulCatalogView> _views = Channel.CreateBounded<ConsulCatalogView>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = false });

    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Channel<bool> _gatewayWake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly DisposeOnce _dispose = new();
    private readonly List<Task> _loops = [];
    private readonly TaskCompletionSource<ConsulCatalogView> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly WatchErrorLedger _errors = new();

    // Local catalog state, under _gate.
    private readonly Dictionary<string, NameState> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _proxyTargets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _nodeNames = new(StringComparer.Ordinal);
    private Dictionary<ulong, CheckRecord> _checks = [];
    private readonly Dictionary<ulong, InstanceRecord> _instanceIndex = [];
    private readonly Dictionary<string, ulong> _nodeIndex = new(StringComparer.Ordinal);
    private long _nodeSweeps;
    private readonly Dictionary<string, DatacenterState> _gatewayDcs = new(StringComparer.Ordinal);
    private ImmutableSortedDictionary<string, ConsulServiceView> _serviceViews = ImmutableSortedDictionary.Create<string, ConsulServiceView>(StringComparer.Ordinal);

    private SemaphoreSlim? _lanes;
    private readonly int _laneCount;
    private readonly TaskCompletionSource _initialBuild = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _datacenter;
    private string? _trustDomain;
    private ImmutableArray<string>? _datacenters;
    private string _dnsDomain = "consul";
    private ImmutableArray<CatalogServiceInstance> _localServers = [];
    private ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>> _federationGateways = ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>>.Empty.WithComparers(StringComparer.Ordinal);
    private ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>> _partitionGateways = ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>>.Empty.WithComparers(StringComparer.Ordinal);
    private bool _partitionsUnsupported;
    private bool _peeringUnsupported;
    private ConsulPeeringView? _peering;
    private bool _servicesKnown;
    private ulong _servicesIndex;
    private bool _checksKnown;
    private ulong _checksIndex;
    private TaskCompletionSource _checksAdvanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _checksFetchTicks;
    private ulong _unexplainedIndex;
    private bool _sweepRequested;
    private bool _verifyPending;
    private long _verifyDue;
    private ulong _sweepTarget;
    private (ulong Target, CancellationTokenSource Stop)? _activeSweep;
    private readonly HashSet<ulong> _checkChangeIndexes = [];
    private readonly Queue<ulong> _checkChangeOrder = new();
    private bool _sweepFull;
    private long _sweepCredit;
    private long _sweepCreditAt;
    private bool _sweepCreditStarted;
    private long _fullSweepTicks;
    private bool _proxyDefaultsKnown;
    private ImmutableSortedDictionary<string, ConsulServiceDefaults>? _serviceDefaults;
    private ImmutableSortedDictionary<string, ConsulServiceResolver>? _serviceResolvers;
    private ConsulProxyDefaults? _proxyDefaults;
    private ImmutableSortedDictionary<string, ConsulResolverView>? _resolvers;
    private ConsulConfigSnapshot? _config;
    private ConsulCatalogView? _current;
    private long _published;
    private long _refetches;
    private long _sweeps;
    private bool _started;
    private bool _localNamesSettled;
    private readonly Dictionary<string, Func<string>> _triggerDiagnostics = new(StringComparer.Ordinal);
    private readonly List<CancellationTokenSource> _generations = [];
    private int _unreachable;
    private bool _resyncPending;

    // Consistent reads until the agent's state is confirmed: the epoch moves on at start and at every "no answer" (the
    // agent may be a server replaying its log), and a consistent answer confirms the epoch its request started in. While
    // they differ, refetches are consistent too, so a half-replayed catalog is never taken for the real one.
    private int _outageEpoch = 1;
    private int _confirmedEpoch;

    /// <summary>Creates a watcher; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="client">The Consul client (not disposed by the watcher); its <see cref="ConsulClientOptions.MaxConnections"/> is the connection bound.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="timeProvider">Clock for rate limits, backoff and polling; <see cref="TimeProvider.System"/> when null.</param>
    /// <exception cref="ArgumentException">A setting is out of range, or the client allows fewer than
    /// <see cref="ConsulCatalogWatcherOptions.MinimumAgentConnections"/> connections.</exception>
    public ConsulCatalogWatcher(ConsulClient client, ConsulCatalogWatcherOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _options = options ?? new ConsulCatalogWatcherOptions();
        _options.Validate();
        int max = client.Options.MaxConnections;
        if (max < ConsulCatalogWatcherOptions.MinimumAgentConnections)
        {
            throw new ArgumentException(
                $"The catalog watch needs MaxConnections >= {ConsulCatalogWatcherOptions.MinimumAgentConnections} " +
                $"({ConsulCatalogWatcherOptions.LongPollCount} long-polls, 1 refetch lane, 1 free connection); MaxConnections is {max}.",
                nameof(client));
        }

        _laneCount = max - ConsulCatalogWatcherOptions.LongPollCount - 1;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Changed, complete views, newest only (bounded(1), drop-oldest, single reader).</summary>
    public ChannelReader<ConsulCatalogView> Views => _views.Reader;

    /// <summary>The last published view, or null before the first.</summary>
    public ConsulCatalogView? Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>The config entries last read (proxy-defaults, service-defaults, service-resolvers), or null before the first read.</summary>
    public ConsulConfigSnapshot? ConfigEntries
    {
        get
        {
            lock (_gate)
            {
                return _config;
            }
        }
    }

    /// <summary>How many views have been published.</summary>
    public long PublishedCount => Interlocked.Read(ref _published);

    /// <summary>How many Consul requests failed so far (every failure, also those not reported again to <see cref="ErrorObserved"/>).</summary>
    public long ErrorCount => _errors.Total;

    /// <summary>Completes once <see cref="ErrorCount"/> is at least <paramref name="count"/>: a change signal, so a test awaits failures instead of polling the count.</summary>
    internal Task WhenErrorCountAtLeastAsync(long count, CancellationToken cancellationToken = default) => _errors.WhenTotalAtLeastAsync(count, cancellationToken);

    /// <summary>How many non-blocking per-service refetches were made.</summary>
    public long RefetchCount => Interlocked.Read(ref _refetches);

    /// <summary>How many sweeps (refetch of every service after an unexplained index move or an index reset) were made.</summary>
    public long SweepCount => Interlocked.Read(ref _sweeps);

    /// <summary>How many of <see cref="SweepCount"/> went by nodes (<c>/v1/catalog/node-services/&lt;node&gt;</c>, then only the changed services).</summary>
    public long NodeSweepCount => Interlocked.Read(ref _nodeSweeps);

    /// <summary>Non-blocking requests that may run at once (<c>MaxConnections − LongPollCount − 1</c>).</summary>
    public int RefetchLanes => _laneCount;

    /// <summary>
    /// Called once per distinct failure cause of a source (e.g. <c>health/connect/*</c>, <c>catalog/services</c>,
    /// <c>gateways dc2</c>) with the first error of that cause; repeats of the same cause are only counted. Must not throw.
    /// </summary>
    public Action<string, Exception>? ErrorObserved { get; set; }

    /// <summary>
    /// Called once, with the reason, when peering is auto-detected (<see cref="ConsulCatalogWatcherOptions.Peering"/> null) and
    /// the agent has none (e.g. Consul 1.8.7: <c>/v1/peerings</c> is a 404); peering is not read again. Must not throw.
    /// </summary>
    public Action<string>? PeeringUnavailable { get; set; }

    /// <summary>Called once when a source that had failed answers again, with how many failures it had. Must not throw.</summary>
    public Action<string, long>? Recovered { get; set; }

    /// <summary>
    /// Raised after each change of the config entries (once every kind has answered, then on each answer of a kind's long-poll), with the new
    /// <see cref="ConfigEntries"/>, outside the watcher's lock and before the next view is published. Handlers must not throw.
    /// </summary>
    public event Action<ConsulConfigSnapshot>? ConfigEntriesUpdated;

    /// <summary>Resolves the local datacenter, checks the connection bound against the agent's limit and starts every watch in the background.</summary>
    /// <param name="cancellationToken">Cancels the start (not the watches: <see cref="DisposeAsync"/> stops those).</param>
    /// <returns>A task that completes once the watches run.</returns>
    /// <exception cref="ConsulException">The local datacenter could not be read from <c>/v1/agent/self</c>
    /// (set <see cref="ConsulCatalogWatcherOptions.Datacenter"/> or grant <c>agent:read</c>).</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    /// <exception cref="ArgumentException"><see cref="ConsulClientOptions.MaxConnections"/> is above a quarter of the
    /// agent's <c>limits.http_max_conns_per_client</c> (the message names both).</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("The catalog watcher is already started.");
            }

            _started = true;
        }

        string dc = _options.Datacenter ?? string.Empty;
        ConsulAgentSelf? self = null;
        if (dc.Length == 0 || _options.ValidateAgentConnectionLimit || (_options.WanFederation && _options.DnsDomain is null))
        {
            try
            {
                self = (await _client.GetAgentSelfAsync(cancellationToken).ConfigureAwait(false)).Value;
            }
            catch (ConsulException) when (dc.Length > 0)
            {
                // The datacenter is configured, so the watch can start without the agent (it retries); the limit is
                // checked only where /v1/agent/self answers at start (no agent:read, or the agent is down: not checked), and
                // the DNS domain of WAN-federation server names falls back to Consul's default.
            }
        }

        if (dc.Length == 0)
        {
            dc = self?.Config?.Datacenter ?? throw new InvalidOperationException("/v1/agent/self has no Config.Datacenter.");
        }

        if (_options.ValidateAgentConnectionLimit)
        {
            ConsulClientOptions.ValidateAgainstAgentLimit(_client.Options.MaxConnections, self?.HttpMaxConnsPerClient);
        }

        CancellationToken stop = _stop.Token;
        lock (_gate)
        {
            _datacenter = dc;
            _dnsDomain = (_options.DnsDomain ?? self?.DnsDomain ?? "consul").TrimEnd('.').ToLowerInvariant();
            // Every request the watcher makes, long-polls included, holds one of MaxConnections − 1 permits while in
            // flight: the bound is enforced here (and again by the client's MaxConnectionsPerServer). Until the first
            // view is complete the long-polls do not block, so the initial refetch has MaxConnections − 2 lanes.
            _lanes = new SemaphoreSlim(_client.Options.MaxConnections - 1, _client.Options.MaxConnections - 1);
            _loops.Add(RunTrigger("catalog/services", (q, ct) => _client.GetServicesAsync(q, ct), OnServices, stop));
            _loops.Add(RunTrigger("health/state/any", FetchChecksAsync, OnChecks, stop));
            // One long-poll per config-entry kind: a blocked list query wakes only for writes of its own kind (measured on
            // 1.8.7: a service-defaults write did not wake a blocked proxy-defaults query once one existed).
            _loops.Add(RunTrigger("config/proxy-defaults", (q, ct) => _client.ListProxyDefaultsAsync(q, ct), OnProxyDefaults, stop));
            _loops.Add(RunTrigger("config/service-defaults", (q, ct) => _client.ListServiceDefaultsAsync(q, ct), OnServiceDefaults, stop));
            _loops.Add(RunTrigger("config/service-resolver", (q, ct) => _client.ListServiceResolversAsync(q, ct), OnServiceResolvers, stop));
            _loops.Add(Task.Run(() => ReconcileAsync(stop), CancellationToken.None));
            _loops.Add(Task.Run(() => PollDatacentersAsync(stop), CancellationToken.None));
            _loops.Add(Task.Run(() => PollGatewaysAsync(stop), CancellationToken.None));
        }
    }

    /// <summary>Waits for the first complete view.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first view.</returns>
    /// <exception cref="TimeoutException">No complete view within <paramref name="timeout"/>; the message says what is missing.</exception>
    public async Task<ConsulCatalogView> WaitForFirstViewAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try
        {
            return await _first.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"No complete Consul catalog view within {timeout.TotalSeconds:0.#} s: {DescribeMissing()}.", ex);
        }
    }

    /// <summary>Stops every watch and completes <see cref="Views"/>. Idempotent: later (or concurrent) calls wait for the first.</summary>
    /// <returns>A task that completes when all loops ended.</returns>
    public ValueTask DisposeAsync() => _dispose.RunAsync(DisposeCoreAsync);

    private async ValueTask DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Task[] loops;
        lock (_gate)
        {
            loops = [.. _loops];
        }

        await Task.WhenAll(loops).ConfigureAwait(false);
        _views.Writer.TryComplete();
        _first.TrySetCanceled(CancellationToken.None);
        _initialBuild.TrySetCanceled(CancellationToken.None);
        _stop.Dispose();
        _lanes?.Dispose();
    }

    /// <summary>For diagnostics in tests: the state of every loop and the pending work.</summary>
    internal string Diagnostics()
    {
        lock (_gate)
        {
            return $"loops=[{string.Join(", ", _loops.Select(l => l.IsFaulted ? "FAULTED " + l.Exception?.InnerException : l.Status.ToString()))}] " +
                $"names={_names.Count} dirty={_dirty.Count} proxies={_proxyTargets.Count} servicesIndex={_servicesIndex} checksIndex={_checksIndex} " +
                $"credit={_sweepCredit} unexplained={_unexplainedIndex} sweep={_sweepRequested} verifyDue={_verifyDue} refetches={RefetchCount} sweeps={SweepCount} missing={DescribeMissingLocked() ?? "-"} " +
                string.Join("; ", _triggerDiagnostics.Values.Select(d => d()));
        }
    }

    private Task RunTrigger<T>(string source, Func<ConsulQuery, CancellationToken, Task<ConsulResponse<T>>> fetch, Action<ConsulResponse<T>> onChange, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            // One BlockingQuery per generation: Resync() ends the generation, and the next starts again without an index.
            while (!cancellationToken.IsCancellationRequested)
            {
                using var generation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                lock (_gate)
                {
                    _generations.Add(generation);
                }

                // Every answer is passed on (the comparer says "changed"), because an index that moved with an unchanged
                // body is itself the signal for the catalog trigger; the handlers compare bodies themselves.
                var query = new BlockingQuery<T>((q, ct) => TriggerFetchAsync(fetch, q, ct), _options.BlockingQuery, null, _time)
                {
                    ErrorObserved = (ex, _) => Fail(source, ex),
                    AlwaysPublish = true,
                    ConsistentBaseline = true,
                };
                Func<string> describe = () => $"{source}: next={query.NextIndex} requests={query.RequestCount} errors={query.ErrorCount}";
                lock (_gate)
                {
                    _triggerDiagnostics[source] = describe;
                }

                await query.RunAsync((r, _) =>
                {
                    Succeed(source);
                    onChange(r);
                    return ValueTask.CompletedTask;
                }, generation.Token).ConfigureAwait(false);
                lock (_gate)
                {
                    _generations.Remove(generation);
                }
            }
        }, CancellationToken.None);

    /// <summary>
    /// A long-poll request: within the lanes, and, while the first complete view is being built, not blocking (its first,
    /// non-blocking answer was taken; the blocking one waits for the build, then returns at once if anything changed).
    /// </summary>
    private async Task<ConsulResponse<T>> TriggerFetchAsync<T>(Func<ConsulQuery, CancellationToken, Task<ConsulResponse<T>>> fetch, ConsulQuery query, CancellationToken cancellationToken)
    {
        if (query.Index > 0)
        {
            await _initialBuild.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        int epoch = Volatile.Read(ref _outageEpoch);
        ConsulResponse<T> response = await WithLaneAsync(() => fetch(query, cancellationToken), cancellationToken).ConfigureAwait(false);
        if (query.Consistent)
        {
            int confirmed;
            while (epoch > (confirmed = Volatile.Read(ref _confirmedEpoch)) && Interlocked.CompareExchange(ref _confirmedEpoch, epoch, confirmed) != confirmed)
            {
            }
        }

        return response;
    }

    /// <summary>A refetch's query: consistent until a consistent answer confirmed the agent's state since its last outage.</summary>
    private ConsulQuery RefetchQuery => new() { Consistent = Volatile.Read(ref _confirmedEpoch) != Volatile.Read(ref _outageEpoch) };

    /// <summary>
    /// Restarts every long-poll without an index. Called when the agent answers again after it could not be reached:
    /// a long-poll that reaches a restarted agent with the old, higher index would otherwise block for its whole wait
    /// (Consul answers a blocking query only when its index exceeds the one sent) before the reset rule could apply.
    /// </summary>
    private void Resync()
    {
        List<CancellationTokenSource> generations;
        lock (_gate)
        {
            generations = [.. _generations];
        }

        foreach (CancellationTokenSource generation in generations)
        {
            try
            {
                generation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That generation already ended.
            }
        }
    }

    private void Fail(string source, Exception error)
    {
        if (error is ConsulTransportException { IsTimeout: false } or IOException)
        {
            Volatile.Write(ref _unreachable, 1);
            Interlocked.Increment(ref _outageEpoch);
        }

        if (_errors.Fail(source, error))
        {
            ErrorObserved?.Invoke(source, error);
        }
    }

    private void Succeed(string source)
    {
        if (Volatile.Read(ref _unreachable) == 1 && Interlocked.Exchange(ref _unreachable, 0) == 1)
        {
            Resync();
        }

        long failures = _errors.Succeed(source);
        if (failures > 0)
        {
            Recovered?.Invoke(source, failures);
        }
    }

    private async Task<ConsulResponse<CheckList>> FetchChecksAsync(ConsulQuery query, CancellationToken cancellationToken)
    {
        long start = _time.GetTimestamp();
        ConsulResponse<CheckList> response = await _client.GetCheckListAsync(query, cancellationToken).ConfigureAwait(false);
        if (query.Index == 0)
        {
            // A non-blocking fetch: how long the whole check list takes to arrive and parse (bounds the wait for it).
            Interlocked.Exchange(ref _checksFetchTicks, _time.GetElapsedTime(start).Ticks);
        }

        return response;
    }

    private void Wake()
    {
        bool resync;
        lock (_gate)
        {
            resync = _resyncPending;
            _resyncPending = false;
        }

        if (resync)
        {
            Resync();
        }

        _wake.Writer.TryWrite(true);
    }

    /// <summary>
    /// CA roots are polled with the gateways (their trust domain names every route, but changes only with the CA
    /// provider's configuration): one long-poll fewer within the connection bound.
    /// </summary>
    private async Task RefreshRootsAsync(CancellationToken stop)
    {
        try
        {
            ConsulResponse<ConsulCaRoots> roots = await WithLaneAsync(() => _client.GetCaRootsAsync(default, stop), stop).ConfigureAwait(false);
            Succeed("connect/ca/roots");
            OnRoots(roots);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Fail("connect/ca/roots", ex);
        }
    }

    private void OnRoots(ConsulResponse<ConsulCaRoots> roots)
    {
        lock (_gate)
        {
            if (!string.IsNullOrEmpty(roots.Value.TrustDomain))
            {
                _trustDomain = roots.Value.TrustDomain;
            }

            PublishLocked();
        }
    }

    private void OnProxyDefaults(ConsulResponse<IReadOnlyList<ConsulProxyDefaults>> entries)
    {
        ConsulConfigSnapshot? snapshot;
        lock (_gate)
        {
            _proxyDefaults = entries.Value.FirstOrDefault(e => e.Name == "global") ?? (entries.Value.Count > 0 ? entries.Value[0] : null);
            _proxyDefaultsKnown = true;
            snapshot = UpdateConfigLocked();
        }

        RaiseConfigEntriesUpdated(snapshot);
    }

    private void OnServiceDefaults(ConsulResponse<IReadOnlyList<ConsulServiceDefaults>> entries)
    {
        ConsulConfigSnapshot? snapshot;
        lock (_gate)
        {
            _serviceDefaults = entries.Value.Where(d => !string.IsNullOrEmpty(d.Name))
                .GroupBy(d => d.Name!, StringComparer.Ordinal)
                .ToImmutableSortedDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
            snapshot = UpdateConfigLocked();
        }

        RaiseConfigEntriesUpdated(snapshot);
    }

    private void OnServiceResolvers(ConsulResponse<IReadOnlyList<ConsulServiceResolver>> entries)
    {
        ImmutableSortedDictionary<string, ConsulResolverView> views = ToResolverViews(entries.Value);
        ConsulConfigSnapshot? snapshot;
        lock (_gate)
        {
            _serviceResolvers = entries.Value.Where(r => !string.IsNullOrEmpty(r.Name))
                .GroupBy(r => r.Name!, StringComparer.Ordinal)
                .ToImmutableSortedDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
            bool changed = _resolvers is null || !ViewEquality.DictionaryEquals(_resolvers, views, static (a, b) => a.Equals(b));
            _resolvers = views;
            if (changed)
            {
                foreach ((string name, NameState state) in _names)
                {
                    if (state.Instances is { Length: > 0 })
                    {
                        UpdateServiceView(name, state);
                    }
                }
            }

            snapshot = UpdateConfigLocked();
        }

        // Before the view that uses them, as documented on ConfigEntriesUpdated.
        RaiseConfigEntriesUpdated(snapshot);
    }

    /// <summary>Sets <see cref="ConfigEntries"/> once every kind has answered; returns it for <see cref="ConfigEntriesUpdated"/>.</summary>
    private ConsulConfigSnapshot? UpdateConfigLocked()
    {
        if (!_proxyDefaultsKnown || _serviceDefaults is null || _serviceResolvers is null)
        {
            return null;
        }

        _config = new ConsulConfigSnapshot { ProxyDefaults = _proxyDefaults, ServiceDefaults = _serviceDefaults, ServiceResolvers = _serviceResolvers };
        return _config;
    }

    /// <summary>Raises <see cref="ConfigEntriesUpdated"/> (outside the lock), then publishes a view if one is due.</summary>
    private void RaiseConfigEntriesUpdated(ConsulConfigSnapshot? snapshot)
    {
        if (snapshot is not null)
        {
            ConfigEntriesUpdated?.Invoke(snapshot);
        }

        lock (_gate)
        {
            PublishLocked();
        }
    }

    private void OnServices(ConsulResponse<IReadOnlyDictionary<string, List<string>>> response)
    {
        IReadOnlyDictionary<string, List<string>> services = response.Value;
        lock (_gate)
        {
            bool explained = false;
            if (_servicesKnown && response.Index < _servicesIndex)
            {
                // The index went backwards: a restarted or rebuilt agent. Everything may differ; refetch everything, and
                // restart the other long-polls, which may be blocking on indexes the rebuilt agent has not reached.
                _sweepRequested = true;
                _sweepFull = true;
                _resyncPending = true;
            }

            foreach (string gone in _names.Keys.Where(n => !services.ContainsKey(n)).ToList())
            {
                RemoveName(gone);
                explained = true;
            }

            foreach ((string name, List<string> tags) in services)
            {
                if (!_names.TryGetValue(name, out NameState? state))
                {
                    _names[name] = new NameState { Tags = [.. tags ?? []] };
                    _dirty.Add(name);
                    explained = true;
                }
                else if (!state.Tags.AsSpan().SequenceEqual(CollectionsMarshalTags(tags)))
                {
                    state.Tags = [.. tags ?? []];
                    MarkAffected(name);
                    explained = true;
                }
            }

            if (_servicesKnown && response.Index > _servicesIndex)
            {
                if (!explained)
                {
                    _unexplainedIndex = Math.Max(_unexplainedIndex, response.Index);
                }
                else
                {
                    // Explained by a name or tag change, but another registration (a port, address, weight or metadata
                    // change) may have landed in the same round unseen: verify with a later, paced sweep.
                    _verifyPending = true;
                }
            }

            _servicesIndex = response.Index;
            _servicesKnown = true;
        }

        Wake();
    }

    private static ReadOnlySpan<string> CollectionsMarshalTags(List<string>? tags) =>
        tags is null ? [] : System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tags);

    private void RemoveName(string name)
    {
        NameState state = _names[name];
        _names.Remove(name);
        _dirty.Remove(name);
        if (_proxyTargets.Remove(name, out HashSet<string>? targets))
        {
            // A proxy name went away: its destinations lost instances.
            foreach (string target in targets)
            {
                if (_names.ContainsKey(target))
                {
                    _dirty.Add(target);
                }
            }
        }

        SetNodes(name, state, []);
        if (_serviceViews.ContainsKey(name))
        {
            _serviceViews = _serviceViews.Remove(name);
        }
    }

    private void MarkAffected(string name)
    {
        if (_proxyTargets.TryGetValue(name, out HashSet<string>? targets))
        {
            foreach (string target in targets)
            {
                if (_names.ContainsKey(target))
                {
                    _dirty.Add(target);
                }
            }
        }
        else if (_names.ContainsKey(name))
        {
            _dirty.Add(name);
        }
    }

    private void OnChecks(ConsulResponse<CheckList> response)
    {
        // Kept compact (about 50 bytes a check: a 64-bit key, shared names): a mesh has several checks per instance.
        Dictionary<ulong, CheckRecord> next = response.Value.Records;
        CancellationTokenSource? stopSweep = null;
        TaskCompletionSource advanced;
        lock (_gate)
        {
            if (_checksKnown && response.Index < _checksIndex)
            {
                _sweepRequested = true;
                _sweepFull = true;
                _resyncPending = true;
            }
            else if (_checksKnown)
            {
                foreach ((ulong key, CheckRecord check) in next)
                {
                    if (!_checks.TryGetValue(key, out CheckRecord old) || old.Status != check.Status || old.ModifyIndex != check.ModifyIndex)
                    {
                        Affect(check);
                        NoteCheckChangeLocked(check.ModifyIndex);
                        if (old.Node is not null && old.ServiceName != check.ServiceName)
                        {
                            Affect(old);
                        }
                    }
                }

                foreach ((ulong key, CheckRecord old) in _checks)
                {
                    if (!next.ContainsKey(key))
                    {
                        // Removed (a deregistration). Its index is unknown (this answer's may belong to another change in
                        // the same round, e.g. a re-registration with unchanged checks), so it is not noted: the refetch of
                        // the service it affects answers with the service's own index, which explains the deregistration.
                        Affect(old);
                    }
                }

                if (_activeSweep is { } active && _checkChangeIndexes.Contains(active.Target))
                {
                    stopSweep = active.Stop;
                }
            }

            _checks = next;
            _checksKnown = true;
            _checksIndex = Math.Max(response.Index, 1);
            advanced = _checksAdvanced;
            _checksAdvanced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        advanced.TrySetResult();

        if (stopSweep is not null)
        {
            // A sweep looks for a change these checks explain: the next pass refetches the names they affect instead.
            try
            {
                stopSweep.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That sweep has just ended.
            }
        }

        Wake();
    }

    /// <summary>Remembers that a check changed at <paramref name="index"/> (the last <see cref="CheckChangeMemory"/> such indexes).</summary>
    private void NoteCheckChangeLocked(ulong index)
    {
        if (_checkChangeIndexes.Add(index))
        {
            _checkChangeOrder.Enqueue(index);
            if (_checkChangeOrder.Count > CheckChangeMemory)
            {
                _checkChangeIndexes.Remove(_checkChangeOrder.Dequeue());
            }
        }
    }

    /// <summary>The key of an instance (node and service ID, unique per node), hashed like a check's.</summary>
    private static ulong CheckKey(string node, string id) => CheckList.Key(node, id);

    private void Affect(CheckRecord check)
    {
        if (!string.IsNullOrEmpty(check.ServiceName))
        {
            MarkAffected(check.ServiceName);
        }
        else if (check.Node is not null && _nodeNames.TryGetValue(check.Node, out HashSet<string>? names))
        {
            // A node check: every service with an instance on that node.
            _dirty.UnionWith(names);
        }
    }

    private async Task ReconcileAsync(CancellationToken stop)
    {
        int failures = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await WaitForWorkAsync(stop).ConfigureAwait(false);
                _wake.Reader.TryRead(out _);
                bool failed = await ReconcileOnceAsync(stop).ConfigureAwait(false);
                if (!failed)
                {
                    failures = 0;
                    continue;
                }

                TimeSpan delay = BlockingQuery<int>.BackoffDelay(_options.BlockingQuery, ++failures, Random.Shared.NextDouble());
                await Task.Delay(delay, _time, stop).ConfigureAwait(false);
                Wake();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    /// <summary>Waits for a trigger, or for the time a deferred sweep (paced, or a verification) is due.</summary>
    private async Task WaitForWorkAsync(CancellationToken stop)
    {
        long due;
        lock (_gate)
        {
            // Deferred work counts only once the catalog is known (before that a pass has nothing to do and would spin).
            long now = _time.GetTimestamp();
            due = _sweepRequested && _servicesKnown ? Math.Max(CreditReachesLocked(1, now), 1) : 0;
            if (_verifyDue > 0 && _servicesKnown)
            {
                long verifyAt = Math.Max(_verifyDue, CreditReachesLocked(SweepCreditCapLocked(), now));
                due = due == 0 ? verifyAt : Math.Min(due, verifyAt);
            }
        }

        if (due == 0)
        {
            await _wake.Reader.WaitToReadAsync(stop).ConfigureAwait(false);
            return;
        }

        TimeSpan wait = TimeSpan.FromSeconds(Math.Max(0, due - _time.GetTimestamp()) / (double)_time.TimestampFrequency);
        if (wait <= TimeSpan.Zero)
        {
            return;
        }

        using var either = CancellationTokenSource.CreateLinkedTokenSource(stop);
        Task woken = _wake.Reader.WaitToReadAsync(either.Token).AsTask();
        Task timer = Task.Delay(wait, _time, either.Token);
        await Task.WhenAny(woken, timer).ConfigureAwait(false);
        await either.CancelAsync().ConfigureAwait(false);
        stop.ThrowIfCancellationRequested();
    }

    /// <summary>One pass: config entries, dirty services, a sweep if something is unexplained; then publish. True if a request failed.</summary>
    private async Task<bool> ReconcileOnceAsync(CancellationToken stop)
    {
        ulong unexplained;
        Task checksAdvanced;
        lock (_gate)
        {
            if (!_servicesKnown)
            {
                return false;
            }

            unexplained = _unexplainedIndex;
            checksAdvanced = unexplained > 0 && _checksIndex < unexplained ? _checksAdvanced.Task : Task.CompletedTask;
        }

        if (!checksAdvanced.IsCompleted)
        {
            // The checks trigger has not answered for this index yet. A registration with a new or changed check moves both
            // indexes and the check list then names the service; wait for it (bounded by twice what the list last took to
            // arrive, at most 5 s) rather than sweep for a change the checks are about to explain. A sweep started at once
            // instead (measured: every registration and deregistration then started one, cancelled when the list came)
            // cost the check path half its speed and the sweep credit the next weight change needed.
            TimeSpan bound = TimeSpan.FromTicks(Math.Clamp(2 * Interlocked.Read(ref _checksFetchTicks), TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond * 5));
            try
            {
                await checksAdvanced.WaitAsync(bound, _time, stop).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Still unexplained: the sweep below looks for it.
            }
        }

        bool failed = false;

        List<string> batch;
        bool verify;
        lock (_gate)
        {
            unexplained = _unexplainedIndex;
            _unexplainedIndex = 0;
            verify = _verifyPending;
            _verifyPending = false;
            // Names that look like sidecars (Consul's default "<service>-sidecar-proxy") go last: by then their destination's
            // answer has usually named them as proxies, and they are skipped. Only the order depends on the convention.
            batch = [.. _dirty.OrderBy(n => n.EndsWith(SidecarSuffix, StringComparison.Ordinal)).ThenBy(n => n, StringComparer.Ordinal)];
            _dirty.Clear();
        }

        (bool batchFailed, ulong highest) = await RefetchAsync(batch, stop).ConfigureAwait(false);
        failed |= batchFailed;
        if (batch.Count > 0)
        {
            // What the triggers named is published now, not after a sweep that may follow in this pass.
            lock (_gate)
            {
                PublishLocked();
            }
        }

        bool sweep;
        ulong target;
        long now = _time.GetTimestamp();
        lock (_gate)
        {
            if (unexplained > 0 && highest < unexplained && !_checkChangeIndexes.Contains(unexplained))
            {
                // Still unexplained: a sweep that looks for this index (or for the last of several). A registration that
                // carries its unchanged checks moves the checks index too (measured on 1.8.7) with no check to say which
                // service it was. If the checks trigger does name a check changed at this index, the sweep stops (OnChecks).
                _sweepRequested = true;
                _sweepTarget = Math.Max(_sweepTarget, unexplained);
            }
            else if (unexplained > 0)
            {
                // Explained by a service whose check also changed; a second, check-less registration may hide in the round.
                verify = true;
            }

            if (verify && _verifyDue == 0)
            {
                _verifyDue = now + (long)(_options.VerificationSweepDelay.TotalSeconds * _time.TimestampFrequency);
            }

            // Paced by a credit of sweep time that accrues at a quarter of the time: a sweep for an unexplained change runs
            // while there is credit; a verification sweep waits for a full credit, so it never delays the next one.
            AccrueSweepCreditLocked(now);
            bool verifying = _verifyDue > 0 && now >= _verifyDue && _sweepCredit >= SweepCreditCapLocked();
            bool urgent = _sweepRequested && _sweepCredit > 0;
            sweep = urgent || verifying;
            target = urgent && !verifying && !_sweepFull ? _sweepTarget : 0;
            if (sweep)
            {
                _sweepRequested = false;
                _sweepTarget = 0;
                _sweepFull = false;
                if (target == 0)
                {
                    _verifyDue = 0;
                }
            }
        }

        if (sweep)
        {
            Interlocked.Increment(ref _sweeps);
            long sweepStart = _time.GetTimestamp();
            (bool sweepFailed, bool complete) = await SweepAsync(target, stop).ConfigureAwait(false);
            long sweepEnd = _time.GetTimestamp();
            lock (_gate)
            {
                AccrueSweepCreditLocked(sweepEnd);
                _sweepCredit -= sweepEnd - sweepStart;
                if (complete)
                {
                    _fullSweepTicks = sweepEnd - sweepStart;
                }
                else if (!sweepFailed && _verifyDue == 0)
                {
                    // Stopped at the change it looked for: others may have landed in the same round. Verified later.
                    _verifyDue = sweepEnd + (long)(_options.VerificationSweepDelay.TotalSeconds * _time.TimestampFrequency);
                }

                if (sweepFailed)
                {
                    _sweepRequested = true;
                    _sweepFull = true;
                }
            }

            failed |= sweepFailed;
        }

        bool wakeGateways;
        lock (_gate)
        {
            PublishLocked();
            wakeGateways = !_localNamesSettled && PendingLocked(out _) == 0;
            _localNamesSettled |= wakeGateways;
        }

        if (wakeGateways)
        {
            _initialBuild.TrySetResult();
            _gatewayWake.Writer.TryWrite(true);
        }

        return failed;
    }

    /// <summary>How many recent indexes at which a check changed are remembered (to tell whether the checks trigger
    /// explains an index the catalog trigger could not).</summary>
    private const int CheckChangeMemory = 256;

    /// <summary>Sweeps spend at most this share of the time (1 / <see cref="SweepTimeShare"/>) over any long window.</summary>
    private const int SweepTimeShare = 4;

    /// <summary>The most sweep credit that accrues: two full sweeps (at least a second), so that a verification sweep, which
    /// waits for a full credit, always leaves one for a sweep after an unexplained change.</summary>
    private long SweepCreditCapLocked() => Math.Max(_time.TimestampFrequency, 2 * _fullSweepTicks);

    private void AccrueSweepCreditLocked(long now)
    {
        if (!_sweepCreditStarted)
        {
            _sweepCreditStarted = true;
            _sweepCredit = SweepCreditCapLocked();
        }
        else if (now > _sweepCreditAt)
        {
            _sweepCredit = Math.Max(_sweepCredit, Math.Min(SweepCreditCapLocked(), _sweepCredit + ((now - _sweepCreditAt) / SweepTimeShare)));
        }

        _sweepCreditAt = Math.Max(_sweepCreditAt, now);
    }

    /// <summary>When the sweep credit reaches <paramref name="credit"/> (now if it has).</summary>
    private long CreditReachesLocked(long credit, long now)
    {
        AccrueSweepCreditLocked(now);
        return _sweepCredit >= credit ? now : now + ((credit - _sweepCredit) * SweepTimeShare);
    }

    /// <summary>
    /// Finds what changed unseen. With fewer nodes than services, by nodes: <c>/v1/catalog/nodes</c>, then
    /// <c>/v1/catalog/node-services/&lt;node&gt;</c> per node (every instance with its <c>ModifyIndex</c>, and the node's),
    /// compared with the indexes of the last answers; the services whose Connect instances changed are refetched and
    /// published as soon as their node has answered, not at the end of the sweep. A sweep for one unexplained index
    /// (<paramref name="target"/> above zero) stops at the instance or node that carries it; the caller verifies the rest
    /// later. Otherwise every service is refetched.
    /// </summary>
    /// <returns>Whether a request failed (the sweep is then asked for again), and whether every node was read.</returns>
    private async Task<(bool Failed, bool Complete)> SweepAsync(ulong target, CancellationToken stop)
    {
        List<string>? all = null;
        lock (_gate)
        {
            // By nodes when there are fewer nodes than services; the sorted list of every service only when it is needed.
            int services = _names.Keys.Count(n => !_proxyTargets.ContainsKey(n));
            if (_nodeNames.Count == 0 || _nodeNames.Count >= services)
            {
                all = [.. _names.Keys.Where(n => !_proxyTargets.ContainsKey(n)).Order(StringComparer.Ordinal)];
            }
        }

        if (all is not null)
        {
            (bool failed, _) = await RefetchAsync(all, stop).ConfigureAwait(false);
            return (failed, true);
        }

        Interlocked.Increment(ref _nodeSweeps);
        IReadOnlyList<ConsulCatalogNode> nodes;
        try
        {
            nodes = (await WithLaneAsync(() => _client.GetNodesAsync(default, stop), stop).ConfigureAwait(false)).Value;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Fail(RefetchSource, ex);
            return (true, false);
        }

        var seen = new HashSet<ulong>();
        int failures = 0;
        using var found = CancellationTokenSource.CreateLinkedTokenSource(stop);
        lock (_gate)
        {
            if (target > 0 && _checkChangeIndexes.Contains(target))
            {
                // The checks trigger has named it since the pass began: its names are refetched in the next pass.
                return (false, false);
            }

            _activeSweep = target > 0 ? (target, found) : null;
        }

        try
        {
            await Parallel.ForEachAsync(nodes.Where(n => !string.IsNullOrEmpty(n.Node)), new ParallelOptions { MaxDegreeOfParallelism = _client.Options.MaxConnections - 1, CancellationToken = found.Token }, async (node, ct) =>
            {
                ConsulNodeServices? answer;
                try
                {
                    answer = (await WithLaneAsync(() => _client.GetNodeServicesAsync(node.Node!, RefetchQuery, ct), ct).ConfigureAwait(false)).Value;
                }
                catch (ConsulTransportException ex) when (ex.InnerException is null)
                {
                    // A JSON null: the node went away since the list was read.
                    answer = null;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception ex)
                {
                    Interlocked.Increment(ref failures);
                    Fail(RefetchSource, ex);
                    return;
                }

                List<string> changed;
                bool carriesTarget;
                lock (_gate)
                {
                    changed = CompareNodeLocked(node.Node!, answer, seen, target, out carriesTarget);
                }

                if (carriesTarget)
                {
                    // Found: no further node is read (the reads in flight on other lanes finish or are cancelled).
                    await found.CancelAsync().ConfigureAwait(false);
                }

                if (changed.Count > 0)
                {
                    // Refetched and published now: the change is in the table without waiting for the other nodes.
                    // With the sweep's own token, not the one that stops it early: the new indexes are already recorded.
                    (bool refetchFailed, _) = await RefetchAsync(changed, stop).ConfigureAwait(false);
                    if (refetchFailed)
                    {
                        Interlocked.Increment(ref failures);
                    }

                    lock (_gate)
                    {
                        PublishLocked();
                    }
                }

            }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (found.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            // Stopped at the change it was looking for (or the checks trigger named it).
            return (failures > 0, false);
        }
        finally
        {
            lock (_gate)
            {
                _activeSweep = null;
            }
        }

        if (failures > 0)
        {
            return (true, false);
        }

        List<string> gone;
        lock (_gate)
        {
            // Instances no longer on any node: their services lost them.
            var dirty = new HashSet<string>(StringComparer.Ordinal);
            foreach ((ulong key, InstanceRecord record) in _instanceIndex.Where(p => !seen.Contains(p.Key)).ToList())
            {
                if (record.Routable && record.Target is not null && _names.ContainsKey(record.Target))
                {
                    dirty.Add(record.Target);
                }

                _instanceIndex.Remove(key);
            }

            gone = [.. dirty.Where(n => !_proxyTargets.ContainsKey(n)).Order(StringComparer.Ordinal)];
        }

        (bool goneFailed, _) = await RefetchAsync(gone, stop).ConfigureAwait(false);
        return (goneFailed, !goneFailed);
    }

    /// <summary>
    /// Compares one node's answer with the indexes of the last answers and records the new ones. Returns the services to
    /// refetch: those whose Connect instances (sidecar proxies, Connect-native instances) changed or appeared, or all of
    /// the node's services when the node itself changed (its address is their fallback address). A change of an instance
    /// that is not routable (the application behind a sidecar, a service without Connect) is recorded but refetches nothing.
    /// </summary>
    private List<string> CompareNodeLocked(string node, ConsulNodeServices? answer, HashSet<ulong> seen, ulong target, out bool carriesTarget)
    {
        carriesTarget = false;
        var dirty = new HashSet<string>(StringComparer.Ordinal);
        if (answer?.Node is { } n && (!_nodeIndex.TryGetValue(node, out ulong known) || known != n.ModifyIndex))
        {
            if (_nodeIndex.ContainsKey(node) && _nodeNames.TryGetValue(node, out HashSet<string>? onNode))
            {
                dirty.UnionWith(onNode);
            }

            _nodeIndex[node] = n.ModifyIndex;
            carriesTarget |= n.ModifyIndex == target;
        }

        foreach (ConsulAgentService service in answer?.Services ?? [])
        {
            bool routable = service.Kind == ProxyKind || service.Connect?.Native == true;
            string? name = service.Kind == ProxyKind ? service.Proxy?.DestinationServiceName : service.Service;
            ulong key = CheckKey(node, service.ID ?? string.Empty);
            seen.Add(key);
            if (_instanceIndex.TryGetValue(key, out InstanceRecord known2) && known2.ModifyIndex == service.ModifyIndex)
            {
                continue;
            }

            carriesTarget |= service.ModifyIndex == target;
            if ((routable || known2.Routable) && name is not null && _names.ContainsKey(name))
            {
                dirty.Add(name);
            }

            _instanceIndex[key] = new InstanceRecord(name, service.ModifyIndex, routable);
        }

        return [.. dirty.Where(d => !_proxyTargets.ContainsKey(d)).Order(StringComparer.Ordinal)];
    }

    private async Task<(bool Failed, ulong Highest)> RefetchAsync(List<string> names, CancellationToken stop)
    {
        if (names.Count == 0)
        {
            return (false, 0);
        }

        int failed = 0;
        long highest = 0;
        string dc = _datacenter!;
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = _client.Options.MaxConnections - 1, CancellationToken = stop }, async (name, ct) =>
        {
            lock (_gate)
            {
                // Skip names that went away, and sidecar names (their instances arrive with their destination's answer).
                if (!_names.ContainsKey(name) || _proxyTargets.ContainsKey(name))
                {
                    return;
                }
            }

            ConsulResponse<IReadOnlyList<CatalogServiceInstance>> response;
            try
            {
                response = await WithLaneAsync(() => _client.GetHealthConnectAsync(name, RefetchQuery, ct), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref failed);
                Fail(RefetchSource, ex);
                lock (_gate)
                {
                    if (_names.ContainsKey(name))
                    {
                        _dirty.Add(name);
                    }
                }

                return;
            }

            Interlocked.Increment(ref _refetches);
            if (response.Value.Count > 0)
            {
                // Only a service that has instances answers with its own index; an empty answer carries the whole
                // catalog's index (Consul's fallback for unknown names), which would "explain" any change.
                InterlockedMax(ref highest, (long)Math.Min(response.Index, long.MaxValue));
            }

            ImmutableArray<CatalogServiceInstance> endpoints = CatalogInstances.Sorted(response.Value, gatewaysOnly: false);
            lock (_gate)
            {
                ApplyInstances(name, response.Value, endpoints);
            }
        }).ConfigureAwait(false);

        if (failed == 0)
        {
            Succeed(RefetchSource);
        }

        return (failed > 0, (ulong)Interlocked.Read(ref highest));
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current = Interlocked.Read(ref target);
        while (value > current)
        {
            long seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private async Task<T> WithLaneAsync<T>(Func<Task<T>> request, CancellationToken cancellationToken)
    {
        SemaphoreSlim lanes = _lanes!;
        await lanes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await request().ConfigureAwait(false);
        }
        finally
        {
            lanes.Release();
        }
    }

    private void ApplyInstances(string name, IReadOnlyList<CatalogServiceInstance> entries, ImmutableArray<CatalogServiceInstance> endpoints)
    {
        if (!_names.TryGetValue(name, out NameState? state))
        {
            return;
        }

        foreach (CatalogServiceInstance entry in entries)
        {
            if (entry.Service is { Kind: ProxyKind, Name: { Length: > 0 } proxy } && !string.Equals(proxy, name, StringComparison.Ordinal))
            {
                if (!_proxyTargets.TryGetValue(proxy, out HashSet<string>? targets))
                {
                    _proxyTargets[proxy] = targets = new HashSet<string>(StringComparer.Ordinal);
                    _dirty.Remove(proxy);
                    if (_names.TryGetValue(proxy, out NameState? proxyState) && _serviceViews.ContainsKey(proxy))
                    {
                        SetNodes(proxy, proxyState, []);
                        _serviceViews = _serviceViews.Remove(proxy);
                    }
                }

                targets.Add(name);
            }
        }

        foreach (CatalogServiceInstance entry in entries)
        {
            // What the node sweep compares with: each instance's and node's modify index as last answered.
            _instanceIndex[CheckKey(entry.Node.Name, entry.Service.Id)] = new InstanceRecord(name, entry.Service.ModifyIndex, Routable: true);
            _nodeIndex.TryAdd(entry.Node.Name, entry.Node.ModifyIndex);
        }

        state.Fetched = true;
        SetNodes(name, state, [.. endpoints.Select(e => e.Node.Name).Distinct(StringComparer.Ordinal)]);
        if (state.Instances is { } old && old.SequenceEqual(endpoints))
        {
            return;
        }

        state.Instances = endpoints;
        UpdateServiceView(name, state);
    }

    private void UpdateServiceView(string name, NameState state)
    {
        if (state.Instances is not { Length: > 0 } instances)
        {
            if (_serviceViews.ContainsKey(name))
            {
                _serviceViews = _serviceViews.Remove(name);
            }

            return;
        }

        _serviceViews = _serviceViews.SetItem(name, new ConsulServiceView
        {
            Name = name,
            Instances = instances,
            Resolver = _resolvers is not null && _resolvers.TryGetValue(name, out ConsulResolverView? resolver) ? resolver : null,
        });
    }

    private void SetNodes(string name, NameState state, string[] nodes)
    {
        foreach (string node in state.Nodes)
        {
            if (_nodeNames.TryGetValue(node, out HashSet<string>? names))
            {
                names.Remove(name);
                if (names.Count == 0)
                {
                    _nodeNames.Remove(node);
                }
            }
        }

        foreach (string node in nodes)
        {
            if (!_nodeNames.TryGetValue(node, out HashSet<string>? names))
            {
                _nodeNames[node] = names = new HashSet<string>(StringComparer.Ordinal);
            }

            names.Add(name);
        }

        state.Nodes = nodes;
    }

    private static ImmutableSortedDictionary<string, ConsulResolverView> ToResolverViews(IReadOnlyList<ConsulServiceResolver> resolvers)
    {
        var builder = ImmutableSortedDictionary.CreateBuilder<string, ConsulResolverView>(StringComparer.Ordinal);
        foreach (ConsulServiceResolver r in resolvers)
        {
            if (string.IsNullOrEmpty(r.Name))
            {
                continue;
            }

            builder[r.Name] = new ConsulResolverView
            {
                DefaultSubset = string.IsNullOrEmpty(r.DefaultSubset) ? null : r.DefaultSubset,
                ConnectTimeout = r.ConnectTimeout is { } t && t > TimeSpan.Zero ? t : null,
                Subsets = (r.Subsets ?? new Dictionary<string, ConsulServiceResolverSubset>())
                    .ToImmutableSortedDictionary(p => p.Key, p => new ConsulSubsetView(p.Value?.Filter, p.Value?.OnlyPassing ?? false), StringComparer.Ordinal),
            };
        }

        return builder.ToImmutable();
    }

    private async Task PollDatacentersAsync(CancellationToken cancellationToken)
    {
        int failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan delay = _options.DatacenterPollInterval;
            try
            {
                ConsulResponse<IReadOnlyList<string>> response = await WithLaneAsync(() => _client.GetDatacentersAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
                failures = 0;
                Succeed("catalog/datacenters");
                OnDatacenters(response.Value);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Fail("catalog/datacenters", ex);
                delay = BlockingQuery<int>.BackoffDelay(_options.BlockingQuery, ++failures, Random.Shared.NextDouble());
            }

            try
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void OnDatacenters(IReadOnlyList<string> datacenters)
    {
        bool changed = false;
        lock (_gate)
        {
            _datacenters = [.. datacenters.Where(d => !string.IsNullOrEmpty(d)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            var wanted = _datacenters.Value.Where(d => d != _datacenter || _options.WatchLocalGateways).ToHashSet(StringComparer.Ordinal);
            foreach (string gone in _gatewayDcs.Keys.Where(d => !wanted.Contains(d)).ToList())
            {
                _gatewayDcs.Remove(gone);
                changed = true;
            }

            foreach (string dc in wanted)
            {
                if (!_gatewayDcs.ContainsKey(dc))
                {
                    _gatewayDcs[dc] = new DatacenterState(dc);
                    changed = true;
                }
            }

            PublishLocked();
        }

        if (changed)
        {
            _gatewayWake.Writer.TryWrite(true);
        }
    }

    private async Task PollGatewaysAsync(CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await RefreshRootsAsync(stop).ConfigureAwait(false);
                List<DatacenterState> due;
                long now = _time.GetTimestamp();
                lock (_gate)
                {
                    due = [.. _gatewayDcs.Values.Where(d => d.RetryAt <= now)];
                }

                // Datacenters one after another (each is itself parallel within the lanes), so one slow datacenter
                // delays the others by at most its own answer.
                foreach (DatacenterState state in due)
                {
                    await RefreshGatewaysAsync(state, stop).ConfigureAwait(false);
                }

                if (_options.WanFederation)
                {
                    await RefreshFederationAsync(stop).ConfigureAwait(false);
                }

                if (_options.WatchPartitions && !_partitionsUnsupported)
                {
                    await RefreshPartitionsAsync(stop).ConfigureAwait(false);
                }

                if (_options.Peering != false && !_peeringUnsupported)
                {
                    await RefreshPeeringAsync(stop).ConfigureAwait(false);
                }

                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop);
                Task woken = _gatewayWake.Reader.WaitToReadAsync(wait.Token).AsTask();
                Task timer = Task.Delay(_options.GatewayPollInterval, _time, wait.Token);
                await Task.WhenAny(woken, timer).ConfigureAwait(false);
                await wait.CancelAsync().ConfigureAwait(false);
                _gatewayWake.Reader.TryRead(out _);
                stop.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    private async Task RefreshGatewaysAsync(DatacenterState state, CancellationToken stop)
    {
        string source = "gateways " + state.Datacenter;
        try
        {
            bool local = state.Datacenter == _datacenter;
            if (local)
            {
                lock (_gate)
                {
                    if (!_servicesKnown || PendingLocked(out _) > 0)
                    {
                        // Local names are probed only once the local services are known, so that Connect services and
                        // sidecars are not probed one by one; the reconciler wakes this loop when they are.
                        return;
                    }
                }
            }

            IReadOnlyDictionary<string, List<string>> names = (await WithLaneAsync(
                () => _client.GetServicesAsync(new ConsulQuery { Datacenter = state.Datacenter, Filter = GatewayCatalogFilter }, stop), stop).ConfigureAwait(false)).Value;
            List<string> toRead;
            lock (_gate)
            {
                state.NotGateways.IntersectWith(names.Keys);
                foreach (string gone in state.Gateways.Keys.Where(n => !names.ContainsKey(n)).ToList())
                {
                    state.Gateways.Remove(gone);
                }

                // Known gateway names are re-read; unknown names are probed once. Local Connect services and sidecars are not gateways.
                toRead = [.. names.Keys.Where(n => !state.NotGateways.Contains(n)
                    && !(local && (_proxyTargets.ContainsKey(n) || (_names.TryGetValue(n, out NameState? s) && s.Instances is { Length: > 0 }))))
                    .Order(StringComparer.Ordinal)];
            }

            bool wan = !local;
            var found = new System.Collections.Concurrent.ConcurrentDictionary<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
            var notGateways = new System.Collections.Concurrent.ConcurrentBag<string>();
            await Parallel.ForEachAsync(toRead, new ParallelOptions { MaxDegreeOfParallelism = _client.Options.MaxConnections - 1, CancellationToken = stop }, async (name, ct) =>
            {
                IReadOnlyList<CatalogServiceInstance> entries = (await WithLaneAsync(() => _client.GetHealthServiceAsync(
                    name, passingOnly: false, new ConsulQuery { Datacenter = state.Datacenter, Filter = GatewayHealthFilter }, ct), ct).ConfigureAwait(false)).Value;
                ImmutableArray<CatalogServiceInstance> gateways = CatalogInstances.Sorted(entries, gatewaysOnly: true);
                if (gateways.IsEmpty && !entries.Any(e => e.Service.Kind == GatewayKind))
                {
                    notGateways.Add(name);
                }
                else
                {
                    found[name] = gateways;
                }
            }).ConfigureAwait(false);

            lock (_gate)
            {
                state.NotGateways.UnionWith(notGateways);
                foreach (string name in notGateways)
                {
                    state.Gateways.Remove(name);
                }

                foreach ((string name, ImmutableArray<CatalogServiceInstance> gateways) in found)
                {
                    state.Gateways[name] = gateways;
                }

                state.Answered = true;
                state.Failures = 0;
                state.RetryAt = 0;
                PublishLocked();
            }

            Succeed(source);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Fail(source, ex);
            lock (_gate)
            {
                // The first failure counts as an answer (the datacenter may be unreachable); the last list stays.
                state.Answered = true;
                state.Failures++;
                state.RetryAt = _time.GetTimestamp() + (long)(BlockingQuery<int>.BackoffDelay(_options.BlockingQuery, state.Failures, Random.Shared.NextDouble()).TotalSeconds * _time.TimestampFrequency);
                PublishLocked();
            }
        }
    }

    /// <summary>
    /// WAN federation: the local servers and the federation states' gateways, each read once per gateway poll (a server or
    /// a datacenter's gateway set changes rarely; a long-poll each would take two of the bounded connections for good).
    /// </summary>
    private async Task RefreshFederationAsync(CancellationToken stop)
    {
        await ReadSourceAsync("health/service/consul", async () =>
        {
            IReadOnlyList<CatalogServiceInstance> servers = (await WithLaneAsync(
                () => _client.GetHealthServiceAsync("consul", passingOnly: false, default, stop), stop).ConfigureAwait(false)).Value;
            string dc = _datacenter!;
            // Consul's proxycfg keeps the entries of service "consul" in the gateway's own datacenter (mesh_gateway.go).
            ImmutableArray<CatalogServiceInstance> local = CatalogInstances.Sorted(
                servers.Where(i => i.Service.Name == "consul" && (i.Node.Datacenter.Length == 0 || i.Node.Datacenter == dc)), gatewaysOnly: false);
            lock (_gate)
            {
                _localServers = local;
                PublishLocked();
            }
        }, stop).ConfigureAwait(false);

        await ReadSourceAsync("federation-states/mesh-gateways", async () =>
        {
            IReadOnlyDictionary<string, IReadOnlyList<CatalogServiceInstance>> states = (await WithLaneAsync(
                () => _client.GetFederationStateMeshGatewaysAsync(default, stop), stop).ConfigureAwait(false)).Value;
            var builder = ImmutableSortedDictionary.CreateBuilder<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
            foreach ((string dc, IReadOnlyList<CatalogServiceInstance> gateways) in states)
            {
                // Only gateways that carry the federation meta take server traffic (the states list the others too).
                ImmutableArray<CatalogServiceInstance> federating = CatalogInstances.Sorted(
                    gateways.Where(g => g.Service.Meta.TryGetValue(WanFederationMetaKey, out string? v) && v == "1"), gatewaysOnly: true);
                if (federating.Length > 0)
                {
                    builder[dc] = federating;
                }
            }

            lock (_gate)
            {
                _federationGateways = builder.ToImmutable();
                PublishLocked();
            }
        }, stop).ConfigureAwait(false);
    }

    /// <summary>
    /// One read of a polled source: success and failure reported per source (a failed read keeps the last answer).
    /// </summary>
    private async Task ReadSourceAsync(string source, Func<Task> read, CancellationToken stop)
    {
        try
        {
            await read().ConfigureAwait(false);
            Succeed(source);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            Fail(source, ex);
        }
    }

    /// <summary>
    /// Enterprise admin partitions (docs/consul-behaviour.md §3): the mesh gateways of every other partition of the local datacenter,
    /// read with each gateway poll (<c>/v1/partitions</c>, then the kind-filtered catalog of each). A Community Edition agent
    /// answers 404: the watcher stops asking.
    /// </summary>
    private Task RefreshPartitionsAsync(CancellationToken stop) => ReadSourceAsync("partitions", async () =>
    {
        IReadOnlyList<ConsulPartition> partitions;
        try
        {
            partitions = (await WithLaneAsync(() => _client.ListPartitionsAsync(stop), stop).ConfigureAwait(false)).Value;
        }
        catch (ConsulStatusException ex) when (ex.StatusCode is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.MethodNotAllowed)
        {
            // Community Edition: no partitions.
            lock (_gate)
            {
                _partitionsUnsupported = true;
            }

            return;
        }

        string own = NormalizePartition(_client.Options.Partition);
        var builder = ImmutableSortedDictionary.CreateBuilder<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
        foreach (string partition in partitions.Select(p => NormalizePartition(p.Name)).Where(p => p != own).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            IReadOnlyDictionary<string, List<string>> names = (await WithLaneAsync(
                () => _client.GetServicesAsync(new ConsulQuery { Partition = partition, Filter = GatewayCatalogFilter }, stop), stop).ConfigureAwait(false)).Value;
            var gateways = new List<CatalogServiceInstance>();
            foreach (string name in names.Keys.Order(StringComparer.Ordinal))
            {
                gateways.AddRange((await WithLaneAsync(() => _client.GetHealthServiceAsync(
                    name, passingOnly: false, new ConsulQuery { Partition = partition, Filter = GatewayHealthFilter }, stop), stop).ConfigureAwait(false)).Value);
            }

            ImmutableArray<CatalogServiceInstance> sorted = CatalogInstances.Sorted(gateways, gatewaysOnly: true);
            if (sorted.Length > 0)
            {
                builder[partition] = sorted;
            }
        }

        lock (_gate)
        {
            _partitionGateways = builder.ToImmutable();
            PublishLocked();
        }
    }, stop);

    /// <summary>
    /// Cluster peering (docs/consul-behaviour.md §11), read with each gateway poll: the exported-services entry, the mesh entry, the
    /// peerings, the local servers (when peers' control plane goes through gateways) and every peer's imported instances. An
    /// agent without peering (auto-detect) is asked once: 1.8.7 answers <c>/v1/peerings</c> with an empty 404 and an unknown
    /// config-entry kind with a 500 <c>invalid config entry kind: &lt;kind&gt;</c> (measured).
    /// </summary>
    private Task RefreshPeeringAsync(CancellationToken stop) => ReadSourceAsync("peering", async () =>
    {
        bool auto = _options.Peering is null;
        IReadOnlyList<ConsulPeering> peerings;
        ulong hash = 14695981039346656037UL;
        try
        {
            ConsulResponse<IReadOnlyList<ConsulPeering>> answer = await WithLaneAsync(() => _client.ListPeeringsAsync(default, stop), stop).ConfigureAwait(false);
            peerings = [.. answer.Value.Where(p => !string.IsNullOrEmpty(p.Name)).OrderBy(p => p.Name, StringComparer.Ordinal)];
            hash = Mix(hash, answer.BodyHash);
        }
        catch (ConsulNotFoundException) when (auto)
        {
            NotePeeringUnsupported("GET /v1/peerings answered 404 (Consul before 1.13 has no cluster peering)");
            return;
        }

        ConsulExportedServices? exported = null;
        try
        {
            ConsulResponse<ConsulExportedServices> answer = await WithLaneAsync(
                () => _client.GetExportedServicesAsync(NormalizePartition(_client.Options.Partition), default, stop), stop).ConfigureAwait(false);
            exported = answer.Value;
            hash = Mix(hash, answer.BodyHash);
        }
        catch (ConsulNotFoundException)
        {
            // No entry: nothing exported.
        }
        catch (ConsulStatusException ex) when (auto && IsUnknownKind(ex))
        {
            NotePeeringUnsupported("the agent does not know the exported-services config entry (" + ex.Body + ")");
            return;
        }

        bool throughGateways = false;
        try
        {
            ConsulResponse<ConsulMeshConfigEntry> mesh = await WithLaneAsync(() => _client.GetMeshAsync(default, stop), stop).ConfigureAwait(false);
            throughGateways = mesh.Value.Peering?.PeerThroughMeshGateways == true;
            hash = Mix(hash, mesh.BodyHash);
        }
        catch (ConsulNotFoundException)
        {
            // No mesh entry: control-plane traffic goes straight to the servers.
        }

        ImmutableArray<CatalogServiceInstance> servers = [];
        if (throughGateways)
        {
            // agent/proxycfg/mesh_gateway.go watches the "consul" service of the local datacenter for this (consulServerListWatchID).
            IReadOnlyList<CatalogServiceInstance> all = (await WithLaneAsync(
                () => _client.GetHealthServiceAsync("consul", passingOnly: false, default, stop), stop).ConfigureAwait(false)).Value;
            string dc = _datacenter!;
            servers = CatalogInstances.Sorted(all.Where(i => i.Service.Name == "consul" && (i.Node.Datacenter.Length == 0 || i.Node.Datacenter == dc)), gatewaysOnly: false);
        }

        // Imported services of every peering (Consul's gateway watches each peering's service list, peeringServiceListWatchID,
        // and builds an outgoing cluster per imported service for sidecars in local mode).
        var imported = new System.Collections.Concurrent.ConcurrentBag<CatalogServiceInstance>();
        foreach (ConsulPeering peering in peerings.Where(p => p.State is not ("DELETING" or "TERMINATED")))
        {
            string peer = peering.Name!;
            IReadOnlyDictionary<string, List<string>> names = (await WithLaneAsync(
                () => _client.GetServicesAsync(new ConsulQuery { Peer = peer }, stop), stop).ConfigureAwait(false)).Value;
            await Parallel.ForEachAsync(names.Keys.Order(StringComparer.Ordinal), new ParallelOptions { MaxDegreeOfParallelism = _client.Options.MaxConnections - 1, CancellationToken = stop }, async (name, ct) =>
            {
                IReadOnlyList<CatalogServiceInstance> entries = (await WithLaneAsync(
                    () => _client.GetHealthConnectAsync(name, new ConsulQuery { Peer = peer }, ct), ct).ConfigureAwait(false)).Value;
                foreach (CatalogServiceInstance entry in entries)
                {
                    // Consul marks imported instances with PeerName; an agent that ignores ?peer= (not 1.13+) would answer local ones.
                    if (!string.IsNullOrEmpty(entry.Service.PeerName))
                    {
                        imported.Add(entry);
                    }
                }
            }).ConfigureAwait(false);
        }

        lock (_gate)
        {
            _peering = new ConsulPeeringView
            {
                ExportedServices = exported,
                PeerThroughMeshGateways = throughGateways,
                Peerings = [.. peerings],
                Servers = servers,
                ImportedInstances = CatalogInstances.Sorted(imported, gatewaysOnly: false),
                SourceHash = hash,
            };
            PublishLocked();
        }
    }, stop);

    private static ulong Mix(ulong hash, ulong value) => unchecked((hash ^ value) * 1099511628211UL);

    /// <summary>An agent that does not know a config-entry kind (1.8.7: 500 <c>invalid config entry kind: exported-services</c>).</summary>
    private static bool IsUnknownKind(ConsulStatusException error) =>
        error.Body.Contains("invalid config entry kind", StringComparison.OrdinalIgnoreCase);

    private void NotePeeringUnsupported(string reason)
    {
        lock (_gate)
        {
            if (_peeringUnsupported)
            {
                return;
            }

            _peeringUnsupported = true;
            _peering = null;
            PublishLocked();
        }

        PeeringUnavailable?.Invoke(reason);
    }

    /// <summary>
    /// The protocol of each exported service as Consul's discovery chain compiles it (agent/consul/discoverychain/compile.go):
    /// <c>service-defaults</c> <c>Protocol</c>, else <c>proxy-defaults</c> <c>Config.protocol</c>, else <c>tcp</c>.
    /// </summary>
    private ImmutableSortedDictionary<string, string> ExportedProtocolsLocked(ConsulExportedServices? exported)
    {
        var builder = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        if (exported?.Services is not { } services)
        {
            return builder.ToImmutable();
        }

        string fallback = _proxyDefaults?.Config is { } config && config.TryGetValue("protocol", out System.Text.Json.JsonElement p)
            && p.ValueKind == System.Text.Json.JsonValueKind.String && p.GetString() is { Length: > 0 } global ? global.ToLowerInvariant() : "tcp";
        IEnumerable<string> names = services.Any(e => e.Name == "*") ? _serviceViews.Keys : services.Select(e => e.Name).OfType<string>();
        foreach (string name in names.Where(n => n.Length > 0 && n != "*"))
        {
            builder[name] = _serviceDefaults is not null && _serviceDefaults.TryGetValue(name, out ConsulServiceDefaults? defaults) && !string.IsNullOrEmpty(defaults.Protocol)
                ? defaults.Protocol.ToLowerInvariant()
                : fallback;
        }

        return builder.ToImmutable();
    }

    private static string NormalizePartition(string? partition) => string.IsNullOrEmpty(partition) ? "default" : partition.ToLowerInvariant();

    private static ulong MaxModifyIndex(ImmutableArray<CatalogServiceInstance> instances)
    {
        ulong max = 0;
        foreach (CatalogServiceInstance instance in instances)
        {
            max = Math.Max(max, instance.Service.ModifyIndex);
        }

        return max;
    }

    private void PublishLocked()
    {
        if (_stop.IsCancellationRequested || DescribeMissingLocked() is not null)
        {
            return;
        }

        var remote = ImmutableSortedDictionary.CreateBuilder<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
        ImmutableArray<CatalogServiceInstance> local = [];
        foreach ((string dc, DatacenterState state) in _gatewayDcs)
        {
            ImmutableArray<CatalogServiceInstance> gateways = CatalogInstances.Sorted(state.Gateways.Values.SelectMany(n => n), gatewaysOnly: false);
            if (dc == _datacenter)
            {
                local = gateways;
            }
            else if (gateways.Length > 0)
            {
                remote[dc] = gateways;
            }
        }

        // As Consul's GetMeshGatewayEndpoints (agent/proxycfg/snapshot.go): per datacenter, the federation state's list
        // when its newest registration is newer than the catalog's (a gateway that moved is seen by whichever list learnt
        // it first, e.g. the replicated state while ?dc= reads cannot cross the old address), else the catalog's.
        foreach ((string dc, ImmutableArray<CatalogServiceInstance> gateways) in _federationGateways)
        {
            if (dc != _datacenter && (!remote.TryGetValue(dc, out ImmutableArray<CatalogServiceInstance> catalog) || MaxModifyIndex(gateways) > MaxModifyIndex(catalog)))
            {
                remote[dc] = gateways;
            }
        }

        var view = new ConsulCatalogView
        {
            TrustDomain = _trustDomain!,
            Datacenter = _datacenter!,
            Datacenters = _datacenters!.Value,
            Services = _serviceViews,
            LocalGateways = local,
            RemoteGateways = remote.ToImmutable(),
            LocalServers = _localServers,
            DnsDomain = _dnsDomain,
            PartitionGateways = _partitionGateways,
            Peering = _peering is null ? null : _peering with { Protocols = ExportedProtocolsLocked(_peering.ExportedServices) },
        };
        if (view.Equals(_current))
        {
            return;
        }

        _current = view;
        Interlocked.Increment(ref _published);
        _views.Writer.TryWrite(view);
        _first.TrySetResult(view);
    }

    private string DescribeMissing()
    {
        lock (_gate)
        {
            return DescribeMissingLocked() ?? "nothing is missing";
        }
    }

    private string? DescribeMissingLocked()
    {
        if (_datacenter is null)
        {
            return "not started";
        }

        if (_trustDomain is null)
        {
            return "no trust domain yet from /v1/connect/ca/roots (is Connect enabled and the CA initialised?)";
        }

        if (_datacenters is null)
        {
            return "no answer yet from /v1/catalog/datacenters";
        }

        if (!_servicesKnown)
        {
            return "no answer yet from /v1/catalog/services";
        }

        if (_resolvers is null || _config is null)
        {
            // Config entries come before the first view, so that a dialer reading both never sees a view without them.
            return "no answer yet from every /v1/config/<kind> list (proxy-defaults, service-defaults, service-resolver)";
        }

        int pending = PendingLocked(out string? example);
        if (pending > 0)
        {
            return $"no answer yet from /v1/health/connect/<name> for {pending} of {_names.Count} services (e.g. '{example}')";
        }

        DatacenterState? dc = _gatewayDcs.Values.FirstOrDefault(d => !d.Answered);
        return dc is null ? null : $"mesh gateways of datacenter '{dc.Datacenter}' not discovered yet";
    }

    private int PendingLocked(out string? example)
    {
        int pending = 0;
        example = null;
        foreach ((string name, NameState state) in _names)
        {
            if (!state.Fetched && !_proxyTargets.ContainsKey(name))
            {
                pending++;
                example ??= name;
            }
        }

        return pending;
    }


    /// <summary>What the node sweep compares an instance with: the service it serves (a proxy's destination), its last
    /// modify index, and whether it is routable (a Connect proxy or Connect-native instance).</summary>
    private readonly record struct InstanceRecord(string? Target, ulong ModifyIndex, bool Routable);

    private sealed class NameState
    {
        public string[] Tags { get; set; } = [];

        public bool Fetched { get; set; }

        public ImmutableArray<CatalogServiceInstance>? Instances { get; set; }

        public string[] Nodes { get; set; } = [];
    }

    private sealed class DatacenterState(string datacenter)
    {
        public string Datacenter { get; } = datacenter;

        public bool Answered { get; set; }

        public int Failures { get; set; }

        public long RetryAt { get; set; }

        public Dictionary<string, ImmutableArray<CatalogServiceInstance>> Gateways { get; } = new(StringComparer.Ordinal);

        public HashSet<string> NotGateways { get; } = new(StringComparer.Ordinal);
    }
}

/// <summary>The config entries a gateway and a Connect dialer read, as last fetched by <see cref="ConsulCatalogWatcher"/>.</summary>
public sealed record ConsulConfigSnapshot
{
    /// <summary>The <c>proxy-defaults</c> entry (<c>global</c>), or null when there is none.</summary>
    public ConsulProxyDefaults? ProxyDefaults { get; init; }

    /// <summary><c>service-defaults</c> entries by service name.</summary>
    public ImmutableSortedDictionary<string, ConsulServiceDefaults> ServiceDefaults { get; init; } = ImmutableSortedDictionary.Create<string, ConsulServiceDefaults>(StringComparer.Ordinal);

    /// <summary><c>service-resolver</c> entries by service name.</summary>
    public ImmutableSortedDictionary<string, ConsulServiceResolver> ServiceResolvers { get; init; } = ImmutableSortedDictionary.Create<string, ConsulServiceResolver>(StringComparer.Ordinal);
}
