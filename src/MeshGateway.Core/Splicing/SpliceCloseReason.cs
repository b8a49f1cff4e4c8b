namespace MeshGateway.Splicing;

/// <summary>
/// Why a splice ended: the first event that started the teardown, recorded once. A clean FIN from one side only
/// half-closes the connection, so a failure, timeout or abort that comes after it (while the other direction drains)
/// replaces it: the reason is the event that really ended the connection.
/// </summary>
public enum SpliceCloseReason
{
    /// <summary>Not closed yet.</summary>
    None = 0,

    /// <summary>The client sent FIN first and the other direction then ended cleanly too (a clean end).</summary>
    ClientClosed,

    /// <summary>The upstream sent FIN first and the other direction then ended cleanly too (a clean end).</summary>
    UpstreamClosed,

    /// <summary>Receiving from or sending to the client failed (for example a reset); the upstream was reset too.</summary>
    ClientError,

    /// <summary>Receiving from or sending to the upstream failed (for example a reset); the client was reset too.</summary>
    UpstreamError,

    /// <summary>No byte moved in either direction for <see cref="SpliceOptions.IdleTimeout"/>.</summary>
    IdleTimeout,

    /// <summary>The connection lasted <see cref="SpliceOptions.MaxDuration"/>.</summary>
    MaxDurationReached,

    /// <summary>The caller cancelled the splice (for example a gateway stop past its drain deadline); both sides were reset.</summary>
    Aborted,
}
