using Microsoft.Win32.SafeHandles;

namespace MeshGateway.Gateway;

/// <summary>
/// A few descriptors (<c>/dev/null</c>) the listener holds while it accepts and gives back the moment an accept finds
/// the process out of descriptors (EMFILE/ENFILE), so the runtime has room; taken back before accepting again.
/// </summary>
/// <remarks>
/// Why: when accept runs out, nothing is left for the runtime, and the runtime needs descriptors whenever it starts a
/// thread (CoreCLR's thread set-up opens a pipe) or reads a file; when it cannot get one it aborts the process ("Out of
/// memory.", issue 16). That happened with the limit lowered under a running gateway (<c>prlimit</c>): the connections
/// accepted up to the limit were queued to the thread pool, the pool started a thread, its <c>pipe2</c> failed, and the
/// process died while the listener was backing off. The connection cap derived from the limit at start cannot help when
/// the limit changes afterwards (or something else in the process holds descriptors). The same idea as libuv's and
/// nginx's reserve descriptor for EMFILE, which they give back to accept and close the excess; here it is given to the
/// runtime, and the queued connections wait for the back-off.
/// A small window remains: between the accept that takes the last descriptor and the failed one that releases the
/// reserve (microseconds, on the accept loop), a thread the runtime starts still finds none.
/// </remarks>
internal sealed class DescriptorReserve : IDisposable
{
    /// <summary>How many descriptors are held: room for a few thread starts (two each) and file reads.</summary>
    public const int Size = 16;

    private const int Emfile = 24, Enfile = 23; // Linux errno values carried as IOException.HResult on Unix

    private readonly SafeFileHandle?[] _handles = new SafeFileHandle?[Size];
    private readonly object _gate = new();
    private bool _unavailable = !OperatingSystem.IsLinux();
    private bool _disposed;

    /// <summary>
    /// Opens the descriptors not held. False (holding none) when the process is still out of descriptors: the caller
    /// must not accept yet. True when all are held, or when no reserve can be kept at all (not Linux, no
    /// <c>/dev/null</c>): then the listener behaves as without one.
    /// </summary>
    public bool TryFill()
    {
        lock (_gate)
        {
            if (_unavailable || _disposed)
            {
                return true;
            }

            for (int i = 0; i < _handles.Length; i++)
            {
                if (_handles[i] is not null)
                {
                    continue;
                }

                try
                {
                    _handles[i] = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read);
                }
                catch (IOException ex) when (ex.HResult is Emfile or Enfile)
                {
                    ReleaseLocked();
                    return false;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // No /dev/null here (a bare container): go without the reserve rather than stop accepting.
                    ReleaseLocked();
                    _unavailable = true;
                    return true;
                }
            }

            return true;
        }
    }

    /// <summary>Closes every held descriptor (the runtime may use them now).</summary>
    public void Release()
    {
        lock (_gate)
        {
            ReleaseLocked();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            ReleaseLocked();
        }
    }

    private void ReleaseLocked()
    {
        for (int i = 0; i < _handles.Length; i++)
        {
            _handles[i]?.Dispose();
            _handles[i] = null;
        }
    }
}
