using System.Net;
using MeshGateway.Consul;
using MeshGateway.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>
/// Routes from Consul's catalog (<see cref="ConsulCatalogWatcher"/>, blocking queries), with the gateway registered in
/// Consul while it listens. Start: preflight facts are gathered and logged, the watcher starts (the gateway is ready once
/// the first complete view arrived). After the listeners are bound the gateway registers (so its TCP check passes at once);
/// on stop it deregisters before it stops accepting.
/// </summary>
internal sealed class ConsulCatalogRouteSource : IMeshGatewayRouteSource, IMeshGatewayRegistration, IAsyncDisposable
{
    private readonly IOptions<MeshGatewayOptions> _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Func<ConsulClientOptions, ConsulClient> _clientFactory;
    private readonly CancellationTokenSource _stop = new();
    private ConsulClient? _client;
    private ConsulCatalogWatcher? _watcher;
    private ConsulGatewayRegistrar? _registrar;
    private Task _pump = Task.CompletedTask;
    private int _disposed;

    public ConsulCatalogRouteSource(IOptions<MeshGatewayOptions> options, ILoggerFactory loggerFactory, TimeProvider? timeProvider, Func<ConsulClientOptions, ConsulClient>? clientFactory = null)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger(MeshGatewayLog.ConsulCategory);
        _timeProvider = timeProvider ?? TimeProvider.System;
        _clientFactory = clientFactory ?? (static o => new ConsulClient(o));
    }

    internal ConsulGatewayRegistrar? Registrar => _registrar;

    public async Task StartAsync(RouteTableSource routes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(routes);
        MeshGatewayOptions options = _options.Value;
        MeshGatewayConsulOptions consul = options.Consul;
        var clientOptions = new ConsulClientOptions
        {
            Address = new Uri(consul.Address),
            Token = string.IsNullOrEmpty(consul.Token) ? null : consul.Token,
            TokenFile = string.IsNullOrEmpty(consul.TokenFile) ? null : consul.TokenFile,
            Datacenter = string.IsNullOrEmpty(consul.Datacenter) ? null : consul.Datacenter,
        };
        _client = _clientFactory(clientOptions);

        if (consul.Preflight)
        {
            ConsulPreflightFacts facts = await ConsulPreflight.GatherAsync(_client, cancellationToken).ConfigureAwait(false);
            MeshGatewayLog.ConsulPreflight(_logger, consul.Address, facts.Datacenter ?? "?", facts.Version ?? "?", facts.ConnectEnabled, facts.TrustDomain ?? "?");
            foreach (KeyValuePair<string, ConsulException> error in facts.Errors)
            {
                MeshGatewayLog.ConsulPreflightProblem(_logger, error.Key, error.Value.Message);
            }

            if (facts.ConnectEnabled == false)
            {
                MeshGatewayLog.ConsulPreflightProblem(_logger, "connect", "Connect is disabled on the agent (connect { enabled = true } is required for a mesh gateway).");
            }
        }

        _watcher = new ConsulCatalogWatcher(_client, new ConsulCatalogWatcherOptions { Datacenter = clientOptions.Datacenter }, _timeProvider)
        {
            ErrorObserved = (what, ex) => MeshGatewayLog.ConsulWatchError(_logger, what, ex.Message),
        };
        await _watcher.StartAsync(cancellationToken).ConfigureAwait(false);
        _pump = PumpAsync(_watcher, routes, options, _stop.Token);
    }

    public async Task RegisterAsync(IReadOnlyList<MeshGatewayListenerAddress> listeners, CancellationToken cancellationToken)
    {
        MeshGatewayOptions options = _options.Value;
        if (!options.Consul.Register || _client is null)
        {
            return;
        }

        var registration = RegistrationFor(options, listeners);
        _registrar = new ConsulGatewayRegistrar(_client, registration, timeProvider: _timeProvider)
        {
            ErrorObserved = ex => MeshGatewayLog.ConsulWatchError(_logger, "registration", ex.Message),
        };
        await _registrar.StartAsync(cancellationToken).ConfigureAwait(false);
        MeshGatewayLog.ConsulRegistered(_logger, registration.ServiceId, registration.LanAddress, registration.LanPort);
    }

    public async Task DeregisterAsync(CancellationToken cancellationToken)
    {
        if (_registrar is { } registrar)
        {
            await registrar.StopAsync(cancellationToken).ConfigureAwait(false);
            MeshGatewayLog.ConsulDeregistered(_logger, registrar.Registration.ID ?? registrar.Registration.Name);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        await DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        // Once only: StopAsync disposes, then the container does again (ConsulCatalogWatcher.DisposeAsync is not idempotent).
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_registrar is { } registrar)
        {
            await registrar.DisposeAsync().ConfigureAwait(false);
        }

        if (_watcher is { } watcher)
        {
            await watcher.DisposeAsync().ConfigureAwait(false);
        }

        _client?.Dispose();
        _stop.Dispose();
    }

    /// <summary>What the registration says, from the options and the bound listeners (reference §6).</summary>
    internal static ConsulGatewayRegistrationOptions RegistrationFor(MeshGatewayOptions options, IReadOnlyList<MeshGatewayListenerAddress> listeners)
    {
        MeshGatewayConsulOptions consul = options.Consul;
        IPEndPoint lan = ListenerEndPoint(options.LanAddress) ?? listeners.FirstOrDefault(l => l.Name is "default" or "lan")?.EndPoint ?? listeners[0].EndPoint;
        if (lan.Address.Equals(IPAddress.Any) || lan.Address.Equals(IPAddress.IPv6Any))
        {
            throw new InvalidOperationException($"Consul:Register needs a LAN address other people can dial: set MeshGateway:LanAddress or a specific MeshGateway:Address instead of '{lan.Address}'.");
        }

        IPEndPoint? wan = ListenerEndPoint(options.WanAddress);
        var registration = new ConsulGatewayRegistrationOptions
        {
            ServiceName = consul.ServiceName,
            ServiceId = string.IsNullOrEmpty(consul.ServiceId) ? consul.ServiceName : consul.ServiceId,
            LanAddress = lan.Address.ToString(),
            LanPort = lan.Port,
            WanAddress = wan?.Address.ToString(),
            WanPort = wan?.Port ?? 0,
            BindTaggedAddresses = options.BindTaggedAddresses,
            ConnectTimeoutMs = (int)Math.Min(int.MaxValue, options.ConnectTimeout.TotalMilliseconds),
        };
        foreach (KeyValuePair<string, string> meta in consul.Meta)
        {
            registration.Meta[meta.Key] = meta.Value;
        }

        return registration;
    }

    private static IPEndPoint? ListenerEndPoint(string? text) => string.IsNullOrEmpty(text) || !IPEndPoint.TryParse(text, out IPEndPoint? endPoint) ? null : endPoint;

    private async Task PumpAsync(ConsulCatalogWatcher watcher, RouteTableSource routes, MeshGatewayOptions options, CancellationToken stopping)
    {
        await Task.Yield();
        try
        {
            await foreach (ConsulCatalogView view in watcher.Views.ReadAllAsync(stopping).ConfigureAwait(false))
            {
                RouteTable table = ConsulRouteTables.Build(view, options.ConnectTimeout, options.ConnectAttempts, out ConversionStats stats);
                routes.Update(table);
                MeshGatewayLog.ConsulRoutesUpdated(_logger, view.Datacenter, stats.Routes, view.Services.Count, view.RemoteGateways.Count, stats.SkippedHostnameEndpoints, stats.SkippedSubsets);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}

/// <summary>A route source that registers the gateway somewhere once it listens and deregisters it before it stops accepting.</summary>
internal interface IMeshGatewayRegistration
{
    public Task RegisterAsync(IReadOnlyList<MeshGatewayListenerAddress> listeners, CancellationToken cancellationToken);

    public Task DeregisterAsync(CancellationToken cancellationToken);
}
