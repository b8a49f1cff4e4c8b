using System.Security.Authentication;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>Options of <see cref="ConsulConnectDialer"/>.</summary>
public sealed class ConsulConnectDialerOptions
{
    /// <summary>
    /// The caller's service name: its leaf certificate comes from <c>/v1/agent/connect/ca/leaf/&lt;Service&gt;</c>
    /// (the token needs <c>service:write</c> on it) and its <c>service-defaults</c> take part in mode resolution.
    /// </summary>
    public required string Service { get; set; }

    /// <summary>
    /// The local agent registration whose <c>Proxy.MeshGateway</c> and <c>Proxy.Upstreams</c> take part in mode resolution
    /// (<c>GET /v1/agent/service/&lt;id&gt;</c>, read at start and kept current with a hash-blocking query). Default:
    /// <see cref="Service"/>. A missing registration counts as "no registration-level settings".
    /// </summary>
    public string? ServiceId { get; set; }

    /// <summary>
    /// The registration-level mode (<c>Proxy.MeshGateway</c>) for a Connect-native application that cannot carry a
    /// <c>Proxy</c> block in its registration. When set it takes the place of the registration's value.
    /// </summary>
    public MeshGatewayMode ProxyMeshGateway { get; set; }

    /// <summary>
    /// Upstream definitions (name, datacenter, mode) for a Connect-native application; consulted after the
    /// registration's <c>Proxy.Upstreams</c> when the dialled <see cref="ConnectUpstream"/> sets no mode itself.
    /// </summary>
    public IList<ConnectUpstream> Upstreams { get; } = new List<ConnectUpstream>();

    /// <summary>TCP connect timeout per endpoint. Default 5 s (Consul's <c>connect_timeout_ms</c> default).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>TLS handshake timeout. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Only passing instances count as healthy (warning ones are skipped). Default <see langword="false"/>, as in Consul.</summary>
    public bool OnlyPassing { get; set; }

    /// <summary>TLS versions offered. Default <see cref="SslProtocols.None"/> (the OS default: TLS 1.2 and 1.3).</summary>
    public SslProtocols EnabledSslProtocols { get; set; } = SslProtocols.None;

    /// <summary>
    /// How long before the leaf certificate's <c>ValidBefore</c> it is fetched again without waiting for the blocking
    /// query (a safety net: the agent itself rotates leaves well before expiry). Default 1 minute.
    /// </summary>
    public TimeSpan RenewBeforeExpiry { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Blocking-query settings of the certificate, roots and registration watches; <see langword="null"/> uses the defaults.</summary>
    public BlockingQueryOptions? Watch { get; set; }

    /// <summary>
    /// Settings of the catalog watcher the dialer creates when none is passed to its constructor; <see langword="null"/>
    /// uses the defaults (its <see cref="ConsulCatalogWatcherOptions.Datacenter"/> defaults to the agent's).
    /// </summary>
    public ConsulCatalogWatcherOptions? Catalog { get; set; }

    /// <summary>How long a dial waits for the catalog watcher's first view before failing with
    /// <see cref="ConnectDialFailure.CatalogUnavailable"/> (the dial's cancellation token also ends the wait). Default 30 s.</summary>
    public TimeSpan CatalogTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long an agent answer the watcher's view does not hold is reused by later dials: another datacenter's instances
    /// of a service (<c>/v1/health/connect/&lt;name&gt;?dc=</c>), and the confirmation that there are no gateways (or, in
    /// the caller's datacenter, no instances) when the view has none; an empty answer is never reused. Default 5 s;
    /// <see cref="TimeSpan.Zero"/> asks every time.
    /// </summary>
    public TimeSpan RemoteInstancesCacheDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the caller's registration is re-read when it cannot be watched by hash (not registered, or no
    /// <c>X-Consul-ContentHash</c> from the agent). Default 10 s.</summary>
    public TimeSpan RegistrationPollInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock for expiry decisions and timing. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A value is out of range, with the option named.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Service))
        {
            throw new ArgumentException("ConsulConnectDialerOptions.Service must name the caller's service.", nameof(Service));
        }

        if (ConnectTimeout <= TimeSpan.Zero || HandshakeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ConnectTimeout ({ConnectTimeout}) and HandshakeTimeout ({HandshakeTimeout}) must be positive.", nameof(ConnectTimeout));
        }

        if (RenewBeforeExpiry < TimeSpan.Zero)
        {
            throw new ArgumentException($"RenewBeforeExpiry ({RenewBeforeExpiry}) must not be negative.", nameof(RenewBeforeExpiry));
        }

        if (CatalogTimeout <= TimeSpan.Zero || RemoteInstancesCacheDuration < TimeSpan.Zero || RegistrationPollInterval < TimeSpan.FromMilliseconds(10))
        {
            throw new ArgumentException(
                $"CatalogTimeout ({CatalogTimeout}) must be positive, RemoteInstancesCacheDuration ({RemoteInstancesCacheDuration}) not negative and RegistrationPollInterval ({RegistrationPollInterval}) at least 10 ms.",
                nameof(CatalogTimeout));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider);
        foreach (ConnectUpstream upstream in Upstreams)
        {
            if (upstream is null || string.IsNullOrEmpty(upstream.Name))
            {
                throw new ArgumentException("Every entry of ConsulConnectDialerOptions.Upstreams needs a Name.", nameof(Upstreams));
            }
        }

        Watch?.Validate();
        Catalog?.Validate();
    }
}
