using System.Runtime.InteropServices;

namespace MeshGateway.Gateway;

/// <summary>
/// The process's open-file limit (<c>getrlimit(RLIMIT_NOFILE)</c>, the soft limit that <c>ulimit -n</c> sets) and the
/// connection cap derived from it.
/// </summary>
/// <remarks>
/// Why a P/Invoke: .NET has no API for the limit (Environment and Process expose none), and running out of
/// descriptors is what ends a proxy: the runtime itself needs descriptors to start threads and open files, and when it
/// cannot get one it aborts the process ("Out of memory."), dropping every connection (issue 16). HAProxy sizes
/// <c>maxconn</c> from <c>ulimit -n</c> the same way (haproxy doc/configuration.txt, "maxconn").
/// </remarks>
internal static class OpenFileLimit
{
    /// <summary>Each spliced connection holds two descriptors: the client's socket and the upstream's.</summary>
    public const int DescriptorsPerConnection = 2;

    /// <summary>The soft open-file limit, or null where there is none to read (Windows) or the call failed.</summary>
    public static long? GetSoftLimit()
    {
        int resource;
        if (OperatingSystem.IsLinux() || OperatingSystem.IsAndroid())
        {
            resource = 7; // RLIMIT_NOFILE in <bits/resource.h>
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsTvOS() || OperatingSystem.IsFreeBSD() || OperatingSystem.IsMacCatalyst())
        {
            resource = 8; // RLIMIT_NOFILE in <sys/resource.h>
        }
        else
        {
            return null;
        }

        try
        {
            if (getrlimit(resource, out RLimit limit) != 0)
            {
                return null;
            }

            // RLIM_INFINITY is all ones (a huge unsigned value): no limit worth deriving from.
            return limit.Current >= long.MaxValue ? null : (long)limit.Current;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// The connections that fit in <paramref name="softLimit"/> descriptors after <paramref name="reserve"/> are set
    /// aside: (limit − reserve) / 2, at least 1.
    /// </summary>
    public static int ConnectionsFor(long softLimit, int reserve)
    {
        long available = (softLimit - reserve) / DescriptorsPerConnection;
        return available < 1 ? 1 : available > int.MaxValue ? int.MaxValue : (int)available;
    }

    [DllImport("libc", EntryPoint = "getrlimit")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int getrlimit(int resource, out RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }
}
