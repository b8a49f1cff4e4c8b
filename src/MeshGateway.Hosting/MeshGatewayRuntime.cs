using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>
/// The running hosted gateway: its listeners, routes and counters. Resolve it from the container to read the bound
/// addresses (port 0 picks a free port), the counters, or readiness.
/// </summary>
/// <remarks>Started and stopped by the hosted service that <see cref="MeshGatewayServiceCollectionExtensions.AddMeshGateway(Microsoft.Extensions.DependencyInjection.IServiceCollection)"/> registers.</remarks>
public sealed class MeshGatewayRuntime : IAsyncDisposable
{
    private readonly IOptions<MeshGatewayOptions> _options;
    private readonly IMeshGatewayRouteSource _routeSource;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private GatewayListener? _listener;
    private HostNameRefresher? _hostNames;
    private IReadOnlyList<MeshGatewayListenerAddress> _listeners = [];
    private int _stopping;
    private ClusterMetrics? _clusterMetrics;
    private AdminMetrics? _adminMetrics;
    private AdminEndpoint? _admin;

    internal MeshGatewayRuntime(IOptions<MeshGatewayOptions> options, IMeshGatewayRouteSource routeSource, ILoggerFactory loggerFactory, IMeterFactory? meterFactory, TimeProvider? timeProvider)
    {
        _options = options;
        _routeSource = routeSource;
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = loggerFactory.CreateLogger(MeshGatewayLog.GatewayCategory);
    }

    /// <summary>Tests: the options the listener was made with (null before start).</summary>
    internal GatewayListenerOptions? ListenerOptions { get; private set; }

    /// <summary>The routing table holder the gateway routes with (fed by the route source).</summary>
    public RouteTableSource Routes { get; } = new();

    /// <summary>The route source in use.</summary>
    public IMeshGatewayRouteSource RouteSource => _routeSource;

    /// <summary>The listeners, with the ports actually bound, once started; empty before.</summary>
    public IReadOnlyList<MeshGatewayListenerAddress> Listeners => Volatile.Read(ref _listeners);

    /// <summary>The data plane's running totals, once started; <see langword="null"/> before.</summary>
    public GatewayCounters? Counters => _listener?.Counters;

    /// <summary>Connections open now.</summary>
    public int ActiveConnections => _listener?.ActiveConnections ?? 0;

    /// <summary>
    /// Completes once at most <paramref name="maximum"/> connections are open (at once before the start): the listener's
    /// change signal (<see cref="GatewayListener.WhenActiveConnectionsAtMostAsync"/>), so no one polls <see cref="ActiveConnections"/>.
    /// </summary>
    /// <param name="maximum">The most connections that may still be open (0: idle).</param>
    /// <param name="cancellationToken">Ends the wait; the task is then cancelled.</param>
    /// <returns>A task that completes when the count is at most <paramref name="maximum"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maximum"/> is negative.</exception>
    public Task WhenActiveConnectionsAtMostAsync(int maximum, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maximum);
        return _listener is { } listener ? listener.WhenActiveConnectionsAtMostAsync(maximum, cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Whether the listeners are bound and accepting and the route source published its first table.</summary>
    public bool IsReady => NotReadyReason is null;

    /// <summary>The admin endpoint's bound address (<see cref="MeshGatewayOptions.Admin"/>), once started; <see langword="null"/> when it is off.</summary>
    public IPEndPoint? AdminEndPoint => _admin?.EndPoint;

    /// <summary>Why the gateway is not ready, or <see langword="null"/> when it is.</summary>
    internal string? NotReadyReason =>
        Volatile.Read(ref _stopping) != 0 ? "stopping"
        : Volatile.Read(ref _listeners).Count == 0 ? (Routes.Version == 0 ? "no routing table received yet and listeners not bound" : "listeners not bound")
        : Routes.Version == 0 ? "no routing table received yet"
        : null;

    /// <summary>Starts the route source, then binds every listener; throws (failing the host start) when either fails.</summary>
    /// <param name="cancellationToken">Abandons the start.</param>
    /// <returns>A task that completes when the gateway accepts connections.</returns>
    /// <exception cref="InvalidOperationException">A listener could not be bound (the message names it) or the routes could not be loaded.</exception>
    internal async Task StartAsync(CancellationToken cancellationToken)
    {
        MeshGatewayOptions options = _options.Value;
        var errors = new List<string>();
        List<MeshGatewayListenerAddress> plan = ListenerPlan.Build(options, errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join(" ", errors));
        }

        // The admin endpoint first, so /ready answers 503 (with the reason) while the first table is awaited.
        _clusterMetrics ??= new ClusterMetrics(Routes, _meterFactory, _timeProvider);
        if (AdminEndpoint.TryParseBind(options.Admin.Bind, errors) is { } adminBind)
        {
            _adminMetrics = new AdminMetrics(_meterFactory);
            _admin = new AdminEndpoint(this, options.Admin, _adminMetrics, _timeProvider, _logger);
            _admin.Start(adminBind);
        }

        // Started before the route source, so the first table's host names are resolved as soon as it is published.
        ILogger routesLogger = _loggerFactory.CreateLogger(MeshGatewayLog.RoutesCategory);
        _hostNames = new HostNameRefresher(Routes, new HostNameRefresherOptions { RefreshInterval = options.HostNameRefreshInterval }, _timeProvider)
        {
            ResolutionFailed = failure =>
            {
                if (failure.IsFirst)
                {
                    MeshGatewayLog.HostNameUnresolved(routesLogger, failure.HostName, failure.Error);
                }
                else
                {
                    MeshGatewayLog.HostNameStillUnresolved(routesLogger, failure.HostName, failure.Error);
                }
            },
        };
        _hostNames.Start();
        await _routeSource.StartAsync(Routes, cancellationToken).ConfigureAwait(false);

        // A gateway registered by someone else: its registration's Proxy.Config decides the listeners, as for Envoy.
        if (_routeSource is IMeshGatewayListenerSource { Listeners: { Count: > 0 } fromRegistration })
        {
            plan = [.. fromRegistration];
        }

        var listenerOptions = new GatewayListenerOptions
        {
            HelloTimeout = options.HelloTimeout,
            MaxHelloSize = options.MaxHelloSize,
            MaxConnections = options.MaxConnections,

            // The agent client's connections come out of the same open-file limit as the proxied ones.
            FileDescriptorReserve = GatewayListenerOptions.DefaultFileDescriptorReserve + options.Consul.MaxConnections,
            ListenBacklog = options.ListenBacklog,
            ClientTcpKeepAlive = options.ListenerTcpKeepalive.ToTcpKeepAlive(),
            SendProxyProtocol = options.SendProxyProtocol,
            Engine = options.Engine,
            EventLoopThreads = options.EventLoopThreads,
            EventLoopBulkPause = options.EventLoopBulkPause,
            Splice = new SpliceOptions
            {
                IdleTimeout = options.IdleTimeout,
                MaxDuration = options.MaxConnectionDuration ?? Timeout.InfiniteTimeSpan,
                MaxKernelPipes = options.SplicePipes,
            },
        };
        foreach (MeshGatewayListenerAddress address in plan)
        {
            listenerOptions.EndPoints.Add(address.EndPoint);
            listenerOptions.EndPointNames.Add(address.Name);
            if (options.ProxyProtocolListeners.Contains(address.Name))
            {
                listenerOptions.ProxyProtocolEndPoints.Add(address.EndPoint);
            }
        }

        foreach (string name in options.ProxyProtocolListeners)
        {
            if (!plan.Any(address => address.Name == name))
            {
                throw new InvalidOperationException($"MeshGateway:ProxyProtocolListeners names '{name}', which is not a listener of this gateway (listeners: {string.Join(", ", plan.Select(a => a.Name))}).");
            }
        }

        var listener = new GatewayListener(listenerOptions, Routes, new LoggingGatewayObserver(_loggerFactory, options.LogRateLimit, _timeProvider), _meterFactory, _timeProvider);
        try
        {
            listener.Start();
        }
        catch (SocketException ex)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
            MeshGatewayListenerAddress culprit = FindUnbindable(plan) ?? plan[0];
            string culpritName = culprit.ToString();
            MeshGatewayLog.ListenFailed(_logger, culpritName, ex.SocketErrorCode);
            throw new InvalidOperationException($"The mesh gateway cannot listen on '{culprit.Name}' ({culprit.EndPoint}): {ex.SocketErrorCode} ({ex.Message}). Check MeshGateway:Address/Port, LanAddress/WanAddress or BindAddresses.", ex);
        }

        _listener = listener;
        ListenerOptions = listenerOptions;
        IReadOnlyList<IPEndPoint> bound = listener.LocalEndPoints;
        var listeners = new List<MeshGatewayListenerAddress>(plan.Count);
        for (int i = 0; i < plan.Count; i++)
        {
            listeners.Add(plan[i] with { EndPoint = bound[i] });
            MeshGatewayLog.Listening(_logger, plan[i].Name, bound[i]);
        }

        MeshGatewayLog.ConnectionLimit(_logger, listener.ConnectionLimit, options.MaxConnections, listener.FileDescriptorLimit ?? -1, listenerOptions.FileDescriptorReserve, OperatingSystem.IsLinux() ? 2 * listenerOptions.Splice.MaxKernelPipes : 0, listener.Engine);
        Volatile.Write(ref _listeners, listeners);
        if (_routeSource is IMeshGatewayRegistration registration)
        {
            await registration.RegisterAsync(listeners, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The stop sequence: deregister (Consul), keep accepting for <see cref="MeshGatewayOptions.PropagationDelay"/> while
    /// peers learn the gateway is leaving, stop accepting, drain for <see cref="MeshGatewayOptions.DrainTimeout"/>, then
    /// stop the route source. <paramref name="cancellationToken"/> (the host's shutdown deadline) cuts the wait and the drain short.
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown deadline.</param>
    /// <returns>The drain result, or a zero result when the gateway never started.</returns>
    internal async Task<GatewayStopResult> StopAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _stopping, 1);
        if (_routeSource is IMeshGatewayRegistration registration)
        {
            // Deregister first, so Consul stops sending new connections before the listeners close (docs/consul-behaviour.md §6).
            bool deregistered = await registration.DeregisterAsync(cancellationToken).ConfigureAwait(false);

            // Peers (other datacenters' gateways, sidecars) learn of the deregistration through their own blocking
            // queries and configuration pushes, which takes a moment: until then they still dial this gateway, so it
            // keeps accepting (and routing) for the propagation delay. Not ready meanwhile (IsReady is false).
            TimeSpan delay = _options.Value.PropagationDelay;
            if (deregistered && delay > TimeSpan.Zero && _listener is not null)
            {
                MeshGatewayLog.StopPropagating(_logger, delay);
                try
                {
                    await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The host's deadline: stop accepting and drain what is left of it.
                }
            }
        }

        GatewayStopResult result = default;
        if (_listener is { } listener)
        {
            result = await listener.StopAsync(_options.Value.DrainTimeout, cancellationToken).ConfigureAwait(false);
        }

        await _routeSource.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_hostNames is { } hostNames)
        {
            await hostNames.DisposeAsync().ConfigureAwait(false);
        }

        await DisposeAdminAsync().ConfigureAwait(false);
        return result;
    }

    private async Task DisposeAdminAsync()
    {
        if (_admin is { } admin)
        {
            await admin.DisposeAsync().ConfigureAwait(false);
        }

        _adminMetrics?.Dispose();
        _clusterMetrics?.Dispose();
    }

    /// <summary>Stops at once (no drain).</summary>
    /// <returns>A task that completes when every connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _stopping, 1);
        if (_listener is { } listener)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }

        if (_hostNames is { } hostNames)
        {
            await hostNames.DisposeAsync().ConfigureAwait(false);
        }

        await DisposeAdminAsync().ConfigureAwait(false);
    }

    // Only on the failure path: GatewayListener binds all addresses together, so probe each to name the one that fails.
    private static MeshGatewayListenerAddress? FindUnbindable(List<MeshGatewayListenerAddress> plan)
    {
        var probes = new List<Socket>();
        try
        {
            foreach (MeshGatewayListenerAddress address in plan)
            {
                var socket = new Socket(address.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                probes.Add(socket);
                try
                {
                    if (address.EndPoint.AddressFamily == AddressFamily.InterNetworkV6)
                    {
                        socket.DualMode = false;
                    }

                    socket.Bind(address.EndPoint);
                }
                catch (SocketException)
                {
                    return address;
                }
            }

            return null;
        }
        finally
        {
            foreach (Socket socket in probes)
            {
                socket.Dispose();
            }
        }
    }
}
