using System.Net.Security;
using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>How a <see cref="ConsulConnectDialer"/> reached (or tried to reach) an upstream.</summary>
public sealed record ConnectDialPath
{
    /// <summary>The upstream as dialled.</summary>
    public required ConnectUpstream Upstream { get; init; }

    /// <summary>The caller's datacenter.</summary>
    public required string CallerDatacenter { get; init; }

    /// <summary>The target datacenter (the upstream's, or the caller's when it names none).</summary>
    public required string TargetDatacenter { get; init; }

    /// <summary>The mode resolution: the mode, the level that decided it and why.</summary>
    public required MeshGatewayModeResolution Resolution { get; init; }

    /// <summary>Where the dial goes: instances, local gateways or the target's gateways.</summary>
    public required UpstreamDialKind DialKind { get; init; }

    /// <summary>The planner's explanation of the target choice.</summary>
    public required string Explanation { get; init; }

    /// <summary>The SNI name sent in the ClientHello.</summary>
    public string? Sni { get; init; }

    /// <summary>The SPIFFE ID the server certificate must carry.</summary>
    public required string ExpectedIdentity { get; init; }

    /// <summary>The endpoint connected to; <see langword="null"/> when the dial failed before connecting.</summary>
    public UpstreamDialEndpoint? Endpoint { get; init; }

    /// <summary>The TLS version negotiated, once the handshake succeeded.</summary>
    public System.Security.Authentication.SslProtocols Protocol { get; init; }

    /// <summary>The cipher suite negotiated, once the handshake succeeded.</summary>
    public TlsCipherSuite CipherSuite { get; init; }

    /// <summary>Time from the call to the end of the handshake (resolution, catalog, TCP connect and TLS).</summary>
    public TimeSpan SetupTime { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Upstream} via {DialKind} (mode \"{Resolution.Mode.RawValue}\" from {Resolution.DecidedBy}) at {Endpoint?.Address}:{Endpoint?.Port} SNI {Sni}";
}
