using System.Net;
using MeshGateway.Routing;
using MeshGateway.Splicing;

namespace MeshGateway.Gateway;

/// <summary>
/// One bound address as its connections see it: the address, whether it expects a PROXY protocol header, its metric
/// tag, and the sink its splices report relayed bytes to. One object per address, made at <see cref="GatewayListener.Start"/>.
/// </summary>
internal sealed class ListenerContext : IRelayedBytesSink
{
    private readonly GatewayMetrics _metrics;

    public ListenerContext(GatewayMetrics metrics, IPEndPoint endPoint, string name, bool proxyProtocol)
    {
        _metrics = metrics;
        EndPoint = endPoint;
        ProxyProtocol = proxyProtocol;
        Tag = new KeyValuePair<string, object?>(GatewayMetricNames.ListenerTag, name);
    }

    /// <summary>The bound address (with its actual port).</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>Whether connections to this address start with a PROXY protocol header (<see cref="GatewayListenerOptions.ProxyProtocolEndPoints"/>).</summary>
    public bool ProxyProtocol { get; }

    /// <summary>The <see cref="GatewayMetricNames.ListenerTag"/> tag (a cached string: no allocation per measurement).</summary>
    public KeyValuePair<string, object?> Tag { get; }

    public void OnRelayed(bool fromClient, long count) => _metrics.OnRelayed(fromClient, count, Tag);
}

/// <summary>
/// What <see cref="GatewayTelemetry"/> needs to know about one connection, handed over in one piece instead of as
/// separate arguments: its listener, the client's address, and as far as the connection got, the server name, the
/// route and the upstream endpoint. A <c>ref struct</c> built on the stack per event (the server name points into the
/// connection's ClientHello state), so it costs no allocation.
/// </summary>
internal readonly ref struct ConnectionContext
{
    public ConnectionContext(ListenerContext listener, EndPoint? clientEndPoint, ReadOnlySpan<byte> serverName = default, Route? route = null, IPEndPoint? upstreamEndPoint = null)
    {
        Listener = listener;
        ClientEndPoint = clientEndPoint;
        ServerName = serverName;
        Route = route;
        UpstreamEndPoint = upstreamEndPoint;
    }

    /// <summary>The address the connection came in on.</summary>
    public ListenerContext Listener { get; }

    /// <summary>The client's address: the socket's peer, or the source of the PROXY protocol header when there was one.</summary>
    public EndPoint? ClientEndPoint { get; }

    /// <summary>The ClientHello's server name once read (empty before).</summary>
    public ReadOnlySpan<byte> ServerName { get; }

    /// <summary>The matched route, once there is one.</summary>
    public Route? Route { get; }

    /// <summary>The upstream endpoint connected to, once connected.</summary>
    public IPEndPoint? UpstreamEndPoint { get; }
}
