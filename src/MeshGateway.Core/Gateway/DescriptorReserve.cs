using System.Net.Sockets;
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
/// process died. The connection cap derived from the limit at start cannot help when the limit changes afterwards (or
/// something else in the process holds descriptors). Two parts:
/// <list type="bullet">
/// <item>The listener stops accepting before the table is full (<see cref="IsNearLimit"/>): descriptors are allocated
/// lowest first, so an accepted socket numbered N means 0 to N−1 are all in use; within <see cref="Margin"/> of the
/// soft limit (read with each accept: <c>getrlimit</c> is one system call, no allocation) fewer than that are left.
/// Releasing the reserve only after a failed accept (EMFILE) was not enough: a thread the runtime started between the
/// accept that took the last descriptor and the failed one still found none (1 child gateway in 11 runs died so).</item>
/// <item>It then gives the runtime this reserve and accepts again only once it can take it back with
/// <see cref="Margin"/> more to spare (<see cref="TryFill"/>). An accept that fails with EMFILE/ENFILE anyway (a table
/// with free numbers low and used ones near the limit, which the number cannot show) is handled the same way.</item>
/// </list>
/// The same idea as libuv's and nginx's reserve descriptor for EMFILE, which they give back to accept and close the
/// excess; here it goes to the runtime, and the queued connections wait in the backlog for the back-off.
/// </remarks>
internal sealed class DescriptorReserve : IDisposable
{
    /// <summary>How many descriptors are held: room for a few thread starts (two each) and file reads.</summary>
    public const int Size = 16;

    /// <summary>Descriptors that must stay free below the soft limit for the listener to keep accepting.</summary>
    public const int Margin = 8;

    private const int Emfile = 24, Enfile = 23; // Linux errno values carried as IOException.HResult on Unix

    private readonly SafeFileHandle?[] _handles = new SafeFileHandle?[Size];
    private readonly object _gate = new();
    private bool _unavailable = !OperatingSystem.IsLinux();
    private bool _disposed;

    /// <summary>
    /// Whether <paramref name="accepted"/>'s descriptor lies within <see cref="Margin"/> of the current soft open-file
    /// limit (Linux; elsewhere false). Allocation-free: one <c>getrlimit</c>.
    /// </summary>
    public static bool IsNearLimit(Socket accepted)
    {
        if (!OperatingSystem.IsLinux() || OpenFileLimit.GetSoftLimit() is not long limit)
        {
            return false;
        }

        // The number only (the handle is not used): exposing it affects nothing but connect retries, never made here.
        long descriptor = (long)accepted.SafeHandle.DangerousGetHandle();
        return descriptor >= limit - 1 - Margin;
    }

    /// <summary>
    /// Opens the descriptors not held, and checks that <see cref="Margin"/> more could be opened (opened and closed
    /// again). False (holding none) when the process is still short of descriptors: the caller must not accept yet.
    /// True when all are held with room to spare, or when no reserve can be kept at all (not Linux, no
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

            // The reserve first, then the room beyond it (opened only to see that it can be, closed at once).
            var spare = new SafeFileHandle?[Margin];
            try
            {
                for (int i = 0; i < _handles.Length + spare.Length; i++)
                {
                    if (i < _handles.Length)
                    {
                        _handles[i] ??= File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read);
                    }
                    else
                    {
                        spare[i - _handles.Length] = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.Read);
                    }
                }

                return true;
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
            finally
            {
                foreach (SafeFileHandle? handle in spare)
                {
                    handle?.Dispose();
                }
            }
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
