using MeshGateway.Model;

namespace MeshGateway.Consul;

/// <summary>Why a dial failed.</summary>
public enum ConnectDialFailure
{
    /// <summary>The mode needs mesh gateways (of the caller's DC for <c>local</c>, of the target's for <c>remote</c>) and none are registered.</summary>
    NoGateways = 1,

    /// <summary>The target has no healthy Connect-capable instance (sidecar proxy or Connect-native service).</summary>
    NoHealthyInstances,

    /// <summary>The server certificate chains to the Consul roots but carries another SPIFFE identity.</summary>
    IdentityMismatch,

    /// <summary>The TLS handshake failed (untrusted chain, refused client certificate, protocol error, timeout).</summary>
    TlsFailure,

    /// <summary>No endpoint accepted the TCP connection.</summary>
    Unreachable,

    /// <summary>The upstream cannot be dialled by this dialer (for example a prepared query, or imported instances without <c>Connect.PeerMeta.SpiffeID</c>).</summary>
    Unsupported,

    /// <summary>The dialer's catalog watcher has published no view in time (the message says what it is missing), or was stopped.</summary>
    CatalogUnavailable,
}

/// <summary>A dial failed; <see cref="Failure"/> names the cause and <see cref="Path"/> how far the dial got.</summary>
public class ConnectDialException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="failure">The cause.</param>
    /// <param name="message">The message, naming the cause.</param>
    /// <param name="path">How far the dial got.</param>
    /// <param name="innerException">The underlying error.</param>
    public ConnectDialException(ConnectDialFailure failure, string message, ConnectDialPath? path = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Failure = failure;
        Path = path;
    }

    /// <summary>The cause.</summary>
    public ConnectDialFailure Failure { get; }

    /// <summary>How far the dial got (mode, dial kind, SNI, endpoint); <see langword="null"/> when it failed before planning.</summary>
    public ConnectDialPath? Path { get; }
}

/// <summary>The mode requires mesh gateways and none are registered; Consul does not fall back to dialling directly.</summary>
public sealed class ConnectNoGatewaysException : ConnectDialException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="path">The planned path.</param>
    public ConnectNoGatewaysException(string message, ConnectDialPath path)
        : base(ConnectDialFailure.NoGateways, message, path)
    {
    }

    /// <summary>The mode in effect (<c>local</c> or <c>remote</c>).</summary>
    public MeshGatewayModeKind Mode => Path!.Resolution.EffectiveMode;
}

/// <summary>The target has no healthy Connect-capable instance.</summary>
public sealed class ConnectNoHealthyInstancesException : ConnectDialException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="path">The planned path.</param>
    public ConnectNoHealthyInstancesException(string message, ConnectDialPath path)
        : base(ConnectDialFailure.NoHealthyInstances, message, path)
    {
    }
}

/// <summary>The server presented a certificate from the Consul CA for another service.</summary>
public sealed class ConnectIdentityMismatchException : ConnectDialException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="expected">The SPIFFE ID expected.</param>
    /// <param name="presented">The URI SANs presented.</param>
    /// <param name="path">The path.</param>
    /// <param name="innerException">The handshake error.</param>
    public ConnectIdentityMismatchException(string expected, IReadOnlyList<string> presented, ConnectDialPath path, Exception? innerException = null)
        : base(ConnectDialFailure.IdentityMismatch,
            $"The server at {path?.Endpoint?.Address}:{path?.Endpoint?.Port} presented identity [{string.Join(", ", presented ?? [])}] but {expected} was expected.",
            path,
            innerException)
    {
        Expected = expected;
        Presented = presented ?? [];
    }

    /// <summary>The SPIFFE ID expected.</summary>
    public string Expected { get; }

    /// <summary>The URI SANs the server certificate carried.</summary>
    public IReadOnlyList<string> Presented { get; }
}

/// <summary>The TLS handshake failed for a reason other than the identity.</summary>
public sealed class ConnectTlsException : ConnectDialException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="path">The path.</param>
    /// <param name="innerException">The handshake error.</param>
    public ConnectTlsException(string message, ConnectDialPath path, Exception? innerException)
        : base(ConnectDialFailure.TlsFailure, message, path, innerException)
    {
    }

    /// <summary>
    /// <see langword="true"/> when the server proved the expected identity and then ended the handshake, i.e. it
    /// refused the client certificate (with Consul's proxies: an intention denies the caller).
    /// </summary>
    public bool ServerRejectedClient { get; init; }
}
