using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MeshGateway.Consul;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MeshGateway.Peering;

/// <summary>Hosting registration of the in-process peering terminator.</summary>
public static class MeshGatewayPeeringBuilderExtensions
{
    /// <summary>
    /// Terminates cluster peering's HTTP-like exports in process: registers an <see cref="IMeshGatewayPeeringConnectionTerminator"/>
    /// that <c>UseConsulCatalog</c> routes each such export's form-8 name to, and that builds the <see cref="PeeringSnapshot"/>
    /// from Consul after every conversion (the gateway's leaf and the CA roots from the agent, the peers' CA certificates from
    /// the peering reads, each exported service's compiled discovery chain, the healthy sidecars of each chain target from
    /// the catalog view). The token needs <c>mesh:write</c> (the <c>mesh-gateway</c> leaf) and <c>service:read</c>.
    /// Added once, however often it is called.
    /// </summary>
    /// <param name="builder">The gateway builder.</param>
    /// <param name="configure">Terminator options (handshake timeout, clock); optional. The logger factory comes from the container.</param>
    /// <returns>The builder.</returns>
    public static IMeshGatewayBuilder AddMeshGatewayPeering(this IMeshGatewayBuilder builder, Action<PeeringTerminatorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton(sp =>
        {
            var options = new PeeringTerminatorOptions
            {
                LoggerFactory = sp.GetService<ILoggerFactory>(),
                TimeProvider = sp.GetService<TimeProvider>(),
                LogRateLimit = sp.GetService<Microsoft.Extensions.Options.IOptions<MeshGatewayOptions>>()?.Value.LogRateLimit ?? new PeeringTerminatorOptions().LogRateLimit,
            };
            configure?.Invoke(options);
            return new ConsulPeeringFeed(options, sp.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        });
        builder.Services.TryAddSingleton<IMeshGatewayPeeringConnectionTerminator>(static sp => sp.GetRequiredService<ConsulPeeringFeed>());
        return builder;
    }
}

/// <summary>
/// Feeds a <see cref="PeeringTerminator"/> from Consul for a hosted gateway. <see cref="ExportsChanged"/> only records the
/// newest update and starts one background worker if none runs (at most one build at a time; updates arriving meanwhile
/// are coalesced to the newest), so the route source's loop never waits on Consul. Rotation: the gateway's leaf and the
/// CA roots are watched with blocking queries on the agent's cached endpoints (as Consul's proxycfg watches them for
/// Envoy: <c>leafWatchID</c>, <c>rootsWatchID</c>), started by the first build that needs them; a changed answer schedules
/// a build, so a rotated leaf or root reaches new handshakes without a catalog change, and builds reuse the watched
/// answers instead of asking again. A build is also scheduled at half the leaf's remaining validity, a backstop should
/// the watch be failing. Established connections keep their session (<see cref="PeeringTerminator.Update"/>).
/// Until the first snapshot is applied, connections routed here are reset (Consul builds no filter chain before it has a leaf).
/// </summary>
internal sealed class ConsulPeeringFeed : ConnectionTerminator, IMeshGatewayPeeringConnectionTerminator, IAsyncDisposable
{
    private static readonly TimeSpan s_retry = TimeSpan.FromSeconds(30);
    private readonly PeeringTerminatorOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private MeshGatewayPeeringUpdate? _pending;
    private volatile MeshGatewayPeeringUpdate? _last;
    private (string Pem, X509Certificate2 Leaf, X509Certificate2[] Chain)? _leafCache;
    private ConsulResponse<ConsulLeafCertificate>? _leafAnswer;
    private ConsulResponse<ConsulCaRoots>? _rootsAnswer;
    private string? _watchedService;
    private CancellationTokenSource? _watchStop;
    private Task _watches = Task.CompletedTask;
    private string? _lastWatchError;
    private bool _running;
    private Task _worker = Task.CompletedTask;
    private ITimer? _rebuild;
    private PeeringTerminator? _terminator;
    private TaskCompletionSource _applied = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly PeeringMetrics _metrics;

    public ConsulPeeringFeed(PeeringTerminatorOptions options, System.Diagnostics.Metrics.IMeterFactory? meterFactory = null)
    {
        _metrics = new PeeringMetrics(() => Current?.Counters, meterFactory);
        _options = options;
        _time = options.TimeProvider ?? TimeProvider.System;
        _logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("MeshGateway.Peering");
    }

    /// <inheritdoc />
    public ConnectionTerminator Terminator => this;

    /// <summary>The running terminator, or null before the first snapshot.</summary>
    internal PeeringTerminator? Current => Volatile.Read(ref _terminator);

    /// <summary>The last build's error, or null when it succeeded.</summary>
    internal string? LastError { get; private set; }

    /// <summary>The warnings of the last completed build (only the one background worker builds).</summary>
    private HashSet<string> _warned = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public void ExportsChanged(MeshGatewayPeeringUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_gate)
        {
            _pending = update;
            if (_running || _stop.IsCancellationRequested)
            {
                return;
            }

            _running = true;
            _worker = Task.Run(DrainAsync);
        }
    }

    /// <inheritdoc />
    public override Task RunAsync(TerminatedConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (Current is { } terminator)
        {
            return terminator.RunAsync(connection);
        }

        try
        {
            connection.Socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Closed already.
        }

        connection.Socket.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Completes once a snapshot satisfying <paramref name="predicate"/> is in force (tests; a signal, not a poll).</summary>
    internal async Task<PeeringSnapshot> WaitForSnapshotAsync(Func<PeeringSnapshot, bool> predicate, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task applied = Volatile.Read(ref _applied).Task;
            if (Current?.Snapshot is { } snapshot && predicate(snapshot))
            {
                return snapshot;
            }

            await applied.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the worker and the terminator (after the gateway listener stopped handing connections over).</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        Task worker;
        lock (_gate)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            _stop.Cancel();
            worker = _worker;
        }

        _rebuild?.Dispose();
        await worker.ConfigureAwait(false);
        Task watches;
        lock (_gate)
        {
            watches = _watches;
        }

        await watches.ConfigureAwait(false);
        _watchStop?.Dispose();
        if (Interlocked.Exchange(ref _terminator, null) is { } terminator)
        {
            await terminator.DisposeAsync().ConfigureAwait(false);
        }

        _metrics.Dispose();
        _stop.Dispose();
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            MeshGatewayPeeringUpdate? next;
            lock (_gate)
            {
                next = _pending;
                _pending = null;
                if (next is null || _stop.IsCancellationRequested)
                {
                    _running = false;
                    return;
                }
            }

            await ApplyAsync(next).ConfigureAwait(false);
        }
    }

    private async Task ApplyAsync(MeshGatewayPeeringUpdate update)
    {
        TimeSpan next = s_retry;
        try
        {
            _last = update;
            if (update.Exports.Count == 0 && Current is null)
            {
                // Nothing exported for termination: no leaf is needed (Consul asks for none either).
                return;
            }

            PeeringSnapshot snapshot = await BuildAsync(update, _stop.Token).ConfigureAwait(false);
            if (Current is { } terminator)
            {
                terminator.Update(snapshot);
            }
            else
            {
                Volatile.Write(ref _terminator, await PeeringTerminator.StartAsync(snapshot, _options, _stop.Token).ConfigureAwait(false));
            }

            LastError = null;
            TimeSpan remaining = snapshot.Leaf.NotAfter.ToUniversalTime() - _time.GetUtcNow().UtcDateTime;
            next = remaining > TimeSpan.FromMinutes(2) ? remaining / 2 : TimeSpan.FromMinutes(1);
            Interlocked.Exchange(ref _applied, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is ConsulException or CryptographicException or ArgumentException or InvalidOperationException or FormatException or System.Text.Json.JsonException or IOException)
        {
            LastError = ex.Message;
            PeeringLog.FeedFailed(_logger, ex.Message);
        }

        // Leaf renewal (or a retry after a failure) without waiting for a catalog change.
        lock (_gate)
        {
            if (!_stop.IsCancellationRequested)
            {
                _rebuild?.Dispose();
                _rebuild = _time.CreateTimer(static state => ((ConsulPeeringFeed)state!).Rebuild(), this, next, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Rebuild()
    {
        if (_last is { } last)
        {
            ExportsChanged(last);
        }
    }

    /// <summary>
    /// The leaf and roots for a build: the watched answers once the watches run for this service; otherwise read now
    /// (the same agent endpoints and typed answers the Connect dialer reads), and the watches started from them.
    /// </summary>
    private async Task<(ConsulLeafCertificate Leaf, ConsulCaRoots Roots)> CertificatesAsync(ConsulClient client, string service, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_watchedService == service && _leafAnswer is { } leaf && _rootsAnswer is { } roots)
            {
                return (leaf.Value, roots.Value);
            }
        }

        Task<ConsulResponse<ConsulLeafCertificate>> leafRead = client.GetLeafCertificateAsync(service, default, cancellationToken);
        Task<ConsulResponse<ConsulCaRoots>> rootsRead = client.GetAgentCaRootsAsync(default, cancellationToken);
        await Task.WhenAll(leafRead, rootsRead).ConfigureAwait(false);
        lock (_gate)
        {
            _leafAnswer = leafRead.Result;
            _rootsAnswer = rootsRead.Result;
            if (_watchedService != service && !_stop.IsCancellationRequested)
            {
                // A new gateway service name (in practice only the first build): watch that one instead.
                _watchStop?.Cancel();
                _watchStop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                _watchedService = service;
                CancellationToken stop = _watchStop.Token;
                Task previous = _watches;
                _watches = Task.WhenAll(
                    previous,
                    Watch(new BlockingQuery<ConsulLeafCertificate>((q, ct) => client.GetLeafCertificateAsync(service, q, ct), null, null, _time) { Seed = leafRead.Result }, "leaf certificate of " + service, a => _leafAnswer = a, stop),
                    Watch(new BlockingQuery<ConsulCaRoots>((q, ct) => client.GetAgentCaRootsAsync(q, ct), null, null, _time) { Seed = rootsRead.Result }, "CA roots", a => _rootsAnswer = a, stop));
            }
        }

        return (leafRead.Result.Value, rootsRead.Result.Value);
    }

    /// <summary>
    /// Runs one blocking watch, seeded with the answer the build just used: it blocks on that answer's index and publishes
    /// only a changed body, which replaces the one the builds use and schedules a build. Errors back off (BlockingQuery)
    /// and are logged once per distinct message (until the next change); the answers in use stay.
    /// </summary>
    private Task Watch<T>(BlockingQuery<T> query, string what, Action<ConsulResponse<T>> use, CancellationToken stop)
    {
        query.ErrorObserved = (ex, _) =>
        {
            string message = what + ": " + ex.Message;
            if (!string.Equals(Interlocked.Exchange(ref _lastWatchError, message), message, StringComparison.Ordinal))
            {
                PeeringLog.FeedWarning(_logger, "the watch of the " + message + " failed; retrying, the certificates in use stay");
            }
        };
        return query.RunAsync((answer, _) =>
        {
            lock (_gate)
            {
                use(answer);
            }

            Interlocked.Exchange(ref _lastWatchError, null);
            Rebuild();
            return ValueTask.CompletedTask;
        }, stop);
    }

    private async Task<PeeringSnapshot> BuildAsync(MeshGatewayPeeringUpdate update, CancellationToken cancellationToken)
    {
        // A warning repeats in every build while its cause stays (builds follow catalog changes): logged when it first
        // appears, again only after a build without it.
        var warned = new HashSet<string>(StringComparer.Ordinal);
        ConsulClient client = update.Client;
        ConsulCatalogView view = update.View;

        (ConsulLeafCertificate leafAnswer, ConsulCaRoots rootsAnswer) = await CertificatesAsync(client, update.GatewayServiceName, cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(leafAnswer.CertPEM) || string.IsNullOrEmpty(leafAnswer.PrivateKeyPEM))
        {
            throw new InvalidOperationException($"the agent returned a leaf certificate for '{update.GatewayServiceName}' without CertPEM or PrivateKeyPEM");
        }

        // The same leaf as last time (the agent renews it only near expiry) keeps its certificate objects: no key
        // import per conversion, and the terminator keeps one server certificate context.
        if (_leafCache is not { } cached || !string.Equals(cached.Pem, leafAnswer.CertPEM, StringComparison.Ordinal))
        {
            cached = (leafAnswer.CertPEM, PemCertificates.LoadLeaf(leafAnswer.CertPEM, leafAnswer.PrivateKeyPEM), [.. PemCertificates.LoadCertificates([leafAnswer.CertPEM]).Skip(1)]);
            _leafCache = cached;
        }

        (_, X509Certificate2 leaf, X509Certificate2[] intermediates) = cached;
        string[] rootPems = [.. (rootsAnswer.Roots ?? []).Select(static r => r.RootCert).OfType<string>().Where(static p => p.Length > 0)];
        if (rootPems.Length == 0)
        {
            throw new InvalidOperationException("the agent's Connect CA roots answer holds no root certificate");
        }

        string trustDomain = string.IsNullOrEmpty(rootsAnswer.TrustDomain) ? view.TrustDomain : rootsAnswer.TrustDomain;
        var bundles = new List<PeerTrustBundle>();
        foreach (string peer in update.Exports.Select(static e => e.Peer).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            ConsulPeering? peering = view.Peering?.Peerings.FirstOrDefault(p => string.Equals(p.Name, peer, StringComparison.Ordinal));
            string? peerDomain = PeerTrustDomain(peering?.PeerServerName);
            if (peering?.PeerCAPems is not { Count: > 0 } pems || peerDomain is null)
            {
                Warn(warned, $"peer '{peer}' has no CA certificates or trust domain yet (is the peering ACTIVE?): its exports are not served");
                continue;
            }

            try
            {
                bundles.Add(new PeerTrustBundle { PeerName = peer, TrustDomain = peerDomain, Roots = PemCertificates.LoadCertificates(pems) });
            }
            catch (CryptographicException ex)
            {
                Warn(warned, $"peer '{peer}' has unreadable PeerCAPems ({ex.Message}): its exports are not served");
            }
        }

        var services = new List<ExportedHttpService>();
        Dictionary<string, PeerTrustBundle> bundlesByPeer = bundles.ToDictionary(static b => b.PeerName, StringComparer.Ordinal);
        foreach (IGrouping<(string Service, string Namespace, string Partition), ConsulTerminatedExport> group in update.Exports
            .GroupBy(static e => (e.Service, e.Namespace, e.Partition)).OrderBy(static g => g.Key.Service, StringComparer.Ordinal))
        {
            ServiceConsumer[] consumers = [.. group.Where(e => bundles.Exists(b => b.PeerName == e.Peer)).Select(static e => new ServiceConsumer(e.Peer, e.Sni))];
            if (consumers.Length == 0)
            {
                continue;
            }

            (string name, string ns, string partition) = group.Key;
            FlattenedChain flat;
            try
            {
                System.Text.Json.JsonElement chainAnswer = (await client.GetDiscoveryChainAsync(name, default, cancellationToken).ConfigureAwait(false)).Value;
                flat = CompiledChainFlattener.Flatten(Encoding.UTF8.GetBytes(chainAnswer.GetRawText()), view.Datacenter, partition);
            }
            catch (Exception ex) when (ex is ConsulStatusException or ArgumentException or InvalidOperationException or FormatException or System.Text.Json.JsonException)
            {
                // One service's chain does not hold back the others (a transport failure still fails the whole build).
                Warn(warned, $"the discovery chain of '{name}' could not be read ({ex.Message}): it is not served");
                continue;
            }

            foreach (string warning in flat.Warnings)
            {
                Warn(warned, $"discovery chain of '{name}': {warning}");
            }

            var service = new ExportedHttpService
            {
                Name = name,
                Namespace = ns,
                Partition = partition,
                Protocol = group.First().Protocol,
                Consumers = consumers,
                Routes = flat.Routes,
                Targets = [.. flat.Targets.Select(t => new ChainTargetEndpoints
                {
                    Id = t.Id,
                    SpiffeId = ConsulSpiffeId.ForService(trustDomain, t.Namespace, t.Datacenter, t.Service, t.Partition),
                    ServerName = ConsulSniName.ForService(t.Service, t.Namespace, t.Partition, t.Datacenter, trustDomain, t.ServiceSubset).ToString(),
                    Endpoints = Sidecars(view, t),
                    FailoverTargetIds = t.FailoverTargetIds,
                })],
            };

            try
            {
                // Compiled alone first, as the snapshot will compile it: a route the terminator cannot apply (a regular
                // expression .NET does not take, an unknown retry condition) leaves this service out, not the snapshot.
                _ = new ServiceState(service, bundlesByPeer, new Dictionary<string, SidecarTarget>(StringComparer.Ordinal));
            }
            catch (ArgumentException ex)
            {
                Warn(warned, $"the discovery chain of '{name}' cannot be applied ({ex.Message}): it is not served");
                continue;
            }

            services.Add(service);
        }

        _warned = warned;
        return new PeeringSnapshot
        {
            Leaf = leaf,
            LeafIntermediates = intermediates,
            TrustDomain = trustDomain,
            LocalRoots = PemCertificates.LoadCertificates(rootPems),
            TrustBundles = bundles,
            Services = services,
        };
    }

    private void Warn(HashSet<string> warned, string what)
    {
        if (warned.Add(what) && !_warned.Contains(what))
        {
            PeeringLog.FeedWarning(_logger, what);
        }
    }

    /// <summary>
    /// The peer's trust domain from its server name: Consul names a peer's servers <c>server.&lt;dc&gt;.peering.&lt;trust
    /// domain&gt;</c> (connect.PeeringServerSAN, the peering token's <c>ServerName</c>, kept as <c>PeerServerName</c>).
    /// </summary>
    internal static string? PeerTrustDomain(string? peerServerName)
    {
        const string Marker = ".peering.";
        int at = peerServerName?.IndexOf(Marker, StringComparison.Ordinal) ?? -1;
        return at < 0 || !peerServerName!.StartsWith("server.", StringComparison.Ordinal) || at + Marker.Length >= peerServerName.Length
            ? null
            : peerServerName[(at + Marker.Length)..];
    }

    /// <summary>The healthy Connect instances (sidecar public listeners) of a chain target from the view, its subset filter applied.</summary>
    private static DnsEndPoint[] Sidecars(ConsulCatalogView view, ChainTargetReference target)
    {
        if (!string.Equals(target.Datacenter, view.Datacenter, StringComparison.Ordinal) || !view.Services.TryGetValue(target.Service, out ConsulServiceView? service))
        {
            return [];
        }

        ConsulSubsetFilter? filter = null;
        if (!string.IsNullOrEmpty(target.SubsetFilter) && !ConsulSubsetFilter.TryParse(target.SubsetFilter, out filter, out _))
        {
            return [];
        }

        var endpoints = new List<DnsEndPoint>();
        foreach (CatalogServiceInstance instance in service.Instances)
        {
            if (!instance.IsHealthy(target.OnlyPassing) || (filter is not null && !filter.Matches(instance)))
            {
                continue;
            }

            BestAddress best = BestAddress.Select(instance, wan: false);
            if (best.Port is > 0 and <= IPEndPoint.MaxPort && !string.IsNullOrEmpty(best.Address))
            {
                endpoints.Add(new DnsEndPoint(best.Address, best.Port));
            }
        }

        return [.. endpoints];
    }
}
