using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// A Connect-native upstream dialer: for a service identity registered with the local agent it dials an upstream
/// the way a Consul sidecar would (gateway mode, target, SNI) and returns a mutually authenticated TLS stream.
/// </summary>
/// <remarks>
/// <para>
/// Per dial: the mode is resolved with <see cref="MeshGatewayModeResolver"/> from <c>proxy-defaults/global</c>, the
/// caller's <c>service-defaults</c> (top level and <c>UpstreamConfig</c>), the caller's registration
/// (<c>Proxy.MeshGateway</c>, or <see cref="ConsulConnectDialerOptions.ProxyMeshGateway"/>), the upstream definition
/// and, when all of those are unset, the destination's <c>service-defaults</c> (docs/consul-behaviour.md §5.1). The target comes
/// from the catalog through <see cref="UpstreamTargetPlanner"/> (§5.2), and the SNI from <see cref="ConsulSniName"/>.
/// </para>
/// <para>
/// <b>What a dial asks the agent.</b> Nothing, for a target in the caller's datacenter once warmed up: the config entries
/// (<see cref="ConsulCatalogWatcher.ConfigEntries"/>), the local target's instances and the local and remote mesh gateways
/// (<see cref="ConsulCatalogWatcher.Current"/>) come from a <see cref="CatalogWatcher"/>, which keeps them current with a
/// fixed number of agent connections; the caller's own registration (<c>/v1/agent/service/&lt;id&gt;</c>) is read at start
/// and kept current by a hash-blocking query (<c>?hash=</c>). A target in another datacenter needs its instances
/// (<c>/v1/health/connect/&lt;name&gt;?dc=</c>: dialled directly in mode <c>none</c>, and their aggregate health is what a
/// gateway endpoint counts as in modes <c>local</c>/<c>remote</c>, as Consul's <c>OverrideHealth</c>); that answer is
/// cached per (datacenter, name) for <see cref="ConsulConnectDialerOptions.RemoteInstancesCacheDuration"/>. When the
/// cached picture says "no gateways" or (same datacenter) "no instances", the dial confirms that with the agent before
/// failing (a registration newer than the watcher's last gateway poll), with a non-empty answer cached the same way
/// (an empty one is not reused, so a dial that fails for want of gateways asks again next time). The
/// watcher's data is eventually consistent: a config entry written just now reaches dials once the watcher has read it
/// (<see cref="ConsulCatalogWatcher.ConfigEntriesUpdated"/>), typically within milliseconds.
/// </para>
/// <para>
/// The client certificate and the CA roots come from the local agent (<c>/v1/agent/connect/ca/leaf/&lt;service&gt;</c>,
/// <c>/v1/agent/connect/ca/roots</c>) and are kept current by blocking queries (the agent rotates leaves before
/// expiry); a leaf within <see cref="ConsulConnectDialerOptions.RenewBeforeExpiry"/> of expiry is fetched again
/// before use. The server is accepted only if its chain ends in a Consul root (custom trust store, no system roots)
/// and its URI SAN is the expected <c>spiffe://&lt;td&gt;/ns/&lt;ns&gt;/dc/&lt;dc&gt;/svc/&lt;name&gt;</c>; the host
/// name is not checked, as in Consul's own client (<c>connect/tls.go</c>).
/// </para>
/// <para>
/// Agent connections: the dialer's own long-polls are three (leaf, roots, registration); a watcher it owns runs on a
/// second client with the same settings, so it has its own <see cref="ConsulClientOptions.MaxConnections"/> bound (at
/// most <c>3 + MaxConnections</c> agent connections in all, whatever the catalog size); or pass a watcher that runs on
/// another client (a gateway's, for example).
/// </para>
/// <para>Peered upstreams (<see cref="ConnectUpstream.Peer"/>, Consul 1.13+) follow Consul's sidecar (agent/xds/endpoints.go
/// <c>makeUpstreamLoadAssignmentForPeerService</c>, docs/consul-behaviour.md §5.2): the imported instances come from
/// <c>/v1/health/connect/&lt;name&gt;?peer=&lt;peer&gt;</c> (cached like a remote datacenter's), the mode is <c>remote</c> unless
/// <c>local</c> (unset and <c>none</c> dial the exporter's gateways at their WAN address, <c>local</c> the caller's gateways at
/// LAN), the SNI is the first <c>Connect.PeerMeta.SNI</c>, the server must chain to the peer's CA
/// (its <c>PeerCAPems</c>, taken from the watched peerings and parsed once per change; <c>/v1/peering/&lt;peer&gt;</c> only
/// while the watch has none) and carry one of <c>Connect.PeerMeta.SpiffeID</c>. Thread-safe.</para>
/// </remarks>
public sealed class ConsulConnectDialer : IAsyncDisposable
{
    private const string GatewayKind = "mesh-gateway";
    private const string GatewayCatalogFilter = "ServiceKind == \"mesh-gateway\"";
    private const string GatewayHealthFilter = "Service.Kind == \"mesh-gateway\"";
    private const int MaxCachedAnswers = 1024;
    private const string PeerKind = "peer";
    private static readonly ConsulConfigSnapshot EmptyConfig = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (IReadOnlyList<string> Pems, ConnectRoots Roots)> _peerRoots = new(StringComparer.Ordinal);
    private readonly ConsulClient _client;
    private readonly ConsulConnectDialerOptions _options;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _startGate = new();
    private Task? _start;
    private Task? _leafLoop;
    private Task? _rootsLoop;
    private volatile ConnectLeaf? _leaf;
    private volatile ConnectRoots? _roots;
    private string _datacenter = string.Empty;
    private string? _partition;
    private readonly CountSignal _leafUpdates = new();
    private readonly CountSignal _rootsUpdates = new();
    private long _registrationUpdates;
    private readonly ConsulCatalogWatcher? _givenWatcher;
    private volatile ConsulCatalogWatcher? _ownedWatcher;
    private ConsulClient? _ownedWatcherClient;
    private Task? _registrationLoop;
    private volatile RegistrationState? _registration;

    // Answers the view cannot give (another datacenter's instances, confirmations of "none"), by (kind, dc, name).
    private readonly Dictionary<(string Kind, string Datacenter, string Name), CachedAnswer> _answers = [];
    private readonly Lock _answersGate = new();

    /// <summary>
    /// Creates a dialer that owns a <see cref="ConsulCatalogWatcher"/> on <paramref name="client"/> (started by
    /// <see cref="StartAsync"/>, stopped by <see cref="DisposeAsync"/>, configured by <see cref="ConsulConnectDialerOptions.Catalog"/>);
    /// nothing is fetched until <see cref="StartAsync"/> or the first dial.
    /// </summary>
    /// <param name="client">A client of the local agent (not disposed by the dialer).</param>
    /// <param name="options">The options (validated here).</param>
    /// <exception cref="ArgumentException">An option is out of range, or the client allows fewer than
    /// <see cref="ConsulCatalogWatcherOptions.MinimumAgentConnections"/> connections for the watcher.</exception>
    public ConsulConnectDialer(ConsulClient client, ConsulConnectDialerOptions options)
        : this(client, options, null)
    {
    }

    /// <summary>Creates a dialer that reads the catalog and config entries from <paramref name="watcher"/>.</summary>
    /// <param name="client">A client of the local agent (not disposed by the dialer).</param>
    /// <param name="options">The options (validated here; <see cref="ConsulConnectDialerOptions.Catalog"/> is not used when a watcher is given).</param>
    /// <param name="watcher">A watcher of the same agent's datacenter, started and disposed by its owner (it may also feed a
    /// gateway's routes: the dialer reads <see cref="ConsulCatalogWatcher.Current"/>, never <see cref="ConsulCatalogWatcher.Views"/>);
    /// <see langword="null"/> makes the dialer create and own one on <paramref name="client"/>.</param>
    /// <exception cref="ArgumentException">An option is out of range, or (no watcher given) the client allows fewer than
    /// <see cref="ConsulCatalogWatcherOptions.MinimumAgentConnections"/> connections.</exception>
    public ConsulConnectDialer(ConsulClient client, ConsulConnectDialerOptions options, ConsulCatalogWatcher? watcher)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (watcher is null && client.Options.MaxConnections < ConsulCatalogWatcherOptions.MinimumAgentConnections)
        {
            throw new ArgumentException(
                $"The dialer's catalog watcher needs MaxConnections >= {ConsulCatalogWatcherOptions.MinimumAgentConnections} on the client; " +
                $"MaxConnections is {client.Options.MaxConnections}. Raise it or pass a watcher.", nameof(client));
        }

        _client = client;
        _options = options;
        _time = options.TimeProvider;
        _givenWatcher = watcher;
    }

    /// <summary>The watcher the dialer reads from: the one given, or the one it owns (created by <see cref="StartAsync"/>).</summary>
    public ConsulCatalogWatcher? CatalogWatcher => _givenWatcher ?? _ownedWatcher;

    /// <summary>How many times the caller's registration was read (the first included; a missing registration counts too).</summary>
    public long RegistrationUpdates => Interlocked.Read(ref _registrationUpdates);

    /// <summary>The local agent's datacenter (known after start).</summary>
    public string Datacenter => _datacenter;

    /// <summary>The trust domain of the current roots (known after start).</summary>
    public string? TrustDomain => _roots?.TrustDomain;

    /// <summary>The current client certificate (known after start).</summary>
    public X509Certificate2? Certificate => _leaf?.Certificate;

    /// <summary>How many times a leaf certificate was installed (the first included).</summary>
    public long LeafUpdates => _leafUpdates.Value;

    /// <summary>Completes once <see cref="LeafUpdates"/> is at least <paramref name="count"/> (a change signal for tests).</summary>
    internal Task WhenLeafUpdatesAtLeastAsync(long count, CancellationToken cancellationToken = default) => _leafUpdates.WhenAtLeastAsync(count, cancellationToken);

    /// <summary>How many times a roots answer was installed (the first included).</summary>
    public long RootsUpdates => _rootsUpdates.Value;

    /// <summary>Completes once <see cref="RootsUpdates"/> is at least <paramref name="count"/> (a change signal for tests).</summary>
    internal Task WhenRootsUpdatesAtLeastAsync(long count, CancellationToken cancellationToken = default) => _rootsUpdates.WhenAtLeastAsync(count, cancellationToken);

    /// <summary>
    /// Reads the agent's datacenter, the first leaf certificate, roots and the caller's registration, starts the blocking
    /// watches that keep them current and (when it owns one) the catalog watcher. Does not wait for the watcher's first
    /// view (the first dial does). Called by the first dial when not called before; calling it again returns the same task.
    /// </summary>
    /// <param name="cancellationToken">Cancels waiting (not the start itself once begun).</param>
    /// <returns>A task that completes when the dialer can dial.</returns>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_startGate)
        {
            ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
            if (_start is null || _start.IsFaulted || _start.IsCanceled)
            {
                _start = StartCoreAsync(_stop.Token);
            }

            return _start.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Dials <paramref name="upstream"/> and completes the mutual TLS handshake.</summary>
    /// <param name="upstream">The upstream.</param>
    /// <param name="cancellationToken">Cancels the dial.</param>
    /// <returns>The connection and a description of its path.</returns>
    /// <exception cref="ConnectNoGatewaysException">The mode needs gateways and none are registered.</exception>
    /// <exception cref="ConnectNoHealthyInstancesException">The target has no healthy instance.</exception>
    /// <exception cref="ConnectIdentityMismatchException">The server is not the expected service.</exception>
    /// <exception cref="ConnectTlsException">The handshake failed otherwise.</exception>
    /// <exception cref="ConnectDialException">No endpoint accepted the connection, or the upstream is unsupported.</exception>
    /// <exception cref="ConsulException">The agent could not be asked.</exception>
    public async Task<ConsulConnectConnection> DialAsync(ConnectUpstream upstream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentException.ThrowIfNullOrEmpty(upstream.Name);
        long started = _time.GetTimestamp();
        await StartAsync(cancellationToken).ConfigureAwait(false);
        if (!string.IsNullOrEmpty(upstream.Peer))
        {
            return await DialPeerAsync(upstream, started, cancellationToken).ConfigureAwait(false);
        }

        ConsulCatalogView view = await ViewAsync(cancellationToken).ConfigureAwait(false);
        ConsulConfigSnapshot config = CatalogWatcher!.ConfigEntries ?? EmptyConfig;
        ConnectLeaf leaf = await CurrentLeafAsync(cancellationToken).ConfigureAwait(false);
        ConnectRoots roots = _roots!;
        string callerDc = _datacenter;
        string targetDc = string.IsNullOrEmpty(upstream.Datacenter) ? callerDc : upstream.Datacenter;
        bool crossDc = !string.Equals(targetDc, callerDc, StringComparison.Ordinal);
        ConsulAgentService? registration = _registration?.Service;

        MeshUpstream model = Definition(upstream, registration, callerDc);
        MeshGatewayModeInputs inputs = Inputs(
            config.ProxyDefaults,
            config.ServiceDefaults.GetValueOrDefault(_options.Service),
            config.ServiceDefaults.GetValueOrDefault(upstream.Name),
            registration);
        MeshGatewayModeResolution resolution = MeshGatewayModeResolver.Resolve(inputs, model);
        var gatewayKey = new GatewayKey(targetDc, model.Partition);

        IReadOnlyList<CatalogServiceInstance> instances = crossDc
            ? await AnswerAsync("connect", targetDc, upstream.Name, cancellationToken).ConfigureAwait(false)
            : view.Services.TryGetValue(upstream.Name, out ConsulServiceView? local) ? local.Instances : [];
        var catalog = new MeshCatalogView
        {
            TargetInstances = instances,
            LocalGateways = view.LocalGateways,
            RemoteGateways = view.RemoteGateways.TryGetValue(targetDc, out ImmutableArray<CatalogServiceInstance> remote)
                ? new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [gatewayKey] = remote }
                : [],
        };
        var request = new UpstreamTargetRequest
        {
            CallerDatacenter = callerDc,
            CallerPartition = _partition,
            TrustDomain = roots.TrustDomain,
            Upstream = model,
            Mode = resolution.Mode,
            OnlyPassing = _options.OnlyPassing,
        };
        UpstreamTarget target = UpstreamTargetPlanner.Plan(request, catalog);

        // The watcher polls gateways and reacts to catalog changes within moments; before failing, ask the agent (cached).
        catalog = target.Error switch
        {
            UpstreamTargetError.NoLocalGateways => catalog with { LocalGateways = await AnswerAsync("gateways", callerDc, string.Empty, cancellationToken).ConfigureAwait(false) },
            UpstreamTargetError.NoTargetGateways => catalog with
            {
                RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>> { [gatewayKey] = await AnswerAsync("gateways", targetDc, string.Empty, cancellationToken).ConfigureAwait(false) },
            },
            UpstreamTargetError.NoTargetInstances when !crossDc => catalog with { TargetInstances = await AnswerAsync("connect", targetDc, upstream.Name, cancellationToken).ConfigureAwait(false) },
            _ => catalog,
        };
        if (!target.IsRoutable && target.Error is UpstreamTargetError.NoLocalGateways or UpstreamTargetError.NoTargetGateways or UpstreamTargetError.NoTargetInstances)
        {
            target = UpstreamTargetPlanner.Plan(request, catalog);
        }

        var path = new ConnectDialPath
        {
            Upstream = upstream,
            CallerDatacenter = callerDc,
            TargetDatacenter = targetDc,
            Resolution = resolution,
            DialKind = target.DialKind,
            Explanation = target.Explanation,
            Sni = target.Sni,
            ExpectedIdentity = ConsulSpiffeId.ForService(roots.TrustDomain, upstream.Namespace, targetDc, upstream.Name, upstream.Partition),
        };

        if (!target.IsRoutable)
        {
            throw target.Error switch
            {
                UpstreamTargetError.NoLocalGateways or UpstreamTargetError.NoTargetGateways => new ConnectNoGatewaysException(target.Explanation, path),
                UpstreamTargetError.NoTargetInstances => new ConnectNoHealthyInstancesException(
                    $"{upstream} has no Connect-capable instance in {targetDc} (sidecar proxy or Connect-native). {target.Explanation}", path),
                _ => new ConnectDialException(ConnectDialFailure.Unsupported, target.Explanation, path),
            };
        }

        List<UpstreamDialEndpoint> healthy = [.. target.Endpoints.Where(e => e.Healthy)];
        if (healthy.Count == 0)
        {
            throw new ConnectNoHealthyInstancesException(
                $"{upstream} has no healthy instance in {targetDc}{(target.DialKind is UpstreamDialKind.LocalGateways or UpstreamDialKind.TargetGateways ? ", so every gateway endpoint is unhealthy" : string.Empty)}. {target.Explanation}",
                path);
        }

        (Socket socket, UpstreamDialEndpoint endpoint) = await ConnectAnyAsync(healthy, path, cancellationToken).ConfigureAwait(false);
        path = path with { Endpoint = endpoint };
        return await HandshakeAsync(socket, leaf, roots, path, started, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A peered upstream (see the remarks): imported instances, mode <c>remote</c>/<c>local</c>, the peer's SNI, CA and identities.</summary>
    private async Task<ConsulConnectConnection> DialPeerAsync(ConnectUpstream upstream, long started, CancellationToken cancellationToken)
    {
        string peer = upstream.Peer!;
        ConsulCatalogView view = await ViewAsync(cancellationToken).ConfigureAwait(false);
        ConsulConfigSnapshot config = CatalogWatcher!.ConfigEntries ?? EmptyConfig;
        ConnectLeaf leaf = await CurrentLeafAsync(cancellationToken).ConfigureAwait(false);
        string callerDc = _datacenter;
        ConsulAgentService? registration = _registration?.Service;
        MeshUpstream model = Definition(upstream, registration, callerDc);

        // The destination's own service-defaults never count for a peered upstream (docs/consul-behaviour.md §5.1).
        MeshGatewayModeResolution resolution = MeshGatewayModeResolver.Resolve(
            Inputs(config.ProxyDefaults, config.ServiceDefaults.GetValueOrDefault(_options.Service), null, registration), model);
        IReadOnlyList<CatalogServiceInstance> imported = await AnswerAsync(PeerKind, peer, upstream.Name, cancellationToken).ConfigureAwait(false);
        var catalog = new MeshCatalogView { TargetInstances = imported, LocalGateways = view.LocalGateways, RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>() };
        var request = new UpstreamTargetRequest
        {
            CallerDatacenter = callerDc,
            CallerPartition = _partition,
            TrustDomain = _roots!.TrustDomain,
            Upstream = model,
            Mode = resolution.Mode,
            OnlyPassing = _options.OnlyPassing,
        };
        UpstreamTarget target = UpstreamTargetPlanner.Plan(request, catalog);
        if (target.Error == UpstreamTargetError.NoLocalGateways)
        {
            target = UpstreamTargetPlanner.Plan(request, catalog with { LocalGateways = await AnswerAsync("gateways", callerDc, string.Empty, cancellationToken).ConfigureAwait(false) });
        }

        List<string> identities = [.. imported.SelectMany(i => i.Service.PeerSpiffeIds).Where(id => id.Length > 0).Distinct(StringComparer.Ordinal)];
        var path = new ConnectDialPath
        {
            Upstream = upstream,
            CallerDatacenter = callerDc,
            TargetDatacenter = "peer " + peer,
            Resolution = resolution,
            DialKind = target.DialKind,
            Explanation = target.Explanation,
            Sni = target.Sni,
            ExpectedIdentity = identities.Count > 0 ? identities[0] : "(none: the imported instances carry no Connect.PeerMeta.SpiffeID)",
        };

        if (!target.IsRoutable)
        {
            throw target.Error switch
            {
                UpstreamTargetError.NoLocalGateways => new ConnectNoGatewaysException(target.Explanation, path),
                UpstreamTargetError.NoTargetInstances or UpstreamTargetError.NoPeerSni => new ConnectNoHealthyInstancesException(
                    $"{upstream} has no usable imported instance (/v1/health/connect/{upstream.Name}?peer={peer}). {target.Explanation}", path),
                _ => new ConnectDialException(ConnectDialFailure.Unsupported, target.Explanation, path),
            };
        }

        if (identities.Count == 0)
        {
            throw new ConnectDialException(ConnectDialFailure.Unsupported,
                $"{upstream}: the imported instances carry no Connect.PeerMeta.SpiffeID, so the server's identity cannot be checked.", path);
        }

        List<UpstreamDialEndpoint> healthy = [.. target.Endpoints.Where(e => e.Healthy)];
        if (healthy.Count == 0)
        {
            throw new ConnectNoHealthyInstancesException($"{upstream} has no healthy imported instance, so every endpoint is unhealthy. {target.Explanation}", path);
        }

        ConnectRoots peerRoots = await PeerRootsAsync(peer, view, cancellationToken).ConfigureAwait(false);
        (Socket socket, UpstreamDialEndpoint endpoint) = await ConnectAnyAsync(healthy, path, cancellationToken).ConfigureAwait(false);
        path = path with { Endpoint = endpoint };
        return await HandshakeAsync(socket, leaf, peerRoots, path, started, cancellationToken, identities).ConfigureAwait(false);
    }

    /// <summary>
    /// The peer's CA: its <c>PeerCAPems</c> from the watched view's peerings (read with each gateway poll), parsed once per
    /// distinct list; asked of the agent (<c>/v1/peering/&lt;peer&gt;</c>) only while the view has no CA for that peer
    /// (peering not read yet, or turned off in the watcher).
    /// </summary>
    private async ValueTask<ConnectRoots> PeerRootsAsync(string peer, ConsulCatalogView view, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? pems = null;
        foreach (ConsulPeering peering in view.Peering?.Peerings ?? [])
        {
            if (string.Equals(peering.Name, peer, StringComparison.Ordinal))
            {
                pems = peering.PeerCAPems;
                break;
            }
        }

        if (pems is not { Count: > 0 })
        {
            pems = (await _client.GetPeeringAsync(peer, cancellationToken).ConfigureAwait(false)).Value.PeerCAPems ?? [];
        }

        if (_peerRoots.TryGetValue(peer, out (IReadOnlyList<string> Pems, ConnectRoots Roots) cached) && (ReferenceEquals(cached.Pems, pems) || cached.Pems.SequenceEqual(pems, StringComparer.Ordinal)))
        {
            return cached.Roots;
        }

        ConnectRoots roots = ConnectRoots.FromPeer(peer, pems);
        _peerRoots[peer] = (pems, roots);
        return roots;
    }

    /// <summary>Stops the certificate, roots and registration watches, and the catalog watcher if the dialer owns it.</summary>
    /// <returns>A task that completes when the watches stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        lock (_startGate)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            _stop.Cancel();
        }

        foreach (Task? loop in (Task?[])[_start, _leafLoop, _rootsLoop, _registrationLoop])
        {
            if (loop is not null)
            {
                try
                {
                    await loop.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is OperationCanceledException or ConsulException or InvalidOperationException
                    or System.Security.Cryptography.CryptographicException or ArgumentException)
                {
                    // Stopping: the outcome of a start that failed (and was reported to its callers) is of no interest.
                }
            }
        }

        if (_ownedWatcher is { } owned)
        {
            await owned.DisposeAsync().ConfigureAwait(false);
        }

        _ownedWatcherClient?.Dispose();
        _stop.Dispose();
    }

    private async Task StartCoreAsync(CancellationToken stop)
    {
        ConsulAgentConfig config = (await _client.GetAgentSelfAsync(stop).ConfigureAwait(false)).Value.Config
            ?? throw new InvalidOperationException("The agent's /v1/agent/self answer has no Config.");
        _datacenter = config.Datacenter ?? throw new InvalidOperationException("The agent's /v1/agent/self answer names no Datacenter.");
        _partition = string.IsNullOrEmpty(config.Partition) ? null : config.Partition;

        if (_givenWatcher is null)
        {
            await StartOwnedWatcherAsync(stop).ConfigureAwait(false);
        }

        Task<ConsulResponse<ConsulLeafCertificate>> leaf = _client.GetLeafCertificateAsync(_options.Service, default, stop);
        Task<ConsulResponse<ConsulCaRoots>> roots = _client.GetAgentCaRootsAsync(default, stop);
        Task<ConsulResponse<ConsulAgentService?>> registration = FetchRegistrationAsync(default, stop);
        await Task.WhenAll(leaf, roots, registration).ConfigureAwait(false);
        Install(roots.Result.Value);
        Install(leaf.Result.Value);
        Install(registration.Result.Value);

        // Seeded with the answers just installed: the loops block on their indexes and install only real changes.
        var leafQuery = new BlockingQuery<ConsulLeafCertificate>(
            (q, ct) => _client.GetLeafCertificateAsync(_options.Service, q, ct), _options.Watch, LeafComparer.Instance, _time) { Seed = leaf.Result };
        var rootsQuery = new BlockingQuery<ConsulCaRoots>((q, ct) => _client.GetAgentCaRootsAsync(q, ct), _options.Watch, null, _time) { Seed = roots.Result };
        _leafLoop = leafQuery.RunAsync((r, _) => { Install(r.Value); return ValueTask.CompletedTask; }, stop);
        _rootsLoop = rootsQuery.RunAsync((r, _) => { InstallRootsQuietly(r.Value); return ValueTask.CompletedTask; }, stop);

        // The caller's registration by Consul's hash-based blocking (agent-local endpoint). Without a hash (the service
        // is not registered, or the agent sent none) each read is a poll, spaced by RegistrationPollInterval.
        var registrationQuery = new BlockingQuery<ConsulAgentService?>(
            async (q, ct) =>
            {
                if (q.Hash is null)
                {
                    await Task.Delay(_options.RegistrationPollInterval, _time, ct).ConfigureAwait(false);
                }

                return await FetchRegistrationAsync(q, ct).ConfigureAwait(false);
            },
            _options.Watch,
            null,
            _time)
        { ByContentHash = true, Seed = registration.Result };
        _registrationLoop = registrationQuery.RunAsync((r, _) => { Install(r.Value); return ValueTask.CompletedTask; }, stop);
    }

    private void Install(ConsulLeafCertificate answer)
    {
        ConnectLeaf? current = _leaf;
        if (current is not null && string.Equals(current.Serial, answer.SerialNumber, StringComparison.Ordinal))
        {
            return;
        }

        try
        {
            _leaf = ConnectLeaf.From(answer);
            _leafUpdates.Increment();
        }
        catch (Exception ex) when (current is not null && ex is InvalidOperationException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            // Keep the last good certificate; a bad answer never replaces it.
        }
    }

    private void Install(ConsulCaRoots answer)
    {
        _roots = ConnectRoots.From(answer);
        _rootsUpdates.Increment();
    }

    private void InstallRootsQuietly(ConsulCaRoots answer)
    {
        try
        {
            Install(answer);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            // Keep the last good roots.
        }
    }

    private async Task StartOwnedWatcherAsync(CancellationToken stop)
    {
        if (_ownedWatcher is { } previous)
        {
            // An earlier start failed after creating it; a watcher starts only once, so begin with a new one.
            _ownedWatcher = null;
            await previous.DisposeAsync().ConfigureAwait(false);
        }

        ConsulCatalogWatcherOptions given = _options.Catalog ?? new ConsulCatalogWatcherOptions();
        var options = new ConsulCatalogWatcherOptions
        {
            // The datacenter is known now, so the watcher need not ask /v1/agent/self again.
            Datacenter = given.Datacenter ?? _datacenter,
            BlockingQuery = given.BlockingQuery,
            DatacenterPollInterval = given.DatacenterPollInterval,
            GatewayPollInterval = given.GatewayPollInterval,
            VerificationSweepDelay = given.VerificationSweepDelay,
            WatchLocalGateways = given.WatchLocalGateways,
            ValidateAgentConnectionLimit = given.ValidateAgentConnectionLimit,
        };
        // Its own client (same settings, its own MaxConnections bound): the dialer's three long-polls (leaf, roots,
        // registration) on the same pool would leave the watcher's long-polls and refetches too few connections.
        _ownedWatcherClient ??= new ConsulClient(_client.Options);
        var watcher = new ConsulCatalogWatcher(_ownedWatcherClient, options, _time);
        _ownedWatcher = watcher;
        await watcher.StartAsync(stop).ConfigureAwait(false);
    }

    /// <summary>The watcher's current view, or its first one (bounded by <see cref="ConsulConnectDialerOptions.CatalogTimeout"/>).</summary>
    private async ValueTask<ConsulCatalogView> ViewAsync(CancellationToken cancellationToken)
    {
        ConsulCatalogWatcher watcher = CatalogWatcher!;
        ConsulCatalogView view;
        if (watcher.Current is { } current)
        {
            view = current;
        }
        else
        {
            try
            {
                view = await watcher.WaitForFirstViewAsync(_options.CatalogTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                throw new ConnectDialException(ConnectDialFailure.CatalogUnavailable,
                    $"The dialer has no catalog to dial from: {ex.Message} (ConsulConnectDialerOptions.CatalogTimeout).", null, ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ConnectDialException(ConnectDialFailure.CatalogUnavailable,
                    "The catalog watcher was stopped before it published a view.", null, ex);
            }
        }

        if (!string.Equals(view.Datacenter, _datacenter, StringComparison.Ordinal))
        {
            throw new ConnectDialException(ConnectDialFailure.CatalogUnavailable,
                $"The catalog watcher watches datacenter '{view.Datacenter}' but the dialer's agent is in '{_datacenter}'; give the dialer a watcher of its own agent's datacenter.");
        }

        return view;
    }

    /// <summary>
    /// An agent answer the view does not hold: <c>connect</c> (a service's Connect instances in a datacenter) or
    /// <c>gateways</c> (a datacenter's mesh gateways), shared by concurrent dials and cached for
    /// <see cref="ConsulConnectDialerOptions.RemoteInstancesCacheDuration"/>. A failed or empty answer is not reused.
    /// </summary>
    private async Task<IReadOnlyList<CatalogServiceInstance>> AnswerAsync(string kind, string datacenter, string name, CancellationToken cancellationToken)
    {
        TimeSpan ttl = _options.RemoteInstancesCacheDuration;
        if (ttl <= TimeSpan.Zero)
        {
            return await FetchAsync(kind, datacenter, name, cancellationToken).ConfigureAwait(false);
        }

        var key = (kind, datacenter, name);
        CachedAnswer answer;
        lock (_answersGate)
        {
            long now = _time.GetTimestamp();
            if (!_answers.TryGetValue(key, out answer!) || !answer.IsUsable(now))
            {
                if (_answers.Count >= MaxCachedAnswers)
                {
                    foreach (var stale in _answers.Where(p => !p.Value.IsUsable(now)).Select(p => p.Key).ToList())
                    {
                        _answers.Remove(stale);
                    }
                }

                // Fetched under the dialer's lifetime, not this dial's token, since other dials may share the answer.
                answer = new CachedAnswer(FetchAsync(kind, datacenter, name, _stop.Token), now + (long)(ttl.TotalSeconds * _time.TimestampFrequency));
                _answers[key] = answer;
            }
        }

        return await answer.Answer.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<CatalogServiceInstance>> FetchAsync(string kind, string datacenter, string name, CancellationToken cancellationToken)
    {
        if (kind == PeerKind)
        {
            // ?peer= reads what was imported from that peer (the "datacenter" of the cache key is the peer's name).
            return (await _client.GetHealthConnectAsync(name, new ConsulQuery { Peer = datacenter }, cancellationToken).ConfigureAwait(false)).Value;
        }

        string? dc = datacenter == _datacenter ? null : datacenter;
        if (kind == "gateways")
        {
            return await GatewaysAsync(dc, cancellationToken).ConfigureAwait(false);
        }

        IReadOnlyList<CatalogServiceInstance> entries = (await _client.GetHealthConnectAsync(name, new ConsulQuery { Datacenter = dc }, cancellationToken).ConfigureAwait(false)).Value;
        return [.. entries.Select(e => WithDatacenter(e, datacenter))];
    }

    /// <summary>Reads the caller's registration; a missing one (404) is an answer too ("no registration-level settings").</summary>
    private async Task<ConsulResponse<ConsulAgentService?>> FetchRegistrationAsync(ConsulQuery query, CancellationToken cancellationToken)
    {
        try
        {
            ConsulResponse<ConsulAgentService> response = await _client.GetAgentServiceAsync(_options.ServiceId ?? _options.Service, query, cancellationToken).ConfigureAwait(false);
            return new ConsulResponse<ConsulAgentService?>(response.Value, response.Index) { ContentHash = response.ContentHash, BodyHash = response.BodyHash };
        }
        catch (ConsulNotFoundException)
        {
            return new ConsulResponse<ConsulAgentService?>(null, 0);
        }
    }

    private void Install(ConsulAgentService? registration)
    {
        _registration = new RegistrationState(registration);
        Interlocked.Increment(ref _registrationUpdates);
    }

    private async Task<ConnectLeaf> CurrentLeafAsync(CancellationToken cancellationToken)
    {
        ConnectLeaf leaf = _leaf!;
        if (_time.GetUtcNow() < leaf.ValidBefore - _options.RenewBeforeExpiry)
        {
            return leaf;
        }

        // The watch has not delivered a successor in time (agent unreachable for a while, or a short-lived leaf):
        // ask directly rather than dial with a certificate about to expire.
        Install((await _client.GetLeafCertificateAsync(_options.Service, default, cancellationToken).ConfigureAwait(false)).Value);
        return _leaf!;
    }

    private MeshUpstream Definition(ConnectUpstream upstream, ConsulAgentService? registration, string callerDc)
    {
        MeshUpstream model = upstream.ToModel();
        if (model.MeshGateway.IsSet)
        {
            return model;
        }

        foreach (ConsulUpstream candidate in registration?.Proxy?.Upstreams ?? [])
        {
            if (candidate.DestinationType is null or "" or "service"
                && Same(candidate.DestinationName, upstream.Name)
                && SameDatacenter(candidate.Datacenter, upstream.Datacenter, callerDc)
                && SameOrDefault(candidate.DestinationNamespace, upstream.Namespace)
                && SameOrDefault(candidate.DestinationPartition, upstream.Partition)
                && Same(candidate.DestinationPeer ?? string.Empty, upstream.Peer ?? string.Empty)
                && MeshGatewayMode.FromConsul(candidate.MeshGateway?.Mode) is { IsSet: true } fromRegistration)
            {
                return model with { MeshGateway = fromRegistration };
            }
        }

        foreach (ConnectUpstream candidate in _options.Upstreams)
        {
            if (Same(candidate.Name, upstream.Name)
                && SameDatacenter(candidate.Datacenter, upstream.Datacenter, callerDc)
                && SameOrDefault(candidate.Namespace, upstream.Namespace)
                && SameOrDefault(candidate.Partition, upstream.Partition)
                && candidate.MeshGateway.IsSet)
            {
                return model with { MeshGateway = candidate.MeshGateway };
            }
        }

        return model;
    }

    private MeshGatewayModeInputs Inputs(ConsulProxyDefaults? proxyDefaults, ConsulServiceDefaults? callerDefaults, ConsulServiceDefaults? destinationDefaults, ConsulAgentService? registration)
    {
        var overrides = new List<UpstreamModeOverride>();
        foreach (ConsulUpstreamConfig entry in callerDefaults?.UpstreamConfig?.Overrides ?? [])
        {
            overrides.Add(new UpstreamModeOverride
            {
                Name = entry.Name ?? string.Empty,
                Namespace = entry.Namespace,
                Partition = entry.Partition,
                Peer = entry.Peer ?? entry.PeerName,
                MeshGateway = MeshGatewayMode.FromConsul(entry.MeshGateway?.Mode),
            });
        }

        return new MeshGatewayModeInputs
        {
            ProxyDefaults = MeshGatewayMode.FromConsul(proxyDefaults?.MeshGateway?.Mode),
            ServiceDefaults = MeshGatewayMode.FromConsul(callerDefaults?.MeshGateway?.Mode),
            UpstreamDefaults = MeshGatewayMode.FromConsul(callerDefaults?.UpstreamConfig?.Defaults?.MeshGateway?.Mode),
            ProxyRegistration = _options.ProxyMeshGateway.IsSet ? _options.ProxyMeshGateway : MeshGatewayMode.FromConsul(registration?.Proxy?.MeshGateway?.Mode),
            UpstreamOverrides = overrides,
            DestinationServiceDefaults = MeshGatewayMode.FromConsul(destinationDefaults?.MeshGateway?.Mode),
            CallerPartition = _partition,
        };
    }

    private async Task<IReadOnlyList<CatalogServiceInstance>> GatewaysAsync(string? datacenter, CancellationToken cancellationToken)
    {
        // docs/consul-behaviour.md §8.3: kind-filtered service names, then kind-filtered health entries per name.
        IReadOnlyDictionary<string, List<string>> names = (await _client.GetServicesAsync(
            new ConsulQuery { Datacenter = datacenter, Filter = GatewayCatalogFilter }, cancellationToken).ConfigureAwait(false)).Value;
        var gateways = new List<CatalogServiceInstance>();
        foreach (string name in names.Keys.Order(StringComparer.Ordinal))
        {
            IReadOnlyList<CatalogServiceInstance> entries = (await _client.GetHealthServiceAsync(
                name, passingOnly: false, new ConsulQuery { Datacenter = datacenter, Filter = GatewayHealthFilter }, cancellationToken).ConfigureAwait(false)).Value;
            foreach (CatalogServiceInstance entry in entries)
            {
                if (entry.Service.Kind == GatewayKind)
                {
                    gateways.Add(WithDatacenter(entry, datacenter ?? _datacenter));
                }
            }
        }

        return gateways;
    }

    private async Task<(Socket Socket, UpstreamDialEndpoint Endpoint)> ConnectAnyAsync(List<UpstreamDialEndpoint> endpoints, ConnectDialPath path, CancellationToken cancellationToken)
    {
        // Start at a random endpoint so callers spread over instances/gateways, then try the others in order.
        int first = Random.Shared.Next(endpoints.Count);
        var errors = new List<string>();
        for (int i = 0; i < endpoints.Count; i++)
        {
            UpstreamDialEndpoint endpoint = endpoints[(first + i) % endpoints.Count];
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ConnectTimeout);
            try
            {
                EndPoint remote = IPAddress.TryParse(endpoint.Address, out IPAddress? ip) ? new IPEndPoint(ip, endpoint.Port) : new DnsEndPoint(endpoint.Address, endpoint.Port);
                await socket.ConnectAsync(remote, timeout.Token).ConfigureAwait(false);
                return (socket, endpoint);
            }
            catch (Exception ex) when (ex is SocketException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                socket.Dispose();
                errors.Add($"{endpoint.Address}:{endpoint.Port} ({(ex is SocketException se ? se.SocketErrorCode.ToString() : "timed out after " + _options.ConnectTimeout)})");
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw new ConnectDialException(ConnectDialFailure.Unreachable,
            $"No endpoint for {path.Upstream} accepted a connection ({path.DialKind}): {string.Join(", ", errors)}.", path);
    }

    private async Task<ConsulConnectConnection> HandshakeAsync(Socket socket, ConnectLeaf leaf, ConnectRoots roots, ConnectDialPath path, long started, CancellationToken cancellationToken, IReadOnlyList<string>? identities = null)
    {
        identities ??= [path.ExpectedIdentity];
        var network = new NetworkStream(socket, ownsSocket: true);
        var tls = new SslStream(network, leaveInnerStreamOpen: false);
        List<string>? mismatch = null;
        string? chainProblem = null;
        bool serverVerified = false;
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.AddRange(roots.Roots);
        policy.ExtraStore.AddRange(roots.Intermediates);
        var options = new SslClientAuthenticationOptions
        {
            // The SNI is the routing key of every mesh gateway on the way (docs/consul-behaviour.md §2, §3).
            TargetHost = path.Sni,
            ClientCertificateContext = leaf.Context,
            CertificateChainPolicy = policy,
            EnabledSslProtocols = _options.EnabledSslProtocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                // The host name is not part of a Connect identity: only the chain and the SPIFFE URI count.
                SslPolicyErrors relevant = errors & ~SslPolicyErrors.RemoteCertificateNameMismatch;
                if (relevant != SslPolicyErrors.None || certificate is not X509Certificate2 presented)
                {
                    chainProblem = $"{relevant}{(chain is null ? string.Empty : " (" + string.Join("; ", chain.ChainStatus.Select(s => s.Status + ": " + s.StatusInformation.Trim())) + ")")}";
                    return false;
                }

                List<string> uris = SpiffeUriSan.Read(presented);
                if (!uris.Exists(u => identities.Any(id => SpiffeUriSan.Matches(u, id))))
                {
                    mismatch = uris;
                    return false;
                }

                serverVerified = true;
                return true;
            },
        };

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.HandshakeTimeout);
        try
        {
            await tls.AuthenticateAsClientAsync(options, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            if (mismatch is not null)
            {
                throw new ConnectIdentityMismatchException(path.ExpectedIdentity, mismatch, path, ex);
            }

            bool rejectedClient = chainProblem is null && ex is not OperationCanceledException && (serverVerified || IsCertificateAlert(ex));
            string why = chainProblem is not null
                ? "the server certificate does not chain to the Consul CA roots: " + chainProblem
                : ex is OperationCanceledException
                    ? $"the handshake did not finish within {_options.HandshakeTimeout}"
                    : rejectedClient
                        // The server ended the handshake over our certificate (a certificate alert, or after proving its own
                        // identity). Consul's proxies do that when an intention denies the caller (connect/tls.go).
                        ? $"the server refused the client certificate of '{_options.Service}': an intention may deny {_options.Service} → {path.Upstream.Name}, or the server does not trust this leaf ({Innermost(ex).Message})"
                        : ex.Message + (ex.InnerException is null ? string.Empty : " (" + ex.InnerException.Message + ")");
            throw new ConnectTlsException(
                $"TLS with {path.Upstream} at {path.Endpoint?.Address}:{path.Endpoint?.Port} (SNI {path.Sni}) failed: {why}.", path, ex) { ServerRejectedClient = rejectedClient };
        }

        path = path with
        {
            Protocol = tls.SslProtocol,
            CipherSuite = tls.NegotiatedCipherSuite,
            SetupTime = _time.GetElapsedTime(started),
        };
        return new ConsulConnectConnection(tls, path);
    }

    /// <summary>
    /// Whether the handshake ended with a TLS alert about our certificate (RFC 8446 §6.2: bad_certificate,
    /// certificate_unknown, unknown_ca, access_denied, certificate_required), as Go's TLS stack sends when
    /// <c>VerifyPeerCertificate</c> (Consul's intention check) fails. The platform reports the alert only as text.
    /// </summary>
    private static Exception Innermost(Exception error)
    {
        while (error.InnerException is not null)
        {
            error = error.InnerException;
        }

        return error;
    }

    private static bool IsCertificateAlert(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            string message = e.Message;
            if (message.Contains("alert bad certificate", StringComparison.OrdinalIgnoreCase)
                || message.Contains("alert certificate unknown", StringComparison.OrdinalIgnoreCase)
                || message.Contains("alert unknown ca", StringComparison.OrdinalIgnoreCase)
                || message.Contains("alert access denied", StringComparison.OrdinalIgnoreCase)
                || message.Contains("certificate required", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    // Consul always reports Node.Datacenter; an entry without one belongs to the datacenter it was read from.
    private static CatalogServiceInstance WithDatacenter(CatalogServiceInstance instance, string datacenter) =>
        instance.Node.Datacenter.Length == 0 ? instance with { Node = instance.Node with { Datacenter = datacenter } } : instance;

    private static bool Same(string? a, string? b) => string.Equals(a, b, StringComparison.Ordinal);

    private static bool SameOrDefault(string? a, string? b) =>
        string.Equals(string.IsNullOrEmpty(a) ? ConsulSniName.DefaultName : a, string.IsNullOrEmpty(b) ? ConsulSniName.DefaultName : b, StringComparison.Ordinal);

    private static bool SameDatacenter(string? a, string? b, string callerDc) =>
        string.Equals(string.IsNullOrEmpty(a) ? callerDc : a, string.IsNullOrEmpty(b) ? callerDc : b, StringComparison.Ordinal);

    private sealed record RegistrationState(ConsulAgentService? Service);

    private sealed record CachedAnswer(Task<IReadOnlyList<CatalogServiceInstance>> Answer, long Expires)
    {
        // An empty answer is not reused: a gateway or instance registered a moment ago is then found by the next dial.
        public bool IsUsable(long now) => now < Expires && !Answer.IsFaulted && !Answer.IsCanceled && !(Answer.IsCompletedSuccessfully && Answer.Result.Count == 0);
    }

    private sealed class LeafComparer : IEqualityComparer<ConsulLeafCertificate>
    {
        public static readonly LeafComparer Instance = new();

        public bool Equals(ConsulLeafCertificate? x, ConsulLeafCertificate? y) =>
            string.Equals(x?.SerialNumber, y?.SerialNumber, StringComparison.Ordinal) && string.Equals(x?.CertPEM, y?.CertPEM, StringComparison.Ordinal);

        public int GetHashCode(ConsulLeafCertificate obj) => StringComparer.Ordinal.GetHashCode(obj.SerialNumber ?? string.Empty);
    }
}
