using System.Buffers;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Tls;

namespace EmbedSniReader;

/// <summary>
/// A plain socket server of the kind a proxy already has, with the ClientHello reader embedded: accept, read until
/// the reader stops asking for more (bounded in time and size), report, close. A real proxy would now pick a backend
/// by the name and forward exactly the bytes it buffered.
/// </summary>
internal sealed class SniServer : IDisposable
{
    /// <summary>How long a client may take to send its whole hello.</summary>
    private static readonly TimeSpan s_helloTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _listener;
    private readonly Action<int, string, HelloSummary> _onHello;
    private int _connections;

    public SniServer(IPEndPoint endPoint, Action<int, string, HelloSummary> onHello)
    {
        _onHello = onHello;
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(endPoint);
        _listener.Listen(128);
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>Accepts connections until <paramref name="cancellationToken"/> fires; each is handled on its own task.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var running = new List<Task>();
        try
        {
            while (true)
            {
                Socket client = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                int connection = Interlocked.Increment(ref _connections);
                running.RemoveAll(t => t.IsCompleted);
                running.Add(HandleAsync(client, connection, cancellationToken));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(running).ConfigureAwait(false);
    }

    private async Task HandleAsync(Socket client, int connection, CancellationToken stopping)
    {
        string remote = client.RemoteEndPoint?.ToString() ?? "?";
        var options = default(ClientHelloReaderOptions);   // 16 KiB max hello, 4 empty records
        byte[] buffer = ArrayPool<byte>.Shared.Rent(options.MaxHelloSize);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(s_helloTimeout);
        try
        {
            int received = 0;
            int reads = 0;
            while (true)
            {
                int n = await client.ReceiveAsync(buffer.AsMemory(received, options.MaxHelloSize - received), SocketFlags.None, timeout.Token)
                    .ConfigureAwait(false);
                reads++;
                if (n == 0)
                {
                    _onHello(connection, remote + " (closed before a complete hello)", HelloSummary.Create(ClientHelloStatus.NeedMoreData, default, [], reads));
                    return;
                }

                received += n;
                ClientHelloStatus status = ClientHelloReader.TryRead(buffer.AsSpan(0, received), options, out ClientHelloInfo hello);
                if (status != ClientHelloStatus.NeedMoreData)
                {
                    // Done: a proxy would route on the name and forward buffer[..received] (the hello is the first
                    // hello.BytesConsumed bytes) before splicing. NotTls / Invalid / TooLarge: close.
                    _onHello(connection, remote, HelloSummary.Create(status, hello, buffer.AsSpan(0, received), reads));
                    return;
                }

                // NeedMoreData with a full buffer cannot happen: the reader says TooLarge first.
            }
        }
        catch (OperationCanceledException)
        {
            _onHello(connection, remote + " (timed out)", HelloSummary.Create(ClientHelloStatus.NeedMoreData, default, [], 0));
        }
        catch (SocketException e)
        {
            _onHello(connection, $"{remote} ({e.SocketErrorCode})", HelloSummary.Create(ClientHelloStatus.NeedMoreData, default, [], 0));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            client.Dispose();
        }
    }

    public void Dispose() => _listener.Dispose();
}
