using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace MeshGateway.Testing;

/// <summary>A loopback TCP server running <paramref name="handler"/> per connection; counts accepts. Stopped on dispose.</summary>
internal sealed class RawBackend : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Func<Socket, Task> _handler;
    private readonly List<Task> _connections = [];
    private readonly Task _accept;
    private int _accepted;

    public RawBackend(Func<Socket, Task> handler, IPAddress? address = null)
    {
        _handler = handler;
        address ??= IPAddress.Loopback;
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address, 0));
        _listener.Listen(2048);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accept = Task.Run(AcceptLoopAsync);
    }

    public IPEndPoint EndPoint { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>
    /// Completes when every connection accepted so far has ended (its handler returned and its socket was disposed):
    /// the signal for "the backend closed its side", instead of polling for it.
    /// </summary>
    public Task WhenConnectionsEndedAsync()
    {
        lock (_connections)
        {
            return Task.WhenAll([.. _connections]);
        }
    }

    /// <summary>Reads the replayed hello, checks it byte for byte, then echoes until FIN and closes.</summary>
    public static RawBackend Echo(byte[] expectedHello) => new(async socket =>
    {
        await ExpectHelloAsync(socket, expectedHello);
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
            if (n == 0)
            {
                socket.Shutdown(SocketShutdown.Send);
                return;
            }

            await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
        }
    });

    /// <summary>Reads the replayed hello, then writes <paramref name="name"/> and closes (identifies which backend a route reached).</summary>
    public static RawBackend Named(string name, byte[]? expectedHello = null) => new(async socket =>
    {
        if (expectedHello is not null)
        {
            await ExpectHelloAsync(socket, expectedHello);
        }

        await socket.SendAsync(Encoding.ASCII.GetBytes(name), SocketFlags.None);
        socket.Shutdown(SocketShutdown.Send);
        await ReadToEndAsync(socket);
    });

    public static async Task ExpectHelloAsync(Socket socket, byte[] expectedHello)
    {
        byte[] got = new byte[expectedHello.Length];
        await ReadExactlyAsync(socket, got);
        if (!got.AsSpan().SequenceEqual(expectedHello))
        {
            throw new InvalidDataException("The replayed ClientHello differs from what the client sent.");
        }
    }

    public static async Task ReadExactlyAsync(Socket socket, Memory<byte> into)
    {
        int read = 0;
        while (read < into.Length)
        {
            int n = await socket.ReceiveAsync(into[read..], SocketFlags.None);
            if (n == 0)
            {
                throw new EndOfStreamException($"FIN after {read} of {into.Length} bytes.");
            }

            read += n;
        }
    }

    /// <summary>Reads until FIN, hashing; returns (bytes, SHA-256).</summary>
    public static async Task<(long Bytes, byte[] Hash)> HashToEndAsync(Socket socket)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[64 * 1024];
        long total = 0;
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
            if (n == 0)
            {
                return (total, sha.GetHashAndReset());
            }

            sha.AppendData(buffer, 0, n);
            total += n;
        }
    }

    public static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        var output = new MemoryStream();
        byte[] buffer = new byte[16 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
            if (n == 0)
            {
                return output.ToArray();
            }

            output.Write(buffer, 0, n);
        }
    }

    /// <summary>Sends <paramref name="data"/> in random chunks (1 byte to 64 KiB).</summary>
    public static async Task SendChunkedAsync(Socket socket, ReadOnlyMemory<byte> data, Random random)
    {
        int sent = 0;
        while (sent < data.Length)
        {
            int chunk = Math.Min(data.Length - sent, random.Next(8) == 0 ? random.Next(1, 64) : random.Next(1, 64 * 1024));
            sent += await socket.SendAsync(data.Slice(sent, chunk), SocketFlags.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _accept;
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }

        // Bounded, not a poll: a handler still blocked on its peer must not hang the test's dispose.
        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(10)));
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            Task connection = Task.Run(async () =>
            {
                using (socket)
                {
                    try
                    {
                        await _handler(socket);
                    }
                    catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or InvalidDataException)
                    {
                        // The test observes the effect on the client side.
                    }
                }
            });
            lock (_connections)
            {
                _connections.Add(connection);
            }
        }
    }
}

/// <summary>A TLS server (SslStream) that greets each client with a line naming the backend, then echoes lines.</summary>
internal static class TlsBackend
{
    public static RawBackend Start(TestCertificates certificates, string name) => new(async socket =>
    {
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificates.ServerCertificate });
        await ssl.WriteAsync(Encoding.ASCII.GetBytes($"hello from {name}\n"));
        await ssl.FlushAsync();
        byte[] buffer = new byte[16 * 1024];
        while (true)
        {
            int n = await ssl.ReadAsync(buffer);
            if (n == 0)
            {
                return;
            }

            await ssl.WriteAsync(buffer.AsMemory(0, n));
            await ssl.FlushAsync();
        }
    });
}
