using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using MeshGateway.Gateway;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Http.Features;

namespace MeshGateway.Peering;

/// <summary>The address Kestrel "listens" on: no socket, connections come from the gateway's listener.</summary>
internal sealed class InProcessEndPoint : EndPoint
{
    public override string ToString() => "meshgateway-peering:in-process";
}

/// <summary>
/// A Kestrel transport fed by the gateway's listener instead of a listening socket: <see cref="PeeringTerminator"/>
/// pushes each handed-over connection here and Kestrel accepts it like any other (TLS, HTTP/1.1, HTTP/2).
/// </summary>
/// <remarks>
/// Written here because Kestrel's transports all own their listening socket; the connection abstraction
/// (<see cref="IConnectionListenerFactory"/>) is the documented seam for a custom one. The channel is unbounded: its
/// producer is the gateway listener, already bounded by <see cref="GatewayListenerOptions.MaxConnections"/>.
/// </remarks>
internal sealed class InProcessTransport : IConnectionListenerFactory, IConnectionListenerFactorySelector, IConnectionListener
{
    private readonly Channel<ConnectionContext> _accepted = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true });

    public EndPoint EndPoint { get; } = new InProcessEndPoint();

    public bool CanBind(EndPoint endpoint) => endpoint is InProcessEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not InProcessEndPoint)
        {
            throw new NotSupportedException($"The in-process peering transport binds only its own end point, not {endpoint}.");
        }

        return ValueTask.FromResult<IConnectionListener>(this);
    }

    /// <summary>Queues a connection for Kestrel; false once Kestrel stopped accepting.</summary>
    public bool TryQueue(ConnectionContext connection) => _accepted.Writer.TryWrite(connection);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _accepted.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out ConnectionContext? left))
        {
            _ = left.DisposeAsync().AsTask();
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>What the terminator knows about a connection, readable from the connection's and the request's features.</summary>
internal sealed class PeeringConnectionFeature
{
    public PeeringConnectionFeature(string serverName, PeeringState state, ServiceState? service)
    {
        ServerName = serverName;
        State = state;
        Service = service;
    }

    /// <summary>The SNI the client sent (a form-8 name).</summary>
    public string ServerName { get; }

    /// <summary>The snapshot current when the connection was handed over (its TLS settings are this snapshot's).</summary>
    public PeeringState State { get; }

    /// <summary>The exported service the server name belongs to, or null when the snapshot has none (refused at the handshake).</summary>
    public ServiceState? Service { get; }

    /// <summary>The validated client identity, set by the handshake's certificate validation.</summary>
    public PeerIdentity? Identity { get; set; }

    /// <summary>
    /// The connection's service in <paramref name="current"/>, the snapshot in force: the one found at hand-over while
    /// that snapshot is still current (no lookup per request), else looked up again (null once it is no longer exported).
    /// </summary>
    public ServiceState? ServiceIn(PeeringState current) =>
        ReferenceEquals(current, State) ? Service : current.TryGetService(ServerName, out ServiceState? service) ? service : null;
}

/// <summary>
/// A handed-over connection as Kestrel sees it, after the terminator's TLS handshake: the decrypted stream, with the TLS
/// features Kestrel reads (the client certificate, the ALPN result that selects HTTP/2 or HTTP/1.1).
/// </summary>
/// <remarks>
/// The TLS stream reads a <see cref="NetworkStream"/> behind a stream that first returns the replayed prefix (the
/// ClientHello the gateway read); Kestrel's own socket connection cannot be given bytes already read from its socket.
/// </remarks>
internal sealed class TerminatedConnectionContext : ConnectionContext, IConnectionIdFeature, IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature, ITlsConnectionFeature, ITlsApplicationProtocolFeature
{
    private static long s_ids;
    private readonly Socket _socket;
    private readonly SslStream _stream;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closing = new();
    private int _disposed;

    public TerminatedConnectionContext(TerminatedConnection connection, SslStream tls, PeeringConnectionFeature feature)
    {
        _socket = connection.Socket;
        _stream = tls;
        ClientCertificate = tls.RemoteCertificate as X509Certificate2;
        ApplicationProtocol = tls.NegotiatedApplicationProtocol.Protocol;
        Transport = new DuplexPipe(PipeReader.Create(_stream), PipeWriter.Create(_stream));
        ConnectionId = "mgp-" + Interlocked.Increment(ref s_ids).ToString(System.Globalization.CultureInfo.InvariantCulture);
        RemoteEndPoint = connection.ClientEndPoint;
        LocalEndPoint = connection.ListenerEndPoint;
        ConnectionClosed = _closing.Token;
        Features.Set<IConnectionIdFeature>(this);
        Features.Set<IConnectionItemsFeature>(this);
        Features.Set<IConnectionLifetimeFeature>(this);
        Features.Set<IConnectionEndPointFeature>(this);
        Features.Set<ITlsConnectionFeature>(this);
        Features.Set<ITlsApplicationProtocolFeature>(this);
        Features.Set(feature);
    }

    public X509Certificate2? ClientCertificate { get; set; }

    public ReadOnlyMemory<byte> ApplicationProtocol { get; }

    public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(ClientCertificate);

    /// <summary>Completes when Kestrel has disposed the connection (its socket is closed).</summary>
    public Task Closed => _closed.Task;

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        // Reset: the peer learns at once, and Kestrel's pending reads and writes end.
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        _socket.Dispose();
        try
        {
            _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed concurrently.
        }
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            // Output first: completing it flushes what is buffered while the stream is still open.
            await Transport.Output.CompleteAsync().ConfigureAwait(false);
            await Transport.Input.CompleteAsync().ConfigureAwait(false);
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // The socket is gone either way.
        }
        finally
        {
            _socket.Dispose();
            _closing.Dispose();
            await base.DisposeAsync().ConfigureAwait(false);
            _closed.TrySetResult();
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>A read/write stream that returns <c>prefix</c> before reading <c>inner</c>; writes go to <c>inner</c>.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!_prefix.IsEmpty)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        return inner.Read(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_prefix.IsEmpty)
        {
            int n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer.Span);
            _prefix = _prefix[n..];
            return ValueTask.FromResult(n);
        }

        return inner.ReadAsync(buffer, cancellationToken);
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(buffer, cancellationToken);

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
