namespace MeshGateway.Gateway;

/// <summary>Why the gateway closed a connection without splicing it. Nothing was sent upstream for any of them.</summary>
public enum RejectionReason
{
    /// <summary>The first byte is not a TLS handshake record.</summary>
    NotTls = 0,

    /// <summary>The ClientHello is malformed (see <see cref="ConnectionRejectedEvent.HelloError"/>).</summary>
    InvalidHello,

    /// <summary>The ClientHello is larger than <see cref="GatewayListenerOptions.MaxHelloSize"/>.</summary>
    HelloTooLarge,

    /// <summary>The ClientHello was not complete within <see cref="GatewayListenerOptions.HelloTimeout"/>.</summary>
    HelloTimeout,

    /// <summary>The client closed or reset the connection before its ClientHello was complete.</summary>
    ClientClosed,

    /// <summary>The ClientHello carries no server_name.</summary>
    NoServerName,

    /// <summary>No route matches the server name (a trailing dot never matches).</summary>
    NoRoute,

    /// <summary>The route's cluster has no endpoint.</summary>
    NoEndpoint,

    /// <summary>Every connect attempt failed or timed out.</summary>
    UpstreamUnreachable,

    /// <summary>The gateway already had <see cref="GatewayListenerOptions.MaxConnections"/> connections.</summary>
    ConnectionLimit,

    /// <summary>The gateway stopped before the connection was routed.</summary>
    Stopping,

    /// <summary>
    /// No endpoint of the route's cluster has an address to dial: its host names are not resolved yet, or their last
    /// resolution failed (see <see cref="MeshGateway.Routing.EndpointState.LastResolutionError"/>).
    /// </summary>
    EndpointUnresolved,

    /// <summary>
    /// The connection arrived on an address that requires a PROXY protocol v2 header
    /// (<see cref="GatewayListenerOptions.ProxyProtocolEndPoints"/>) and did not start with one (no header, or a v1 text header).
    /// </summary>
    ProxyHeaderMissing,

    /// <summary>The PROXY protocol v2 header is malformed (version, command, lengths) or longer than 1 KiB.</summary>
    ProxyHeaderInvalid,

    /// <summary>
    /// The server_name holds bytes the gateway never routes: bytes outside ASCII (such as a Unicode IDN sent as UTF-8
    /// instead of its <c>xn--</c> A-label), a NUL, another control character or a space. The reader accepts such names and
    /// reports them (<see cref="MeshGateway.Tls.ClientHelloInfo.ServerNameIssues"/>); rejecting them is the gateway's
    /// policy. <see cref="ConnectionRejectedEvent.ServerNameIssues"/> says which, and
    /// <see cref="ConnectionRejectedEvent.ServerName"/> holds the bytes as sent.
    /// </summary>
    InvalidServerName,

    /// <summary>
    /// The route's <see cref="MeshGateway.Routing.Route.Terminator"/> threw when handed the connection
    /// (<see cref="ConnectionTerminator.RunAsync"/>); the connection was reset.
    /// </summary>
    TerminatorFailed,
}
