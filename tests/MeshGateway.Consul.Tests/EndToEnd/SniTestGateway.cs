using System.Net;
using System.Net.Sockets;
using System.Text;
using MeshGateway.Tls;

namespace MeshGateway.Consul.Tests.EndToEnd;

/// <summary>A route of the gateway under test: an exact SNI name or <c>*.suffix</c>, to upstream endpoints.</summary>
internal sealed record GatewayRoute(string Pattern, IReadOnlyList<IPEndPoint> Targets);

/// <summary>
/// Interim gateway for the end-to-end test until <c>GatewayListener</c> (branch <c>dataplane</c>) is on main: it reads
/// the ClientHello with Core's <see cref="ClientHelloReader"/>, routes on the SNI name and splices the still-encrypted
/// bytes, counting them. It holds no key material and never decrypts.
/// </summary>
internal sealed class SniTestGateway : IAsyncDisposable
{
    private const int MaxHello = 16 * 1024;
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _loops = [];
    private readonly CancellationTokenSource _stop = new();
    private volatile IReadOnlyList<GatewayRoute> _routes = [];
    private long _bytesFromClient;
    private long _bytesFromUpstream;
    private long _routed;
    private long _rejected;
    private long _active;

    public SniTestGateway(string name, params IPEndPoint[] bindings)
    {
        Name = name;
        foreach (IPEndPoint binding in bindings)
        {
            var listener = new Socket(binding.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(binding);
            listener.Listen(128);
            _listeners.Add(listener);
        }

        foreach (Socket listener in _listeners)
        {
            _loops.Add(AcceptAsync(listener));
        }
    }

    public string Name { get; }

    public IReadOnlyList<IPEndPoint> EndPoints => [.. _listeners.Select(l => (IPEndPoint)l.LocalEndPoint!)];

    public long BytesFromClient => Interlocked.Read(ref _bytesFromClient);

    public long BytesFromUpstream => Interlocked.Read(ref _bytesFromUpstream);

    public long Routed => Interlocked.Read(ref _routed);

    public long Rejected => Interlocked.Read(ref _rejected);

    public string? LastRejection { get; private set; }

    public long Active => Interlocked.Read(ref _active);

    public IReadOnlyList<GatewayRoute> Routes
    {
        get => _routes;
        set => _routes = value;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (Socket listener in _listeners)
        {
            listener.Dispose();
        }

        foreach (Task loop in _loops)
        {
            try
            {
                await loop;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client = await listener.AcceptAsync(_stop.Token);
            _ = HandleAsync(client);
        }
    }

    private async Task HandleAsync(Socket client)
    {
        Interlocked.Increment(ref _active);
        using (client)
        {
            byte[] hello = new byte[MaxHello];
            int length = 0;
            string? serverName = null;
            try
            {
                using var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                helloTimeout.CancelAfter(TimeSpan.FromSeconds(10));
                while (serverName is null)
                {
                    int read = await client.ReceiveAsync(hello.AsMemory(length), SocketFlags.None, helloTimeout.Token);
                    if (read == 0)
                    {
                        Interlocked.Increment(ref _rejected);
                        return;
                    }

                    length += read;
                    ClientHelloStatus status = ClientHelloReader.TryRead(hello.AsSpan(0, length), out ClientHelloInfo info);
                    if (status == ClientHelloStatus.Done && info.HasServerName)
                    {
                        byte[] name = new byte[ClientHelloInfo.MaxHostNameLength];
                        serverName = Encoding.ASCII.GetString(name, 0, info.CopyServerNameLowerCase(name));
                    }
                    else if (status != ClientHelloStatus.NeedMoreData || length == MaxHello)
                    {
                        LastRejection = $"{status} ({info.Error}) after {length} B";
                        Interlocked.Increment(ref _rejected);
                        return;
                    }
                }

                GatewayRoute? route = Match(serverName);
                if (route is null || route.Targets.Count == 0)
                {
                    LastRejection = "no route for " + serverName;
                    Interlocked.Increment(ref _rejected);
                    return;
                }

                using var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await upstream.ConnectAsync(route.Targets[Random.Shared.Next(route.Targets.Count)], _stop.Token);
                Interlocked.Increment(ref _routed);
                await upstream.SendAsync(hello.AsMemory(0, length), SocketFlags.None, _stop.Token);
                Interlocked.Add(ref _bytesFromClient, length);
                await Task.WhenAll(
                    CopyAsync(client, upstream, fromClient: true),
                    CopyAsync(upstream, client, fromClient: false));
            }
            catch (Exception ex)
            {
                LastRejection = ex.GetType().Name + ": " + ex.Message;
            }
            finally
            {
                Interlocked.Decrement(ref _active);
            }
        }
    }

    private GatewayRoute? Match(string serverName)
    {
        IReadOnlyList<GatewayRoute> routes = _routes;
        foreach (GatewayRoute route in routes)
        {
            if (string.Equals(route.Pattern, serverName, StringComparison.Ordinal))
            {
                return route;
            }
        }

        foreach (GatewayRoute route in routes)
        {
            if (route.Pattern.StartsWith("*.", StringComparison.Ordinal) && serverName.EndsWith(route.Pattern.AsSpan(1), StringComparison.Ordinal))
            {
                return route;
            }
        }

        return null;
    }

    private async Task CopyAsync(Socket from, Socket to, bool fromClient)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
                Interlocked.Add(ref fromClient ? ref _bytesFromClient : ref _bytesFromUpstream, read);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // One side reset: close the other so neither hangs.
            try
            {
                to.Shutdown(SocketShutdown.Both);
            }
            catch (Exception inner) when (inner is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
