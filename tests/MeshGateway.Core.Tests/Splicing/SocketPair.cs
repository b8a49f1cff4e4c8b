using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Tests.Splicing;

/// <summary>Two connected loopback TCP sockets.</summary>
internal static class SocketPair
{
    public static async Task<(Socket Left, Socket Right)> CreateAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var left = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task connect = left.ConnectAsync(listener.LocalEndPoint!);
        Socket right = await listener.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await connect.WaitAsync(TimeSpan.FromSeconds(30));
        right.NoDelay = true;
        return (left, right);
    }

    /// <summary>Reads until FIN; returns everything read.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        var output = new MemoryStream();
        byte[] buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
            if (n == 0)
            {
                return output.ToArray();
            }

            output.Write(buffer, 0, n);
        }
    }

    public static async Task ReadExactlyAsync(Socket socket, byte[] into)
    {
        int read = 0;
        while (read < into.Length)
        {
            int n = await socket.ReceiveAsync(into.AsMemory(read), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotEqual(0, n);
            read += n;
        }
    }

    /// <summary>Closes with RST (SO_LINGER 0).</summary>
    public static void Reset(Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Dispose();
    }
}
