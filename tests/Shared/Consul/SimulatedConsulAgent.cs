using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;

namespace MeshGateway.Testing;

#pragma warning disable CA1507 // The JSON property names of Consul's API happen to equal some C# member names; they are wire names, not nameof targets.

/// <summary>
/// An in-process HTTP server (Kestrel on 127.0.0.1, port 0) that answers the read endpoints a mesh gateway uses the way
/// Consul 1.8.7 does, from an in-memory catalog that tests change directly. Written here (not a library) because no
/// maintained Consul simulator for .NET exists, and a real agent cannot hold 50,000 instances over 20 datacenters in a test.
/// </summary>
/// <remarks>
/// <para>Index semantics, as measured on Consul 1.8.7 (every datacenter has its own Raft index; every write takes the next):
/// <c>/v1/catalog/services</c> answers with the index of the last registration or deregistration (a re-registration that
/// only changes a port or weights moves it while the body stays the same); <c>/v1/health/state/&lt;state&gt;</c> with the
/// index of the last check change (a registration or deregistration with checks moves both);
/// <c>/v1/health/connect/&lt;name&gt;</c> and <c>/v1/health/service/&lt;name&gt;</c> with the index of the last change to
/// that service or its sidecars (their registrations, their checks, checks of their nodes), or the services index for a
/// name that never existed; every <c>/v1/config/&lt;kind&gt;</c> list and entry with the one config-entry index (a write of
/// any kind moves all); <c>/v1/connect/ca/roots</c> with the roots' index. Blocking: <c>index</c> &gt; 0 waits until the
/// relevant index exceeds it or <c>wait</c> (Go duration, default 5 min, at most 10 min, no jitter) passes; index 0 answers
/// at once. Every write completes one <see cref="TaskCompletionSource"/> per datacenter, which wakes that datacenter's waiters
/// to re-check their index.</para>
/// <para>Also like 1.8: <c>?filter</c> on <c>/v1/catalog/services</c> is ignored; on <c>/v1/health/service</c> only
/// <c>Service.Kind == "…"</c> and <c>ServiceKind == "…"</c> are understood (anything else is a 400 naming the simulator's
/// limit); an unknown <c>dc</c> is a 500 <c>No path to datacenter</c>; a bad <c>wait</c> or <c>index</c> is a 400.
/// Writes go through the C# API, not HTTP (only reads are served).</para>
/// <para>Connections: a Kestrel connection middleware counts open TCP connections (<see cref="OpenConnections"/>) and
/// keeps the highest count seen (<see cref="MaxOpenConnections"/>); these are real accepted sockets, not requests.</para>
/// </remarks>
internal sealed class SimulatedConsulAgent : IAsyncDisposable
{
    public const string ServiceCheckPrefix = "service:";
    public const string NodeCheckId = "serfHealth";

    private static readonly TimeSpan s_defaultWait = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan s_maxWait = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, DatacenterState> _dcs = new(StringComparer.Ordinal);
    private readonly DatacenterState _local;
    private readonly Dictionary<(string Kind, string Name), ConfigEntry> _config = [];
    private readonly Dictionary<string, DatacenterState> _partitions = new(StringComparer.Ordinal);
    private string? _agentPartition;
    private bool _peeringSupported;
    private TaskCompletionSource _requested = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<SimPeering> _peerings = [];
    private readonly Dictionary<string, (string Json, ulong Index)> _fixedAnswers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DatacenterState> _imports = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _requestsByEndpoint = new(StringComparer.Ordinal);
    private WebApplication? _app;
    private ulong _configIndex = 1;
    private ulong _rootsIndex = 1;
    private string _trustDomain;
    private int _open;
    private int _maxOpen;
    private long _accepted;
    private long _requests;

    private SimulatedConsulAgent(string datacenter, string trustDomain)
    {
        _trustDomain = trustDomain;
        _local = AddDatacenterLocked(datacenter);
    }

    /// <summary>The agent's base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>The agent's datacenter.</summary>
    public string Datacenter => _local.Name;

    /// <summary>The node the agent runs on (holds the <c>consul</c> service).</summary>
    public string NodeName => "sim-server-" + _local.Name;

    /// <summary>The trust domain <c>/v1/connect/ca/roots</c> reports.</summary>
    public string TrustDomain
    {
        get
        {
            lock (_gate)
            {
                return _trustDomain;
            }
        }
    }

    /// <summary>TCP connections open now.</summary>
    public int OpenConnections => Volatile.Read(ref _open);

    /// <summary>The most TCP connections ever open at once (since start or <see cref="ResetMaxOpenConnections"/>).</summary>
    public int MaxOpenConnections => Volatile.Read(ref _maxOpen);

    /// <summary>TCP connections accepted so far.</summary>
    public long AcceptedConnections => Interlocked.Read(ref _accepted);

    /// <summary>HTTP requests received so far.</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    /// <summary>Requests so far per endpoint family (<c>health/connect</c>, <c>catalog/services</c>, …).</summary>
    public IReadOnlyDictionary<string, long> RequestsByEndpoint => new Dictionary<string, long>(_requestsByEndpoint, StringComparer.Ordinal);

    /// <summary>Every datacenter, local first, then ordinally (what <c>/v1/catalog/datacenters</c> answers).</summary>
    public IReadOnlyList<string> Datacenters
    {
        get
        {
            lock (_gate)
            {
                return [_local.Name, .. _dcs.Keys.Where(d => d != _local.Name).Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Starts an agent for <paramref name="datacenter"/> with a <c>consul</c> service on its own node.</summary>
    public static async Task<SimulatedConsulAgent> StartAsync(string datacenter = "dc1", string trustDomain = "11111111-2222-3333-4444-555555555555.consul")
    {
        var agent = new SimulatedConsulAgent(datacenter, trustDomain);
        try
        {
            await agent.StartServerAsync();
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    /// <summary>Resets <see cref="MaxOpenConnections"/> to the connections open now.</summary>
    public void ResetMaxOpenConnections() => Volatile.Write(ref _maxOpen, Volatile.Read(ref _open));

    /// <summary>Adds (or finds) a datacenter with a <c>consul</c> service; <paramref name="gateways"/> mesh gateways are registered in it.</summary>
    /// <returns>The gateways registered (kind <c>mesh-gateway</c>, LAN <c>10.&lt;n&gt;.0.&lt;i&gt;:8443</c>, WAN <c>198.51.&lt;n&gt;.&lt;i&gt;:443</c>).</returns>
    public IReadOnlyList<SimInstance> AddDatacenter(string name, int gateways = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var added = new List<SimInstance>();
        lock (_gate)
        {
            DatacenterState dc = _dcs.TryGetValue(name, out DatacenterState? existing) ? existing : AddDatacenterLocked(name);
            int n = _dcs.Count;
            for (int i = 1; i <= gateways; i++)
            {
                var gateway = new SimInstance
                {
                    Id = $"mesh-gateway-{i}",
                    Name = "mesh-gateway",
                    Kind = "mesh-gateway",
                    Node = $"gw-node-{name}-{i}",
                    Address = $"10.{n % 250}.0.{i}",
                    Port = 8443,
                    WanAddress = $"198.51.{n % 250}.{i}",
                    WanPort = 443,
                };
                RegisterLocked(dc, gateway, "passing");
                added.Add(gateway);
            }

            SignalLocked(dc);
        }

        return added;
    }

    /// <summary>
    /// Makes the agent an Enterprise one with admin partitions (Consul Enterprise 1.11+, api-docs/admin-partitions): adds the
    /// partition <paramref name="name"/> of the local datacenter (its own catalog, selected by <c>?partition=</c>), listed by
    /// <c>GET /v1/partitions</c> with <c>default</c>. Without any partition <c>/v1/partitions</c> is a 404, as on Community Edition.
    /// </summary>
    public void AddPartition(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate)
        {
            if (name != "default" && !_partitions.ContainsKey(name))
            {
                _partitions[name] = new DatacenterState(_local.Name);
            }
        }
    }

    /// <summary>
    /// Cluster peering (Consul 1.13+). False (default), as Consul 1.8.7 answers (measured): <c>GET /v1/peerings</c> is an empty
    /// 404, <c>/v1/config/exported-services</c> and <c>/v1/config/mesh</c> are a 500 <c>invalid config entry kind: &lt;kind&gt;</c>,
    /// and <c>?peer=</c> is ignored. True: the 1.13+ shapes are served (see <see cref="AddPeering"/>, <see cref="Import"/>) and
    /// <c>/v1/agent/self</c> reports version 1.15.0.
    /// </summary>
    public bool PeeringSupported
    {
        get
        {
            lock (_gate)
            {
                return _peeringSupported;
            }
        }

        set
        {
            lock (_gate)
            {
                _peeringSupported = value;
            }
        }
    }

    /// <summary>Waits until <see cref="RequestsByEndpoint"/> counts at least <paramref name="count"/> requests of <paramref name="family"/> (checked after every request).</summary>
    public async Task WaitForRequestsAsync(string family, long count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next = Volatile.Read(ref _requested).Task;
            if (_requestsByEndpoint.GetValueOrDefault(family) >= count)
            {
                return;
            }

            await next.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Answers GETs of exactly <paramref name="path"/> with <paramref name="json"/> (each call a new index; a read with <c>?index=</c> blocks until a later call, as the agent's cached endpoints do), for endpoints the
    /// simulation does not model: the agent's leaf (<c>/v1/agent/connect/ca/leaf/&lt;svc&gt;</c>, api/agent.go <c>LeafCert</c>),
    /// the agent's roots (<c>/v1/agent/connect/ca/roots</c>, api/connect_ca.go <c>CARootList</c>), a compiled discovery chain
    /// (<c>/v1/discovery-chain/&lt;svc&gt;</c>). The caller cites the shape it serves.
    /// </summary>
    public void ServeJson(string path, string json)
    {
        lock (_gate)
        {
            // Each answer gets a new index and wakes blocked readers of it (the agent's cached endpoints block by index).
            _fixedAnswers[path] = (json, ++_local.Index);
            SignalLocked(_local);
        }
    }

    /// <summary>Adds a peering listed by <c>GET /v1/peerings</c> and read by <c>GET /v1/peering/&lt;name&gt;</c> (shape: api/peering.go <c>Peering</c>).</summary>
    public void AddPeering(SimPeering peering)
    {
        ArgumentNullException.ThrowIfNull(peering);
        lock (_gate)
        {
            _peerings.RemoveAll(p => p.Name == peering.Name);
            _peerings.Add(peering with { ModifyIndex = ++_local.Index });
            SignalLocked(_local);
        }
    }

    /// <summary>
    /// Imports an instance from <paramref name="peer"/>: served by <c>/v1/health/connect/&lt;name&gt;?peer=</c> (the instance's
    /// <see cref="SimInstance.ConnectTarget"/>, or its name when it is a <c>connect-proxy</c> without destination) and named by
    /// <c>/v1/catalog/services?peer=</c>. As Consul synthesises it (docs/consul-behaviour.md §11,
    /// agent/grpc-external/services/peerstream/subscription_manager.go): one of the exporter's gateways, kind <c>connect-proxy</c>,
    /// with <c>Service.PeerName</c> and <c>Service.Connect.PeerMeta</c> (<see cref="SimInstance.PeerSni"/>, <see cref="SimInstance.PeerSpiffeIds"/>).
    /// </summary>
    public void Import(string peer, SimInstance instance, string? checkStatus = "passing")
    {
        ArgumentException.ThrowIfNullOrEmpty(peer);
        ArgumentNullException.ThrowIfNull(instance);
        lock (_gate)
        {
            if (!_imports.TryGetValue(peer, out DatacenterState? state))
            {
                _imports[peer] = state = new DatacenterState(_local.Name);
            }

            RegisterLocked(state, instance with { PeerName = peer }, checkStatus);
            SignalLocked(state);
        }
    }

    /// <summary>Enterprise: the partition the agent is in (<c>Config.Partition</c> of <c>/v1/agent/self</c>; the partition of a
    /// request without <c>?partition=</c>). Null: <c>default</c>.</summary>
    public string? AgentPartition
    {
        get
        {
            lock (_gate)
            {
                return _agentPartition;
            }
        }

        set
        {
            lock (_gate)
            {
                _agentPartition = value;
            }
        }
    }

    /// <summary>Registers an instance in an admin partition of the local datacenter (see <see cref="AddPartition"/>).</summary>
    public void RegisterInPartition(SimInstance instance, string partition, string? checkStatus = "passing")
    {
        ArgumentNullException.ThrowIfNull(instance);
        lock (_gate)
        {
            DatacenterState state = partition == "default" ? _local : _partitions[partition];
            RegisterLocked(state, instance, checkStatus);
            SignalLocked(state);
        }
    }

    /// <summary>
    /// Registers (or re-registers, keeping its checks) an instance; a new instance gets the check <c>service:&lt;id&gt;</c>
    /// in <paramref name="checkStatus"/> (none when null). Its node is created (with a passing <c>serfHealth</c>) if new.
    /// </summary>
    public void Register(SimInstance instance, string? checkStatus = "passing", string? datacenter = null)
    {
        ArgumentNullException.ThrowIfNull(instance);
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            RegisterLocked(dc, instance, checkStatus);
            SignalLocked(dc);
        }
    }

    /// <summary>Removes an instance and its checks. Returns false if there is none with that ID.</summary>
    public bool Deregister(string serviceId, string? datacenter = null)
    {
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            if (!dc.Services.TryGetValue(serviceId, out SimInstance? instance))
            {
                return false;
            }

            ulong index = ++dc.Index;
            dc.Services.Remove(serviceId);
            Remove(dc.ByName, instance.Name, serviceId);
            Remove(dc.ByNode, instance.Node, serviceId);
            if (instance.ConnectTarget is { } target)
            {
                Remove(dc.ConnectByTarget, target, serviceId);
            }

            if (dc.ServiceChecks.Remove(serviceId, out Dictionary<string, SimCheck>? checks) && checks.Count > 0)
            {
                dc.ChecksIndex = index;
            }

            dc.ServicesIndex = index;
            TouchLocked(dc, instance, index);
            SignalLocked(dc);
            return true;
        }
    }

    /// <summary>Re-registers an existing instance with <paramref name="change"/> applied (port, address, weights, meta…); checks stay.</summary>
    /// <param name="serviceId">The instance.</param>
    /// <param name="change">What changes.</param>
    /// <param name="datacenter">Datacenter; the local one when null.</param>
    /// <param name="withChecks">Whether the registration carries the instance's (unchanged) checks, as a client agent's sync
    /// does: on Consul 1.8.7 that moves the checks table's index to the registration's too, while every check keeps its own
    /// <c>ModifyIndex</c> (<c>AgentIndexFactsTests</c>). Without, only the services index moves.</param>
    public void Update(string serviceId, Func<SimInstance, SimInstance> change, string? datacenter = null, bool withChecks = true)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            SimInstance old = dc.Services.TryGetValue(serviceId, out SimInstance? found) ? found : throw new InvalidOperationException($"No instance '{serviceId}' in {dc.Name}.");
            SimInstance changed = change(old);
            if (changed.Id != old.Id || changed.Node != old.Node)
            {
                throw new InvalidOperationException("Update cannot change an instance's ID or node; deregister and register instead.");
            }

            RegisterLocked(dc, changed, checkStatus: null);
            if (withChecks && dc.ServiceChecks.TryGetValue(serviceId, out Dictionary<string, SimCheck>? checks) && checks.Count > 0)
            {
                dc.ChecksIndex = dc.Index;
            }

            SignalLocked(dc);
        }
    }

    /// <summary>Sets the weights of an instance (a re-registration: the services index and the service's own index move,
    /// and the checks table's index too when <paramref name="withChecks"/>; see <see cref="Update"/>).</summary>
    public void SetWeights(string serviceId, int passing, int warning, string? datacenter = null, bool withChecks = true) =>
        Update(serviceId, i => i with { PassingWeight = passing, WarningWeight = warning }, datacenter, withChecks);

    /// <summary>Sets (adding if new) the status of a check: <c>passing</c>, <c>warning</c> or <c>critical</c>.</summary>
    /// <param name="node">The check's node.</param>
    /// <param name="checkId">Check ID, e.g. <c>service:web-1</c> or <see cref="NodeCheckId"/>.</param>
    /// <param name="status">The new status.</param>
    /// <param name="serviceId">For a new check: the instance it belongs to (null: a node check).</param>
    /// <param name="datacenter">Datacenter; the local one when null.</param>
    public void SetCheck(string node, string checkId, string status, string? serviceId = null, string? datacenter = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(status);
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            SimCheck? existing = FindCheckLocked(dc, node, checkId);
            serviceId = existing is null ? serviceId : existing.ServiceId;
            SimInstance? instance = null;
            if (serviceId is not null && (!dc.Services.TryGetValue(serviceId, out instance) || instance.Node != node))
            {
                throw new InvalidOperationException($"No instance '{serviceId}' on node '{node}' in {dc.Name}.");
            }

            if (!dc.Nodes.ContainsKey(node))
            {
                throw new InvalidOperationException($"No node '{node}' in {dc.Name}.");
            }

            if (existing is not null && existing.Status == status)
            {
                return;
            }

            ulong index = ++dc.Index;
            var check = new SimCheck(node, checkId, status, serviceId, instance?.Name, existing?.CreateIndex ?? index, index);
            if (instance is null)
            {
                GetOrAdd(dc.NodeChecks, node)[checkId] = check;
                foreach (string id in dc.ByNode.GetValueOrDefault(node) ?? [])
                {
                    TouchLocked(dc, dc.Services[id], index);
                }
            }
            else
            {
                GetOrAdd(dc.ServiceChecks, instance.Id)[checkId] = check;
                TouchLocked(dc, instance, index);
            }

            dc.ChecksIndex = index;
            SignalLocked(dc);
        }
    }

    /// <summary>Sets the status of an instance's own check <c>service:&lt;id&gt;</c>.</summary>
    public void SetServiceCheck(string serviceId, string status, string? datacenter = null)
    {
        string node;
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            node = dc.Services.TryGetValue(serviceId, out SimInstance? instance) ? instance.Node : throw new InvalidOperationException($"No instance '{serviceId}' in {dc.Name}.");
        }

        SetCheck(node, ServiceCheckPrefix + serviceId, status, serviceId, datacenter);
    }

    /// <summary>Sets the status of a node's <c>serfHealth</c> check (affects every instance on the node).</summary>
    public void SetNodeCheck(string node, string status, string? datacenter = null) => SetCheck(node, NodeCheckId, status, null, datacenter);

    /// <summary>Writes a config entry; <paramref name="bodyJson"/> is the entry without <c>Kind</c>/<c>Name</c>, e.g. <c>{"DefaultSubset":"v1"}</c>.</summary>
    public void SetConfigEntry(string kind, string name, string bodyJson = "{}")
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(name);
        JsonElement body;
        using (var doc = JsonDocument.Parse(bodyJson))
        {
            body = doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : throw new ArgumentException("A config entry body must be a JSON object.", nameof(bodyJson));
        }

        lock (_gate)
        {
            ulong index = ++_local.Index;
            _config[(kind, name)] = new ConfigEntry(body, _config.TryGetValue((kind, name), out ConfigEntry? old) ? old.CreateIndex : index, index);
            _configIndex = index;
            SignalLocked(_local);
        }
    }

    /// <summary>Deletes a config entry (moves the config index even if there was none, like a delete in Consul).</summary>
    public void DeleteConfigEntry(string kind, string name)
    {
        lock (_gate)
        {
            _config.Remove((kind, name));
            _configIndex = ++_local.Index;
            SignalLocked(_local);
        }
    }

    /// <summary>Config entries of a kind, by name (bodies without Kind/Name/indexes).</summary>
    public IReadOnlyList<(string Name, JsonElement Body)> ConfigEntries(string kind)
    {
        lock (_gate)
        {
            return [.. _config.Where(p => p.Key.Kind == kind).OrderBy(p => p.Key.Name, StringComparer.Ordinal).Select(p => (p.Key.Name, p.Value.Body))];
        }
    }

    /// <summary>Changes the trust domain (a CA roots change).</summary>
    public void SetTrustDomain(string trustDomain)
    {
        lock (_gate)
        {
            _trustDomain = trustDomain;
            _rootsIndex = ++_local.Index;
            SignalLocked(_local);
        }
    }

    /// <summary>The instance with that ID, or null.</summary>
    public SimInstance? Find(string serviceId, string? datacenter = null)
    {
        lock (_gate)
        {
            return Dc(datacenter).Services.GetValueOrDefault(serviceId);
        }
    }

    /// <summary>A consistent copy of a datacenter's catalog (for reference views built from scratch).</summary>
    public SimSnapshot Snapshot(string? datacenter = null)
    {
        lock (_gate)
        {
            DatacenterState dc = Dc(datacenter);
            return new SimSnapshot(
                dc.Name,
                [.. dc.Services.Values],
                [.. dc.NodeChecks.Values.SelectMany(c => c.Values), .. dc.ServiceChecks.Values.SelectMany(c => c.Values)],
                [.. dc.Nodes.Values]);
        }
    }

    /// <summary>
    /// Fills the catalog in one write per datacenter (fast: no per-item signalling). Local datacenter: <paramref name="shape"/>'s
    /// services and instances on <see cref="CatalogShape.Nodes"/> nodes; every other datacenter: its gateways and remote services.
    /// </summary>
    /// <returns>The local instance IDs by service name.</returns>
    public IReadOnlyDictionary<string, string[]> Build(CatalogShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var ids = new Dictionary<string, string[]>(shape.Services, StringComparer.Ordinal);
        lock (_gate)
        {
            for (int d = 1; d < shape.Datacenters; d++)
            {
                string name = "dc" + (d + 1).ToString(CultureInfo.InvariantCulture);
                if (name == _local.Name)
                {
                    name = "dc-remote-" + d.ToString(CultureInfo.InvariantCulture);
                }

                DatacenterState remote = _dcs.TryGetValue(name, out DatacenterState? existing) ? existing : AddDatacenterLocked(name);
                RegisterGatewaysLocked(remote, d, shape.GatewaysPerDatacenter);

                for (int s = 0; s < shape.RemoteServicesPerDatacenter; s++)
                {
                    RegisterLocked(remote, new SimInstance
                    {
                        Id = $"remote-{s}-1",
                        Name = $"remote-{s}",
                        Node = $"node-{name}-{s % 64}",
                        Address = $"10.{d % 250}.{s % 64}.1",
                        Port = 20000 + (s % 1000),
                        Native = true,
                    }, "passing");
                }

                SignalLocked(remote);
            }

            RegisterGatewaysLocked(_local, 0, shape.GatewaysPerDatacenter);

            int instance = 0;
            for (int s = 0; s < shape.Services; s++)
            {
                string name = "svc-" + s.ToString("D5", CultureInfo.InvariantCulture);
                int count = shape.Instances / shape.Services + (s < shape.Instances % shape.Services ? 1 : 0);
                bool sidecars = shape.SidecarEvery > 0 && s % shape.SidecarEvery == 0;
                var list = new string[count];
                for (int i = 0; i < count; i++, instance++)
                {
                    int nodeIndex = instance % shape.Nodes;
                    string node = "node-" + nodeIndex.ToString("D5", CultureInfo.InvariantCulture);
                    string address = $"10.{1 + (nodeIndex / 65536 % 200)}.{nodeIndex / 256 % 256}.{nodeIndex % 256}";
                    string id = name + "-" + i.ToString(CultureInfo.InvariantCulture);
                    string[] tags = i % 2 == 0 ? ["v1"] : ["v2"];
                    var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["version"] = i % 2 == 0 ? "v1" : "v2" };
                    if (sidecars)
                    {
                        RegisterLocked(_local, new SimInstance { Id = id, Name = name, Node = node, Address = address, Port = 8080, Tags = tags, Meta = meta }, "passing");
                        id += "-sidecar-proxy";
                        RegisterLocked(_local, new SimInstance
                        {
                            Id = id,
                            Name = name + "-sidecar-proxy",
                            Kind = "connect-proxy",
                            DestinationService = name,
                            Node = node,
                            Address = address,
                            Port = 21000 + i,
                            Tags = tags,
                            Meta = meta,
                        }, "passing");
                    }
                    else
                    {
                        RegisterLocked(_local, new SimInstance { Id = id, Name = name, Node = node, Address = address, Port = 20000 + i, Tags = tags, Meta = meta, Native = true }, "passing");
                    }

                    list[i] = id;
                }

                ids[name] = list;
            }

            SignalLocked(_local);
        }

        return ids;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _shutdown.CancelAsync();
        if (_app is not null)
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(stopTimeout.Token);
            await _app.DisposeAsync();
        }

        _shutdown.Dispose();
    }

    private async Task StartServerAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                listen.Use(next => async connection =>
                {
                    Interlocked.Increment(ref _accepted);
                    int open = Interlocked.Increment(ref _open);
                    int max = Volatile.Read(ref _maxOpen);
                    while (open > max && Interlocked.CompareExchange(ref _maxOpen, open, max) != max)
                    {
                        max = Volatile.Read(ref _maxOpen);
                    }

                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _open);
                    }
                });
            });
        });
        WebApplication app = builder.Build();
        ((IApplicationBuilder)app).Run(HandleAsync);
        _app = app;
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(address.EndsWith('/') ? address : address + "/");
    }

    private DatacenterState AddDatacenterLocked(string name)
    {
        var dc = new DatacenterState(name);
        _dcs[name] = dc;
        string server = "sim-server-" + name;
        RegisterLocked(dc, new SimInstance { Id = "consul", Name = "consul", Node = server, Address = "127.0.0.1", Port = 8300 }, checkStatus: null);
        return dc;
    }

    private DatacenterState Dc(string? name) =>
        string.IsNullOrEmpty(name) ? _local : _dcs.TryGetValue(name, out DatacenterState? dc) ? dc : throw new InvalidOperationException($"No datacenter '{name}'.");

    private static SimCheck? FindCheckLocked(DatacenterState dc, string node, string checkId)
    {
        if (dc.NodeChecks.TryGetValue(node, out Dictionary<string, SimCheck>? nodeChecks) && nodeChecks.TryGetValue(checkId, out SimCheck? check))
        {
            return check;
        }

        foreach (string id in dc.ByNode.GetValueOrDefault(node) ?? [])
        {
            if (dc.ServiceChecks.TryGetValue(id, out Dictionary<string, SimCheck>? checks) && checks.TryGetValue(checkId, out check))
            {
                return check;
            }
        }

        return null;
    }

    /// <summary>The mesh gateways of datacenter number <paramref name="d"/> (0: the local one), passing.</summary>
    private static void RegisterGatewaysLocked(DatacenterState dc, int d, int count)
    {
        for (int g = 1; g <= count; g++)
        {
            RegisterLocked(dc, new SimInstance
            {
                Id = $"mesh-gateway-{g}",
                Name = "mesh-gateway",
                Kind = "mesh-gateway",
                Node = $"gw-node-{dc.Name}-{g}",
                Address = $"10.{d % 250}.255.{g}",
                Port = 8443,
                WanAddress = $"198.51.{d % 250}.{g}",
                WanPort = 443,
            }, "passing");
        }
    }

    private static void RegisterLocked(DatacenterState dc, SimInstance instance, string? checkStatus)
    {
        ulong index = ++dc.Index;
        if (!dc.Nodes.ContainsKey(instance.Node))
        {
            dc.Nodes[instance.Node] = new SimNode(instance.Node, instance.Address.Length > 0 ? instance.Address : "127.0.0.1", index, index);
            GetOrAdd(dc.NodeChecks, instance.Node)[NodeCheckId] = new SimCheck(instance.Node, NodeCheckId, "passing", null, null, index, index);
            dc.ChecksIndex = index;
        }

        SimInstance stored;
        if (dc.Services.TryGetValue(instance.Id, out SimInstance? old))
        {
            if (old.Node != instance.Node || old.Name != instance.Name)
            {
                throw new InvalidOperationException($"Instance '{instance.Id}' exists on node '{old.Node}' as '{old.Name}'; deregister it first.");
            }

            stored = instance with { CreateIndex = old.CreateIndex, ModifyIndex = index };
            if (old.ConnectTarget is { } oldTarget)
            {
                Remove(dc.ConnectByTarget, oldTarget, old.Id);
                TouchLocked(dc, old, index);
            }

            // Like a catalog registration that carries its check: written in the same index, unless it is unchanged.
            string checkId = ServiceCheckPrefix + instance.Id;
            if (checkStatus is not null
                && !(dc.ServiceChecks.TryGetValue(instance.Id, out Dictionary<string, SimCheck>? own) && own.TryGetValue(checkId, out SimCheck? current) && current.Status == checkStatus))
            {
                SimCheck? previous = own?.GetValueOrDefault(checkId);
                GetOrAdd(dc.ServiceChecks, instance.Id)[checkId] = new SimCheck(instance.Node, checkId, checkStatus, instance.Id, instance.Name, previous?.CreateIndex ?? index, index);
                dc.ChecksIndex = index;
            }
        }
        else
        {
            stored = instance with { CreateIndex = index, ModifyIndex = index };
            GetOrAdd(dc.ByName, instance.Name).Add(instance.Id);
            GetOrAdd(dc.ByNode, instance.Node).Add(instance.Id);
            if (checkStatus is not null)
            {
                string checkId = ServiceCheckPrefix + instance.Id;
                GetOrAdd(dc.ServiceChecks, instance.Id)[checkId] = new SimCheck(instance.Node, checkId, checkStatus, instance.Id, instance.Name, index, index);
                dc.ChecksIndex = index;
            }
        }

        dc.Services[instance.Id] = stored;
        if (stored.ConnectTarget is { } target)
        {
            GetOrAdd(dc.ConnectByTarget, target).Add(stored.Id);
        }

        dc.ServicesIndex = index;
        TouchLocked(dc, stored, index);
    }

    /// <summary>Moves the per-service indexes an instance change affects: its own name and, for a sidecar, its destination.</summary>
    private static void TouchLocked(DatacenterState dc, SimInstance instance, ulong index)
    {
        dc.NameIndex[instance.Name] = index;
        if (instance.DestinationService is { Length: > 0 } destination)
        {
            dc.NameIndex[destination] = index;
        }
    }

    private static void SignalLocked(DatacenterState dc)
    {
        TaskCompletionSource changed = dc.Changed;
        dc.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    private static HashSet<string> GetOrAdd(Dictionary<string, HashSet<string>> map, string key)
    {
        if (!map.TryGetValue(key, out HashSet<string>? set))
        {
            map[key] = set = new HashSet<string>(StringComparer.Ordinal);
        }

        return set;
    }

    private static Dictionary<string, SimCheck> GetOrAdd(Dictionary<string, Dictionary<string, SimCheck>> map, string key)
    {
        if (!map.TryGetValue(key, out Dictionary<string, SimCheck>? checks))
        {
            map[key] = checks = new Dictionary<string, SimCheck>(StringComparer.Ordinal);
        }

        return checks;
    }

    private static void Remove(Dictionary<string, HashSet<string>> map, string key, string id)
    {
        if (map.TryGetValue(key, out HashSet<string>? set) && set.Remove(id) && set.Count == 0)
        {
            map.Remove(key);
        }
    }

    // ---- HTTP ----

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        HttpRequest request = context.Request;
        string path = request.Path.Value ?? string.Empty;
        IQueryCollection query = request.Query;
        _requestsByEndpoint.AddOrUpdate(EndpointFamily(path), 1, static (_, n) => n + 1);
        Interlocked.Exchange(ref _requested, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        if (!HttpMethods.IsGet(request.Method))
        {
            await ErrorAsync(context, 405, $"The simulated Consul agent serves reads only ({request.Method} {path}); change it through its C# API.");
            return;
        }

        string? dcName = query["dc"];
        string? partitionName = query["partition"];
        DatacenterState? dc;
        bool enterprise;
        string agentPartition;
        string? unknownPartition = null;
        lock (_gate)
        {
            dc = string.IsNullOrEmpty(dcName) ? _local : _dcs.GetValueOrDefault(dcName);
            enterprise = _partitions.Count > 0;
            agentPartition = _agentPartition ?? "default";
            string partition = string.IsNullOrEmpty(partitionName) ? agentPartition : partitionName;
            if (enterprise && partition != "default" && dc == _local && !_partitions.TryGetValue(partition, out dc))
            {
                unknownPartition = partition;
            }
        }

        bool peering;
        lock (_gate)
        {
            peering = _peeringSupported;
            if (peering && query["peer"] is { Count: > 0 } peerName && peerName.ToString().Length > 0)
            {
                // ?peer= reads the peer's imported catalog (1.13+); an unknown peer has an empty one. 1.8.7 ignores the parameter.
                if (!_imports.TryGetValue(peerName.ToString(), out DatacenterState? imports))
                {
                    _imports[peerName.ToString()] = imports = new DatacenterState(_local.Name);
                }

                dc = imports;
            }
        }

        if (unknownPartition is not null)
        {
            // Enterprise answers an unknown partition with an error naming it (api-docs/admin-partitions); 1.8 has no partitions.
            await ErrorAsync(context, 400, $"Partition \"{unknownPartition}\" does not exist");
            return;
        }

        if (dc is null)
        {
            await ErrorAsync(context, 500, "No path to datacenter");
            return;
        }

        if (!TryParseBlocking(query, out ulong minIndex, out TimeSpan wait, out string? badParameter))
        {
            await ErrorAsync(context, 400, badParameter);
            return;
        }

        bool isFixed;
        lock (_gate)
        {
            isFixed = _fixedAnswers.ContainsKey(path);
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _shutdown.Token);
        CancellationToken ct = linked.Token;
        if (isFixed)
        {
            ulong index = await BlockGlobalAsync(() => _fixedAnswers[path].Index, minIndex, wait, ct);
            string json;
            lock (_gate)
            {
                json = _fixedAnswers[path].Json;
            }

            if (!ct.IsCancellationRequested)
            {
                SetHeaders(context, index);
                await context.Response.WriteAsync(json, ct);
            }

            return;
        }
        if (path == "/v1/agent/self")
        {
            await WriteAsync(context, 0, w =>
            {
                w.WriteStartObject();
                w.WriteStartObject("Config");
                w.WriteString("Datacenter", _local.Name);
                w.WriteString("PrimaryDatacenter", _local.Name);
                w.WriteString("NodeName", NodeName);
                w.WriteString("NodeID", "00000000-0000-0000-0000-000000000001");
                w.WriteString("Revision", "simulated");
                w.WriteBoolean("Server", true);
                w.WriteString("Version", enterprise ? "1.15.0+ent" : peering ? "1.15.0" : "1.8.7");
                if (enterprise)
                {
                    w.WriteString("Partition", agentPartition);
                }

                w.WriteEndObject();
                w.WriteStartObject("DebugConfig");
                w.WriteNumber("HTTPMaxConnsPerClient", 200);
                w.WriteEndObject();
                w.WriteStartObject("Meta");
                w.WriteEndObject();
                w.WriteEndObject();
            }, ct);
        }
        else if (path == "/v1/partitions" && enterprise)
        {
            // GET /v1/partitions (api-docs/admin-partitions, "List Partitions"): default first, then every other.
            List<string> names;
            lock (_gate)
            {
                names = ["default", .. _partitions.Keys.Order(StringComparer.Ordinal)];
            }

            await WriteAsync(context, 0, w =>
            {
                w.WriteStartArray();
                foreach (string name in names)
                {
                    w.WriteStartObject();
                    w.WriteString("Name", name);
                    w.WriteString("Description", name == "default" ? "Builtin Default Partition" : "simulated");
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }, ct);
        }
        else if (path == "/v1/peerings" || path.StartsWith("/v1/peering/", StringComparison.Ordinal))
        {
            if (!peering)
            {
                // Consul 1.8.7 (measured): an empty 404.
                context.Response.StatusCode = 404;
                return;
            }

            List<SimPeering> peerings;
            ulong index;
            lock (_gate)
            {
                peerings = [.. _peerings.OrderBy(p => p.Name, StringComparer.Ordinal)];
                index = _local.Index;
            }

            if (path == "/v1/peerings")
            {
                await WriteArrayAsync(context, index, peerings, WritePeering, ct);
            }
            else if (peerings.Find(p => p.Name == path["/v1/peering/".Length..]) is { } one)
            {
                await WriteAsync(context, index, w => WritePeering(w, one), ct);
            }
            else
            {
                // api/peering.go Read: a 404 means "no such peering".
                await ErrorAsync(context, 404, $"Peering not found for \"{path["/v1/peering/".Length..]}\"");
            }
        }
        else if (path.StartsWith("/v1/config/", StringComparison.Ordinal) && !peering
            && path["/v1/config/".Length..].Split('/')[0] is "exported-services" or "mesh")
        {
            // Consul 1.8.7 (measured): 500 "invalid config entry kind: exported-services" (mesh: 1.10+, exported-services: 1.13+).
            await ErrorAsync(context, 500, "invalid config entry kind: " + path["/v1/config/".Length..].Split('/')[0]);
        }
        else if (path == "/v1/catalog/datacenters")
        {
            IReadOnlyList<string> names = Datacenters;
            await WriteAsync(context, 0, w =>
            {
                w.WriteStartArray();
                foreach (string name in names)
                {
                    w.WriteStringValue(name);
                }

                w.WriteEndArray();
            }, ct);
        }
        else if (path == "/v1/catalog/services")
        {
            // Consul 1.8 ignores ?filter here (measured).
            ulong index = await BlockAsync(dc, d => d.ServicesIndex, minIndex, wait, ct);
            List<(string Name, string[] Tags)> services;
            lock (_gate)
            {
                services = [.. dc.ByName.Select(p => (p.Key, p.Value.SelectMany(id => dc.Services[id].Tags).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray()))];
            }

            await WriteAsync(context, index, w =>
            {
                w.WriteStartObject();
                foreach ((string name, string[] tags) in services.OrderBy(s => s.Name, StringComparer.Ordinal))
                {
                    w.WriteStartArray(name);
                    foreach (string tag in tags)
                    {
                        w.WriteStringValue(tag);
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
            }, ct);
        }
        else if (path == "/v1/catalog/nodes")
        {
            // Non-blocking use only (the watcher's node sweep); the index is the services index, like a catalog read.
            ulong index = await BlockAsync(dc, d => d.ServicesIndex, minIndex, wait, ct);
            List<SimNode> nodes;
            lock (_gate)
            {
                nodes = [.. dc.Nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal)];
            }

            await WriteArrayAsync(context, index, nodes, static (w, n) =>
            {
                w.WriteStartObject();
                w.WriteString("Node", n.Name);
                w.WriteString("Address", n.Address);
                w.WriteNumber("CreateIndex", n.CreateIndex);
                w.WriteNumber("ModifyIndex", n.ModifyIndex);
                w.WriteEndObject();
            }, ct);
        }
        else if (path.StartsWith("/v1/catalog/node-services/", StringComparison.Ordinal))
        {
            // Consul 1.7+: {"Node": {...}, "Services": [...]} with each instance's ModifyIndex; null for an unknown node.
            string nodeName = path["/v1/catalog/node-services/".Length..];
            ulong index = await BlockAsync(dc, d => d.ServicesIndex, minIndex, wait, ct);
            SimNode? node;
            List<SimInstance> instances;
            lock (_gate)
            {
                node = dc.Nodes.GetValueOrDefault(nodeName);
                instances = node is null ? [] : [.. (dc.ByNode.GetValueOrDefault(nodeName) ?? []).Select(id => dc.Services[id]).OrderBy(i => i.Id, StringComparer.Ordinal)];
            }

            await WriteAsync(context, index, w =>
            {
                if (node is null)
                {
                    w.WriteNullValue();
                    return;
                }

                w.WriteStartObject();
                w.WriteStartObject("Node");
                w.WriteString("Node", node.Name);
                w.WriteString("Address", node.Address);
                w.WriteNumber("ModifyIndex", node.ModifyIndex);
                w.WriteEndObject();
                w.WriteStartArray("Services");
                foreach (SimInstance i in instances)
                {
                    w.WriteStartObject();
                    w.WriteString("Kind", i.Kind);
                    w.WriteString("ID", i.Id);
                    w.WriteString("Service", i.Name);
                    w.WriteString("Address", i.Address);
                    w.WriteNumber("Port", i.Port);
                    w.WriteStartObject("Proxy");
                    if (i.DestinationService is not null)
                    {
                        w.WriteString("DestinationServiceName", i.DestinationService);
                    }

                    w.WriteEndObject();
                    w.WriteNumber("CreateIndex", i.CreateIndex);
                    w.WriteNumber("ModifyIndex", i.ModifyIndex);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }, ct);
        }
        else if (path.StartsWith("/v1/health/state/", StringComparison.Ordinal))
        {
            string state = path["/v1/health/state/".Length..];
            if (state is not ("any" or "passing" or "warning" or "critical"))
            {
                await ErrorAsync(context, 400, "Invalid check state");
                return;
            }

            ulong index = await BlockAsync(dc, d => d.ChecksIndex, minIndex, wait, ct);
            List<SimCheck> checks;
            lock (_gate)
            {
                checks = [.. dc.NodeChecks.Values.SelectMany(c => c.Values), .. dc.ServiceChecks.Values.SelectMany(c => c.Values)];
            }

            checks = [.. checks.Where(c => state == "any" || c.Status == state).OrderBy(c => c.Node, StringComparer.Ordinal).ThenBy(c => c.CheckId, StringComparer.Ordinal)];
            await WriteArrayAsync(context, index, checks, WriteCheck, ct);
        }
        else if (path.StartsWith("/v1/health/connect/", StringComparison.Ordinal) || path.StartsWith("/v1/health/service/", StringComparison.Ordinal))
        {
            bool connect = path.StartsWith("/v1/health/connect/", StringComparison.Ordinal);
            string name = path["/v1/health/service/".Length..];
            string? kindFilter = null;
            if (query["filter"] is { Count: > 0 } filter && !TryParseKindFilter(filter.ToString(), out kindFilter))
            {
                await ErrorAsync(context, 400, $"The simulated Consul agent understands only the filter Service.Kind == \"<kind>\" (got: {filter}).");
                return;
            }

            bool passingOnly = query.TryGetValue("passing", out StringValues passing) && (StringValues.IsNullOrEmpty(passing) || passing.ToString() is "true" or "1");
            ulong index = await BlockAsync(dc, d => d.NameIndex.TryGetValue(name, out ulong i) ? i : d.ServicesIndex, minIndex, wait, ct);
            List<Entry> entries;
            lock (_gate)
            {
                IEnumerable<string> ids = (connect ? dc.ConnectByTarget : dc.ByName).GetValueOrDefault(name) ?? [];
                entries = [.. ids.Select(id => dc.Services[id]).Select(s => new Entry(
                    dc.Nodes[s.Node],
                    s,
                    [.. ((IEnumerable<SimCheck>?)dc.NodeChecks.GetValueOrDefault(s.Node)?.Values ?? []).OrderBy(c => c.CheckId, StringComparer.Ordinal),
                     .. ((IEnumerable<SimCheck>?)dc.ServiceChecks.GetValueOrDefault(s.Id)?.Values ?? []).OrderBy(c => c.CheckId, StringComparer.Ordinal)]))];
            }

            entries = [.. entries
                .Where(e => kindFilter is null || e.Service.Kind == kindFilter)
                .Where(e => !passingOnly || e.Checks.All(c => c.Status == "passing"))
                .OrderBy(e => e.Node.Name, StringComparer.Ordinal).ThenBy(e => e.Service.Id, StringComparer.Ordinal)];
            string dcNameForEntries = dc.Name;
            await WriteArrayAsync(context, index, entries, (w, e) => WriteEntry(w, e, dcNameForEntries), ct);
        }
        else if (path == "/v1/connect/ca/roots")
        {
            ulong index = await BlockGlobalAsync(() => _rootsIndex, minIndex, wait, ct);
            string td = TrustDomain;
            await WriteAsync(context, index, w =>
            {
                w.WriteStartObject();
                w.WriteString("ActiveRootID", "sim-root-1");
                w.WriteString("TrustDomain", td);
                w.WriteStartArray("Roots");
                w.WriteStartObject();
                w.WriteString("ID", "sim-root-1");
                w.WriteString("Name", "Consul CA Root Cert");
                w.WriteNumber("SerialNumber", 7);
                w.WriteString("SigningKeyID", "sim");
                w.WriteString("ExternalTrustDomain", td.Split('.')[0]);
                w.WriteString("RootCert", string.Empty);
                w.WriteBoolean("Active", true);
                w.WriteNumber("CreateIndex", 1);
                w.WriteNumber("ModifyIndex", index);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }, ct);
        }
        else if (path.StartsWith("/v1/config/", StringComparison.Ordinal))
        {
            string[] parts = path["/v1/config/".Length..].Split('/');
            if (parts.Length is < 1 or > 2 || parts[0].Length == 0)
            {
                await ErrorAsync(context, 400, "Must provide kind");
                return;
            }

            ulong index = await BlockGlobalAsync(() => _configIndex, minIndex, wait, ct);
            List<(string Kind, string Name, ConfigEntry Entry)> entries;
            lock (_gate)
            {
                entries = [.. _config.Where(p => p.Key.Kind == parts[0] && (parts.Length == 1 || p.Key.Name == parts[1]))
                    .OrderBy(p => p.Key.Name, StringComparer.Ordinal).Select(p => (p.Key.Kind, p.Key.Name, p.Value))];
            }

            if (parts.Length == 2 && entries.Count == 0)
            {
                context.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
                await ErrorAsync(context, 404, $"Config entry not found for \"{parts[0]}\" / \"{parts[1]}\"");
                return;
            }

            if (parts.Length == 2)
            {
                await WriteAsync(context, index, w => WriteConfigEntry(w, entries[0]), ct);
            }
            else
            {
                await WriteArrayAsync(context, index, entries, WriteConfigEntry, ct);
            }
        }
        else
        {
            await ErrorAsync(context, 404, $"The simulated Consul agent does not serve GET {path}.");
        }
    }

    private static string EndpointFamily(string path)
    {
        // "/v1/health/connect/web" → "health/connect"; "/v1/agent/self" → "agent/self".
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 3 ? parts[1] + "/" + parts[2] : path;
    }

    private static bool TryParseKindFilter(string filter, out string? kind)
    {
        kind = null;
        foreach (string selector in (string[])["Service.Kind", "ServiceKind"])
        {
            string prefix = selector + " == \"";
            if (filter.StartsWith(prefix, StringComparison.Ordinal) && filter.EndsWith('"') && filter.Length > prefix.Length)
            {
                kind = filter[prefix.Length..^1];
                return true;
            }
        }

        return false;
    }

    private static bool TryParseBlocking(IQueryCollection query, out ulong index, out TimeSpan wait, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        index = 0;
        wait = s_defaultWait;
        error = null;
        if (query.TryGetValue("index", out StringValues indexText) && !ulong.TryParse(indexText.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out index))
        {
            error = "Invalid index";
            return false;
        }

        if (query.TryGetValue("wait", out StringValues waitText))
        {
            if (!TryParseGoDuration(waitText.ToString(), out wait))
            {
                error = "Invalid wait time";
                return false;
            }

            if (wait > s_maxWait)
            {
                wait = s_maxWait;
            }
        }

        return true;
    }

    /// <summary>Parses Go durations such as <c>30s</c>, <c>1m30s</c>, <c>250ms</c>, <c>1.5h</c>.</summary>
    internal static bool TryParseGoDuration(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (text.Length == 0)
        {
            return false;
        }

        int i = 0;
        double totalMs = 0;
        while (i < text.Length)
        {
            int start = i;
            while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
            {
                i++;
            }

            if (i == start || !double.TryParse(text.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                return false;
            }

            int unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.')
            {
                i++;
            }

            double scale = text.AsSpan(unitStart, i - unitStart) switch
            {
                "ns" => 1e-6,
                "us" or "µs" => 1e-3,
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => double.NaN,
            };
            if (double.IsNaN(scale))
            {
                return false;
            }

            totalMs += number * scale;
        }

        value = TimeSpan.FromMilliseconds(totalMs);
        return true;
    }

    private async Task<ulong> BlockAsync(DatacenterState dc, Func<DatacenterState, ulong> index, ulong minIndex, TimeSpan wait, CancellationToken ct)
    {
        long deadline = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        while (true)
        {
            ulong current;
            Task changed;
            lock (_gate)
            {
                current = Math.Max(index(dc), 1);
                changed = dc.Changed.Task;
            }

            long remaining = deadline - Environment.TickCount64;
            if (minIndex == 0 || current > minIndex || remaining <= 0 || ct.IsCancellationRequested)
            {
                return current;
            }

            await changed.WaitAsync(TimeSpan.FromMilliseconds(remaining), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private Task<ulong> BlockGlobalAsync(Func<ulong> index, ulong minIndex, TimeSpan wait, CancellationToken ct) =>
        BlockAsync(_local, _ => index(), minIndex, wait, ct);

    private static async Task ErrorAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(message);
    }

    private static async Task WriteAsync(HttpContext context, ulong index, Action<Utf8JsonWriter> write, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return;
        }

        SetHeaders(context, index);
        PipeWriter pipe = context.Response.BodyWriter;
        await using (var writer = new Utf8JsonWriter(pipe))
        {
            write(writer);
        }

        await pipe.FlushAsync(ct);
    }

    private static async Task WriteArrayAsync<T>(HttpContext context, ulong index, IReadOnlyList<T> items, Action<Utf8JsonWriter, T> write, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return;
        }

        SetHeaders(context, index);
        PipeWriter pipe = context.Response.BodyWriter;
        await using var writer = new Utf8JsonWriter(pipe);
        writer.WriteStartArray();
        for (int i = 0; i < items.Count; i++)
        {
            write(writer, items[i]);
            if (writer.BytesPending > 32 * 1024)
            {
                // Flush as we go, so a 50,000-check answer is streamed instead of buffered whole.
                await writer.FlushAsync(ct);
                await pipe.FlushAsync(ct);
            }
        }

        writer.WriteEndArray();
        await writer.FlushAsync(ct);
        await pipe.FlushAsync(ct);
    }

    private static void SetHeaders(HttpContext context, ulong index)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        if (index > 0)
        {
            context.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
        }

        context.Response.Headers["X-Consul-KnownLeader"] = "true";
        context.Response.Headers["X-Consul-LastContact"] = "0";
    }

    private static void WriteConfigEntry(Utf8JsonWriter w, (string Kind, string Name, ConfigEntry Entry) entry)
    {
        w.WriteStartObject();
        w.WriteString("Kind", entry.Kind);
        w.WriteString("Name", entry.Name);
        foreach (JsonProperty property in entry.Entry.Body.EnumerateObject())
        {
            property.WriteTo(w);
        }

        w.WriteNumber("CreateIndex", entry.Entry.CreateIndex);
        w.WriteNumber("ModifyIndex", entry.Entry.ModifyIndex);
        w.WriteEndObject();
    }

    private static void WriteCheck(Utf8JsonWriter w, SimCheck check)
    {
        w.WriteStartObject();
        w.WriteString("Node", check.Node);
        w.WriteString("CheckID", check.CheckId);
        w.WriteString("Name", check.ServiceId is null ? "Serf Health Status" : "Service '" + check.ServiceName + "' check");
        w.WriteString("Status", check.Status);
        w.WriteString("Notes", string.Empty);
        w.WriteString("Output", string.Empty);
        w.WriteString("ServiceID", check.ServiceId ?? string.Empty);
        w.WriteString("ServiceName", check.ServiceName ?? string.Empty);
        w.WriteStartArray("ServiceTags");
        w.WriteEndArray();
        w.WriteString("Type", check.ServiceId is null ? string.Empty : "ttl");
        w.WriteStartObject("Definition");
        w.WriteEndObject();
        w.WriteNumber("CreateIndex", check.CreateIndex);
        w.WriteNumber("ModifyIndex", check.ModifyIndex);
        w.WriteEndObject();
    }

    private static void WriteEntry(Utf8JsonWriter w, Entry entry, string datacenter)
    {
        SimNode node = entry.Node;
        SimInstance s = entry.Service;
        w.WriteStartObject();
        w.WriteStartObject("Node");
        w.WriteString("ID", string.Empty);
        w.WriteString("Node", node.Name);
        w.WriteString("Address", node.Address);
        w.WriteString("Datacenter", datacenter);
        w.WriteStartObject("TaggedAddresses");
        w.WriteString("lan", node.Address);
        w.WriteString("lan_ipv4", node.Address);
        w.WriteString("wan", node.WanAddress ?? node.Address);
        w.WriteString("wan_ipv4", node.WanAddress ?? node.Address);
        w.WriteEndObject();
        w.WriteStartObject("Meta");
        w.WriteString("consul-network-segment", string.Empty);
        w.WriteEndObject();
        w.WriteNumber("CreateIndex", node.CreateIndex);
        w.WriteNumber("ModifyIndex", node.ModifyIndex);
        w.WriteEndObject();

        w.WriteStartObject("Service");
        w.WriteString("Kind", s.Kind);
        w.WriteString("ID", s.Id);
        w.WriteString("Service", s.Name);
        w.WriteStartArray("Tags");
        foreach (string tag in s.Tags)
        {
            w.WriteStringValue(tag);
        }

        w.WriteEndArray();
        w.WriteString("Address", s.Address);
        w.WriteStartObject("TaggedAddresses");
        if (s.Address.Length > 0)
        {
            // The agent adds lan_ipv4/wan_ipv4 equal to the service address (docs/consul-behaviour.md §4); they play no part in routing.
            WriteTagged(w, "lan_ipv4", s.Address, s.Port);
            WriteTagged(w, "wan_ipv4", s.Address, s.Port);
        }

        if (s.WanAddress is not null)
        {
            WriteTagged(w, "lan", s.Address, s.Port);
            WriteTagged(w, "wan", s.WanAddress, s.WanPort);
        }

        w.WriteEndObject();
        w.WriteStartObject("Meta");
        foreach ((string key, string value) in s.Meta)
        {
            w.WriteString(key, value);
        }

        w.WriteEndObject();
        w.WriteNumber("Port", s.Port);
        w.WriteStartObject("Weights");
        w.WriteNumber("Passing", s.PassingWeight);
        w.WriteNumber("Warning", s.WarningWeight);
        w.WriteEndObject();
        w.WriteBoolean("EnableTagOverride", false);
        w.WriteStartObject("Proxy");
        if (s.DestinationService is not null)
        {
            w.WriteString("DestinationServiceName", s.DestinationService);
            w.WriteString("DestinationServiceID", s.Id.EndsWith("-sidecar-proxy", StringComparison.Ordinal) ? s.Id[..^"-sidecar-proxy".Length] : s.DestinationService);
            w.WriteString("LocalServiceAddress", "127.0.0.1");
            w.WriteNumber("LocalServicePort", 8080);
        }

        w.WriteStartObject("MeshGateway");
        w.WriteEndObject();
        w.WriteStartObject("Expose");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartObject("Connect");
        if (s.Native)
        {
            w.WriteBoolean("Native", true);
        }

        if (s.PeerName is not null)
        {
            // Imported instances (1.13+, api/agent.go ServiceConnect.PeerMeta = PeeringServiceMeta: SNI, SpiffeID, Protocol).
            w.WriteStartObject("PeerMeta");
            w.WriteStartArray("SNI");
            foreach (string sni in s.PeerSni)
            {
                w.WriteStringValue(sni);
            }

            w.WriteEndArray();
            w.WriteStartArray("SpiffeID");
            foreach (string id in s.PeerSpiffeIds)
            {
                w.WriteStringValue(id);
            }

            w.WriteEndArray();
            w.WriteString("Protocol", "tcp");
            w.WriteEndObject();
        }

        w.WriteEndObject();
        if (s.PeerName is not null)
        {
            w.WriteString("PeerName", s.PeerName);
        }

        w.WriteNumber("CreateIndex", s.CreateIndex);
        w.WriteNumber("ModifyIndex", s.ModifyIndex);
        w.WriteEndObject();

        w.WriteStartArray("Checks");
        foreach (SimCheck check in entry.Checks)
        {
            WriteCheck(w, check);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>One peering as <c>/v1/peerings</c> writes it (api/peering.go <c>Peering</c>; empty lists omitted as <c>omitempty</c> does).</summary>
    private static void WritePeering(Utf8JsonWriter w, SimPeering p)
    {
        w.WriteStartObject();
        w.WriteString("ID", p.Id);
        w.WriteString("Name", p.Name);
        w.WriteString("State", p.State);
        w.WriteString("PeerID", "00000000-0000-0000-0000-0000000000" + (p.Name.Length % 90 + 10).ToString(CultureInfo.InvariantCulture));
        if (p.PeerCaPems.Count > 0)
        {
            w.WriteStartArray("PeerCAPems");
            foreach (string pem in p.PeerCaPems)
            {
                w.WriteStringValue(pem);
            }

            w.WriteEndArray();
        }

        if (p.PeerServerName is not null)
        {
            w.WriteString("PeerServerName", p.PeerServerName);
        }

        if (p.PeerServerAddresses.Count > 0)
        {
            w.WriteStartArray("PeerServerAddresses");
            foreach (string address in p.PeerServerAddresses)
            {
                w.WriteStringValue(address);
            }

            w.WriteEndArray();
        }

        w.WriteStartObject("StreamStatus");
        w.WriteStartArray("ImportedServices");
        w.WriteEndArray();
        w.WriteStartArray("ExportedServices");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteNumber("CreateIndex", p.ModifyIndex);
        w.WriteNumber("ModifyIndex", p.ModifyIndex);
        w.WriteStartObject("Remote");
        w.WriteString("Partition", "default");
        w.WriteString("Datacenter", p.RemoteDatacenter);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteTagged(Utf8JsonWriter w, string key, string address, int port)
    {
        w.WriteStartObject(key);
        w.WriteString("Address", address);
        w.WriteNumber("Port", port);
        w.WriteEndObject();
    }

    private sealed record Entry(SimNode Node, SimInstance Service, SimCheck[] Checks);

    private sealed record ConfigEntry(JsonElement Body, ulong CreateIndex, ulong ModifyIndex);

    private sealed class DatacenterState(string name)
    {
        public string Name { get; } = name;

        /// <summary>This datacenter's Raft index: every write takes the next value.</summary>
        public ulong Index { get; set; } = 1;

        public ulong ServicesIndex { get; set; } = 1;

        public ulong ChecksIndex { get; set; } = 1;

        public TaskCompletionSource Changed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Dictionary<string, SimNode> Nodes { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, SimInstance> Services { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, HashSet<string>> ByName { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, HashSet<string>> ByNode { get; } = new(StringComparer.Ordinal);

        /// <summary>Connect-capable instances by the service they serve (native: own name; sidecar: destination).</summary>
        public Dictionary<string, HashSet<string>> ConnectByTarget { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, Dictionary<string, SimCheck>> NodeChecks { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, Dictionary<string, SimCheck>> ServiceChecks { get; } = new(StringComparer.Ordinal);

        /// <summary>Per service name: the index of the last change to the service, its sidecars, their checks or nodes.</summary>
        public Dictionary<string, ulong> NameIndex { get; } = new(StringComparer.Ordinal);
    }
}

/// <summary>A service instance as the simulated agent holds it (immutable; a change is a re-registration).</summary>
internal sealed record SimInstance
{
    public required string Id { get; init; }

    public required string Name { get; init; }

    public required string Node { get; init; }

    /// <summary><c>""</c>, <c>connect-proxy</c> or <c>mesh-gateway</c>.</summary>
    public string Kind { get; init; } = string.Empty;

    public string Address { get; init; } = string.Empty;

    public int Port { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public IReadOnlyDictionary<string, string> Meta { get; init; } = new Dictionary<string, string>();

    public int PassingWeight { get; init; } = 1;

    public int WarningWeight { get; init; } = 1;

    /// <summary>Connect-native (served by <c>/v1/health/connect/&lt;Name&gt;</c>).</summary>
    public bool Native { get; init; }

    /// <summary>For a <c>connect-proxy</c>: <c>Proxy.DestinationServiceName</c>.</summary>
    public string? DestinationService { get; init; }

    /// <summary>For a gateway: the service's <c>wan</c> tagged address.</summary>
    public string? WanAddress { get; init; }

    public int WanPort { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }

    /// <summary>The name under which <c>/v1/health/connect</c> returns this instance, or null.</summary>
    public string? ConnectTarget => Kind == "connect-proxy" ? DestinationService : Native ? Name : null;

    /// <summary>Imported from this peer (set by <see cref="SimulatedConsulAgent.Import"/>): written as <c>Service.PeerName</c> with <c>Connect.PeerMeta</c>.</summary>
    public string? PeerName { get; init; }

    /// <summary><c>Connect.PeerMeta.SNI</c> of an imported instance.</summary>
    public IReadOnlyList<string> PeerSni { get; init; } = [];

    /// <summary><c>Connect.PeerMeta.SpiffeID</c> of an imported instance.</summary>
    public IReadOnlyList<string> PeerSpiffeIds { get; init; } = [];
}

/// <summary>A check: a node check when <see cref="ServiceId"/> is null.</summary>
/// <summary>A cluster peering of the simulated agent (the fields of api/peering.go <c>Peering</c> a gateway reads).</summary>
internal sealed record SimPeering
{
    public required string Name { get; init; }

    public string Id { get; init; } = Guid.NewGuid().ToString();

    /// <summary>PENDING, ESTABLISHING, ACTIVE, FAILING, DELETING or TERMINATED.</summary>
    public string State { get; init; } = "ACTIVE";

    public IReadOnlyList<string> PeerCaPems { get; init; } = [];

    /// <summary>Set on the dialing side: <c>server.&lt;dc&gt;.peering.&lt;peer TD&gt;</c>.</summary>
    public string? PeerServerName { get; init; }

    /// <summary>Set on the dialing side only (the side that established the peering with a token).</summary>
    public IReadOnlyList<string> PeerServerAddresses { get; init; } = [];

    public string RemoteDatacenter { get; init; } = "dc2";

    public ulong ModifyIndex { get; init; }
}

internal sealed record SimCheck(string Node, string CheckId, string Status, string? ServiceId, string? ServiceName, ulong CreateIndex, ulong ModifyIndex);

/// <summary>A node.</summary>
internal sealed record SimNode(string Name, string Address, ulong CreateIndex, ulong ModifyIndex)
{
    public string? WanAddress { get; init; }
}

/// <summary>A consistent copy of one datacenter's catalog.</summary>
internal sealed record SimSnapshot(string Datacenter, IReadOnlyList<SimInstance> Instances, IReadOnlyList<SimCheck> Checks, IReadOnlyList<SimNode> Nodes);

/// <summary>The shape <see cref="SimulatedConsulAgent.Build"/> fills the catalog with.</summary>
internal sealed record CatalogShape
{
    /// <summary>Local services (named <c>svc-00000</c> …).</summary>
    public int Services { get; init; } = 10_000;

    /// <summary>Local routable instances, spread evenly over the services (IDs <c>svc-00000-0</c> …).</summary>
    public int Instances { get; init; } = 50_000;

    /// <summary>Local nodes the instances are spread over (each with a <c>serfHealth</c> check).</summary>
    public int Nodes { get; init; } = 2_000;

    /// <summary>Every n-th service runs behind sidecars (an app instance plus a <c>connect-proxy</c> per instance); the rest are Connect-native. 0: none.</summary>
    public int SidecarEvery { get; init; } = 5;

    /// <summary>Datacenters in all, the local one included.</summary>
    public int Datacenters { get; init; } = 20;

    /// <summary>Mesh gateways in every datacenter (the local one included).</summary>
    public int GatewaysPerDatacenter { get; init; } = 2;

    /// <summary>Services in each remote datacenter besides its gateways (names a gateway discovery has to look at).</summary>
    public int RemoteServicesPerDatacenter { get; init; }
}
