using System.Net;
using MeshGateway.Consul;

namespace MeshGateway.Hosting;

/// <summary>
/// The plug-in point of an L7 terminator for cluster peering's HTTP-like exported services (<c>http</c>, <c>http2</c>,
/// <c>grpc</c>), which Consul's gateway terminates instead of passing through (docs/consul-behaviour.md §11). Register one
/// implementation in the container (for example from a separate package built on Kestrel, so hosts without peering do not
/// take ASP.NET Core); <c>UseConsulCatalog</c> then routes each such export's peer SNI, still encrypted, to
/// <see cref="EndPoint"/> and tells the terminator what to serve after every conversion. It replaces
/// <see cref="MeshGatewayConsulOptions.PeeringHttpTerminator"/>. An in-process terminator (no local port) registers
/// <see cref="IMeshGatewayPeeringConnectionTerminator"/> instead, which wins over this one.
/// </summary>
public interface IMeshGatewayPeeringTerminator
{
    /// <summary>
    /// Where the gateway sends the peers' connections for HTTP-like exports (a local listener that terminates their mTLS with
    /// the gateway's leaf certificate); read when the Consul route source starts, so bind before the gateway's host starts it.
    /// </summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>
    /// Called after each conversion that built a table, on the route source's loop (return quickly, do not throw): the exports
    /// to terminate (service, namespace, partition, consumer peer, the SNI the peer sends, protocol, local cluster) and the
    /// peering part of the catalog view (<see cref="ConsulPeeringView.Peerings"/> carry each peer's CA certificates,
    /// <c>PeerCAPems</c>, for client-certificate validation), or null when peering is not read.
    /// </summary>
    /// <param name="exports">The HTTP-like exports, one per service and consumer peer.</param>
    /// <param name="peering">The view's peering part.</param>
    public void ExportsChanged(IReadOnlyList<ConsulTerminatedExport> exports, ConsulPeeringView? peering);
}
