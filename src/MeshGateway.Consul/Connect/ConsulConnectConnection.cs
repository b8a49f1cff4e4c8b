using System.Net.Security;

namespace MeshGateway.Consul;

/// <summary>A mutually authenticated Connect TLS connection returned by <see cref="ConsulConnectDialer.DialAsync"/>.</summary>
/// <remarks>Dispose it to close the connection (the TLS stream owns the socket).</remarks>
public sealed class ConsulConnectConnection : IAsyncDisposable, IDisposable
{
    internal ConsulConnectConnection(SslStream stream, ConnectDialPath path)
    {
        Stream = stream;
        Path = path;
    }

    /// <summary>The authenticated TLS stream; read and write application bytes on it.</summary>
    public SslStream Stream { get; }

    /// <summary>How the upstream was reached.</summary>
    public ConnectDialPath Path { get; }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Stream.DisposeAsync();

    /// <inheritdoc />
    public void Dispose() => Stream.Dispose();
}
