using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// A thin, typed, AOT-safe client for the parts of Consul's HTTP API a mesh gateway needs (docs/consul-behaviour.md §8).
/// </summary>
/// <remarks>
/// Thread-safe; create one per agent and share it. Read calls take a <see cref="ConsulQuery"/>: with a non-zero
/// <see cref="ConsulQuery.Index"/> (or a <see cref="ConsulQuery.Hash"/>) the call blocks server-side for up to
/// <c>wait</c> and the client timeout is <c>wait + wait/16 + RequestTimeout</c> (Consul adds up to wait/16 of jitter).
/// Failures are raised as <see cref="ConsulException"/> subclasses; caller cancellation as
/// <see cref="OperationCanceledException"/>. The ACL token is sent only in the <c>X-Consul-Token</c> header.
/// </remarks>
public sealed class ConsulClient : IDisposable
{
    private const int MaxErrorBodyChars = 4096;
    private readonly HttpClient _http;
    private readonly ConsulClientOptions _options;
    private readonly ConsulAgentConnection _connection;
    private readonly string? _token;

    /// <summary>Creates a client.</summary>
    /// <param name="options">Address, token source, datacenter, TLS, connection bound, timeouts; unset connection options
    /// fall back to the <c>CONSUL_*</c> environment variables (see <see cref="ConsulClientOptions"/>).</param>
    /// <exception cref="ArgumentException">An option or <c>CONSUL_*</c> variable is invalid; the message names it.</exception>
    /// <exception cref="IOException">The token file cannot be read.</exception>
    public ConsulClient(ConsulClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _connection = ConsulAgentConnection.Resolve(options);
        _token = _connection.Token;
        HttpMessageHandler handler = options.Handler ?? _connection.CreateHandler(options.MaxConnections);
        _http = new HttpClient(handler, disposeHandler: options.Handler is null)
        {
            BaseAddress = _connection.BaseAddress,
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = 64 * 1024 * 1024,
        };
    }

    /// <summary>The options the client was created with.</summary>
    public ConsulClientOptions Options => _options;

    /// <summary>Whether an ACL token is sent with every request (the token itself is never exposed).</summary>
    public bool HasToken => _token is not null;

    /// <summary>Where the token came from: an option or variable name (never the value).</summary>
    public string TokenSource => _connection.TokenSource;

    /// <summary>The agent address in use after options and environment are merged, without credentials (<c>unix:///path</c> for a socket).</summary>
    public string Address => _connection.Display;

    /// <summary>
    /// <see langword="true"/> when TLS is in use and the agent's certificate is not verified
    /// (<see cref="ConsulClientOptions.VerifyServerCertificate"/> or <c>CONSUL_HTTP_SSL_VERIFY=false</c>): insecure, log it.
    /// </summary>
    public bool ServerCertificateVerificationDisabled => _connection.UseTls && !_connection.VerifyServerCertificate && _options.Handler is null;

    /// <summary>The HTTP version of the last response (tests measure whether the agent negotiated HTTP/2).</summary>
    internal Version? LastResponseVersion { get; private set; }

    /// <summary><c>GET /v1/agent/self</c>: datacenter, primary datacenter, node name, version (needs <c>agent:read</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The agent description.</returns>
    public Task<ConsulResponse<ConsulAgentSelf>> GetAgentSelfAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/agent/self", default, null, ConsulJsonContext.Default.ConsulAgentSelf, agentLocal: true, cancellationToken);

    /// <summary>
    /// Reads the agent's limit on concurrent HTTP connections per client IP (<c>limits.http_max_conns_per_client</c>, reported
    /// as <c>DebugConfig.HTTPMaxConnsPerClient</c> by <c>/v1/agent/self</c>; 200 unless configured). Feed it to
    /// <see cref="ConsulClientOptions.ValidateAgainstAgentLimit"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The limit, or null when the agent does not report it.</returns>
    public async Task<int?> GetAgentHttpMaxConnsPerClientAsync(CancellationToken cancellationToken = default) =>
        (await GetAgentSelfAsync(cancellationToken).ConfigureAwait(false)).Value.HttpMaxConnsPerClient;

    /// <summary><c>GET /v1/acl/token/self</c>: the links of the token in use (any valid token may read itself; its secret is not kept).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The token's policy, role and identity links.</returns>
    public Task<ConsulResponse<ConsulAclToken>> GetAclTokenSelfAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/acl/token/self", default, null, ConsulJsonContext.Default.ConsulAclToken, agentLocal: true, cancellationToken);

    /// <summary><c>GET /v1/acl/policy/&lt;id&gt;</c> (needs <c>acl:read</c>).</summary>
    /// <param name="id">The policy ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The policy with its rules.</returns>
    public Task<ConsulResponse<ConsulAclPolicy>> GetAclPolicyAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return SendAsync(HttpMethod.Get, "v1/acl/policy/" + Uri.EscapeDataString(id), default, null, ConsulJsonContext.Default.ConsulAclPolicy, agentLocal: true, cancellationToken);
    }

    /// <summary><c>GET /v1/acl/role/&lt;id&gt;</c> (needs <c>acl:read</c>).</summary>
    /// <param name="id">The role ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The role.</returns>
    public Task<ConsulResponse<ConsulAclRole>> GetAclRoleAsync(string id, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return SendAsync(HttpMethod.Get, "v1/acl/role/" + Uri.EscapeDataString(id), default, null, ConsulJsonContext.Default.ConsulAclRole, agentLocal: true, cancellationToken);
    }

    /// <summary><c>GET /v1/status/leader</c>: the Raft leader's address, or empty while there is none.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The leader's <c>ip:port</c>, empty without a leader.</returns>
    public Task<ConsulResponse<string>> GetLeaderAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/status/leader", default, null, ConsulJsonContext.Default.String, agentLocal: true, cancellationToken);

    /// <summary><c>GET /v1/catalog/datacenters</c>: known datacenters, nearest first (needs no ACL, no leader).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The datacenter names.</returns>
    public async Task<ConsulResponse<IReadOnlyList<string>>> GetDatacentersAsync(CancellationToken cancellationToken = default) =>
        As<List<string>, IReadOnlyList<string>>(await SendAsync(HttpMethod.Get, "v1/catalog/datacenters", default, null, ConsulJsonContext.Default.ListString, agentLocal: true, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/catalog/services</c>: service name → tags (blocking; filtered by ACLs).</summary>
    /// <param name="query">Datacenter, index/wait, filter (ignored by Consul 1.8 on this endpoint).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Service names with their tags.</returns>
    public async Task<ConsulResponse<IReadOnlyDictionary<string, List<string>>>> GetServicesAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<Dictionary<string, List<string>>, IReadOnlyDictionary<string, List<string>>>(await SendAsync(HttpMethod.Get, "v1/catalog/services", query, null, ConsulJsonContext.Default.DictionaryStringListString, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/health/service/&lt;name&gt;</c>: all instances of a service with their checks (blocking).</summary>
    /// <param name="service">Service name.</param>
    /// <param name="passingOnly">Adds <c>?passing</c>: only instances whose checks all pass.</param>
    /// <param name="query">Datacenter, index/wait, filter (e.g. <c>Service.Kind == "mesh-gateway"</c>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The health entries as catalog instances (entries without a <c>Service</c> are dropped).</returns>
    public Task<ConsulResponse<IReadOnlyList<CatalogServiceInstance>>> GetHealthServiceAsync(string service, bool passingOnly = false, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/health/service/" + Uri.EscapeDataString(service), query, passingOnly ? "passing=true" : null, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/partitions</c> (Consul Enterprise 1.11+): the admin partitions (needs <c>operator:read</c> or a
    /// partition's read; Community Edition answers 404).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The partitions.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulPartition>>> ListPartitionsAsync(CancellationToken cancellationToken = default) =>
        As<List<ConsulPartition>, IReadOnlyList<ConsulPartition>>(await SendAsync(HttpMethod.Get, "v1/partitions", default, null, ConsulJsonContext.Default.ListConsulPartition, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// <c>GET /v1/internal/federation-states/mesh-gateways</c>: the mesh gateways of every datacenter as the federation states
    /// replicated to this datacenter report them (WAN federation through mesh gateways; blocking). Consul answers <c>{}</c>
    /// without <c>service:read</c> on the gateways and <c>node:read</c>, and in a secondary until the states are replicated.
    /// The lists include gateways without <c>consul-wan-federation = "1"</c> meta (docs/consul-behaviour.md §14).
    /// </summary>
    /// <param name="query">Index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Gateways by datacenter.</returns>
    public async Task<ConsulResponse<IReadOnlyDictionary<string, IReadOnlyList<CatalogServiceInstance>>>> GetFederationStateMeshGatewaysAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<Dictionary<string, IReadOnlyList<CatalogServiceInstance>>, IReadOnlyDictionary<string, IReadOnlyList<CatalogServiceInstance>>>(await SendAsync(HttpMethod.Get, "v1/internal/federation-states/mesh-gateways", query, null, ConsulJsonContext.Default.DictionaryStringIReadOnlyListCatalogServiceInstance, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/health/connect/&lt;name&gt;</c>: mesh-capable instances (sidecars, native, linked terminating gateways).</summary>
    /// <param name="service">Destination service name.</param>
    /// <param name="query">Datacenter, index/wait, filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The health entries as catalog instances (entries without a <c>Service</c> are dropped).</returns>
    public Task<ConsulResponse<IReadOnlyList<CatalogServiceInstance>>> GetHealthConnectAsync(string service, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/health/connect/" + Uri.EscapeDataString(service), query, null, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/connect/ca/roots</c>: the trust domain and CA roots (blocking; needs no ACL).</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The roots.</returns>
    public Task<ConsulResponse<ConsulCaRoots>> GetCaRootsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/connect/ca/roots", query, null, ConsulJsonContext.Default.ConsulCaRoots, agentLocal: false, cancellationToken);

    /// <summary><c>GET /v1/agent/connect/ca/roots</c>: the agent-cached CA roots (blocking).</summary>
    /// <param name="query">Index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The roots.</returns>
    public Task<ConsulResponse<ConsulCaRoots>> GetAgentCaRootsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/agent/connect/ca/roots", query, null, ConsulJsonContext.Default.ConsulCaRoots, agentLocal: true, cancellationToken);

    /// <summary><c>GET /v1/agent/connect/ca/leaf/&lt;service&gt;</c>: a leaf certificate for the service (blocking; needs <c>service:write</c>).</summary>
    /// <param name="service">Service name.</param>
    /// <param name="query">Index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The certificate and key.</returns>
    public Task<ConsulResponse<ConsulLeafCertificate>> GetLeafCertificateAsync(string service, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/agent/connect/ca/leaf/" + Uri.EscapeDataString(service), query, null, ConsulJsonContext.Default.ConsulLeafCertificate, agentLocal: true, cancellationToken);
    }

    /// <summary>
    /// <c>GET /v1/discovery-chain/&lt;service&gt;</c> (Consul ≥ 1.6; needs <c>service:read</c>): the service's compiled
    /// discovery chain, kept as raw JSON (the L7 terminator of MeshGateway.Peering flattens it with its own model).
    /// </summary>
    /// <param name="service">Service name.</param>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The answer (<c>{"Chain": {...}}</c>).</returns>
    public Task<ConsulResponse<JsonElement>> GetDiscoveryChainAsync(string service, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/discovery-chain/" + Uri.EscapeDataString(service), query, null, ConsulJsonContext.Default.JsonElement, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/config/proxy-defaults/global</c>.</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ConsulNotFoundException">No such entry.</exception>
    public Task<ConsulResponse<ConsulProxyDefaults>> GetProxyDefaultsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/config/proxy-defaults/global", query, null, ConsulJsonContext.Default.ConsulProxyDefaults, agentLocal: false, cancellationToken);

    /// <summary><c>GET /v1/config/service-defaults/&lt;name&gt;</c>.</summary>
    /// <param name="service">Service name.</param>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ConsulNotFoundException">No such entry.</exception>
    public Task<ConsulResponse<ConsulServiceDefaults>> GetServiceDefaultsAsync(string service, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/config/service-defaults/" + Uri.EscapeDataString(service), query, null, ConsulJsonContext.Default.ConsulServiceDefaults, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/config/service-defaults</c>: every entry of the kind (blocking).</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulServiceDefaults>>> ListServiceDefaultsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<List<ConsulServiceDefaults>, IReadOnlyList<ConsulServiceDefaults>>(await SendAsync(HttpMethod.Get, "v1/config/service-defaults", query, null, ConsulJsonContext.Default.ListConsulServiceDefaults, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/config/service-resolver/&lt;name&gt;</c>.</summary>
    /// <param name="service">Service name.</param>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ConsulNotFoundException">No such entry.</exception>
    public Task<ConsulResponse<ConsulServiceResolver>> GetServiceResolverAsync(string service, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        return SendAsync(HttpMethod.Get, "v1/config/service-resolver/" + Uri.EscapeDataString(service), query, null, ConsulJsonContext.Default.ConsulServiceResolver, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/config/service-resolver</c>: every resolver (blocking; filtered by <c>service:read</c>).</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulServiceResolver>>> ListServiceResolversAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<List<ConsulServiceResolver>, IReadOnlyList<ConsulServiceResolver>>(await SendAsync(HttpMethod.Get, "v1/config/service-resolver", query, null, ConsulJsonContext.Default.ListConsulServiceResolver, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/config/mesh/mesh</c> (Consul ≥ 1.10).</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ConsulNotFoundException">No such entry.</exception>
    public Task<ConsulResponse<ConsulMeshConfigEntry>> GetMeshAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "v1/config/mesh/mesh", query, null, ConsulJsonContext.Default.ConsulMeshConfigEntry, agentLocal: false, cancellationToken);

    /// <summary><c>GET /v1/config/exported-services/&lt;partition&gt;</c> (Consul ≥ 1.13; needs <c>mesh:read</c>).</summary>
    /// <param name="partition">The partition; <c>default</c> in CE.</param>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="ConsulNotFoundException">No such entry.</exception>
    public Task<ConsulResponse<ConsulExportedServices>> GetExportedServicesAsync(string partition = "default", ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(partition);
        return SendAsync(HttpMethod.Get, "v1/config/exported-services/" + Uri.EscapeDataString(partition), query, null, ConsulJsonContext.Default.ConsulExportedServices, agentLocal: false, cancellationToken);
    }

    /// <summary>
    /// <c>GET /v1/peerings</c> (Consul 1.13+; needs <c>peering:read</c>): every cluster peering of the partition. Agents
    /// without peering answer 404 (measured on 1.8.7: an empty 404).
    /// </summary>
    /// <param name="query">Index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The peerings.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulPeering>>> ListPeeringsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<List<ConsulPeering>, IReadOnlyList<ConsulPeering>>(await SendAsync(HttpMethod.Get, "v1/peerings", query, null, ConsulJsonContext.Default.ListConsulPeering, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/peering/&lt;name&gt;</c> (Consul 1.13+; needs <c>peering:read</c>): one peering, with the peer's CA certificates.</summary>
    /// <param name="name">The local name of the peer.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The peering.</returns>
    /// <exception cref="ConsulNotFoundException">No such peering.</exception>
    public Task<ConsulResponse<ConsulPeering>> GetPeeringAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return SendAsync(HttpMethod.Get, "v1/peering/" + Uri.EscapeDataString(name), default, null, ConsulJsonContext.Default.ConsulPeering, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/agent/service/&lt;id&gt;</c>: a service registered with this agent (hash-blocking with <see cref="ConsulQuery.Hash"/>).</summary>
    /// <param name="serviceId">Instance ID.</param>
    /// <param name="query">Hash/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The service; <see cref="ConsulResponse{T}.ContentHash"/> feeds the next call.</returns>
    /// <exception cref="ConsulNotFoundException">The agent has no such service.</exception>
    public Task<ConsulResponse<ConsulAgentService>> GetAgentServiceAsync(string serviceId, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceId);
        return SendAsync(HttpMethod.Get, "v1/agent/service/" + Uri.EscapeDataString(serviceId), query, null, ConsulJsonContext.Default.ConsulAgentService, agentLocal: true, cancellationToken);
    }

    /// <summary><c>PUT /v1/agent/service/register</c> (needs <c>service:write</c> on the name).</summary>
    /// <param name="registration">The service.</param>
    /// <param name="replaceExistingChecks">Adds <c>?replace-existing-checks=true</c>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the agent accepted the registration.</returns>
    public async Task RegisterServiceAsync(ConsulServiceRegistration registration, bool replaceExistingChecks = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(registration, ConsulJsonContext.Default.ConsulServiceRegistration);
        await SendAsync<JsonElement>(HttpMethod.Put, "v1/agent/service/register", default, replaceExistingChecks ? "replace-existing-checks=true" : null, null, agentLocal: true, body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>PUT /v1/agent/service/deregister/&lt;id&gt;</c>.</summary>
    /// <param name="serviceId">Instance ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the agent removed the service.</returns>
    public async Task DeregisterServiceAsync(string serviceId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceId);
        await SendAsync<JsonElement>(HttpMethod.Put, "v1/agent/service/deregister/" + Uri.EscapeDataString(serviceId), default, null, null, agentLocal: true, [], cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => _http.Dispose();

    /// <inheritdoc />
    public override string ToString() =>
        $"Consul {_connection.Display} dc={_options.Datacenter ?? "(agent)"} maxConnections={_options.MaxConnections} token={(_token is null ? "(none)" : "(from " + _connection.TokenSource + ")")}" +
        (ServerCertificateVerificationDisabled ? " TLS-VERIFICATION-DISABLED" : string.Empty);

    /// <summary>
    /// <c>GET /v1/health/state/&lt;state&gt;</c>: every check of the datacenter in that state (<c>any</c>, <c>passing</c>,
    /// <c>warning</c>, <c>critical</c>); blocking. Its index moves on any check change, which makes <c>any</c> the change
    /// trigger for health across the whole catalog in one long-poll.
    /// </summary>
    /// <param name="state"><c>any</c>, <c>passing</c>, <c>warning</c> or <c>critical</c>.</param>
    /// <param name="query">Datacenter, index/wait, filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The checks.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulCheckState>>> GetHealthStateAsync(string state = "any", ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(state);
        return As<List<ConsulCheckState>, IReadOnlyList<ConsulCheckState>>(await SendAsync(HttpMethod.Get, "v1/health/state/" + Uri.EscapeDataString(state), query, null, ConsulJsonContext.Default.ListConsulCheckState, agentLocal: false, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// <c>GET /v1/config/proxy-defaults</c>: the <c>proxy-defaults</c> entries (zero or one, named <c>global</c>); blocking,
    /// and unlike <c>/v1/config/proxy-defaults/global</c> it answers <c>[]</c> instead of 404 when there is none. Every
    /// <c>/v1/config/&lt;kind&gt;</c> list shares the config-entry table's index, so a long-poll on this one wakes on a
    /// write of any kind (measured on Consul 1.8.7: a <c>service-defaults</c> write moved this index too).
    /// </summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The entries.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulProxyDefaults>>> ListProxyDefaultsAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<List<ConsulProxyDefaults>, IReadOnlyList<ConsulProxyDefaults>>(await SendAsync(HttpMethod.Get, "v1/config/proxy-defaults", query, null, ConsulJsonContext.Default.ListConsulProxyDefaults, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/catalog/nodes</c>: every node of the datacenter (blocking; filtered by ACLs).</summary>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The nodes.</returns>
    public async Task<ConsulResponse<IReadOnlyList<ConsulCatalogNode>>> GetNodesAsync(ConsulQuery query = default, CancellationToken cancellationToken = default) =>
        As<List<ConsulCatalogNode>, IReadOnlyList<ConsulCatalogNode>>(await SendAsync(HttpMethod.Get, "v1/catalog/nodes", query, null, ConsulJsonContext.Default.ListConsulCatalogNode, agentLocal: false, cancellationToken).ConfigureAwait(false));

    /// <summary><c>GET /v1/catalog/node-services/&lt;node&gt;</c> (Consul 1.7+): the node and its service instances with their modify indexes.</summary>
    /// <param name="node">Node name.</param>
    /// <param name="query">Datacenter, index/wait.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The node and its services (null <c>Node</c> when the node is unknown).</returns>
    public Task<ConsulResponse<ConsulNodeServices>> GetNodeServicesAsync(string node, ConsulQuery query = default, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        return SendAsync(HttpMethod.Get, "v1/catalog/node-services/" + Uri.EscapeDataString(node), query, null, ConsulJsonContext.Default.ConsulNodeServices, agentLocal: false, cancellationToken);
    }

    /// <summary><c>GET /v1/health/state/any</c> read into the catalog watcher's compact check list (blocking).</summary>
    internal Task<ConsulResponse<CheckList>> GetCheckListAsync(ConsulQuery query, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, "v1/health/state/any", query, null, ConsulJsonContext.Default.CheckList, agentLocal: false, cancellationToken);

    private static ConsulResponse<TOut> As<TIn, TOut>(ConsulResponse<TIn> response)
        where TIn : TOut =>
        new(response.Value, response.Index)
        {
            KnownLeader = response.KnownLeader,
            LastContact = response.LastContact,
            ContentHash = response.ContentHash,
            ResultsFilteredByAcls = response.ResultsFilteredByAcls,
            BodyHash = response.BodyHash,
        };

    private Task<ConsulResponse<T>> SendAsync<T>(HttpMethod method, string path, ConsulQuery query, string? extra, JsonTypeInfo<T> typeInfo, bool agentLocal, CancellationToken cancellationToken) =>
        SendAsync(method, path, query, extra, typeInfo, agentLocal, null, cancellationToken)!;

    private async Task<ConsulResponse<T?>> SendAsync<T>(HttpMethod method, string path, ConsulQuery query, string? extra, JsonTypeInfo<T>? typeInfo, bool agentLocal, byte[]? body, CancellationToken cancellationToken)
    {
        string dc = query.Datacenter ?? (agentLocal ? null : _options.Datacenter) ?? string.Empty;
        string relative = BuildPath(path, query, extra, dc);
        string description = method.Method + " /" + relative;
        TimeSpan wait = query.Wait ?? _options.BlockingWait;
        TimeSpan timeout = query.IsBlocking ? wait + (wait / 16) + _options.RequestTimeout : _options.RequestTimeout;

        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        using var request = new HttpRequestMessage(method, relative);
        if (_connection.UseTls)
        {
            // Go's net/http server (the agent) speaks HTTP/2 over TLS: ask for it so requests share one connection.
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
            if (_connection.TlsServerName is { } serverName)
            {
                // SocketsHttpHandler takes SNI and the certificate name check from the Host header (SetupTLSConfig's ServerName).
                request.Headers.Host = serverName;
            }
        }

        if (_token is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Consul-Token", _token);
        }

        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        HttpResponseMessage response;
        byte[] content;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeoutCts.Token).ConfigureAwait(false);
            try
            {
                content = await response.Content.ReadAsByteArrayAsync(timeoutCts.Token).ConfigureAwait(false);
            }
            catch
            {
                // A response whose body could not be read (timeout, cancellation, reset) would otherwise hold its
                // pooled connection until finalisation.
                response.Dispose();
                throw;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException ex)
        {
            throw new ConsulTransportException($"Consul did not answer {description} within {timeout.TotalSeconds:0.#} s.", description, isTimeout: true, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new ConsulTransportException(Scrub(TransportFailureMessage(description, ex)), description, isTimeout: false, ex);
        }
        catch (IOException ex)
        {
            // Reading the body failed (HttpIOException: the agent closed the connection mid-answer, e.g. it stopped).
            throw new ConsulTransportException(Scrub($"Consul request {description} failed while reading the answer: {ex.Message}"), description, isTimeout: false, ex);
        }

        using (response)
        {
            LastResponseVersion = response.Version;
            if (!response.IsSuccessStatusCode)
            {
                throw CreateStatusException(description, response.StatusCode, content, dc);
            }

            T? value = default;
            if (typeInfo is not null)
            {
                try
                {
                    value = JsonSerializer.Deserialize(content, typeInfo);
                }
                catch (JsonException ex)
                {
                    throw new ConsulTransportException($"Consul answered {description} with a body that is not the expected JSON: {ex.Message}", description, isTimeout: false, ex);
                }

                if (value is null)
                {
                    throw new ConsulTransportException($"Consul answered {description} with a JSON null.", description, isTimeout: false, null);
                }
            }

            return new ConsulResponse<T?>(value, ParseUInt64(response, "X-Consul-Index"))
            {
                KnownLeader = string.Equals(Header(response, "X-Consul-KnownLeader"), "true", StringComparison.OrdinalIgnoreCase),
                LastContact = TimeSpan.FromMilliseconds(ParseUInt64(response, "X-Consul-LastContact")),
                ContentHash = Header(response, "X-Consul-ContentHash"),
                ResultsFilteredByAcls = string.Equals(Header(response, "X-Consul-Results-Filtered-By-ACLs"), "true", StringComparison.OrdinalIgnoreCase),
                BodyHash = Fnv1a.Hash(content),
            };
        }
    }

    private string BuildPath(string path, ConsulQuery query, string? extra, string dc)
    {
        var sb = new StringBuilder(path);
        char sep = '?';
        void Add(string name, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                sb.Append(sep).Append(name).Append('=').Append(Uri.EscapeDataString(value));
                sep = '&';
            }
        }

        Add("dc", dc);
        Add("ns", _options.Namespace);
        Add("partition", query.Partition ?? _options.Partition);
        if (query.Index > 0)
        {
            Add("index", query.Index.ToString(CultureInfo.InvariantCulture));
        }

        if (query.Hash is not null)
        {
            Add("hash", query.Hash);
        }

        if (query.IsBlocking)
        {
            Add("wait", GoDuration.Format(query.Wait ?? _options.BlockingWait));
        }

        Add("peer", query.Peer);
        Add("filter", query.Filter);
        if (query.Consistent)
        {
            sb.Append(sep).Append("consistent");
            sep = '&';
        }

        if (extra is not null)
        {
            sb.Append(sep).Append(extra);
        }

        return sb.ToString();
    }

    /// <summary>
    /// The message of a failed exchange: the request, the agent, every inner message (the outer one alone says only "an
    /// error occurred"), and what to do when the agent closed the TLS session without a client certificate.
    /// </summary>
    private string TransportFailureMessage(string description, HttpRequestException ex)
    {
        var message = new StringBuilder("Consul request ").Append(description).Append(" to ").Append(_connection.Display).Append(" failed: ").Append(ex.Message);
        bool tlsRefused = false;
        for (Exception? inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            message.Append(" → ").Append(inner.Message);
            tlsRefused |= inner is System.Security.Authentication.AuthenticationException || (inner is IOException && inner.InnerException is not System.Net.Sockets.SocketException);
        }

        if (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            tlsRefused = true;
        }

        if (_connection.UseTls && _connection.ClientCertificate is null && _options.Handler is null && tlsRefused)
        {
            message.Append(". The TLS session to the agent failed and no client certificate was presented: an agent with verify_incoming = true refuses clients without one. Set ")
                .Append(nameof(ConsulClientOptions.ClientCertificateFile)).Append(" and ").Append(nameof(ConsulClientOptions.ClientKeyFile))
                .Append(" (or ").Append(ConsulClientOptions.ClientCertificateEnvironmentVariable).Append(" and ").Append(ConsulClientOptions.ClientKeyEnvironmentVariable)
                .Append(") to a certificate signed by the agent's CA (consul tls cert create -client).");
        }

        return message.ToString();
    }

    /// <summary>Defence in depth: no message built here may carry the token, whatever a lower layer put in it.</summary>
    private string Scrub(string message) =>
        _token is { Length: > 0 } token ? message.Replace(token, "(token)", StringComparison.Ordinal) : message;

    private static ConsulException CreateStatusException(string description, HttpStatusCode status, byte[] content, string dc)
    {
        string body = Encoding.UTF8.GetString(content, 0, Math.Min(content.Length, MaxErrorBodyChars)).Trim();
        return status switch
        {
            HttpStatusCode.Forbidden when body.Contains("ACL not found", StringComparison.OrdinalIgnoreCase) => new ConsulAclNotFoundException(description, body),
            HttpStatusCode.Forbidden when body.Contains("Permission denied", StringComparison.OrdinalIgnoreCase) => new ConsulPermissionDeniedException(description, body),
            HttpStatusCode.NotFound => new ConsulNotFoundException(description, body),
            HttpStatusCode.InternalServerError when body.Contains("No path to datacenter", StringComparison.OrdinalIgnoreCase) =>
                new ConsulNoPathToDatacenterException(description, dc.Length == 0 ? null : dc, body),
            _ => new ConsulHttpException(description, status, body),
        };
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? values.FirstOrDefault() : null;

    private static ulong ParseUInt64(HttpResponseMessage response, string name) =>
        ulong.TryParse(Header(response, name), NumberStyles.None, CultureInfo.InvariantCulture, out ulong value) ? value : 0;
}
