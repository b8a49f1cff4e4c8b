namespace MeshGateway.Consul;

/// <summary>
/// Registers the gateway with its local agent, keeps it registered, and deregisters it on stop.
/// </summary>
/// <remarks>
/// After registering, a loop hash-blocks on <c>/v1/agent/service/&lt;id&gt;</c> (docs/consul-behaviour.md §9): when the agent answers
/// 404 (an operator deregistered the gateway, or the agent restarted without its state) the registration is sent
/// again. Errors back off with jitter as in <see cref="BlockingQuery{T}"/>; requests are rate-limited by the same token bucket.
/// </remarks>
public sealed class ConsulGatewayRegistrar : IAsyncDisposable
{
    private readonly ConsulClient _client;
    private readonly ConsulGatewayRegistrationOptions _options;
    private readonly BlockingQueryOptions _queryOptions;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly DisposeOnce _dispose = new();
    private Task _keeper = Task.CompletedTask;
    private long _registrations;
    private int _state; // 0 new, 1 started, 2 stopped

    /// <summary>Creates a registrar.</summary>
    /// <param name="client">The client of the gateway's local agent (not disposed by the registrar).</param>
    /// <param name="options">What to register.</param>
    /// <param name="queryOptions">Wait, rate limit and backoff of the keep-alive loop; defaults when null.</param>
    /// <param name="timeProvider">Clock; <see cref="TimeProvider.System"/> when null.</param>
    public ConsulGatewayRegistrar(ConsulClient client, ConsulGatewayRegistrationOptions options, BlockingQueryOptions? queryOptions = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _client = client;
        _options = options;
        _queryOptions = queryOptions ?? new BlockingQueryOptions();
        _queryOptions.Validate();
        _time = timeProvider ?? TimeProvider.System;
        Registration = options.ToRegistration();
    }

    /// <summary>The registration body sent to the agent.</summary>
    public ConsulServiceRegistration Registration { get; }

    /// <summary>How many times the registration was sent (1 after start; more after re-registrations).</summary>
    public long RegistrationCount => Interlocked.Read(ref _registrations);

    /// <summary>Called for each failed request of the keep-alive loop. Must not throw.</summary>
    public Action<Exception>? ErrorObserved { get; set; }

    /// <summary>Called after the registration was sent again because the agent had lost it. Must not throw.</summary>
    public Action? Reregistered { get; set; }

    /// <summary>Registers the gateway and starts the keep-alive loop.</summary>
    /// <param name="cancellationToken">Cancels the registration call.</param>
    /// <returns>A task that completes once the agent accepted the registration.</returns>
    /// <exception cref="ConsulException">The agent refused (e.g. <see cref="ConsulPermissionDeniedException"/> without <c>service:write</c>) or is unreachable.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The registrar was already started.");
        }

        await RegisterAsync(cancellationToken).ConfigureAwait(false);
        _keeper = Task.Run(() => KeepRegisteredAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>Stops the keep-alive loop and deregisters the gateway.</summary>
    /// <param name="cancellationToken">Cancels the deregistration call.</param>
    /// <returns>A task that completes once the agent removed the service.</returns>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _keeper.ConfigureAwait(false);
        await _client.DeregisterServiceAsync(_options.ServiceId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops and deregisters (errors of the final deregistration are reported, not thrown). Idempotent: later (or concurrent) calls wait for the first.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public ValueTask DisposeAsync() => _dispose.RunAsync(DisposeCoreAsync);

    private async ValueTask DisposeCoreAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await StopAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ConsulException or OperationCanceledException)
        {
            ErrorObserved?.Invoke(ex);
        }
        finally
        {
            _stop.Dispose();
        }
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        await _client.RegisterServiceAsync(Registration, replaceExistingChecks: true, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _registrations);
    }

    private async Task KeepRegisteredAsync(CancellationToken cancellationToken)
    {
        var bucket = new TokenBucket(_queryOptions.RateLimitBurst, _queryOptions.RateLimitInterval, _time);
        string? hash = null;
        int failures = 0;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await bucket.TakeAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    ConsulResponse<ConsulAgentService> response = await _client.GetAgentServiceAsync(
                        _options.ServiceId, new ConsulQuery { Hash = hash, Wait = hash is null ? null : _queryOptions.Wait }, cancellationToken).ConfigureAwait(false);
                    hash = response.ContentHash;
                    failures = 0;
                }
                catch (ConsulNotFoundException)
                {
                    hash = null;
                    try
                    {
                        await RegisterAsync(cancellationToken).ConfigureAwait(false);
                        failures = 0;
                        Reregistered?.Invoke();
                    }
                    catch (ConsulException ex)
                    {
                        await BackOffAsync(ex, ++failures, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (ConsulException ex)
                {
                    hash = null;
                    await BackOffAsync(ex, ++failures, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped.
        }
    }

    private Task BackOffAsync(Exception error, int failures, CancellationToken cancellationToken)
    {
        ErrorObserved?.Invoke(error);
        return Task.Delay(BlockingQuery<int>.BackoffDelay(_queryOptions, failures, Random.Shared.NextDouble()), _time, cancellationToken);
    }
}
