using System.Net.Sockets;
using MeshGateway.Routing;

namespace MeshGateway.Tests.Routing;

public sealed class TcpKeepAliveTests
{
    private static Socket NewSocket() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    private static int Option(Socket socket, SocketOptionLevel level, SocketOptionName name) => (int)socket.GetSocketOption(level, name)!;

    [Fact]
    public void TryApply_AllTimings_ReadBackFromTheSocket()
    {
        using Socket socket = NewSocket();
        Assert.Equal(0, Option(socket, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));

        Assert.True(new TcpKeepAlive { Time = 120, Interval = 60, Probes = 7 }.TryApply(socket));

        Assert.NotEqual(0, Option(socket, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
        Assert.Equal(120, Option(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime));
        Assert.Equal(60, Option(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval));
        Assert.Equal(7, Option(socket, SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount));
    }

    [Fact]
    public void TryApply_SystemDefaults_OnlyTurnsKeepAliveOn()
    {
        using Socket reference = NewSocket();
        using Socket socket = NewSocket();
        Assert.True(TcpKeepAlive.SystemDefaults.TryApply(socket));
        Assert.NotEqual(0, Option(socket, SocketOptionLevel.Socket, SocketOptionName.KeepAlive));
        foreach (SocketOptionName name in new[] { SocketOptionName.TcpKeepAliveTime, SocketOptionName.TcpKeepAliveInterval, SocketOptionName.TcpKeepAliveRetryCount })
        {
            Assert.Equal(Option(reference, SocketOptionLevel.Tcp, name), Option(socket, SocketOptionLevel.Tcp, name));
        }
    }

    [Fact]
    public void TryApply_DisposedSocket_FalseNoThrow()
    {
        Socket socket = NewSocket();
        socket.Dispose();
        Assert.False(new TcpKeepAlive { Time = 10 }.TryApply(socket));
    }

    [Fact]
    public void Settings_OutOfRange_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpKeepAlive { Time = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpKeepAlive { Interval = TcpKeepAlive.MaxSeconds + 1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpKeepAlive { Probes = TcpKeepAlive.MaxProbes + 1 });
        Assert.Null(new TcpKeepAlive { Time = null }.Time);
    }
}
