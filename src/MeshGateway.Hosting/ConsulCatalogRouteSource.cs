using System.Net;
using MeshGateway.Acl;
using MeshGateway.Consul;
using MeshGateway.Preflight;
using MeshGateway.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshGateway.Hosting;

/// <summary>
/// Routes from Consul's catalog through the Consul package's <see cref="ConsulRouteTableSource"/> (blocking-query watch,
/// <see cref="ConsulRouteTableBuilder"/> conversion, last good table kept on failure), with the gateway registered in
/// Consul while it listens. Start: <see cref="ConsulPreflight.RunAsync"/> (when enabled) and each finding is logged, then
/// the watch starts and start waits for the first complete table. After the listeners are bound the gateway registers
/// (so its TCP check passes at once); on stop it deregisters, and the gateway keeps accepting for
/// <see cref="MeshGatewayOptions.PropagationDelay"/> before it stops accepting and drains.
/// </summary>
/// <remarks>
/// Preflight error findings are logged as errors but do not fail the start: many are "could not determine" probes
/// (a token that may not read its own policies, a primary that is briefly unreachable) and the gateway may still work.
/// What really prevents it from working fails the start anyway, with a specific message: no first routing table within
/// the start-up timeout (<see cref="TimeoutException"/> naming what is missing), an unreachable agent or a refused
/// registration (<see cref="ConsulException"/>).
/// </remarks>
internal sealed class ConsulCatalogRouteSource : IMeshGatewayRouteSource, IMeshGatewayRegistration, IMeshGatewayListenerSource, IAsyncDisposable
{
    private readonly IOptions<MeshGatewayOptions> _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly Func<ConsulClientOptions, ConsulClient> _clientFactory;
    private ConsulClient? _client;
    private ConsulRouteTableSource? _source;
    private ConsulGatewayRegistrar? _registrar;
    private HashSet<string> _loggedWarnings = new(StringComparer.Ordinal);

    public ConsulCatalogRouteSource(IOptions<MeshGatewayOptions> options, ILoggerFactory loggerFactory, TimeProvider? timeProvider, Func<ConsulClientOptions, ConsulClient>? clientFactory = null)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger(MeshGatewayLog.ConsulCategory);
        _timeProvider = timeProvider ?? TimeProvider.System;
        _clientFactory = clientFactory ?? (static o => new ConsulClient(o));
    }

    internal ConsulGatewayRegistrar? Registrar => _registrar;

    /// <summary>The L7 terminator for peering's HTTP-like exports registered in the container, or null.</summary>
    internal IMeshGatewayPeeringTerminator? PeeringTerminator { get; init; }

    /// <summary>The in-process L7 terminator for peering's HTTP-like exports registered in the container, or null (wins over <see cref="PeeringTerminator"/>).</summary>
    internal IMeshGatewayPeeringConnectionTerminator? PeeringConnectionTerminator { get; init; }

    internal ConsulRouteTableSource? Source => _source;

    /// <summary>
    /// With <see cref="MeshGatewayConsulOptions.Register"/> false: the gateway's existing registration's gateway keys
    /// (read at start), or null when there is none (then the options decide).
    /// </summary>
    internal ConsulGatewayConfig? ReadBack { get; private set; }

    /// <inheritdoc/>
    public IReadOnlyList<MeshGatewayListenerAddress>? Listeners { get; private set; }

    /// <summary>The report of the start's preflight, or null when preflight is off or start did not get that far.</summary>
    internal ConsulPreflightReport? PreflightReport { get; private set; }

    public async Task StartAsync(RouteTableSource routes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(routes);
        MeshGatewayOptions options = _options.Value;
        MeshGatewayConsulOptions consul = options.Consul;
        _client = _clientFactory(ClientOptionsFor(consul));
        if (_client.ServerCertificateVerificationDisabled)
        {
            MeshGatewayLog.ConsulTlsVerificationDisabled(_logger, _client.Address);
        }

        if (consul.Preflight)
        {
            PreflightReport = await RunPreflightAsync(_client, consul, cancellationToken).ConfigureAwait(false);
        }

        if (!consul.Register)
        {
            await ReadRegistrationAsync(_client, consul, cancellationToken).ConfigureAwait(false);
        }

        ConsulRouteTableSourceOptions sourceOptions = SourceOptionsFor(options, ReadBack);
        if (PeeringConnectionTerminator is { } inProcess)
        {
            sourceOptions.Routes = sourceOptions.Routes with { PeeringTerminator = inProcess.Terminator };
        }
        else if (PeeringTerminator is { } terminator)
        {
            sourceOptions.Routes = sourceOptions.Routes with { PeeringHttpTerminator = terminator.EndPoint };
        }

        _source = new ConsulRouteTableSource(_client, routes, sourceOptions, _timeProvider) { Converted = OnConverted };
        _source.Watcher.ErrorObserved = (what, ex) => MeshGatewayLog.ConsulWatchError(_logger, what, ex.Message);
        _source.Watcher.Recovered = (what, failures) => MeshGatewayLog.ConsulWatchRecovered(_logger, what, failures);
        _source.Watcher.PeeringUnavailable = reason => MeshGatewayLog.ConsulPeeringUnavailable(_logger, reason);
        await _source.StartAsync(cancellationToken).ConfigureAwait(false);
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

    public async Task<bool> DeregisterAsync(CancellationToken cancellationToken)
    {
        if (_registrar is { } registrar)
        {
            string serviceId = registrar.Registration.ID ?? registrar.Registration.Name;
            try
            {
                await registrar.StopAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ConsulException or OperationCanceledException)
            {
                // An agent that is down (or a shutdown deadline) must not stop the drain that follows: log and go on.
                MeshGatewayLog.ConsulDeregisterFailed(_logger, serviceId, ex.Message);
                return false;
            }

            MeshGatewayLog.ConsulDeregistered(_logger, serviceId);
            return true;
        }

        return false;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        // Each part's dispose is idempotent, so StopAsync and the container may both call this.
        if (_registrar is { } registrar)
        {
            await registrar.DisposeAsync().ConfigureAwait(false);
        }

        if (_source is { } source)
        {
            await source.DisposeAsync().ConfigureAwait(false);
        }

        _client?.Dispose();
    }

    /// <summary>The client settings from the Hosting options (empty strings mean "not set").</summary>
    internal static ConsulClientOptions ClientOptionsFor(MeshGatewayConsulOptions consul) => new()
    {
        // A scheme-less address parses as http://; the client upgrades it when UseHttps or CONSUL_HTTP_SSL asks for TLS.
        Address = string.IsNullOrEmpty(consul.Address) ? null : ConsulClientOptions.ParseAddress(consul.Address),
        UseHttps = consul.UseHttps,
        Token = NullIfEmpty(consul.Token),
        TokenFile = NullIfEmpty(consul.TokenFile),
        Datacenter = NullIfEmpty(consul.Datacenter),
        Partition = NullIfEmpty(consul.Partition),
        CaFile = NullIfEmpty(consul.CaFile),
        CaPath = NullIfEmpty(consul.CaPath),
        ClientCertificateFile = NullIfEmpty(consul.ClientCertificateFile),
        ClientKeyFile = NullIfEmpty(consul.ClientKeyFile),
        TlsServerName = NullIfEmpty(consul.TlsServerName),
        VerifyServerCertificate = consul.VerifyServerCertificate,
        MaxConnections = consul.MaxConnections,
    };

    /// <summary>
    /// A gateway registered by someone else (<see cref="MeshGatewayConsulOptions.Register"/> false): read its registration
    /// and take the listeners, <c>connect_timeout_ms</c> and remote TCP keepalive from its <c>Proxy.Config</c>, as Consul
    /// gives them to Envoy. No registration: the options decide. A registration that cannot be served fails the start
    /// with every problem named.
    /// </summary>
    private async Task ReadRegistrationAsync(ConsulClient client, MeshGatewayConsulOptions consul, CancellationToken cancellationToken)
    {
        string serviceId = string.IsNullOrEmpty(consul.ServiceId) ? consul.ServiceName : consul.ServiceId;
        ConsulAgentService service;
        try
        {
            service = (await client.GetAgentServiceAsync(serviceId, cancellationToken: cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (ConsulNotFoundException)
        {
            MeshGatewayLog.ConsulNoRegistration(_logger, serviceId);
            return;
        }

        var errors = new List<string>();
        if (service.Kind != "mesh-gateway")
        {
            errors.Add($"The agent's service '{serviceId}' is of kind '{service.Kind}', not 'mesh-gateway' (Consul:ServiceId/ServiceName name the gateway's registration).");
        }

        ConsulGatewayConfig config = ConsulGatewayConfig.Parse(service.Proxy?.Config, errors);
        List<MeshGatewayListenerAddress> listeners = ListenerPlan.FromRegistration(service, config, errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException($"The mesh gateway registration '{serviceId}' (Consul:Register is false, so its Proxy.Config decides listeners and timeouts) cannot be served: {string.Join(" ", errors)}");
        }

        ReadBack = config;
        Listeners = listeners;
        string listenerNames = string.Join(", ", listeners);
        MeshGatewayLog.ConsulRegistrationRead(_logger, serviceId, listenerNames, config.ConnectTimeoutMs, config.RemoteTcpKeepAlive is not null);
    }

    /// <summary>What the preflight checks for this gateway: its token's requirements and, in WAN-federation mode, the servers' settings.</summary>
    internal static ConsulPreflightOptions PreflightOptionsFor(MeshGatewayConsulOptions consul) => new()
    {
        // peering:read unless peering is off; the preflight marks it not applicable below 1.13. mesh:write is always listed:
        // it covers the mesh:read that /v1/config/exported-services needs, and the gateway leaf certificate Consul's
        // gateway requests for peered HTTP services.
        Acl = new MeshGatewayAclOptions { ServiceName = consul.ServiceName, Peering = consul.Peering != false, Partition = NullIfEmpty(consul.Partition) ?? "default" },
        WanFederation = consul.WanFederationEnabled,
    };

    /// <summary>The route table source's settings from the Hosting options (and a read-back registration's keys, which win).</summary>
    internal static ConsulRouteTableSourceOptions SourceOptionsFor(MeshGatewayOptions options, ConsulGatewayConfig? readBack = null) => new()
    {
        Watcher = new ConsulCatalogWatcherOptions { Datacenter = NullIfEmpty(options.Consul.Datacenter), WanFederation = options.Consul.WanFederationEnabled, Peering = options.Consul.Peering },
        Routes = new ConsulRouteTableOptions
        {
            ConnectTimeout = readBack is null ? options.ConnectTimeout : TimeSpan.FromMilliseconds(readBack.ConnectTimeoutMs),
            MaxConnectAttempts = options.ConnectAttempts,
            OutlierDetection = options.OutlierDetection.ToOutlierDetection(),
            RemoteGatewayTcpKeepAlive = readBack is null ? options.RemoteTcpKeepalive.ToTcpKeepAlive() : readBack.RemoteTcpKeepAlive,
            Partition = NullIfEmpty(options.Consul.Partition),
            WanFederation = options.Consul.WanFederationEnabled,
            ServerIdleTimeout = options.Consul.ServerIdleTimeout,
            PeeringHttpTerminator = ListenerEndPoint(options.Consul.PeeringHttpTerminator),
        },
        StartupTimeout = options.Consul.StartupTimeout,
    };

    /// <summary>What the registration says, from the options and the bound listeners (docs/consul-behaviour.md §6).</summary>
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
            NoDefaultBind = options.NoDefaultBind,
            ConnectTimeoutMs = (int)Math.Min(int.MaxValue, options.ConnectTimeout.TotalMilliseconds),
            RemoteTcpKeepAlive = options.RemoteTcpKeepalive.ToTcpKeepAlive(),
            WanFederation = consul.WanFederationEnabled,
        };
        foreach (KeyValuePair<string, string> bind in options.BindAddresses)
        {
            if (ListenerEndPoint(bind.Value) is { } endPoint)
            {
                registration.BindAddresses[bind.Key] = endPoint;
            }
        }

        foreach (KeyValuePair<string, string> meta in consul.Meta)
        {
            registration.Meta[meta.Key] = meta.Value;
        }

        return registration;
    }

    private static IPEndPoint? ListenerEndPoint(string? text) => string.IsNullOrEmpty(text) || !IPEndPoint.TryParse(text, out IPEndPoint? endPoint) ? null : endPoint;

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private async Task<ConsulPreflightReport> RunPreflightAsync(ConsulClient client, MeshGatewayConsulOptions consul, CancellationToken cancellationToken)
    {
        ConsulPreflightReport report = await ConsulPreflight.RunAsync(client, PreflightOptionsFor(consul), cancellationToken).ConfigureAwait(false);
        LogPreflight(_logger, client.Address, report);
        return report;
    }

    /// <summary>Logs the report's facts, then each finding: error findings at level Error, the others as warnings.</summary>
    internal static void LogPreflight(ILogger logger, string address, ConsulPreflightReport report)
    {
        ConsulPreflightFacts facts = report.Facts;
        MeshGatewayLog.ConsulPreflight(logger, address, facts.Datacenter ?? "?", facts.Version ?? "?", facts.ConnectEnabled, facts.TrustDomain ?? "?");
        foreach (PreflightFinding finding in report.Findings)
        {
            string datacenter = finding.Datacenter ?? "(all)";
            if (finding.Severity == PreflightSeverity.Error)
            {
                MeshGatewayLog.ConsulPreflightError(logger, finding.Check, datacenter, finding.Message, finding.Fix);
            }
            else
            {
                MeshGatewayLog.ConsulPreflightProblem(logger, finding.Check, datacenter, finding.Message, finding.Fix);
            }
        }
    }

    /// <summary>Logs one conversion: failures as errors, each warning once while it persists, the route count.</summary>
    private void OnConverted(ConsulRouteConversion conversion)
    {
        if (!conversion.Succeeded)
        {
            MeshGatewayLog.ConsulRoutesFailed(_logger, conversion.Error);
            return;
        }

        var current = new HashSet<string>(conversion.Warnings, StringComparer.Ordinal);
        foreach (string warning in conversion.Warnings)
        {
            if (!_loggedWarnings.Contains(warning))
            {
                MeshGatewayLog.ConsulRouteWarning(_logger, warning);
            }
        }

        _loggedWarnings = current;
        MeshGatewayLog.ConsulRoutesUpdated(_logger, conversion.Table.Routes.Count, conversion.Warnings.Length);
        if (PeeringConnectionTerminator is { } inProcess && conversion.View is { } view && _client is { } client)
        {
            inProcess.ExportsChanged(new MeshGatewayPeeringUpdate { Exports = conversion.TerminatedExports, View = view, Client = client, GatewayServiceName = _options.Value.Consul.ServiceName });
        }
        else
        {
            PeeringTerminator?.ExportsChanged(conversion.TerminatedExports, conversion.Peering);
        }
    }
}

/// <summary>A route source that decides the listeners itself (a registration read back); null: the options decide.</summary>
internal interface IMeshGatewayListenerSource
{
    /// <summary>The listeners to bind, known once the source started; null when the options decide.</summary>
    public IReadOnlyList<MeshGatewayListenerAddress>? Listeners { get; }
}

/// <summary>A route source that registers the gateway somewhere once it listens and deregisters it before it stops accepting.</summary>
internal interface IMeshGatewayRegistration
{
    public Task RegisterAsync(IReadOnlyList<MeshGatewayListenerAddress> listeners, CancellationToken cancellationToken);

    /// <summary>Removes the registration; never throws for an unreachable registry (logged instead).</summary>
    /// <returns>Whether a registration was removed (then peers are learning that the gateway leaves).</returns>
    public Task<bool> DeregisterAsync(CancellationToken cancellationToken);
}
