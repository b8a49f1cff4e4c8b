using MeshGateway.Routing;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Hosting;

/// <summary>
/// Loads a routes file and reloads it when it changes. Watches the directory (not the file) so an editor's or a
/// deployment's write-to-temp-then-rename is seen; changes are coalesced for <see cref="DebounceDelay"/>. A file that
/// fails to load keeps the last good table and is logged.
/// </summary>
internal sealed class RoutesFileWatcher : IDisposable
{
    internal static readonly TimeSpan DebounceDelay = TimeSpan.FromMilliseconds(100);

    private readonly string _path;
    private readonly TimeSpan _connectTimeout;
    private readonly int _connectAttempts;
    private readonly OutlierDetection _outlierDetection;
    private readonly RouteTableSource _routes;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly object _gate = new();
    private readonly object _reloadGate = new();
    private FileSystemWatcher? _watcher;
    private ITimer? _timer;
    private bool _disposed;

    public RoutesFileWatcher(string path, TimeSpan connectTimeout, int connectAttempts, OutlierDetection outlierDetection, RouteTableSource routes, ILogger logger, TimeProvider timeProvider)
    {
        _path = Path.GetFullPath(path);
        _connectTimeout = connectTimeout;
        _connectAttempts = connectAttempts;
        _outlierDetection = outlierDetection;
        _routes = routes;
        _logger = logger;
        _timeProvider = timeProvider;
    }

    /// <summary>Raised after each reload attempt with whether it succeeded (tests await it).</summary>
    public event Action<bool>? Reloaded;

    /// <summary>Loads the file (throwing when the first load fails) and starts watching.</summary>
    public void Start()
    {
        if (!TryLoad(out string? error))
        {
            throw new InvalidOperationException($"Cannot load the routes file '{_path}' (MeshGateway:RoutesFile): {error}");
        }

        string directory = Path.GetDirectoryName(_path)!;
        var watcher = new FileSystemWatcher(directory, Path.GetFileName(_path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += OnChanged;
        watcher.Created += OnChanged;
        watcher.Renamed += OnChanged;
        watcher.Error += (_, e) => MeshGatewayLog.RoutesWatchError(_logger, _path, e.GetException());
        watcher.EnableRaisingEvents = true;
        lock (_gate)
        {
            _watcher = watcher;
            _timer = _timeProvider.CreateTimer(static state => ((RoutesFileWatcher)state!).Reload(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Reloads now (what a change notification leads to after the debounce).</summary>
    internal void Reload()
    {
        bool ok;
        string? error;

        // One reload at a time: a change during a slow read re-arms the timer, and two overlapping loads could
        // otherwise publish the older file last. None after Dispose (a callback may already be queued).
        lock (_reloadGate)
        {
            if (Volatile.Read(ref _disposed))
            {
                return;
            }

            ok = TryLoad(out error);
        }

        if (!ok)
        {
            MeshGatewayLog.RoutesReloadFailed(_logger, _path, error!);
        }

        Reloaded?.Invoke(ok);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            Volatile.Write(ref _disposed, true);
            _watcher?.Dispose();
            _timer?.Dispose();
        }
    }

    private void OnChanged(object sender, FileSystemEventArgs e)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _timer?.Change(DebounceDelay, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private bool TryLoad(out string? error)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(_path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error = ex.Message;
            return false;
        }

        if (!RouteFileParser.TryParse(bytes, _connectTimeout, _connectAttempts, _outlierDetection, out RouteTable? table, out error))
        {
            return false;
        }

        _routes.Update(table);
        MeshGatewayLog.RoutesLoaded(_logger, _path, table.Routes.Count);
        return true;
    }
}
