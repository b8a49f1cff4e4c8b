using System.Diagnostics;
using MeshGateway.Routing;

namespace MeshGateway.Consul.Tests.Fixtures;

internal static class TableWaiter
{
    /// <summary>Waits (event-driven, bounded) until the published table satisfies <paramref name="predicate"/>; returns it and the time since <paramref name="since"/>.</summary>
    public static async Task<(RouteTable Table, TimeSpan Elapsed)> WaitForAsync(ConsulRouteTableSource source, Func<RouteTable, bool> predicate, string what, long? since = null, TimeSpan? timeout = null)
    {
        long start = since ?? Stopwatch.GetTimestamp();
        var done = new TaskCompletionSource<RouteTable>(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Converted = c =>
        {
            if (c.Succeeded && predicate(c.Table))
            {
                done.TrySetResult(c.Table);
            }
        };
        try
        {
            RouteTable current = source.Target.Current;
            if (predicate(current))
            {
                return (current, Stopwatch.GetElapsedTime(start));
            }

            try
            {
                RouteTable table = await done.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
                return (table, Stopwatch.GetElapsedTime(start));
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"No published route table showed {what}; routes now: {string.Join(", ", source.Target.Current.Routes)}; last error: {source.LastError}; watcher errors: {source.Watcher.ErrorCount}.");
            }
        }
        finally
        {
            source.Converted = null;
        }
    }

    public static Route? Find(RouteTable table, string sni) => table.TryMatch(sni.AsSpan(), out Route? route) ? route : null;

    public static ConsulRouteTableSourceOptions Fast(string? datacenter = null) => new() { Watcher = ViewWaiter.FastOptions(datacenter), StartupTimeout = TimeSpan.FromSeconds(60) };
}
