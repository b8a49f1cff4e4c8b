using System.Net;
using MeshGateway.Gateway;
using MeshGateway.Routing;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>A route of the gateway under test: an exact SNI name or <c>*.suffix</c>, to upstream endpoints.</summary>
internal sealed record GatewayRoute(string Pattern, IReadOnlyList<IPEndPoint> Targets);

/// <summary>
/// The product's <see cref="GatewayListener"/> as the end-to-end test's mesh gateway: routes from the catalog are
/// pushed into its <see cref="RouteTableSource"/>, and its own observer events count the bytes it relayed. It is
/// given no certificate or key: it reads the ClientHello's SNI and splices.
/// </summary>
internal sealed class GatewayUnderTest : IAsyncDisposable
{
    private readonly RouteTableSource _routes = new();
    private readonly ByteObserver _observer = new();
    private readonly GatewayListener _listener;
    private IReadOnlyList<GatewayRoute> _current = [];

    public GatewayUnderTest(string name, params IPEndPoint[] bindings)
    {
        Name = name;
        var options = new GatewayListenerOptions();
        foreach (IPEndPoint binding in bindings)
        {
            options.EndPoints.Add(binding);
        }

        _listener = new GatewayListener(options, _routes, _observer);
        _listener.Start();
    }

    public string Name { get; }

    public long BytesFromClient => Interlocked.Read(ref _observer.BytesFromClient);

    public long Routed => _listener.Counters.Routed;

    public long Rejected => _listener.Counters.Rejected;

    public string? LastRejection => _observer.LastRejection;

    public long Active => _listener.ActiveConnections;

    public IReadOnlyList<GatewayRoute> Routes
    {
        get => _current;
        set
        {
            _routes.Update(RouteTable.Create(value.Select(r => new Route(r.Pattern, new UpstreamCluster(r.Pattern, r.Targets.Select(t => new UpstreamEndpoint(t)))))));
            _current = value;
        }
    }

    public async ValueTask DisposeAsync() => await _listener.DisposeAsync();

    private sealed class ByteObserver : GatewayObserver
    {
        public long BytesFromClient;

        public string? LastRejection { get; private set; }

        public override void OnConnectionClosed(in ConnectionClosedEvent connection) => Interlocked.Add(ref BytesFromClient, connection.BytesFromClient);

        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection) => LastRejection = $"{rejection.Reason} ({rejection.HelloError})";
    }
}
