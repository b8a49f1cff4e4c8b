using MeshGateway.Consul;
using MeshGateway.Gateway;

namespace MeshGateway.Hosting;

/// <summary>
/// The in-process variant of <see cref="IMeshGatewayPeeringTerminator"/>: an L7 terminator for cluster peering's HTTP-like
/// exports that the gateway hands accepted connections to directly (<see cref="ConnectionTerminator"/>, no local port and
/// no second hop). Register one in the container (MeshGateway.Peering's <c>AddMeshGatewayPeering</c> does);
/// <c>UseConsulCatalog</c> then gives each such export's exact form-8 route <see cref="Terminator"/> and calls
/// <see cref="ExportsChanged"/> after every conversion. It wins over <see cref="IMeshGatewayPeeringTerminator"/> and
/// <see cref="MeshGatewayConsulOptions.PeeringHttpTerminator"/>.
/// </summary>
public interface IMeshGatewayPeeringConnectionTerminator
{
    /// <summary>The terminator the routes name; read when the Consul route source starts. It must refuse (close) connections it cannot serve yet.</summary>
    public ConnectionTerminator Terminator { get; }

    /// <summary>
    /// Called after each conversion that built a table, on the route source's loop: return quickly (hand the work to a
    /// background task) and do not throw.
    /// </summary>
    /// <param name="update">The exports, the converted view and the Consul client to read certificates and chains with.</param>
    public void ExportsChanged(MeshGatewayPeeringUpdate update);
}

/// <summary>What <see cref="IMeshGatewayPeeringConnectionTerminator.ExportsChanged"/> receives.</summary>
public sealed record MeshGatewayPeeringUpdate
{
    /// <summary>The HTTP-like exports, one per service and consumer peer (<see cref="ConsulRouteConversion.TerminatedExports"/>).</summary>
    public required IReadOnlyList<ConsulTerminatedExport> Exports { get; init; }

    /// <summary>The converted view: trust domain, datacenter, the services' Connect instances and the peering part (peers' CA certificates).</summary>
    public required ConsulCatalogView View { get; init; }

    /// <summary>The gateway's Consul client (shared: do not dispose): leaf certificate, CA roots, discovery chains.</summary>
    public required ConsulClient Client { get; init; }

    /// <summary>The gateway's service name (<see cref="MeshGatewayConsulOptions.ServiceName"/>): its leaf certificate is the terminator's.</summary>
    public required string GatewayServiceName { get; init; }
}
