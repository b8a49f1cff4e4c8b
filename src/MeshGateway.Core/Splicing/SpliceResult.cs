using System.Net.Sockets;

namespace MeshGateway.Splicing;

/// <summary>The outcome of one splice.</summary>
public readonly struct SpliceResult
{
    /// <summary>Creates a result.</summary>
    /// <param name="closeReason">The first reason recorded.</param>
    /// <param name="bytesFromClient">Bytes relayed from the client to the upstream.</param>
    /// <param name="bytesFromUpstream">Bytes relayed from the upstream to the client.</param>
    /// <param name="error">The socket error behind an error reason; <see cref="SocketError.Success"/> otherwise.</param>
    /// <param name="duration">How long the splice ran.</param>
    public SpliceResult(SpliceCloseReason closeReason, long bytesFromClient, long bytesFromUpstream, SocketError error, TimeSpan duration)
    {
        CloseReason = closeReason;
        BytesFromClient = bytesFromClient;
        BytesFromUpstream = bytesFromUpstream;
        Error = error;
        Duration = duration;
    }

    /// <summary>The first reason recorded: what ended the connection.</summary>
    public SpliceCloseReason CloseReason { get; }

    /// <summary>Bytes relayed from the client to the upstream.</summary>
    public long BytesFromClient { get; }

    /// <summary>Bytes relayed from the upstream to the client.</summary>
    public long BytesFromUpstream { get; }

    /// <summary>For <see cref="SpliceCloseReason.ClientError"/> and <see cref="SpliceCloseReason.UpstreamError"/>, the socket error (streams: <see cref="SocketError.SocketError"/> unless the stream reported a socket error).</summary>
    public SocketError Error { get; }

    /// <summary>How long the splice ran, measured with the splicer's <see cref="TimeProvider"/>.</summary>
    public TimeSpan Duration { get; }

    /// <inheritdoc />
    public override string ToString() => $"{CloseReason} (client→upstream {BytesFromClient} B, upstream→client {BytesFromUpstream} B, {Duration}, {Error})";
}
