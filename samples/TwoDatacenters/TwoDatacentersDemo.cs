using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MeshGateway.Gateway;
using MeshGateway.Model;
using MeshGateway.Routing;

namespace TwoDatacenters;

/// <summary>
/// The whole mesh-gateway story in one process on loopback, without Consul: gateways for dc1 and dc2, a TLS service
/// <c>api</c> in dc2 and a client <c>web</c> in dc1 that calls api once per gateway mode. The mode comes from Consul-shaped
/// configuration (mesh-config.json) through <see cref="MeshGatewayModeResolver"/>; where to dial comes from
/// <see cref="UpstreamTargetPlanner"/> over a catalog view of this process. Returns 0 when every check passes.
/// </summary>
public static class TwoDatacentersDemo
{
    private static readonly TimeSpan s_callTimeout = TimeSpan.FromSeconds(20);

    public static async Task<int> RunAsync(TextWriter output, string? configPath = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        configPath ??= Path.Combine(AppContext.BaseDirectory, "mesh-config.json");
        (string trustDomain, List<MeshScenario> scenarios) = MeshConfig.Parse(await File.ReadAllBytesAsync(configPath));
        var failures = new List<string>();

        string apiSni = ConsulSniName.ForService("api", null, null, "dc2", trustDomain).ToString();
        var spiffe = new Uri($"spiffe://{trustDomain}/ns/default/dc/dc2/svc/api");
        using var certificates = new DemoCertificates(apiSni, spiffe);
        await using var api = new ApiServer(certificates.ApiCertificate);

        // dc2's gateway routes its own services by exact SNI (Consul's per-service SNI, docs/consul-behaviour.md §3).
        using var dc2Observer = new ByteCounter();
        var dc2Routes = new RouteTableSource(RouteTable.Create([new Route(apiSni, new UpstreamCluster("api.dc2", [new UpstreamEndpoint(api.EndPoint)]))]));
        await using var dc2Gateway = new GatewayListener(Loopback(), dc2Routes, dc2Observer);
        dc2Gateway.Start();
        IPEndPoint dc2GatewayEndPoint = dc2Gateway.LocalEndPoints[0];

        // dc1's gateway forwards anything for dc2 to dc2's gateways (the remote-datacenter wildcard).
        string dc2Wildcard = ConsulSniName.RemoteGatewayWildcard("dc2", null, trustDomain);
        using var dc1Observer = new ByteCounter();
        var dc1Routes = new RouteTableSource(RouteTable.Create([new Route(dc2Wildcard, new UpstreamCluster("gateways.dc2", [new UpstreamEndpoint(dc2GatewayEndPoint)]))]));
        await using var dc1Gateway = new GatewayListener(Loopback(), dc1Routes, dc1Observer);
        dc1Gateway.Start();
        IPEndPoint dc1GatewayEndPoint = dc1Gateway.LocalEndPoints[0];

        MeshCatalogView catalog = Catalog(api.EndPoint, dc1GatewayEndPoint, dc2GatewayEndPoint);

        output.WriteLine("MeshGateway: two datacenters in one process (loopback, no Consul)");
        output.WriteLine($"  trust domain      {trustDomain}");
        output.WriteLine($"  mesh-gateway dc1  {dc1GatewayEndPoint}   routes {dc2Wildcard} -> {dc2GatewayEndPoint}");
        output.WriteLine($"  mesh-gateway dc2  {dc2GatewayEndPoint}   routes {apiSni} -> {api.EndPoint}");
        output.WriteLine($"  api (dc2)         {api.EndPoint}   certificate {certificates.ApiCertificate.Subject}, SAN {apiSni} + {spiffe}, issued by {certificates.Authority.Subject}");
        output.WriteLine($"  web (dc1)         trusts only {certificates.Authority.Subject}");
        output.WriteLine();

        var gateways = new[] { ("mesh-gateway dc1", dc1Gateway, dc1Observer), ("mesh-gateway dc2", dc2Gateway, dc2Observer) };
        foreach (MeshScenario scenario in scenarios)
        {
            await RunScenarioAsync(output, scenario, trustDomain, catalog, certificates, api, gateways, dc1GatewayEndPoint, dc2GatewayEndPoint, failures).ConfigureAwait(false);
        }

        // The gateways were built from addresses and routes only: neither type can even hold a certificate or a key.
        Type[] gatewayTypes = [typeof(GatewayListener), typeof(GatewayListenerOptions), typeof(RouteTableSource), typeof(UpstreamCluster)];
        List<string> keyMembers = [.. gatewayTypes.SelectMany(KeyMembers)];
        output.WriteLine("Keys: the two gateways were constructed without any certificate or private key.");
        output.WriteLine($"  members of {string.Join(", ", gatewayTypes.Select(t => t.Name))} that could hold one: {(keyMembers.Count == 0 ? "none" : string.Join(", ", keyMembers))}");
        output.WriteLine($"  only api holds a private key: {certificates.ApiCertificate.HasPrivateKey}; web's trust anchor has none: {!certificates.Authority.HasPrivateKey}");
        Check(keyMembers.Count == 0 && certificates.ApiCertificate.HasPrivateKey && !certificates.Authority.HasPrivateKey, "gateways hold no keys", failures);
        Check(api.Accepted == scenarios.Count, $"api served {scenarios.Count} connections (served {api.Accepted})", failures);

        output.WriteLine();
        if (failures.Count == 0)
        {
            output.WriteLine($"PASS: web reached api in every mode ({string.Join(", ", scenarios.Select(s => s.Name))}), end-to-end TLS verified, gateways never decrypted.");
            return 0;
        }

        output.WriteLine($"FAIL: {failures.Count} check(s) failed:");
        foreach (string failure in failures)
        {
            output.WriteLine("  - " + failure);
        }

        return 1;
    }

    private static async Task RunScenarioAsync(
        TextWriter output,
        MeshScenario scenario,
        string trustDomain,
        MeshCatalogView catalog,
        DemoCertificates certificates,
        ApiServer api,
        (string Name, GatewayListener Gateway, ByteCounter Bytes)[] gateways,
        IPEndPoint dc1Gateway,
        IPEndPoint dc2Gateway,
        List<string> failures)
    {
        MeshGatewayModeResolution mode = MeshGatewayModeResolver.Resolve(
            new MeshGatewayModeInputs { ProxyDefaults = scenario.ProxyDefaults, ServiceDefaults = scenario.ServiceDefaults },
            scenario.Upstream);
        UpstreamTarget target = UpstreamTargetPlanner.Plan(
            new UpstreamTargetRequest { CallerDatacenter = "dc1", TrustDomain = trustDomain, Upstream = scenario.Upstream, Mode = mode.Mode },
            catalog);

        output.WriteLine($"[{scenario.Name}] web -> api (dc2)");
        output.WriteLine($"  config: proxy-defaults \"{scenario.ProxyDefaults}\", service-defaults/web \"{scenario.ServiceDefaults}\", upstream api \"{scenario.Upstream.MeshGateway}\"");
        output.WriteLine($"  mode:   \"{mode.Mode}\" decided by {mode.DecidedBy}: {mode.Explanation}");
        output.WriteLine($"  plan:   {target.DialKind}: {target.Explanation}");
        Check(mode.Mode.ToString() == scenario.Name, $"[{scenario.Name}] resolved mode is '{mode.Mode}'", failures);
        if (!target.IsRoutable || target.Endpoints.Count == 0 || target.Sni is null)
        {
            Check(false, $"[{scenario.Name}] the planner found no route ({target.Error})", failures);
            return;
        }

        var dial = new IPEndPoint(IPAddress.Parse(target.Endpoints[0].Address), target.Endpoints[0].Port);
        long[] routedBefore = [.. gateways.Select(g => g.Gateway.Counters.Routed)];
        (long Up, long Down)[] bytesBefore = [.. gateways.Select(g => g.Bytes.Snapshot())];
        int apiBefore = api.Accepted;

        CallResult call;
        try
        {
            call = await CallAsync(dial, target.Sni, certificates).WaitAsync(s_callTimeout).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or System.Security.Authentication.AuthenticationException)
        {
            Check(false, $"[{scenario.Name}] the call failed: {ex.GetType().Name}: {ex.Message}", failures);
            return;
        }

        // Each gateway reports a connection (with its byte counts) once both directions closed.
        long[] routed = new long[gateways.Length];
        for (int i = 0; i < gateways.Length; i++)
        {
            routed[i] = gateways[i].Gateway.Counters.Routed - routedBefore[i];
            await gateways[i].Bytes.WaitForClosedAsync(gateways[i].Gateway.Counters.Routed, s_callTimeout).ConfigureAwait(false);
        }

        var hops = new List<string> { $"web (dc1) dials {dial} with SNI {target.Sni}" };
        if (routed[0] > 0)
        {
            hops.Add($"mesh-gateway dc1 {dc1Gateway} (LAN)");
        }

        if (routed[1] > 0)
        {
            hops.Add($"mesh-gateway dc2 {dc2Gateway} (WAN)");
        }

        hops.Add($"api (dc2) {api.EndPoint}, which saw the connection from {api.LastClient}");
        output.WriteLine("  hops:   " + string.Join("\n       -> ", hops));
        output.WriteLine($"  TLS:    {call.Protocol}, {call.Cipher}; web validated api's certificate: {call.Validation}");
        output.WriteLine($"  reply:  \"{call.Greeting}\" / \"{call.Echo}\"");
        for (int i = 0; i < gateways.Length; i++)
        {
            (long up, long down) = gateways[i].Bytes.Snapshot();
            output.WriteLine($"  bytes:  {gateways[i].Name} carried {routed[i]} connection(s), {up - bytesBefore[i].Up} B web->api, {down - bytesBefore[i].Down} B api->web (still encrypted)");
        }

        (long, long) expected = target.DialKind switch
        {
            UpstreamDialKind.LocalGateways => (1, 1),
            UpstreamDialKind.TargetGateways => (0, 1),
            _ => (0, 0),
        };
        Check((routed[0], routed[1]) == expected, $"[{scenario.Name}] gateways routed (dc1, dc2) = ({routed[0]}, {routed[1]}), expected {expected}", failures);
        Check(call.Validation == "chain to the demo CA and name OK", $"[{scenario.Name}] certificate validation: {call.Validation}", failures);
        Check(call.Thumbprint == certificates.ApiCertificate.Thumbprint, $"[{scenario.Name}] web talked to api's own certificate", failures);
        Check(call.Greeting == "hello from api in dc2" && call.Echo == "api got: GET /hello from web", $"[{scenario.Name}] api answered", failures);
        Check(api.Accepted == apiBefore + 1, $"[{scenario.Name}] api accepted exactly one connection", failures);
        output.WriteLine();
    }

    private static async Task<CallResult> CallAsync(IPEndPoint dial, string sni, DemoCertificates certificates)
    {
        using var socket = new Socket(dial.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(dial).ConfigureAwait(false);
        string validation = "not run";
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = sni,
            CertificateChainPolicy = certificates.ClientChainPolicy(),
            RemoteCertificateValidationCallback = (_, _, _, errors) =>
            {
                validation = errors == SslPolicyErrors.None ? "chain to the demo CA and name OK" : errors.ToString();
                return errors == SslPolicyErrors.None;
            },
        }).ConfigureAwait(false);
        string greeting = await ReadLineAsync(ssl).ConfigureAwait(false);
        await ssl.WriteAsync("GET /hello from web\n"u8.ToArray()).ConfigureAwait(false);
        await ssl.FlushAsync().ConfigureAwait(false);
        string echo = await ReadLineAsync(ssl).ConfigureAwait(false);
        string thumbprint = ssl.RemoteCertificate is X509Certificate2 remote ? remote.Thumbprint : "";
        var result = new CallResult(greeting, echo, validation, thumbprint, ssl.SslProtocol.ToString(), ssl.NegotiatedCipherSuite.ToString());
        await ssl.ShutdownAsync().ConfigureAwait(false);
        socket.Shutdown(SocketShutdown.Send);
        // Wait for api's close so the gateways finish the connection before their counters are read.
        byte[] rest = new byte[256];
        while (await ssl.ReadAsync(rest).ConfigureAwait(false) > 0)
        {
        }

        return result;
    }

    internal static async Task<string> ReadLineAsync(Stream stream)
    {
        var line = new List<byte>();
        byte[] one = new byte[1];
        while (line.Count < 1024 && await stream.ReadAsync(one).ConfigureAwait(false) == 1 && one[0] != (byte)'\n')
        {
            line.Add(one[0]);
        }

        return Encoding.ASCII.GetString([.. line]);
    }

    private static MeshCatalogView Catalog(IPEndPoint api, IPEndPoint dc1Gateway, IPEndPoint dc2Gateway) => new()
    {
        TargetInstances =
        [
            new CatalogServiceInstance
            {
                Node = new CatalogNode { Name = "dc2-node-1", Address = api.Address.ToString(), Datacenter = "dc2" },
                Service = new CatalogService
                {
                    Id = "api-1", Name = "api", Address = api.Address.ToString(), Port = api.Port,
                    TaggedAddresses = new Dictionary<string, CatalogTaggedAddress> { ["wan"] = new(api.Address.ToString(), api.Port) },
                },
            },
        ],
        LocalGateways =
        [
            new CatalogServiceInstance
            {
                Node = new CatalogNode { Name = "dc1-gateway-node", Address = dc1Gateway.Address.ToString(), Datacenter = "dc1" },
                Service = new CatalogService
                {
                    Id = "mesh-gateway", Name = "mesh-gateway", Address = dc1Gateway.Address.ToString(), Port = dc1Gateway.Port,
                    TaggedAddresses = new Dictionary<string, CatalogTaggedAddress> { ["lan"] = new(dc1Gateway.Address.ToString(), dc1Gateway.Port) },
                },
            },
        ],
        RemoteGateways = new Dictionary<GatewayKey, IReadOnlyList<CatalogServiceInstance>>
        {
            [new GatewayKey("dc2")] =
            [
                new CatalogServiceInstance
                {
                    Node = new CatalogNode { Name = "dc2-gateway-node", Address = dc2Gateway.Address.ToString(), Datacenter = "dc2" },
                    Service = new CatalogService
                    {
                        Id = "mesh-gateway", Name = "mesh-gateway", Address = dc2Gateway.Address.ToString(), Port = dc2Gateway.Port,
                        TaggedAddresses = new Dictionary<string, CatalogTaggedAddress> { ["wan"] = new(dc2Gateway.Address.ToString(), dc2Gateway.Port) },
                    },
                },
            ],
        },
    };

    private static GatewayListenerOptions Loopback()
    {
        var options = new GatewayListenerOptions();
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        return options;
    }

    private static IEnumerable<string> KeyMembers(Type type) =>
        type.GetMembers(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
            .Select(m => (m.Name, Type: m switch { FieldInfo f => f.FieldType, PropertyInfo p => p.PropertyType, _ => null }))
            .Where(m => m.Type is not null && (typeof(X509Certificate).IsAssignableFrom(m.Type) || typeof(System.Security.Cryptography.AsymmetricAlgorithm).IsAssignableFrom(m.Type)))
            .Select(m => $"{type.Name}.{m.Name}")
            .Concat(type.GetConstructors().SelectMany(c => c.GetParameters())
                .Where(p => typeof(X509Certificate).IsAssignableFrom(p.ParameterType))
                .Select(p => $"{type.Name}({p.Name})"));

    private static void Check(bool ok, string what, List<string> failures)
    {
        if (!ok)
        {
            failures.Add(what);
        }
    }

    private sealed record CallResult(string Greeting, string Echo, string Validation, string Thumbprint, string Protocol, string Cipher);
}

/// <summary>Sums each gateway's access-log byte counts (the gateway reports them when a connection closes).</summary>
internal sealed class ByteCounter : GatewayObserver, IDisposable
{
    private readonly SemaphoreSlim _closed = new(0);
    private long _up;
    private long _down;
    private long _closedCount;

    public void Dispose() => _closed.Dispose();

    public (long Up, long Down) Snapshot() => (Interlocked.Read(ref _up), Interlocked.Read(ref _down));

    public override void OnConnectionClosed(in ConnectionClosedEvent connection)
    {
        Interlocked.Add(ref _up, connection.BytesFromClient);
        Interlocked.Add(ref _down, connection.BytesFromUpstream);
        Interlocked.Increment(ref _closedCount);
        _closed.Release();
    }

    public async Task WaitForClosedAsync(long routedTotal, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (Interlocked.Read(ref _closedCount) < routedTotal)
        {
            await _closed.WaitAsync(deadline.Token).ConfigureAwait(false);
        }
    }
}

/// <summary>api in dc2: a TLS server that greets, echoes one line and closes. Holds the only private key in the demo.</summary>
internal sealed class ApiServer : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly X509Certificate2 _certificate;
    private readonly Task _accept;
    private readonly List<Task> _connections = [];
    private int _accepted;
    private string _lastClient = "-";

    public ApiServer(X509Certificate2 certificate)
    {
        _certificate = certificate;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accept = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint EndPoint { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    public string LastClient => Volatile.Read(ref _lastClient);

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _accept.ConfigureAwait(false);
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }

        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            Volatile.Write(ref _lastClient, socket.RemoteEndPoint?.ToString() ?? "-");
            lock (_connections)
            {
                _connections.Add(ServeAsync(socket));
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            using (socket)
            {
                await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }).ConfigureAwait(false);
                await ssl.WriteAsync("hello from api in dc2\n"u8.ToArray()).ConfigureAwait(false);
                string line = await TwoDatacentersDemo.ReadLineAsync(ssl).ConfigureAwait(false);
                await ssl.WriteAsync(Encoding.ASCII.GetBytes($"api got: {line}\n")).ConfigureAwait(false);
                await ssl.FlushAsync().ConfigureAwait(false);
                await ssl.ShutdownAsync().ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Send);
                byte[] rest = new byte[256];
                while (await ssl.ReadAsync(rest).ConfigureAwait(false) > 0)
                {
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
        {
            // The client side reports the failure.
        }
    }
}
