namespace MeshGateway.Splicing;

/// <summary>What a receive that returned 0 bytes saw on a socket (see <see cref="SocketSplice.EndOf"/>).</summary>
internal enum StreamEnd
{
    /// <summary>The peer sent FIN (or the system cannot tell): forward it as a half-close.</summary>
    Fin,

    /// <summary>The peer reset the connection; the error went to another call on the socket.</summary>
    Reset,

    /// <summary>The splice's own teardown closed the socket before its state could be read: it resets both sides, forward nothing.</summary>
    ClosedHere,
}
