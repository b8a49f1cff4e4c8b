using System.Net.Sockets;

namespace MeshGateway.Splicing;

/// <summary>Splices two connected sockets with one loop per direction (see <see cref="DuplexSplicer"/>).</summary>
internal sealed class SocketSplice : SpliceSession, IDisposable
{
    private readonly Socket _client;
    private readonly Socket _upstream;
    private readonly SocketOperation _upOperation;
    private readonly SocketOperation _downOperation;

    public SocketSplice(Socket client, Socket upstream, SpliceOptions options, TimeProvider timeProvider, SocketOperation? upOperation = null, SocketOperation? downOperation = null)
        : base(options, timeProvider)
    {
        _client = client;
        _upstream = upstream;
        _upOperation = upOperation ?? new SocketOperation();
        _downOperation = downOperation ?? new SocketOperation();
    }

    /// <summary>Releases both socket operations; call after <see cref="SpliceSession.RunAsync"/> completed.</summary>
    public void Dispose()
    {
        _upOperation.Dispose();
        _downOperation.Dispose();
    }

    protected override async Task PumpAsync(bool fromClient)
    {
        Socket from = fromClient ? _client : _upstream;
        Socket to = fromClient ? _upstream : _client;
        SocketOperation operation = fromClient ? _upOperation : _downOperation;
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                if (buffer is null)
                {
                    // Wait for data without holding a buffer: idle connections keep no memory (Kestrel, YARP).
                    if (await operation.ReceiveAsync(from, Memory<byte>.Empty).ConfigureAwait(false) < 0)
                    {
                        Fail(fromClient, operation.SocketError);
                        return;
                    }

                    buffer = Options.BufferPool.Rent(Options.BufferSize);
                }

                int received = await operation.ReceiveAsync(from, buffer).ConfigureAwait(false);
                if (received < 0)
                {
                    Fail(fromClient, operation.SocketError);
                    return;
                }

                if (received == 0)
                {
                    OnEndOfStream(fromClient);
                    ShutdownSend(to);
                    return;
                }

                Touch();
                int sent = 0;
                while (sent < received)
                {
                    int n = await operation.SendAsync(to, buffer.AsMemory(sent, received - sent)).ConfigureAwait(false);
                    if (n <= 0)
                    {
                        Fail(!fromClient, operation.SocketError);
                        return;
                    }

                    sent += n;
                }

                OnRelayed(fromClient, received);

                // A full buffer suggests more is queued: keep it. Otherwise give it back before waiting again.
                if (received < buffer.Length)
                {
                    Options.BufferPool.Return(buffer);
                    buffer = null;
                }
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
        Close(_client, reset);
        Close(_upstream, reset);
    }

    protected override void ShutdownBoth()
    {
        Shutdown(_client, SocketShutdown.Both);
        Shutdown(_upstream, SocketShutdown.Both);
    }

    /// <summary>Closes <paramref name="socket"/>; with <paramref name="reset"/> SO_LINGER 0 makes the kernel send RST. Never throws.</summary>
    internal static void Close(Socket socket, bool reset)
    {
        try
        {
            if (reset)
            {
                // SO_LINGER 0: the kernel answers with RST, so the peer sees the failure instead of a clean end.
                socket.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        socket.Dispose();
    }

    private static void ShutdownSend(Socket socket) => Shutdown(socket, SocketShutdown.Send);

    private static void Shutdown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The other side is gone or the splice is being torn down; the other loop reports it.
        }
    }

    private void Fail(bool clientSide, SocketError error)
    {
        if (!IsTornDown)
        {
            OnFailure(clientSide, error);
        }
    }
}
