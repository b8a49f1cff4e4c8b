using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Hosting;

/// <summary>
/// The admin endpoint (<see cref="MeshGatewayAdminOptions"/>): a minimal HTTP/1.1 responder on its own socket.
/// </summary>
/// <remarks>
/// <para>Why a hand-written responder instead of a served server: ASP.NET Core (Kestrel) would pull the web framework
/// into every host of this library, which most do not want. <c>System.Net.HttpListener</c> cannot bind port 0 (tests,
/// side-by-side gateways) and, on Linux, offers no limit on a request head's size or the time it may take, which an
/// admin port must have. The served Prometheus exporter (<c>OpenTelemetry.Exporter.Prometheus.HttpListener</c>,
/// a beta) runs its own HttpListener that serves only its scrape path, so <c>/ready</c> and <c>/routes</c> would need
/// a second server and port, and it brings the OpenTelemetry SDK into every host. The admin paths are a handful of
/// GETs answered with <c>Connection: close</c>, so this stays small: one request per connection, the head read up
/// to <see cref="MeshGatewayAdminOptions.MaxRequestHeadSize"/> within <see cref="MeshGatewayAdminOptions.RequestTimeout"/>,
/// at most <see cref="MeshGatewayAdminOptions.MaxConnections"/> at once, every failure answered (400, 404, 405, 431) or
/// the connection closed, never thrown.</para>
/// <para>It never touches the data path: its own socket and tasks; what it reads (route table, endpoint counters,
/// aggregated metrics) is read without locks the data path takes.</para>
/// </remarks>
internal sealed class AdminEndpoint : IAsyncDisposable
{
    private readonly MeshGatewayRuntime _runtime;
    private readonly MeshGatewayAdminOptions _options;
    private readonly AdminMetrics _metrics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private Socket? _socket;
    private Task _acceptLoop = Task.CompletedTask;
    private int _open;
    private int _disposed;

    public AdminEndpoint(MeshGatewayRuntime runtime, MeshGatewayAdminOptions options, AdminMetrics metrics, TimeProvider timeProvider, ILogger logger)
    {
        _runtime = runtime;
        _options = options;
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>The bound address, once started.</summary>
    public IPEndPoint? EndPoint { get; private set; }

    /// <summary>Parses <see cref="MeshGatewayAdminOptions.Bind"/>: <see langword="null"/> when unset or invalid (then an error is added).</summary>
    public static IPEndPoint? TryParseBind(string? bind, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(bind))
        {
            return null;
        }

        bool hasPort = bind.StartsWith('[') ? bind.Contains("]:", StringComparison.Ordinal) : bind.Count(c => c == ':') == 1;
        if (hasPort && IPEndPoint.TryParse(bind, out IPEndPoint? endPoint))
        {
            return endPoint;
        }

        errors.Add($"Admin:Bind is '{bind}' but must be 'ip:port' (for example 127.0.0.1:19000; IPv6 as '[::1]:19000').");
        return null;
    }

    /// <summary>Binds and starts accepting.</summary>
    /// <exception cref="InvalidOperationException">The address cannot be bound; the message names the option.</exception>
    public void Start(IPEndPoint bind)
    {
        var socket = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(bind);
            socket.Listen(64);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new InvalidOperationException($"The admin endpoint cannot listen on MeshGateway:Admin:Bind '{bind}': {ex.SocketErrorCode} ({ex.Message}).", ex);
        }

        _socket = socket;
        EndPoint = (IPEndPoint)socket.LocalEndPoint!;
        if (!IPAddress.IsLoopback(EndPoint.Address))
        {
            MeshGatewayLog.AdminNotLoopback(_logger, EndPoint);
        }

        MeshGatewayLog.AdminListening(_logger, EndPoint);
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _socket?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        Socket listen = _socket!;
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listen.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // Out of file descriptors and the like: the data path matters more; pause briefly and go on. A back-off,
                // not a wait for a state change: the kernel signals no "descriptors available again".
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), _timeProvider, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (Interlocked.Increment(ref _open) > _options.MaxConnections)
            {
                Interlocked.Decrement(ref _open);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(_options.MaxRequestHeadSize);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_options.RequestTimeout);
            client.NoDelay = true;
            AdminResponse response = await ReadAndAnswerAsync(client, buffer, timeout.Token).ConfigureAwait(false);
            await WriteAsync(client, response, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
            // A slow, vanished or timed-out client: just close.
        }
        catch (Exception ex)
        {
            // A bug in rendering must not take the process down; the client gets a closed connection.
            MeshGatewayLog.AdminFailed(_logger, ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            client.Dispose();
            Interlocked.Decrement(ref _open);
        }
    }

    private async Task<AdminResponse> ReadAndAnswerAsync(Socket client, byte[] buffer, CancellationToken cancellationToken)
    {
        int limit = _options.MaxRequestHeadSize;
        int length = 0;
        int headEnd;
        while ((headEnd = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (length >= limit)
            {
                return AdminResponse.Text(431, "Request Header Fields Too Large", $"The request head is larger than {limit} bytes.\n");
            }

            int read = await client.ReceiveAsync(buffer.AsMemory(length, limit - length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return AdminResponse.Text(400, "Bad Request", "The request head is incomplete.\n");
            }

            length += read;
        }

        return Answer(buffer.AsSpan(0, headEnd));
    }

    /// <summary>Routes one request head (request line and headers, without the blank line).</summary>
    internal AdminResponse Answer(ReadOnlySpan<byte> head)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> line = lineEnd < 0 ? head : head[..lineEnd];
        int firstSpace = line.IndexOf((byte)' ');
        int lastSpace = line.LastIndexOf((byte)' ');
        if (firstSpace <= 0 || lastSpace <= firstSpace + 1)
        {
            return AdminResponse.Text(400, "Bad Request", "The request line must be 'METHOD /path HTTP/1.1'.\n");
        }

        ReadOnlySpan<byte> method = line[..firstSpace];
        ReadOnlySpan<byte> target = line[(firstSpace + 1)..lastSpace];
        ReadOnlySpan<byte> version = line[(lastSpace + 1)..];
        if (!version.SequenceEqual("HTTP/1.1"u8) && !version.SequenceEqual("HTTP/1.0"u8))
        {
            return AdminResponse.Text(400, "Bad Request", "Only HTTP/1.0 and HTTP/1.1 are served.\n");
        }

        if (target.IsEmpty || target[0] != (byte)'/' || target.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7e) >= 0)
        {
            return AdminResponse.Text(400, "Bad Request", "The request target must be a path starting with '/'.\n");
        }

        bool head_ = method.SequenceEqual("HEAD"u8);
        if (!head_ && !method.SequenceEqual("GET"u8))
        {
            return AdminResponse.Text(405, "Method Not Allowed", "Only GET and HEAD are served.\n") with { Allow = true };
        }

        int query = target.IndexOf((byte)'?');
        string path = Encoding.ASCII.GetString(query < 0 ? target : target[..query]);
        AdminResponse response = path switch
        {
            "/ready" => Ready(),
            "/stats/prometheus" or "/metrics" => new AdminResponse(200, "OK", AdminMetrics.ContentType, _metrics.Render()),
            "/routes" => new AdminResponse(200, "OK", "application/json; charset=utf-8", AdminRouteJson.Render(_runtime, _timeProvider)),
            "/" => AdminResponse.Text(200, "OK", "MeshGateway admin endpoint: /ready, /stats/prometheus (also /metrics), /routes\n"),
            _ => AdminResponse.Text(404, "Not Found", $"No admin path '{path}'; paths: /ready, /stats/prometheus, /metrics, /routes.\n"),
        };
        return head_ ? response with { OmitBody = true } : response;
    }

    private AdminResponse Ready()
    {
        string? why = _runtime.NotReadyReason;
        return why is null
            ? AdminResponse.Text(200, "OK", "LIVE\n")
            : AdminResponse.Text(503, "Service Unavailable", "not ready: " + why + "\n");
    }

    private static async Task WriteAsync(Socket client, AdminResponse response, CancellationToken cancellationToken)
    {
        var head = new StringBuilder(160);
        head.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {response.Status} {response.Reason}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Content-Type: {response.ContentType}\r\n");
        head.Append(CultureInfo.InvariantCulture, $"Content-Length: {response.Body.Length}\r\n");
        if (response.Allow)
        {
            head.Append("Allow: GET, HEAD\r\n");
        }

        head.Append("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        await client.SendAsync(Encoding.ASCII.GetBytes(head.ToString()), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (!response.OmitBody && response.Body.Length > 0)
        {
            int sent = 0;
            while (sent < response.Body.Length)
            {
                sent += await client.SendAsync(response.Body.AsMemory(sent), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}

/// <summary>One admin answer.</summary>
internal sealed record AdminResponse(int Status, string Reason, string ContentType, byte[] Body)
{
    public bool OmitBody { get; init; }

    public bool Allow { get; init; }

    public static AdminResponse Text(int status, string reason, string text) => new(status, reason, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(text));
}
