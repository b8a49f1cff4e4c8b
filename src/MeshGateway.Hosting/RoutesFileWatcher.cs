using MeshGateway.Routing;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Hosting;

/// <summary>
/// Loads a routes file and reloads it when it changes, including when it is replaced the way Kubernetes updates a
/// mounted ConfigMap or Secret. A file that is deleted, unreadable or invalid keeps the last good table and is logged.
/// </summary>
/// <remarks>
/// <para>
/// <b>Why the whole directory is watched.</b> A mounted ConfigMap is <c>routes.json → ..data/routes.json</c> with
/// <c>..data → ..2026_12_06_…</c>; an update writes a new timestamped directory and renames a new <c>..data</c> symlink
/// over the old one. Neither <c>routes.json</c> nor its content is touched by name, so a watcher filtered on the file's
/// name sees nothing (issue 16). Every event in the directory (a rename of <c>..data</c>, an editor's
/// write-to-temp-then-rename, a deletion) therefore schedules a reload after <see cref="DebounceDelay"/>, and the
/// reload decides whether anything changed by comparing the fully resolved target path and the bytes with the last
/// load: unrelated files in the directory cost a read, never a table swap or a log line.
/// </para>
/// <para>
/// A failure (deleted file or dangling symlink, unreadable file, invalid content) is logged once per distinct problem
/// while it persists; the next good file is loaded and logged as usual.
/// </para>
/// </remarks>
internal sealed class RoutesFileWatcher : IDisposable
{
    internal static readonly TimeSpan DebounceDelay = TimeSpan.FromMilliseconds(100);

    // Linux's SYMLOOP_MAX is 40: more links in a chain than that is a loop.
    private const int MaxLinks = 40;

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
    private string? _loadedTarget;
    private byte[]? _loadedContent;
    private string? _lastProblem;

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

    /// <summary>Raised after each reload with its outcome (tests await it).</summary>
    public event Action<RoutesFileReload>? Reloaded;

    /// <summary>Loads the file (throwing when the first load fails) and starts watching its directory.</summary>
    public void Start()
    {
        string? error;
        RoutesFileReload first;
        lock (_reloadGate)
        {
            first = TryLoad(out error);
        }

        if (first != RoutesFileReload.Updated)
        {
            throw new InvalidOperationException($"Cannot load the routes file '{_path}' (MeshGateway:RoutesFile): {error}");
        }

        string directory = Path.GetDirectoryName(_path)!;
        var watcher = new FileSystemWatcher(directory)
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += OnChanged;
        watcher.Created += OnChanged;
        watcher.Deleted += OnChanged;
        watcher.Renamed += OnChanged;
        watcher.Error += (_, e) => MeshGatewayLog.RoutesWatchError(_logger, _path, e.GetException());
        lock (_gate)
        {
            _watcher = watcher;
            _timer = _timeProvider.CreateTimer(static state => ((RoutesFileWatcher)state!).Reload(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }

        watcher.EnableRaisingEvents = true;
    }

    /// <summary>Reloads now (what a change notification leads to after the debounce).</summary>
    internal void Reload()
    {
        RoutesFileReload outcome;
        string? error;
        bool log;

        // One reload at a time: a change during a slow read re-arms the timer, and two overlapping loads could
        // otherwise publish the older file last. None after Dispose (a callback may already be queued).
        lock (_reloadGate)
        {
            if (Volatile.Read(ref _disposed))
            {
                return;
            }

            outcome = TryLoad(out error);
            log = false;
            if (outcome is RoutesFileReload.Missing or RoutesFileReload.Failed)
            {
                // Once per distinct problem: every unrelated event in the directory reloads, and must not log again.
                log = error != _lastProblem;
                _lastProblem = error;
            }
            else if (outcome == RoutesFileReload.Updated)
            {
                _lastProblem = null;
            }
        }

        if (log)
        {
            if (outcome == RoutesFileReload.Missing)
            {
                MeshGatewayLog.RoutesFileMissing(_logger, _path);
            }
            else
            {
                MeshGatewayLog.RoutesReloadFailed(_logger, _path, error!);
            }
        }

        Reloaded?.Invoke(outcome);
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

    /// <summary>
    /// The path with every symbolic link resolved, in every component (<c>routes.json</c> → <c>..data/routes.json</c> →
    /// <c>..2026_…/routes.json</c>), or null when the chain is broken or loops. <see cref="FileSystemInfo.ResolveLinkTarget"/>
    /// follows only the last component's links, and .NET has no <c>realpath</c>, hence this walk.
    /// </summary>
    internal static string? ResolveFully(string path)
    {
        string current = Path.GetFullPath(path);
        int links = 0;
        bool changed = true;
        while (changed)
        {
            changed = false;
            string? root = Path.GetPathRoot(current);
            string[] parts = current[(root?.Length ?? 0)..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            string prefix = root ?? string.Empty;
            for (int i = 0; i < parts.Length; i++)
            {
                string next = Path.Combine(prefix, parts[i]);
                string? target = new FileInfo(next).LinkTarget;
                if (target is not null)
                {
                    if (++links > MaxLinks)
                    {
                        return null;
                    }

                    string resolved = Path.GetFullPath(target, prefix);
                    current = Path.Combine([resolved, .. parts[(i + 1)..]]);
                    changed = true;
                    break;
                }

                prefix = next;
            }
        }

        return File.Exists(current) ? current : null;
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

    /// <summary>Reads and, when the target or the bytes changed, parses and publishes the file. Called under <c>_reloadGate</c>.</summary>
    private RoutesFileReload TryLoad(out string? error)
    {
        string? target = null;
        byte[] bytes = [];

        // Twice at most: a swap may delete the old target between the resolution and the read; the second pass
        // resolves the new one.
        for (int pass = 0; ; pass++)
        {
            try
            {
                target = ResolveFully(_path);
                if (target is null)
                {
                    error = "the file does not exist (deleted, or a symbolic link to nothing)";
                    return RoutesFileReload.Missing;
                }

                bytes = File.ReadAllBytes(target);
                break;
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                if (pass == 1)
                {
                    error = "the file does not exist (deleted, or a symbolic link to nothing)";
                    return RoutesFileReload.Missing;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error = ex.Message;
                return RoutesFileReload.Failed;
            }
        }

        if (target == _loadedTarget && _loadedContent is not null && bytes.AsSpan().SequenceEqual(_loadedContent))
        {
            error = null;
            return RoutesFileReload.Unchanged;
        }

        if (!RouteFileParser.TryParse(bytes, _connectTimeout, _connectAttempts, _outlierDetection, out RouteTable? table, out error))
        {
            return RoutesFileReload.Failed;
        }

        _routes.Update(table);
        _loadedTarget = target;
        _loadedContent = bytes;
        MeshGatewayLog.RoutesLoaded(_logger, target == _path ? _path : $"{_path} ({target})", table.Routes.Count);
        return RoutesFileReload.Updated;
    }
}

/// <summary>What one reload of the routes file did.</summary>
internal enum RoutesFileReload
{
    /// <summary>A new table was published.</summary>
    Updated,

    /// <summary>The resolved file and its bytes are those of the last load: nothing to do.</summary>
    Unchanged,

    /// <summary>The file is gone (deleted, or a dangling symbolic link); the last good table stays.</summary>
    Missing,

    /// <summary>The file could not be read or is invalid; the last good table stays.</summary>
    Failed,
}
