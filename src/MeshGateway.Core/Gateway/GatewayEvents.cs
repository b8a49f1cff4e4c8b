using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>The access-log record of one spliced connection, handed to <see cref="GatewayObserver.OnConnectionClosed"/>.</summary>
/// <remarks>A <c>ref struct</c> so the server name can point into connection state without a string; copy what you keep.</remarks>
public readonly ref struct ConnectionClosedEvent
{
    internal ConnectionClosedEvent(EndPoint? client, IPEndPoint listener, ReadOnlySpan<byte> serverName, Route route, IPEndPoint upstream, in SpliceResult result, long bytesFromClient, TimeSpan duration)
    {
        ClientEndPoint = client;
        ListenerEndPoint = listener;
        ServerName = serverName;
        Route = route;
        UpstreamEndPoint = upstream;
        CloseReason = result.CloseReason;
        Error = result.Error;
        BytesFromClient = bytesFromClient;
        BytesFromUpstream = result.BytesFromUpstream;
        Duration = duration;
    }

    /// <summary>The client's address.</summary>
    public EndPoint? ClientEndPoint { get; }

    /// <summary>The gateway address the client connected to.</summary>
    public IPEndPoint ListenerEndPoint { get; }

    /// <summary>The server name as the client sent it (ASCII).</summary>
    public ReadOnlySpan<byte> ServerName { get; }

    /// <summary>The route that matched.</summary>
    public Route Route { get; }

    /// <summary>The upstream endpoint the connection was spliced to.</summary>
    public IPEndPoint UpstreamEndPoint { get; }

    /// <summary>Bytes relayed from the client to the upstream, ClientHello included.</summary>
    public long BytesFromClient { get; }

    /// <summary>Bytes relayed from the upstream to the client.</summary>
    public long BytesFromUpstream { get; }

    /// <summary>From accept to close.</summary>
    public TimeSpan Duration { get; }

    /// <summary>Why the connection ended.</summary>
    public SpliceCloseReason CloseReason { get; }

    /// <summary>The socket error behind an error close reason.</summary>
    public SocketError Error { get; }
}

/// <summary>A connection the gateway closed without splicing, handed to <see cref="GatewayObserver.OnConnectionRejected"/>.</summary>
public readonly ref struct ConnectionRejectedEvent
{
    internal ConnectionRejectedEvent(RejectionReason reason, EndPoint? client, IPEndPoint listener, ReadOnlySpan<byte> serverName, ClientHelloError helloError, HostNameIssues serverNameIssues, Route? route)
    {
        Reason = reason;
        ClientEndPoint = client;
        ListenerEndPoint = listener;
        ServerName = serverName;
        HelloError = helloError;
        ServerNameIssues = serverNameIssues;
        Route = route;
    }

    /// <summary>Why.</summary>
    public RejectionReason Reason { get; }

    /// <summary>The client's address.</summary>
    public EndPoint? ClientEndPoint { get; }

    /// <summary>The gateway address the client connected to.</summary>
    public IPEndPoint ListenerEndPoint { get; }

    /// <summary>
    /// The server name when the ClientHello was read (empty otherwise): the bytes as sent, which for
    /// <see cref="RejectionReason.InvalidServerName"/> include non-ASCII or control bytes (escape them before logging).
    /// </summary>
    public ReadOnlySpan<byte> ServerName { get; }

    /// <summary>The reader's specific error for <see cref="RejectionReason.NotTls"/>, <see cref="RejectionReason.InvalidHello"/> and <see cref="RejectionReason.HelloTooLarge"/>.</summary>
    public ClientHelloError HelloError { get; }

    /// <summary>How the server name departs from a DNS host name (<see cref="ClientHelloInfo.ServerNameIssues"/>) whenever the ClientHello was read; for <see cref="RejectionReason.InvalidServerName"/>, what the gateway's policy rejected.</summary>
    public HostNameIssues ServerNameIssues { get; }

    /// <summary>The matched route for <see cref="RejectionReason.NoEndpoint"/>, <see cref="RejectionReason.EndpointUnresolved"/> and <see cref="RejectionReason.UpstreamUnreachable"/>.</summary>
    public Route? Route { get; }
}

/// <summary>One failed connect attempt, handed to <see cref="GatewayObserver.OnUpstreamConnectFailed"/>.</summary>
public readonly ref struct UpstreamConnectFailedEvent
{
    internal UpstreamConnectFailedEvent(Route route, IPEndPoint upstream, int attempt, bool timedOut, SocketError error, bool panic)
    {
        Route = route;
        UpstreamEndPoint = upstream;
        Attempt = attempt;
        TimedOut = timedOut;
        Error = error;
        Panic = panic;
    }

    /// <summary>The route being served.</summary>
    public Route Route { get; }

    /// <summary>The endpoint that failed (the failure counts toward its outlier detection, see <see cref="UpstreamCluster.OutlierDetection"/>).</summary>
    public IPEndPoint UpstreamEndPoint { get; }

    /// <summary>1 for the first attempt of the connection.</summary>
    public int Attempt { get; }

    /// <summary>Whether the attempt hit the cluster's connect timeout.</summary>
    public bool TimedOut { get; }

    /// <summary>The socket error when the connect failed (not for a timeout).</summary>
    public SocketError Error { get; }

    /// <summary>Whether the endpoint was chosen in panic mode (no healthy endpoint left).</summary>
    public bool Panic { get; }
}

/// <summary>
/// Receives the gateway's diagnostic events: the access log, rejections, failed connects, accept errors and the stop
/// summary. Override what you need; every method does nothing by default. Hosting maps these to source-generated logs.
/// </summary>
/// <remarks>
/// Methods run on the connection's thread and must not block or throw. When no observer is given the gateway builds
/// no event at all, so an unobserved gateway pays nothing.
/// </remarks>
public abstract class GatewayObserver
{
    /// <summary>A spliced connection ended (one call per connection: the access log).</summary>
    /// <param name="connection">The record.</param>
    public virtual void OnConnectionClosed(in ConnectionClosedEvent connection)
    {
    }

    /// <summary>A connection was closed without splicing (one call per connection).</summary>
    /// <param name="rejection">The record.</param>
    public virtual void OnConnectionRejected(in ConnectionRejectedEvent rejection)
    {
    }

    /// <summary>A connect attempt failed or timed out; the next endpoint may be tried.</summary>
    /// <param name="failure">The record.</param>
    public virtual void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure)
    {
    }

    /// <summary>Accepting failed (for example the process ran out of file descriptors); the listener waits <paramref name="retryDelay"/> and tries again.</summary>
    /// <param name="listener">The listening address.</param>
    /// <param name="socketError">The error.</param>
    /// <param name="retryDelay">The back-off before the next accept.</param>
    public virtual void OnAcceptFailed(IPEndPoint listener, SocketError socketError, TimeSpan retryDelay)
    {
    }

    /// <summary>The gateway stopped.</summary>
    /// <param name="result">How many connections finished during the drain and how many were cut.</param>
    public virtual void OnStopped(GatewayStopResult result)
    {
    }

    /// <summary>
    /// A wave of connections drained and the memory it held was returned to the operating system
    /// (<see cref="GatewayListenerOptions.ReturnMemoryAfterWaves"/>).
    /// </summary>
    /// <param name="peakConnections">The wave's peak of open connections.</param>
    /// <param name="heapBytesBefore">The managed heap before the collection (<see cref="GC.GetTotalMemory(bool)"/>).</param>
    /// <param name="heapBytesAfter">The managed heap after it.</param>
    public virtual void OnMemoryReturned(int peakConnections, long heapBytesBefore, long heapBytesAfter)
    {
    }
}

/// <summary>The outcome of <see cref="GatewayListener.StopAsync"/>.</summary>
public readonly record struct GatewayStopResult
{
    /// <summary>Creates a result.</summary>
    /// <param name="drained">Connections open at stop that finished before the deadline.</param>
    /// <param name="cut">Connections still open at the deadline, closed by the gateway.</param>
    public GatewayStopResult(int drained, int cut)
    {
        Drained = drained;
        Cut = cut;
    }

    /// <summary>Connections open at stop that finished before the deadline.</summary>
    public int Drained { get; }

    /// <summary>Connections still open at the deadline, closed by the gateway.</summary>
    public int Cut { get; }
}
