using Microsoft.Extensions.Logging;

namespace MeshGateway.Peering;

/// <summary>The terminator's source-generated log messages (event ids 4001-4099).</summary>
internal static partial class PeeringLog
{
    [LoggerMessage(4001, LogLevel.Warning, "Peering: refused the TLS handshake for {ServerName} from {Client}: {Reason} ({Detail}).")]
    public static partial void HandshakeRefused(ILogger logger, string serverName, string? client, HandshakeRefusal reason, string? detail);

    [LoggerMessage(4002, LogLevel.Debug, "Peering: accepted {SpiffeId} of peer {Peer} for {ServerName}.")]
    public static partial void HandshakeAccepted(ILogger logger, string spiffeId, string peer, string serverName);

    [LoggerMessage(4003, LogLevel.Information, "Peering: snapshot applied: {Services} exported HTTP services, {Peers} trust bundles, leaf {Leaf} valid until {NotAfter:O}.")]
    public static partial void SnapshotApplied(ILogger logger, int services, int peers, string leaf, DateTime notAfter);

    [LoggerMessage(4004, LogLevel.Warning, "Peering: the sidecar certificate of {Destination} was refused: not issued by the local CA for {SpiffeId}.")]
    public static partial void SidecarRefused(ILogger logger, string? destination, string spiffeId);

    [LoggerMessage(4005, LogLevel.Warning, "Peering: the snapshot could not be built from Consul ({Error}); the previous one stays in force.")]
    public static partial void FeedFailed(ILogger logger, string error);

    [LoggerMessage(4006, LogLevel.Warning, "Peering: {What}.")]
    public static partial void FeedWarning(ILogger logger, string what);

    [LoggerMessage(4007, LogLevel.Warning, "Peering: a request to the sidecar {Destination} failed: {Error} ({Detail}).")]
    public static partial void ForwardFailed(ILogger logger, string destination, Yarp.ReverseProxy.Forwarder.ForwarderError error, string? detail);

    [LoggerMessage(4008, LogLevel.Warning, "Peering: no sidecar to forward to for {Target}: answered 503.")]
    public static partial void NoSidecar(ILogger logger, string target);

    [LoggerMessage(4009, LogLevel.Debug, "Peering: the TLS handshake for {ServerName} from {Client} failed: {Detail}.")]
    public static partial void HandshakeFailed(ILogger logger, string serverName, string? client, string detail);
}
