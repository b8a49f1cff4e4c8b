using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>
/// An upstream a Connect-native caller dials: the destination service and, optionally, where it lives and the
/// upstream definition's own mesh gateway mode (the most specific of the six levels of
/// <see cref="MeshGatewayModeResolver"/>).
/// </summary>
public sealed record ConnectUpstream
{
    /// <summary>The destination service name, e.g. <c>api</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The destination datacenter; <see langword="null"/> or empty means the caller's own.</summary>
    public string? Datacenter { get; init; }

    /// <summary>The destination namespace (Enterprise); <see langword="null"/> means <c>default</c>.</summary>
    public string? Namespace { get; init; }

    /// <summary>The destination admin partition (Enterprise); <see langword="null"/> means the caller's.</summary>
    public string? Partition { get; init; }

    /// <summary>The cluster peer the service is imported from (Consul 1.13+; see the remarks of <see cref="ConsulConnectDialer"/>).</summary>
    public string? Peer { get; init; }

    /// <summary>
    /// The upstream definition's <c>MeshGateway.Mode</c> (<c>Proxy.Upstreams[].MeshGateway</c>). Unset defers to the
    /// caller's registration, <see cref="ConsulConnectDialerOptions.Upstreams"/> and the config entries.
    /// </summary>
    public MeshGatewayMode MeshGateway { get; init; }

    /// <summary>Converts to the model's upstream shape.</summary>
    /// <returns>The model upstream.</returns>
    public MeshUpstream ToModel() => new()
    {
        Name = Name,
        Datacenter = Datacenter,
        Namespace = Namespace,
        Partition = Partition,
        Peer = Peer,
        MeshGateway = MeshGateway,
    };

    /// <inheritdoc />
    public override string ToString() =>
        Name + (string.IsNullOrEmpty(Namespace) ? string.Empty : "." + Namespace)
        + (string.IsNullOrEmpty(Partition) ? string.Empty : " partition " + Partition)
        + (string.IsNullOrEmpty(Datacenter) ? string.Empty : " in " + Datacenter)
        + (string.IsNullOrEmpty(Peer) ? string.Empty : " from peer " + Peer);
}
