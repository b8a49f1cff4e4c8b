using System.Net.Sockets;

namespace MeshGateway.Splicing;

/// <summary>Splices two streams with one loop per direction (see <see cref="DuplexSplicer"/>).</summary>
internal sealed class StreamSplice : SpliceSession, IDisposable
{
    private readonly Stream _client;
    private readonly Stream _upstream;
    private readonly CancellationTokenSource _cancellation = new();

    private volatile bool _sentEndOfStreamToClient;
    private volatile bool _sentEndOfStreamToUpstream;

    public StreamSplice(Stream client, Stream upstream, SpliceOptions options, TimeProvider timeProvider)
        : base(options, timeProvider)
    {
        _client = client;
        _upstream = upstream;
    }

    /// <summary>Releases the cancellation source once both loops ended.</summary>
    public void Dispose() => _cancellation.Dispose();

    protected override async Task PumpAsync(bool fromClient)
    {
        await Task.Yield();
        Stream from = fromClient ? _client : _upstream;
        Stream to = fromClient ? _upstream : _client;
        CancellationToken token = _cancellation.Token;
        byte[]? buffer = null;
        bool readSide = true;
        try
        {
            while (true)
            {
                readSide = true;
                if (buffer is null)
                {
                    // Zero-byte read: streams that support it (NetworkStream, SslStream) wait here without a buffer;
                    // others return 0 at once, which says nothing about EOF, so a real read always follows (YARP's StreamCopier).
                    await from.ReadAsync(Memory<byte>.Empty, token).ConfigureAwait(false);
                    if (from is NetworkStream network && SocketSplice.WokeWithNothingToRead(network.Socket))
                    {
                        // A late epoll event ended the wait (SocketSplice.WokeWithNothingToRead): a read now would wait
                        // holding the buffer while the connection idles (SplicerBufferTests).
                        continue;
                    }

                    buffer = Options.BufferPool.Rent(Options.BufferSize);
                }

                int received = await from.ReadAsync(buffer, token).ConfigureAwait(false);
                if (received == 0)
                {
                    StreamEnd end = !(fromClient ? _sentEndOfStreamToClient : _sentEndOfStreamToUpstream) && from is NetworkStream network
                        ? SocketSplice.EndOf(network.Socket)
                        : StreamEnd.Fin;
                    if (end != StreamEnd.Fin || IsTornDown)
                    {
                        // A reset whose error the other loop's write took, or a teardown that closed the socket under
                        // this read: not a FIN, and a shutdown here would send FIN ahead of the teardown's RST (see
                        // SocketSplice.EndOf).
                        if (!IsTornDown)
                        {
                            OnFailure(fromClient, SocketError.ConnectionReset);
                        }

                        return;
                    }

                    OnEndOfStream(fromClient);
                    if (fromClient)
                    {
                        _sentEndOfStreamToUpstream = true;
                    }
                    else
                    {
                        _sentEndOfStreamToClient = true;
                    }

                    readSide = false;
                    await ShutdownSendAsync(to).ConfigureAwait(false);
                    return;
                }

                Touch();
                readSide = false;
                await to.WriteAsync(buffer.AsMemory(0, received), token).ConfigureAwait(false);
                await to.FlushAsync(token).ConfigureAwait(false);
                OnRelayed(fromClient, received);

                // Keep the buffer only when the source says more is queued (a full read from a NetworkStream whose socket
                // holds more bytes). Other streams cannot say: give it back, and the zero-byte read returns at once when
                // they have buffered data, so an idle connection never holds a buffer.
                if (received < buffer.Length || from is not NetworkStream source || !SocketSplice.HasQueuedBytes(source.Socket))
                {
                    Options.BufferPool.Return(buffer);
                    buffer = null;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or NotSupportedException)
        {
            if (!IsTornDown)
            {
                bool clientSide = readSide == fromClient;
                OnFailure(clientSide, ex switch
                {
                    SocketException se => se.SocketErrorCode,
                    IOException { InnerException: SocketException se } => se.SocketErrorCode,
                    _ => SocketError.SocketError,
                });
            }
        }
        finally
        {
            if (buffer is not null)
            {
                Options.BufferPool.Return(buffer);
            }
        }
    }

    protected override void CloseBoth(bool reset)
    {
        Cancel();
        Close(_client, reset);
        Close(_upstream, reset);
    }

    protected override void ShutdownBoth() => Cancel();

    private void Cancel()
    {
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The splice is over.
        }
    }

    private static void Close(Stream stream, bool reset)
    {
        if (reset && stream is NetworkStream network)
        {
            try
            {
                // Close the socket itself first: NetworkStream.Dispose shuts it down (FIN) before closing it.
                network.Socket.LingerState = new LingerOption(true, 0);
                network.Socket.Dispose();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }
        }

        try
        {
            stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            // Disposing flushes some streams; a failed flush at teardown changes nothing.
        }
    }

    private static async ValueTask ShutdownSendAsync(Stream stream)
    {
        try
        {
            if (stream is NetworkStream network)
            {
                network.Socket.Shutdown(SocketShutdown.Send);
            }
            else if (stream is System.Net.Security.SslStream ssl)
            {
                await ssl.ShutdownAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The other side is gone or the splice is being torn down; the other loop reports it.
        }
    }
}
