using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MeshGateway.Splicing;

/// <summary>What one <c>splice(2)</c> call did.</summary>
internal enum KernelSpliceStatus
{
    /// <summary>Bytes moved (or 0 at the end of the source's stream).</summary>
    Moved,

    /// <summary>Nothing to move now (<c>EAGAIN</c>): the source has nothing queued, or the destination no room.</summary>
    WouldBlock,

    /// <summary>The socket failed (reset, broken pipe) or was closed under the call; the error says which.</summary>
    Failed,

    /// <summary>The kernel cannot splice this socket (<c>EINVAL</c>, <c>ENOSYS</c>): move the bytes through user space.</summary>
    Unsupported,
}

/// <summary>
/// A pipe through which one direction of a splice moves bytes with <c>splice(2)</c> (Linux): socket to pipe, pipe to
/// socket, without copying them through user space. <see cref="SocketSplice"/> takes one for a burst of bulk data and
/// closes it when the burst ends, so idle connections hold none.
/// </summary>
/// <remarks>
/// <para>Why our own P/Invoke: .NET has no splice path (the runtime's sockets copy through user buffers), and HAProxy's
/// <c>option splice-auto</c> shows what it buys a relay on bulk transfers. The sockets stay the runtime's: it still
/// waits for readiness (the splice's zero-byte receives) and for room to send (a send of the pipe's first bytes through
/// the runtime when the destination is full, see <see cref="SocketSplice"/>); only the moves of bytes bypass it, as the
/// splice's non-blocking copy reads already did. Each call holds the socket's handle (a reference count), so a
/// teardown closing the socket meanwhile cannot let the descriptor number be reused under it.</para>
/// <para>Descriptors: a pipe is two. <see cref="SpliceOptions.MaxKernelPipes"/> caps how many are open at once (one
/// count per <see cref="SpliceOptions"/>), and the listener sets aside two descriptors per pipe from its connection
/// limit. When the cap is reached or <c>pipe2</c> fails, the burst is copied as before.</para>
/// </remarks>
internal sealed class KernelPipe : IDisposable
{
    private const int OpenNonBlock = 0x800, OpenCloseOnExec = 0x80000; // O_NONBLOCK, O_CLOEXEC (Linux x64 and arm64)
    private const uint SpliceMove = 1, SpliceNonBlock = 2;               // SPLICE_F_MOVE, SPLICE_F_NONBLOCK
    private const int Eintr = 4, Eagain = 11, Einval = 22, Enosys = 38, Epipe = 32, Econnreset = 104, Enotconn = 107, Etimedout = 110, Econnaborted = 103, Ehostunreach = 113, Enetunreach = 101, Enetdown = 100;

    /// <summary>The most one fill moves: a pipe's default capacity on Linux (16 pages).</summary>
    public const int Capacity = 64 * 1024;

    private readonly KernelPipeBudget _budget;
    private int _readEnd;
    private int _writeEnd;

    private KernelPipe(KernelPipeBudget budget, int readEnd, int writeEnd)
    {
        _budget = budget;
        _readEnd = readEnd;
        _writeEnd = writeEnd;
    }

    /// <summary>A new pipe within <paramref name="budget"/>, or null (not Linux, the cap reached, or <c>pipe2</c> failed).</summary>
    public static KernelPipe? TryCreate(KernelPipeBudget budget)
    {
        if (!OperatingSystem.IsLinux() || !budget.TryTake())
        {
            return null;
        }

        try
        {
            if (pipe2(out PipeEnds ends, OpenNonBlock | OpenCloseOnExec) == 0)
            {
                return new KernelPipe(budget, ends.Read, ends.Write);
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            budget.Disable();
        }

        // EMFILE/ENFILE or no libc entry point: copy instead.
        budget.Give();
        return null;
    }

    /// <summary>Moves what <paramref name="socket"/> has queued (up to <see cref="Capacity"/>) into the pipe.</summary>
    /// <param name="socket">The source.</param>
    /// <param name="moved">Bytes moved when <see cref="KernelSpliceStatus.Moved"/>; 0 there is the end of the source's stream.</param>
    /// <param name="error">Why, when <see cref="KernelSpliceStatus.Failed"/>.</param>
    public KernelSpliceStatus Fill(Socket socket, out int moved, out SocketError error) =>
        Splice(socket, fromSocket: true, Capacity, out moved, out error);

    /// <summary>Moves up to <paramref name="count"/> bytes from the pipe to <paramref name="socket"/>.</summary>
    public KernelSpliceStatus Drain(Socket socket, int count, out int moved, out SocketError error) =>
        Splice(socket, fromSocket: false, count, out moved, out error);

    /// <summary>Reads up to <paramref name="count"/> of the pipe's bytes (at most the buffer's length) into user memory: the first bytes of a send that must wait for room.</summary>
    /// <returns>The bytes read; 0 or less when the pipe had none (it never should: the caller knows what it holds).</returns>
    public int Read(byte[] buffer, int count)
    {
        nint n;
        do
        {
            n = read(_readEnd, ref MemoryMarshal.GetArrayDataReference(buffer), (nuint)Math.Min(count, buffer.Length));
        }
        while (n < 0 && Marshal.GetLastPInvokeError() == Eintr);

        return (int)n;
    }

    /// <summary>Closes both ends and gives the pipe back to the budget. Bytes still in it are dropped (the splice failed).</summary>
    public void Dispose()
    {
        int readEnd = Interlocked.Exchange(ref _readEnd, -1);
        if (readEnd < 0)
        {
            return;
        }

        // Nothing to do about a failed close: Linux releases the descriptor even when close reports EINTR.
        _ = close(readEnd);
        _ = close(Interlocked.Exchange(ref _writeEnd, -1));
        _budget.Give();
    }

    private KernelSpliceStatus Splice(Socket socket, bool fromSocket, int count, out int moved, out SocketError error)
    {
        moved = 0;
        error = SocketError.Success;
        SafeHandle handle = socket.SafeHandle;
        bool added = false;
        try
        {
            // Held for the call: a concurrent close (the teardown) is deferred until the release, so the number stays ours.
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            nint n;
            do
            {
                n = fromSocket
                    ? splice(fd, 0, _writeEnd, 0, (nuint)count, SpliceMove | SpliceNonBlock)
                    : splice(_readEnd, 0, fd, 0, (nuint)count, SpliceMove | SpliceNonBlock);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == Eintr);

            if (n >= 0)
            {
                moved = (int)n;
                return KernelSpliceStatus.Moved;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == Eagain)
            {
                return KernelSpliceStatus.WouldBlock;
            }

            if (errno is Einval or Enosys)
            {
                return KernelSpliceStatus.Unsupported;
            }

            // .NET's errno-to-SocketError table is internal to the runtime: the few errors a socket splice returns are
            // mapped here the same way (EPIPE is Shutdown there too).
            error = errno switch
            {
                Econnreset => SocketError.ConnectionReset,
                Epipe => SocketError.Shutdown,
                Enotconn => SocketError.NotConnected,
                Etimedout => SocketError.TimedOut,
                Econnaborted => SocketError.ConnectionAborted,
                Ehostunreach => SocketError.HostUnreachable,
                Enetunreach => SocketError.NetworkUnreachable,
                Enetdown => SocketError.NetworkDown,
                _ => SocketError.SocketError,
            };
            return KernelSpliceStatus.Failed;
        }
        catch (ObjectDisposedException)
        {
            // Closed by the teardown before the call: the splice is already failing.
            error = SocketError.OperationAborted;
            return KernelSpliceStatus.Failed;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PipeEnds
    {
        public int Read;
        public int Write;
    }

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int pipe2(out PipeEnds ends, int flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint splice(int fdIn, nint offIn, int fdOut, nint offOut, nuint length, uint flags);

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint read(int fd, ref byte buffer, nuint count);

    [DllImport("libc")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int close(int fd);
}

/// <summary>How many <see cref="KernelPipe"/>s may be open at once for one <see cref="SpliceOptions"/>.</summary>
internal sealed class KernelPipeBudget(int max)
{
    private int _open;
    private long _splicedBytes;
    private readonly CountSignal _roomWaits = new();
    private volatile bool _disabled;

    /// <summary>Pipes open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Bytes moved from a socket into a pipe so far (what went through the kernel path).</summary>
    public long SplicedBytes => Interlocked.Read(ref _splicedBytes);

    /// <summary>How often a destination had no room, so the pipe's first bytes went through the runtime's send.</summary>
    public long RoomWaits => _roomWaits.Value;

    /// <summary>Completes once <see cref="RoomWaits"/> reaches <paramref name="minimum"/> (a change signal: tests await it instead of polling).</summary>
    public Task WhenRoomWaitsAtLeastAsync(long minimum, CancellationToken cancellationToken = default) => _roomWaits.WhenAtLeastAsync(minimum, cancellationToken);

    public bool TryTake()
    {
        if (_disabled)
        {
            return false;
        }

        if (Interlocked.Increment(ref _open) <= max)
        {
            return true;
        }

        Interlocked.Decrement(ref _open);
        return false;
    }

    public void Give() => Interlocked.Decrement(ref _open);

    /// <summary>No libc with the calls: stop trying.</summary>
    public void Disable() => _disabled = true;

    public void OnSpliced(int bytes) => Interlocked.Add(ref _splicedBytes, bytes);

    public void OnRoomWait() => _roomWaits.Increment();
}
