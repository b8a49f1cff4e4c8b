using MeshGateway.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>Routes given in code (<c>UseStaticRoutes</c>), in configuration (<see cref="MeshGatewayOptions.Routes"/>) or in <see cref="MeshGatewayOptions.RoutesFile"/>.</summary>
internal sealed class OptionsRouteSource : IMeshGatewayRouteSource, IDisposable
{
    private readonly IOptions<MeshGatewayOptions> _options;
    private readonly StaticRouteRegistry _registry;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _timeProvider;
    private RoutesFileWatcher? _watcher;

    public OptionsRouteSource(IOptions<MeshGatewayOptions> options, StaticRouteRegistry registry, ILoggerFactory loggerFactory, TimeProvider? timeProvider = null)
    {
        _options = options;
        _registry = registry;
        _loggerFactory = loggerFactory;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    internal RoutesFileWatcher? Watcher => _watcher;

    public Task StartAsync(RouteTableSource routes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(routes);
        MeshGatewayOptions options = _options.Value;
        if (!string.IsNullOrEmpty(options.RoutesFile))
        {
            if (_registry.Routes.Count > 0)
            {
                throw new InvalidOperationException($"RoutesFile is '{options.RoutesFile}' and {_registry.Routes.Count} routes were given in code: choose one route source.");
            }

            _watcher = new RoutesFileWatcher(options.RoutesFile, options.ConnectTimeout, options.ConnectAttempts, options.OutlierDetection.ToOutlierDetection(), routes, _loggerFactory.CreateLogger(MeshGatewayLog.RoutesCategory), _timeProvider);
            _watcher.Start();
            return Task.CompletedTask;
        }

        var errors = new List<string>();
        List<Route>? built = StaticRoutes.TryBuild(options.Routes, _registry.Routes, options, errors);
        if (built is null)
        {
            throw new InvalidOperationException("Invalid static routes: " + string.Join(" ", errors));
        }

        routes.Update(RouteTable.Create(built));
        ILogger logger = _loggerFactory.CreateLogger(MeshGatewayLog.RoutesCategory);
        MeshGatewayLog.RoutesLoaded(logger, "static routes", built.Count);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _watcher?.Dispose();
}

/// <summary>Routes registered in code through <c>UseStaticRoutes</c>.</summary>
internal sealed class StaticRouteRegistry
{
    public List<Route> Routes { get; } = [];
}
