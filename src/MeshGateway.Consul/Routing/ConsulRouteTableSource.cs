using MeshGateway.Routing;

namespace MeshGateway.Consul;

/// <summary>Settings of a <see cref="ConsulRouteTableSource"/>.</summary>
public sealed class ConsulRouteTableSourceOptions
{
    /// <summary>The catalog watch.</summary>
    public ConsulCatalogWatcherOptions Watcher { get; set; } = new();

    /// <summary>How views become tables (connect timeout).</summary>
    public ConsulRouteTableOptions Routes { get; set; } = new();

    /// <summary>How long <see cref="ConsulRouteTableSource.StartAsync"/> waits for the first complete table. Default 60 s.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Keeps a data-plane <see cref="RouteTableSource"/> current from Consul: runs a <see cref="ConsulCatalogWatcher"/>, converts
/// each published view with <see cref="ConsulRouteTableBuilder"/> and swaps the table in atomically.
/// </summary>
/// <remarks>
/// The watcher hands views over on a bounded(1) drop-oldest channel; this source consumes it wait-then-drain, so a burst
/// of catalog changes costs one conversion of the newest view. A failed conversion keeps the last good table and is
/// reported through <see cref="LastError"/> and <see cref="Converted"/>. During a Consul outage the watcher publishes
/// nothing, so the last table stays in force; recovery is automatic.
/// </remarks>
public sealed class ConsulRouteTableSource : IAsyncDisposable
{
    private readonly ConsulRouteTableSourceOptions _options;
    private readonly TimeProvider _time;
    private readonly TaskCompletionSource<RouteTable> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly DisposeOnce _dispose = new();
    private Task _loop = Task.CompletedTask;
    private ConsulRouteConversion? _last;
    private string? _lastError;
    private long _published;
    private long _failed;
    private int _started;

    /// <summary>Creates the source; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="client">The client of the gateway's local agent (not disposed here).</param>
    /// <param name="target">The data plane's table holder.</param>
    /// <param name="options">Settings; defaults when null.</param>
    /// <param name="timeProvider">Clock for the watcher and the start-up timeout; <see cref="TimeProvider.System"/> when null.</param>
    public ConsulRouteTableSource(ConsulClient client, RouteTableSource target, ConsulRouteTableSourceOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(target);
        _options = options ?? new ConsulRouteTableSourceOptions();
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_options.StartupTimeout, TimeSpan.Zero, nameof(options));
        _time = timeProvider ?? TimeProvider.System;
        Target = target;
        Watcher = new ConsulCatalogWatcher(client, _options.Watcher, _time);
    }

    /// <summary>The table holder this source publishes to.</summary>
    public RouteTableSource Target { get; }

    /// <summary>The catalog watch (views, error counts, <see cref="ConsulCatalogWatcher.ErrorObserved"/>).</summary>
    public ConsulCatalogWatcher Watcher { get; }

    /// <summary>How many tables were published.</summary>
    public long PublishedCount => Interlocked.Read(ref _published);

    /// <summary>How many views could not be converted (each kept the previous table).</summary>
    public long FailedCount => Interlocked.Read(ref _failed);

    /// <summary>The latest conversion (successful or not), or null before the first view.</summary>
    public ConsulRouteConversion? LastConversion
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>Why the latest conversion failed, or null when it succeeded.</summary>
    public string? LastError
    {
        get
        {
            lock (_gate)
            {
                return _lastError;
            }
        }
    }

    /// <summary>Called after each conversion, after a successful one was published. Runs on the source's loop; must not throw or block.</summary>
    public Action<ConsulRouteConversion>? Converted { get; set; }

    /// <summary>Starts the watch and waits for the first complete table (at most <see cref="ConsulRouteTableSourceOptions.StartupTimeout"/>).</summary>
    /// <param name="cancellationToken">Cancels the wait (the watch keeps running until <see cref="DisposeAsync"/>).</param>
    /// <returns>The first published table.</returns>
    /// <exception cref="TimeoutException">No complete table in time; the message says what was missing or why conversion failed.</exception>
    /// <exception cref="ConsulException">The local datacenter could not be read (see <see cref="ConsulCatalogWatcher.StartAsync"/>).</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public async Task<RouteTable> StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The route table source is already started.");
        }

        await Watcher.StartAsync(cancellationToken).ConfigureAwait(false);
        CancellationToken stop = _stop.Token;
        _loop = Task.Run(() => RunAsync(stop), CancellationToken.None);
        try
        {
            return await _first.Task.WaitAsync(_options.StartupTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            string why = LastError is { } error ? "the last catalog view could not be converted: " + error : await DescribeWatcherAsync().ConfigureAwait(false);
            throw new TimeoutException($"No complete routing table from Consul within {_options.StartupTimeout.TotalSeconds:0.#} s: {why}", ex);
        }
    }

    /// <summary>Stops the watch; the last table stays in <see cref="Target"/>. Idempotent: later (or concurrent) calls wait for the first.</summary>
    /// <returns>A task that completes when every loop has ended.</returns>
    public ValueTask DisposeAsync() => _dispose.RunAsync(DisposeCoreAsync);

    private async ValueTask DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Watcher.DisposeAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _first.TrySetCanceled(CancellationToken.None);
        _stop.Dispose();
    }

    private async Task<string> DescribeWatcherAsync()
    {
        try
        {
            _ = await Watcher.WaitForFirstViewAsync(TimeSpan.FromTicks(1)).ConfigureAwait(false);
            return "a catalog view arrived but no table was published yet";
        }
        catch (TimeoutException ex)
        {
            return ex.Message;
        }
        catch (OperationCanceledException)
        {
            return "the watch was stopped";
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        try
        {
            while (await Watcher.Views.WaitToReadAsync(stop).ConfigureAwait(false))
            {
                ConsulCatalogView? newest = null;
                while (Watcher.Views.TryRead(out ConsulCatalogView? view))
                {
                    newest = view;
                }

                if (newest is not null)
                {
                    Apply(newest);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Converts and publishes one view (internal for tests).</summary>
    internal void Apply(ConsulCatalogView view)
    {
        ConsulRouteConversion conversion;
        try
        {
            conversion = ConsulRouteTableBuilder.Convert(view, _options.Routes);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            conversion = new ConsulRouteConversion { Error = "conversion failed: " + ex.Message };
        }

        lock (_gate)
        {
            _last = conversion;
            _lastError = conversion.Error;
        }

        if (conversion.Succeeded)
        {
            Target.Update(conversion.Table);
            Interlocked.Increment(ref _published);
            _first.TrySetResult(conversion.Table);
        }
        else
        {
            Interlocked.Increment(ref _failed);
        }

        Converted?.Invoke(conversion);
    }
}
