using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;

namespace MeshGateway.Gateway;

/// <summary>
/// Takes over the connections of a <see cref="Route"/> in process instead of the gateway dialling the route's cluster:
/// the seam for services the gateway must terminate (issue 14: HTTP-like services exported to cluster peers, where the
/// gateway ends the peer's mTLS session itself). Set it with <see cref="Route.Terminator"/>.
/// </summary>
/// <remarks>
/// <para>
/// The listener reads the ClientHello and matches the route as for any connection, then calls
/// <see cref="RunAsync"/> on the connection's thread instead of connecting upstream. The terminator then owns the
/// socket: it must first consume <see cref="TerminatedConnection.Prefix"/> (the ClientHello and whatever followed it,
/// already read from the socket) and then read the socket itself, and it closes the socket when it is done.
/// </para>
/// <para>
/// The connection stays one of the listener's open connections until the returned task completes: it is counted in
/// <see cref="GatewayListener.ActiveConnections"/>, waited for by <see cref="GatewayListener.StopAsync"/>, and reset
/// (the socket closed under the terminator) when a drain's deadline passes. A terminator that throws from
/// <see cref="RunAsync"/> makes the listener reset the connection and count a
/// <see cref="RejectionReason.TerminatorFailed"/> rejection; a task that faults later resets the connection and counts
/// an observer error (<see cref="GatewayCounters.ObserverErrors"/>). Neither stops the listener.
/// </para>
/// <para>Passthrough routes (no terminator) pay one null check for this seam and allocate nothing for it.</para>
/// </remarks>
public abstract class ConnectionTerminator
{
    /// <summary>Takes over one accepted connection. Must return promptly (queue the work, do not run the session inline).</summary>
    /// <param name="connection">The socket, the bytes already read from it, the server name and the matched route.</param>
    /// <returns>A task that completes when the connection has ended (its socket is closed).</returns>
    public abstract Task RunAsync(TerminatedConnection connection);
}

/// <summary>A connection handed to a <see cref="ConnectionTerminator"/>: the accepted socket and what the gateway already read from it.</summary>
/// <remarks>Created only for terminated connections (one object per connection), never on the passthrough path.</remarks>
public sealed class TerminatedConnection
{
    internal TerminatedConnection(Socket socket, byte[] prefix, string serverName, Route route, EndPoint? clientEndPoint, IPEndPoint listenerEndPoint)
    {
        Socket = socket;
        Prefix = prefix;
        ServerName = serverName;
        Route = route;
        ClientEndPoint = clientEndPoint;
        ListenerEndPoint = listenerEndPoint;
    }

    /// <summary>The client's socket, connected. Owned by the terminator from <see cref="ConnectionTerminator.RunAsync"/> on (it closes it).</summary>
    public Socket Socket { get; }

    /// <summary>
    /// The bytes read from <see cref="Socket"/> before the hand-over, to be consumed before any further read of the
    /// socket: the whole ClientHello record(s) and whatever the client sent after them (never a PROXY protocol header).
    /// A copy owned by this object.
    /// </summary>
    public ReadOnlyMemory<byte> Prefix { get; }

    /// <summary>The server name of the ClientHello (printable ASCII, as sent).</summary>
    public string ServerName { get; }

    /// <summary>The route that matched <see cref="ServerName"/> (its <see cref="Route.Terminator"/> is the one called).</summary>
    public Route Route { get; }

    /// <summary>The client's address: the socket's peer, or the source of the PROXY protocol header when there was one.</summary>
    public EndPoint? ClientEndPoint { get; }

    /// <summary>The gateway address the client connected to.</summary>
    public IPEndPoint ListenerEndPoint { get; }
}
