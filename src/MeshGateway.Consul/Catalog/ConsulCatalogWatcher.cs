using System.Collections.Immutable;
using System.Threading.Channels;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// Keeps a <see cref="ConsulCatalogView"/> current from Consul with blocking queries (reference section 8.3) and
/// publishes each changed, complete view on <see cref="Views"/> (bounded(1), drop-oldest: a slow reader only ever
/// sees the newest view).
/// </summary>
/// <remarks>
/// <para>Watches, each a <see cref="BlockingQuery{T}"/>: <c>/v1/connect/ca/roots</c> (trust domain);
/// <c>/v1/catalog/services</c> then <c>/v1/health/connect/&lt;name&gt;</c> per name (added and removed as services come
/// and go; names without Connect-capable instances are left out); <c>/v1/config/service-resolver</c>; and per
/// datacenter (remote, plus the local one when <see cref="ConsulCatalogWatcherOptions.WatchLocalGateways"/>)
/// <c>/v1/catalog/services?dc=&lt;dc&gt;&amp;filter=ServiceKind == "mesh-gateway"</c> followed by
/// <c>/v1/health/service/&lt;name&gt;?dc=&lt;dc&gt;&amp;filter=Service.Kind == "mesh-gateway"</c> for names that have gateways.
/// Consul 1.8 ignores that <c>filter</c> on the catalog endpoint, so each new name is probed once and the <c>Kind</c>
/// field is checked client-side. Limitation: with such an agent, a gateway registered under a name already used by
/// non-gateway instances is found only when the name list changes. <c>/v1/catalog/datacenters</c> is polled.</para>
/// <para>A view is published only once complete (trust domain, datacenters, every local service's instances,
/// resolvers, and a first answer, or failure, from every datacenter's gateway discovery) and only when it differs from
/// the previous one. During an outage the watches back off and the last view stays in force; they resume by themselves.</para>
/// </remarks>
public sealed class ConsulCatalogWatcher : IAsyncDisposable
{
    private const string GatewayCatalogFilter = "ServiceKind == \"mesh-gateway\"";
    private const string GatewayHealthFilter = "Service.Kind == \"mesh-gateway\"";

    private readonly ConsulClient _client;
    private readonly ConsulCatalogWatcherOptions _options;
    private readonly TimeProvider _time;
    private readonly Channel<ConsulCatalogView> _views = Channel.CreateBounded<ConsulCatalogView>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true });

    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly DisposeOnce _dispose = new();
    private readonly List<Task> _loops = [];
    private readonly TaskCompletionSource<ConsulCatalogView> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, ServiceState> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DatacenterState> _gatewayDcs = new(StringComparer.Ordinal);

    private string? _datacenter;
    private string? _trustDomain;
    private ImmutableArray<string>? _datacenters;
    private bool _catalogReady;
    private ImmutableSortedDictionary<string, ConsulResolverView>? _resolvers;
    private ConsulCatalogView? _current;
    private long _published;
    private long _errors;
    private bool _started;

    /// <summary>Creates a watcher; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="client">The Consul client (not disposed by the watcher).</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="timeProvider">Clock for rate limits, backoff and polling; <see cref="TimeProvider.System"/> when null.</param>
    public ConsulCatalogWatcher(ConsulClient client, ConsulCatalogWatcherOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _options = options ?? new ConsulCatalogWatcherOptions();
        _options.BlockingQuery.Validate();
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

    /// <summary>How many views have been published.</summary>
    public long PublishedCount => Interlocked.Read(ref _published);

    /// <summary>How many Consul requests failed so far (each is also reported to <see cref="ErrorObserved"/>).</summary>
    public long ErrorCount => Interlocked.Read(ref _errors);

    /// <summary>Called for each failed request with what was being watched (e.g. <c>health/connect/api</c>) and the error. Must not throw.</summary>
    public Action<string, Exception>? ErrorObserved { get; set; }

    /// <summary>Resolves the local datacenter and starts every watch in the background.</summary>
    /// <param name="cancellationToken">Cancels the start (not the watches: <see cref="DisposeAsync"/> stops those).</param>
    /// <returns>A task that completes once the watches run.</returns>
    /// <exception cref="ConsulException">The local datacenter could not be read from <c>/v1/agent/self</c>
    /// (set <see cref="ConsulCatalogWatcherOptions.Datacenter"/> or grant <c>agent:read</c>).</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
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
        if (dc.Length == 0)
        {
            ConsulResponse<ConsulAgentSelf> self = await _client.GetAgentSelfAsync(cancellationToken).ConfigureAwait(false);
            dc = self.Value.Config?.Datacenter ?? throw new InvalidOperationException("/v1/agent/self has no Config.Datacenter.");
        }

        CancellationToken stop = _stop.Token;
        lock (_gate)
        {
            _datacenter = dc;
            _loops.Add(RunQuery("connect/ca/roots", (q, ct) => _client.GetCaRootsAsync(q, ct), OnRoots, null, stop));
            _loops.Add(RunQuery("catalog/services", (q, ct) => _client.GetServicesAsync(q, ct), OnLocalCatalog, null, stop));
            _loops.Add(RunQuery("config/service-resolver", (q, ct) => _client.ListServiceResolversAsync(q, ct), OnResolvers, null, stop));
            _loops.Add(Task.Run(() => PollDatacentersAsync(stop), CancellationToken.None));
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
            loops = [.. _loops, .. _services.Values.Select(s => s.Loop), .. _gatewayDcs.Values.SelectMany(d => d.Names.Values.Select(n => n.Loop).Append(d.Loop))];
        }

        await Task.WhenAll(loops.Where(t => t is not null)).ConfigureAwait(false);
        _views.Writer.TryComplete();
        _first.TrySetCanceled(CancellationToken.None);
        _stop.Dispose();
    }

    private Task RunQuery<T>(string source, Func<ConsulQuery, CancellationToken, Task<ConsulResponse<T>>> fetch, Action<T> onChange, Action? onError, CancellationToken cancellationToken)
    {
        var query = new BlockingQuery<T>(fetch, _options.BlockingQuery, null, _time)
        {
            ErrorObserved = (ex, _) =>
            {
                Interlocked.Increment(ref _errors);
                ErrorObserved?.Invoke(source, ex);
                onError?.Invoke();
            },
        };
        return Task.Run(() => query.RunAsync((r, _) =>
        {
            onChange(r.Value);
            return ValueTask.CompletedTask;
        }, cancellationToken), CancellationToken.None);
    }

    private void OnRoots(ConsulCaRoots roots)
    {
        lock (_gate)
        {
            if (!string.IsNullOrEmpty(roots.TrustDomain))
            {
                _trustDomain = roots.TrustDomain;
            }

            PublishLocked();
        }
    }

    private void OnResolvers(IReadOnlyList<ConsulServiceResolver> resolvers)
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

        lock (_gate)
        {
            _resolvers = builder.ToImmutable();
            PublishLocked();
        }
    }

    private void OnLocalCatalog(IReadOnlyDictionary<string, List<string>> services)
    {
        lock (_gate)
        {
            foreach (string gone in _services.Keys.Where(n => !services.ContainsKey(n)).ToList())
            {
                Retire(_services[gone].Cancel, _services[gone].Loop);
                _services.Remove(gone);
            }

            foreach (string name in services.Keys)
            {
                if (_services.ContainsKey(name) || _stop.IsCancellationRequested)
                {
                    continue;
                }

                var state = new ServiceState(CancellationTokenSource.CreateLinkedTokenSource(_stop.Token));
                _services[name] = state;
                string dc = _datacenter!;
                state.Loop = RunQuery(
                    "health/connect/" + name,
                    (q, ct) => _client.GetHealthConnectAsync(name, q, ct),
                    entries => OnServiceInstances(name, state, entries),
                    null,
                    state.Cancel.Token);
            }

            _catalogReady = true;
            PublishLocked();
        }
    }

    private void OnServiceInstances(string name, ServiceState state, IReadOnlyList<CatalogServiceInstance> entries)
    {
        lock (_gate)
        {
            if (!_services.TryGetValue(name, out ServiceState? current) || current != state)
            {
                return;
            }

            state.Instances = CatalogInstances.Sorted(entries, gatewaysOnly: false);
            PublishLocked();
        }
    }

    private async Task PollDatacentersAsync(CancellationToken cancellationToken)
    {
        int failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan delay = _options.DatacenterPollInterval;
            try
            {
                ConsulResponse<IReadOnlyList<string>> response = await _client.GetDatacentersAsync(cancellationToken).ConfigureAwait(false);
                failures = 0;
                OnDatacenters(response.Value);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _errors);
                ErrorObserved?.Invoke("catalog/datacenters", ex);
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
        lock (_gate)
        {
            _datacenters = [.. datacenters.Where(d => !string.IsNullOrEmpty(d)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            var wanted = _datacenters.Value.Where(d => d != _datacenter || _options.WatchLocalGateways).ToHashSet(StringComparer.Ordinal);
            foreach (string gone in _gatewayDcs.Keys.Where(d => !wanted.Contains(d)).ToList())
            {
                Retire(_gatewayDcs[gone].Cancel, _gatewayDcs[gone].Loop);
                _gatewayDcs.Remove(gone);
            }

            foreach (string dc in wanted)
            {
                if (_gatewayDcs.ContainsKey(dc) || _stop.IsCancellationRequested)
                {
                    continue;
                }

                var state = new DatacenterState(dc, CancellationTokenSource.CreateLinkedTokenSource(_stop.Token));
                _gatewayDcs[dc] = state;
                state.Loop = RunQuery(
                    "catalog/services?dc=" + dc,
                    (q, ct) => _client.GetServicesAsync(q with { Datacenter = dc, Filter = GatewayCatalogFilter }, ct),
                    names => OnGatewayCatalog(state, names),
                    () => MarkDiscovered(state),
                    state.Cancel.Token);
            }

            PublishLocked();
        }
    }

    private void MarkDiscovered(DatacenterState state)
    {
        lock (_gate)
        {
            state.CatalogAnswered = true;
            PublishLocked();
        }
    }

    private void OnGatewayCatalog(DatacenterState state, IReadOnlyDictionary<string, List<string>> names)
    {
        List<string> toProbe;
        CancellationToken cancel;
        lock (_gate)
        {
            if (state.Cancel.IsCancellationRequested)
            {
                return;
            }

            // Taken under the lock while the source is live: a retired datacenter's source is disposed once its loop
            // ends, and reading .Token then would throw ObjectDisposedException inside the probe.
            cancel = state.Cancel.Token;

            foreach (string gone in state.Names.Keys.Where(n => !names.ContainsKey(n)).ToList())
            {
                Retire(state.Names[gone].Cancel, state.Names[gone].Loop);
                state.Names.Remove(gone);
            }

            state.NotGateways.IntersectWith(names.Keys);
            toProbe = [.. names.Keys.Where(n => !state.Names.ContainsKey(n) && !state.NotGateways.Contains(n) && !state.Probing.Contains(n))];
            state.Probing.UnionWith(toProbe);
            state.CatalogAnswered = true;
            PublishLocked();
        }

        if (toProbe.Count > 0)
        {
            _ = Task.Run(() => ProbeAsync(state, toProbe, cancel), CancellationToken.None);
        }
    }

    private async Task ProbeAsync(DatacenterState state, List<string> names, CancellationToken cancellationToken)
    {
        foreach (string name in names)
        {
            bool isGateway = false;
            try
            {
                ConsulResponse<IReadOnlyList<CatalogServiceInstance>> probe = await _client.GetHealthServiceAsync(
                    name, passingOnly: false, new ConsulQuery { Datacenter = state.Datacenter, Filter = GatewayHealthFilter }, cancellationToken).ConfigureAwait(false);
                isGateway = probe.Value.Any(e => e.Service.Kind == CatalogInstances.MeshGatewayKind);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Unknown: watch it anyway; the watch settles whether it holds gateways.
                Interlocked.Increment(ref _errors);
                ErrorObserved?.Invoke("health/service/" + name + "?dc=" + state.Datacenter, ex);
                isGateway = true;
            }

            lock (_gate)
            {
                state.Probing.Remove(name);
                if (state.Cancel.IsCancellationRequested)
                {
                    return;
                }

                if (!isGateway)
                {
                    state.NotGateways.Add(name);
                }
                else if (!state.Names.ContainsKey(name))
                {
                    var nameState = new GatewayNameState(CancellationTokenSource.CreateLinkedTokenSource(state.Cancel.Token));
                    state.Names[name] = nameState;
                    nameState.Loop = RunQuery(
                        "health/service/" + name + "?dc=" + state.Datacenter,
                        (q, ct) => _client.GetHealthServiceAsync(name, passingOnly: false, q with { Datacenter = state.Datacenter, Filter = GatewayHealthFilter }, ct),
                        entries => OnGateways(state, name, nameState, entries),
                        () => OnGatewayError(nameState),
                        nameState.Cancel.Token);
                }

                PublishLocked();
            }
        }
    }

    private void OnGatewayError(GatewayNameState nameState)
    {
        lock (_gate)
        {
            nameState.Answered = true;
            PublishLocked();
        }
    }

    private void OnGateways(DatacenterState state, string name, GatewayNameState nameState, IReadOnlyList<CatalogServiceInstance> entries)
    {
        lock (_gate)
        {
            if (!state.Names.TryGetValue(name, out GatewayNameState? current) || current != nameState)
            {
                return;
            }

            nameState.Gateways = CatalogInstances.Sorted(entries, gatewaysOnly: true);
            nameState.Answered = true;
            PublishLocked();
        }
    }

    private static void Retire(CancellationTokenSource cancel, Task loop)
    {
        cancel.Cancel();
        _ = loop.ContinueWith(static (_, c) => ((CancellationTokenSource)c!).Dispose(), cancel, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void PublishLocked()
    {
        if (_stop.IsCancellationRequested || DescribeMissingLocked() is not null)
        {
            return;
        }

        var services = ImmutableSortedDictionary.CreateBuilder<string, ConsulServiceView>(StringComparer.Ordinal);
        foreach ((string name, ServiceState state) in _services)
        {
            if (state.Instances is { Length: > 0 } instances)
            {
                services[name] = new ConsulServiceView
                {
                    Name = name,
                    Instances = instances,
                    Resolver = _resolvers!.TryGetValue(name, out ConsulResolverView? resolver) ? resolver : null,
                };
            }
        }

        var remote = ImmutableSortedDictionary.CreateBuilder<string, ImmutableArray<CatalogServiceInstance>>(StringComparer.Ordinal);
        ImmutableArray<CatalogServiceInstance> local = [];
        foreach ((string dc, DatacenterState state) in _gatewayDcs)
        {
            ImmutableArray<CatalogServiceInstance> gateways = CatalogInstances.Sorted(state.Names.Values.SelectMany(n => n.Gateways), gatewaysOnly: false);
            if (dc == _datacenter)
            {
                local = gateways;
            }
            else if (gateways.Length > 0)
            {
                remote[dc] = gateways;
            }
        }

        var view = new ConsulCatalogView
        {
            TrustDomain = _trustDomain!,
            Datacenter = _datacenter!,
            Datacenters = _datacenters!.Value,
            Services = services.ToImmutable(),
            LocalGateways = local,
            RemoteGateways = remote.ToImmutable(),
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

        if (!_catalogReady)
        {
            return "no answer yet from /v1/catalog/services";
        }

        if (_resolvers is null)
        {
            return "no answer yet from /v1/config/service-resolver";
        }

        string? service = _services.FirstOrDefault(p => p.Value.Instances is null).Key;
        if (service is not null)
        {
            return $"no answer yet from /v1/health/connect/{service}";
        }

        DatacenterState? dc = _gatewayDcs.Values.FirstOrDefault(d => !d.CatalogAnswered || d.Probing.Count > 0 || d.Names.Values.Any(n => !n.Answered));
        return dc is null ? null : $"mesh gateways of datacenter '{dc.Datacenter}' not discovered yet";
    }

    private sealed class ServiceState(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Loop { get; set; } = Task.CompletedTask;

        public ImmutableArray<CatalogServiceInstance>? Instances { get; set; }
    }

    private sealed class DatacenterState(string datacenter, CancellationTokenSource cancel)
    {
        public string Datacenter { get; } = datacenter;

        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Loop { get; set; } = Task.CompletedTask;

        public bool CatalogAnswered { get; set; }

        public HashSet<string> Probing { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, GatewayNameState> Names { get; } = new(StringComparer.Ordinal);

        public HashSet<string> NotGateways { get; } = new(StringComparer.Ordinal);
    }

    private sealed class GatewayNameState(CancellationTokenSource cancel)
    {
        public CancellationTokenSource Cancel { get; } = cancel;

        public Task Loop { get; set; } = Task.CompletedTask;

        public bool Answered { get; set; }

        public ImmutableArray<CatalogServiceInstance> Gateways { get; set; } = [];
    }
}
