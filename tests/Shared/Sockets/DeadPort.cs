using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Testing;

/// <summary>
/// A loopback port with nothing listening, held (bound, never listening) until disposed: a connect to
/// <see cref="EndPoint"/> is refused at once.
/// </summary>
/// <remarks>
/// Held rather than bound and released: a released port is free again, so while the test runs another test's listener
/// could take it, or the kernel could pick it as the source port of the very connect that dials it (a TCP
/// self-connection: the "upstream" echoes what is sent to it and never closes). Either turns a refused dial into a
/// connection that hangs the test until its timeout. A port bound here is in use: neither can happen.
/// </remarks>
internal sealed class DeadPort : IDisposable
{
    private readonly Socket _socket;

    public DeadPort()
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        EndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    /// <summary>The refused end point.</summary>
    public IPEndPoint EndPoint { get; }

    public void Dispose() => _socket.Dispose();
}
