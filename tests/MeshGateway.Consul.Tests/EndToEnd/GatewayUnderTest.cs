using System.Net;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>
/// The product's <see cref="GatewayListener"/> as the end-to-end test's mesh gateway, reading its routes from a
/// <see cref="RouteTableSource"/> (fed by <c>ConsulRouteTableSource</c>); its own observer events count the bytes it
/// relayed. It is given no certificate or key: it reads the ClientHello's SNI and splices.
/// </summary>
internal sealed class GatewayUnderTest : IAsyncDisposable
{
    private readonly RouteTableSource _routes;
    private readonly ByteObserver _observer = new();
    private readonly GatewayListener _listener;

    public GatewayUnderTest(string name, RouteTableSource routes, params IPEndPoint[] bindings)
    {
        Name = name;
        _routes = routes;
        var options = new GatewayListenerOptions { Engine = TestEngine.Current };
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

    /// <summary>Completes once every connection has ended (the listener's change signal).</summary>
    public Task WhenIdleAsync(CancellationToken cancellationToken) => _listener.WhenActiveConnectionsAtMostAsync(0, cancellationToken);

    public RouteTable Routes => _routes.Current;

    public async ValueTask DisposeAsync() => await _listener.DisposeAsync();

    private sealed class ByteObserver : GatewayObserver
    {
        public long BytesFromClient;

        public string? LastRejection { get; private set; }

        public override void OnConnectionClosed(in ConnectionClosedEvent connection) => Interlocked.Add(ref BytesFromClient, connection.BytesFromClient);

        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection) => LastRejection = $"{rejection.Reason} ({rejection.HelloError})";
    }
}
