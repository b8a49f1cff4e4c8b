using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MeshGateway.Gateway;

/// <summary>
/// The Linux system calls of the event loop (<see cref="EventLoopEngine"/>): epoll, eventfd and non-blocking sockets on
/// raw descriptors, from libc. Written here because .NET exposes none of them: its own epoll loop lives inside
/// System.Net.Sockets, and <see cref="Socket"/> costs several system calls per connection and per message that a loop
/// owning its descriptors does not make (docs/data-plane.md, "The event loop"). The constants and structure layouts are
/// Linux's generic ABI, shared by x86-64 and arm64 (the only architectures the engine runs on, see
/// <see cref="IsSupported"/>); <c>struct epoll_event</c> is packed (12 bytes) on x86-64 only.
/// </summary>
internal static class LinuxNative
{
    public const int EAGAIN = 11, EINTR = 4, EINPROGRESS = 115, EMFILE = 24, ENFILE = 23, ECONNABORTED = 103, EINVAL = 22;

    public const uint EPOLLIN = 0x1, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000, EPOLLEXCLUSIVE = 1u << 28, EPOLLET = 1u << 31;

    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;

    private const int CloseOnExec = 0x80000, NonBlocking = 0x800;
    private const int SolSocket = 1, SoError = 4, SoLinger = 13, SoKeepAlive = 9;
    private const int IpProtoTcp = 6, TcpNoDelay = 1, TcpKeepIdle = 4, TcpKeepIntvl = 5, TcpKeepCnt = 6, TcpInfo = 11;
    private const int MsgNoSignal = 0x4000;
    private const int Fionread = 0x541B;
    private const int AfInet = 2, AfInet6 = 10, SockStream = 1;

    /// <summary>The size of <c>struct sockaddr_in6</c>, the larger of the two address structures.</summary>
    public const int SockAddrSize = 28;

    /// <summary>Whether the engine can run here: Linux on x86-64 or arm64.</summary>
    public static bool IsSupported =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>Whether <c>struct epoll_event</c> is packed (x86-64): 12 bytes, else 16.</summary>
    public static readonly bool PackedEpollEvent = RuntimeInformation.ProcessArchitecture == Architecture.X64;

    public static int EventSize => PackedEpollEvent ? 12 : 16;

    /// <summary>The errno of the last failed call.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    public static int CreateEpoll() => epoll_create1(CloseOnExec);

    public static int CreateEventFd() => eventfd(0, CloseOnExec | NonBlocking);

    public static unsafe int Control(int epoll, int operation, int fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        WriteEvent(ev, events, data);
        return epoll_ctl(epoll, operation, fd, ev);
    }

    /// <summary>Waits for events into <paramref name="events"/> (<see cref="EventSize"/> bytes each); the count, or -1.</summary>
    public static unsafe int Wait(int epoll, byte* events, int maxEvents, int timeoutMs) => epoll_wait(epoll, events, maxEvents, timeoutMs);

    public static unsafe uint EventFlags(byte* events, int index) => *(uint*)(events + (index * EventSize));

    public static unsafe ulong EventData(byte* events, int index) => *(ulong*)(events + (index * EventSize) + (PackedEpollEvent ? 4 : 8));

    private static unsafe void WriteEvent(byte* ev, uint events, ulong data)
    {
        *(uint*)ev = events;
        *(ulong*)(ev + (PackedEpollEvent ? 4 : 8)) = data;
    }

    /// <summary>Accepts a connection, non-blocking and close-on-exec, with its peer's address; the descriptor, or -1.</summary>
    public static unsafe int Accept(int listenFd, Span<byte> address)
    {
        uint length = (uint)address.Length;
        fixed (byte* a = address)
        {
            return accept4(listenFd, a, &length, CloseOnExec | NonBlocking);
        }
    }

    /// <summary>A new non-blocking TCP socket for <paramref name="family"/> with TCP_NODELAY; -1 on failure (errno set).</summary>
    public static int CreateTcpSocket(AddressFamily family)
    {
        int fd = socket(family == AddressFamily.InterNetworkV6 ? AfInet6 : AfInet, SockStream | CloseOnExec | NonBlocking, 0);
        if (fd >= 0)
        {
            SetInt(fd, IpProtoTcp, TcpNoDelay, 1);
        }

        return fd;
    }

    /// <summary>Starts a non-blocking connect: 0 when connected, -1 with errno (<see cref="EINPROGRESS"/> while it proceeds).</summary>
    public static unsafe int Connect(int fd, IPEndPoint endPoint)
    {
        byte* address = stackalloc byte[SockAddrSize];
        int length = WriteAddress(new Span<byte>(address, SockAddrSize), endPoint);
        return connect(fd, address, (uint)length);
    }

    /// <summary>The pending error of a socket (SO_ERROR): 0 after a successful connect.</summary>
    public static unsafe int PendingError(int fd)
    {
        int value = 0;
        uint length = sizeof(int);
        return getsockopt(fd, SolSocket, SoError, &value, &length) == 0 ? value : Errno;
    }

    /// <summary>Linux's TCP_CLOSE state (<c>include/net/tcp_states.h</c>): after a reset, or a FIN both ways.</summary>
    public const int TcpClose = 7;

    /// <summary>The TCP state (TCP_INFO's first byte), 0 if unknown.</summary>
    public static unsafe int TcpState(int fd)
    {
        byte* info = stackalloc byte[8];
        uint length = 8;
        return getsockopt(fd, IpProtoTcp, TcpInfo, info, &length) == 0 && length >= 1 ? info[0] : 0;
    }

    /// <summary>Bytes queued to read (FIONREAD), 0 when it cannot tell.</summary>
    public static unsafe int Queued(int fd)
    {
        int value = 0;
        return ioctl(fd, Fionread, &value) == 0 ? value : 0;
    }

    public static unsafe nint Receive(int fd, ref byte buffer, int length)
    {
        fixed (byte* b = &buffer)
        {
            return recv(fd, b, (nuint)length, 0);
        }
    }

    public static unsafe nint Send(int fd, ref byte buffer, int length)
    {
        fixed (byte* b = &buffer)
        {
            return send(fd, b, (nuint)length, MsgNoSignal);
        }
    }

    /// <summary>The peer's address of a connected socket, or null.</summary>
    public static unsafe IPEndPoint? PeerOf(int fd)
    {
        byte* address = stackalloc byte[SockAddrSize];
        uint length = SockAddrSize;
        return getpeername(fd, address, &length) == 0 ? ReadAddress(new ReadOnlySpan<byte>(address, SockAddrSize)) : null;
    }

    /// <summary>Gives the core to another runnable thread, if any (<c>sched_yield</c>; its result is always 0 on Linux).</summary>
    public static void Yield() => _ = sched_yield();

    /// <summary>Sleeps the calling thread (the system's timer slack, 50 µs by default on Linux, comes on top).</summary>
    public static unsafe void Sleep(long nanoseconds)
    {
        // struct timespec { time_t tv_sec; long tv_nsec; }: two native longs on the 64-bit systems the loop runs on.
        long* request = stackalloc long[2];
        request[0] = nanoseconds / 1_000_000_000;
        request[1] = nanoseconds % 1_000_000_000;
        _ = nanosleep(request, null);
    }

    public static int ShutdownSend(int fd) => shutdown(fd, 1);

    public static int ShutdownBoth(int fd) => shutdown(fd, 2);

    /// <summary>Closes <paramref name="fd"/>; with <paramref name="reset"/> SO_LINGER 0 first, so the peer gets RST.</summary>
    public static unsafe void Close(int fd, bool reset)
    {
        if (reset)
        {
            long linger = 1; // struct linger { int l_onoff = 1; int l_linger = 0; } (little-endian)
            _ = setsockopt(fd, SolSocket, SoLinger, &linger, sizeof(long)); // refused only on a socket already failed: closed anyway
        }

        CloseHandle(fd);
    }

    /// <summary>Closes a descriptor. Its result is not used: Linux releases the descriptor even when close reports an error.</summary>
    public static void CloseHandle(int fd) => _ = close(fd);

    /// <summary>Adds one to an eventfd's counter (wakes its epoll); never blocks.</summary>
    public static unsafe void Signal(int eventFd)
    {
        ulong one = 1;
        write(eventFd, &one, sizeof(ulong));
    }

    /// <summary>Resets an eventfd's counter.</summary>
    public static unsafe void Drain(int eventFd)
    {
        ulong value;
        read(eventFd, &value, sizeof(ulong));
    }

    /// <summary>TCP keepalive on a raw socket, as <see cref="Routing.TcpKeepAlive.TryApply(Socket)"/> does on a <see cref="Socket"/>.</summary>
    public static bool TryApplyKeepAlive(int fd, Routing.TcpKeepAlive keepAlive)
    {
        bool ok = SetInt(fd, SolSocket, SoKeepAlive, 1);
        if (keepAlive.Time is { } time)
        {
            ok &= SetInt(fd, IpProtoTcp, TcpKeepIdle, time);
        }

        if (keepAlive.Interval is { } interval)
        {
            ok &= SetInt(fd, IpProtoTcp, TcpKeepIntvl, interval);
        }

        if (keepAlive.Probes is { } probes)
        {
            ok &= SetInt(fd, IpProtoTcp, TcpKeepCnt, probes);
        }

        return ok;
    }

    private static unsafe bool SetInt(int fd, int level, int name, int value) => setsockopt(fd, level, name, &value, sizeof(int)) == 0;

    /// <summary>Writes <paramref name="endPoint"/> as a <c>sockaddr_in</c> or <c>sockaddr_in6</c>; its length.</summary>
    public static int WriteAddress(Span<byte> address, IPEndPoint endPoint)
    {
        address.Clear();
        ushort port = (ushort)endPoint.Port;
        address[2] = (byte)(port >> 8);
        address[3] = (byte)port;
        if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            BitConverter.TryWriteBytes(address, (ushort)AfInet6);
            endPoint.Address.TryWriteBytes(address.Slice(8, 16), out _);
            BitConverter.TryWriteBytes(address.Slice(24, 4), (uint)endPoint.Address.ScopeId);
            return 28;
        }

        BitConverter.TryWriteBytes(address, (ushort)AfInet);
        endPoint.Address.TryWriteBytes(address.Slice(4, 4), out _);
        return 16;
    }

    /// <summary>Reads a <c>sockaddr_in</c> or <c>sockaddr_in6</c>; null for another family.</summary>
    public static IPEndPoint? ReadAddress(ReadOnlySpan<byte> address)
    {
        int family = BitConverter.ToUInt16(address);
        int port = (address[2] << 8) | address[3];
        return family switch
        {
            AfInet => new IPEndPoint(new IPAddress(address.Slice(4, 4)), port),
            AfInet6 => new IPEndPoint(new IPAddress(address.Slice(8, 16), BitConverter.ToUInt32(address.Slice(24, 4))), port),
            _ => null,
        };
    }

    /// <summary>The <see cref="SocketError"/> an errno stands for (the values the gateway reports).</summary>
    public static SocketError ToSocketError(int errno) => errno switch
    {
        0 => SocketError.Success,
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown,
        111 => SocketError.ConnectionRefused,
        110 => SocketError.TimedOut,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        103 => SocketError.ConnectionAborted,
        24 or 23 => SocketError.TooManyOpenSockets,
        105 or 12 => SocketError.NoBufferSpaceAvailable,
        99 => SocketError.AddressNotAvailable,
        107 => SocketError.NotConnected,
        _ => SocketError.SocketError,
    };

#pragma warning disable SA1300, IDE1006 // libc's names
    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int epoll_create1(int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int eventfd(uint initval, int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int accept4(int fd, byte* addr, uint* addrlen, int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int getpeername(int fd, byte* addr, uint* addrlen);

    [DllImport("libc")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int sched_yield();

    [DllImport("libc")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int nanosleep(long* request, long* remaining);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int connect(int fd, byte* addr, uint addrlen);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int getsockopt(int fd, int level, int name, void* value, uint* length);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int setsockopt(int fd, int level, int name, void* value, uint length);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe int ioctl(int fd, int request, int* value);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe nint recv(int fd, byte* buffer, nuint length, int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe nint send(int fd, byte* buffer, nuint length, int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int shutdown(int fd, int how);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe nint write(int fd, void* buffer, nuint count);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern unsafe nint read(int fd, void* buffer, nuint count);
#pragma warning restore SA1300, IDE1006
}
