using System.Net.Sockets;

namespace MeshGateway.Gateway;

/// <summary>
/// The <see cref="GatewayIoEngine.EventLoop"/> engine: <see cref="GatewayListenerOptions.EventLoopThreads"/> threads,
/// each an epoll loop over raw descriptors (<see cref="EventLoop"/>), sharing the listening sockets.
/// </summary>
internal sealed class EventLoopEngine : IDisposable
{
    private readonly EventLoop[] _loops;
    private readonly List<SafeSocketHandle> _held = [];

    /// <summary>Creates the loops over the bound, listening sockets (made non-blocking here); <see cref="Start"/> runs them.</summary>
    public EventLoopEngine(GatewayListener owner, IReadOnlyList<(Socket Socket, ListenerContext Context)> listeners, int threads)
    {
        var entries = new (int Fd, ListenerContext Context)[listeners.Count];
        try
        {
            for (int i = 0; i < listeners.Count; i++)
            {
                Socket socket = listeners[i].Socket;
                socket.Blocking = false;

                // Held until no loop watches it any more (StopAcceptingAsync): its descriptor number must not be closed
                // (and reused) while a loop may still call accept on it. Released before the listener disposes the
                // socket, whose Dispose waits for every reference to go.
                bool added = false;
                socket.SafeHandle.DangerousAddRef(ref added);
                _held.Add(socket.SafeHandle);
                entries[i] = ((int)socket.SafeHandle.DangerousGetHandle(), listeners[i].Context);
            }

            _loops = new EventLoop[threads];
            for (int i = 0; i < threads; i++)
            {
                _loops[i] = new EventLoop(owner, entries, i);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Whether the event loop can serve these options here (see <see cref="GatewayIoEngine.EventLoop"/>).</summary>
    public static bool CanRun(GatewayListenerOptions options) => LinuxNative.IsSupported && !options.Splice.UsesKernelPipes;

    public void Start()
    {
        foreach (EventLoop loop in _loops)
        {
            loop.Start();
        }
    }

    /// <summary>Stops accepting on every loop; completes once none watches the listeners any more.</summary>
    public async Task StopAcceptingAsync()
    {
        await Task.WhenAll(Array.ConvertAll(_loops, static loop => loop.StopAcceptingAsync())).ConfigureAwait(false);
        ReleaseListeners();
    }

    /// <summary>The loops' pauses after bulk turns, summed (<see cref="EventLoop.BulkPauses"/>).</summary>
    public long BulkPauses
    {
        get
        {
            long total = 0;
            foreach (EventLoop loop in _loops)
            {
                total += loop.BulkPauses;
            }

            return total;
        }
    }

    /// <summary>Tests: the open connections' descriptors (client, upstream or -1), each loop's read on its own thread.</summary>
    public async Task<(int Client, int Upstream)[]> SnapshotAsync()
    {
        (int, int)[][] parts = await Task.WhenAll(Array.ConvertAll(_loops, static loop => loop.SnapshotAsync())).ConfigureAwait(false);
        return [.. parts.SelectMany(static part => part)];
    }

    /// <summary>Cuts every open connection; gives how many were cut.</summary>
    public async Task<int> AbortAllAsync()
    {
        int[] cut = await Task.WhenAll(Array.ConvertAll(_loops, static loop => loop.AbortAllAsync())).ConfigureAwait(false);
        return cut.Sum();
    }

    /// <summary>Ends the loops and releases the listening sockets' descriptors.</summary>
    public void Dispose()
    {
        if (_loops is not null)
        {
            foreach (EventLoop? loop in _loops)
            {
                loop?.Dispose();
            }
        }

        ReleaseListeners();
    }

    private void ReleaseListeners()
    {
        lock (_held)
        {
            foreach (SafeSocketHandle handle in _held)
            {
                handle.DangerousRelease();
            }

            _held.Clear();
        }
    }
}
