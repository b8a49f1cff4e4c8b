using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Consul.Tests.Fixtures;

internal static class ViewWaiter
{
    /// <summary>Reads published views until one satisfies <paramref name="predicate"/> (bounded); returns it and the time it took.</summary>
    /// <param name="since">A <see cref="Stopwatch.GetTimestamp"/> taken just before the change; the elapsed time is measured from it.</param>
    public static async Task<(ConsulCatalogView View, TimeSpan Elapsed)> WaitForAsync(ConsulCatalogWatcher watcher, Func<ConsulCatalogView, bool> predicate, string what, TimeSpan? timeout = null, long? since = null)
    {
        long start = since ?? Stopwatch.GetTimestamp();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            if (watcher.Current is { } current && predicate(current))
            {
                return (current, Stopwatch.GetElapsedTime(start));
            }

            await foreach (ConsulCatalogView view in watcher.Views.ReadAllAsync(cts.Token))
            {
                if (predicate(view))
                {
                    return (view, Stopwatch.GetElapsedTime(start));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        throw new TimeoutException($"No published view showed {what} within the timeout; last view: {Describe(watcher.Current)}; errors: {watcher.ErrorCount}.");
    }

    /// <summary>Empties the channel so the next wait sees only newer views.</summary>
    public static void Drain(ConsulCatalogWatcher watcher)
    {
        while (watcher.Views.TryRead(out _))
        {
        }
    }

    public static string Describe(ConsulCatalogView? view) => view is null
        ? "(none)"
        : $"td={view.TrustDomain} dc={view.Datacenter} dcs=[{string.Join(',', view.Datacenters)}] services=[{string.Join(',', view.Services.Keys)}] " +
          $"local gw={view.LocalGateways.Length} remote=[{string.Join(',', view.RemoteGateways.Select(p => p.Key + ":" + string.Join('|', p.Value.Select(e => Model.BestAddress.Select(e, wan: true).ToString()))))}]";

    public static ConsulCatalogWatcherOptions FastOptions(string? datacenter = null) => new()
    {
        Datacenter = datacenter,
        DatacenterPollInterval = TimeSpan.FromSeconds(1),
        GatewayPollInterval = TimeSpan.FromMilliseconds(500),
        BlockingQuery = new BlockingQueryOptions { Wait = TimeSpan.FromSeconds(30), ErrorBackoffBase = TimeSpan.FromMilliseconds(200), ErrorBackoffMax = TimeSpan.FromSeconds(2) },
    };

    /// <summary>A listening socket standing in for the gateway's port, so its TCP check passes.</summary>
    public static TcpListener Listen(IPAddress address)
    {
        var listener = new TcpListener(address, 0);
        listener.Start();
        return listener;
    }

    public static int Port(this TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>Registers a Connect-native service with a TTL check in the given state.</summary>
    public static Task RegisterNativeAsync(ConsulClient client, string name, string id, int port, string ttlStatus = "passing", ConsulWeights? weights = null, IReadOnlyDictionary<string, string>? meta = null) =>
        client.RegisterServiceAsync(new ConsulServiceRegistration
        {
            ID = id,
            Name = name,
            Address = "127.0.0.1",
            Port = port,
            Meta = meta,
            Weights = weights,
            Connect = new ConsulConnectRegistration { Native = true },
            Check = new ConsulCheckRegistration { CheckID = "ttl-" + id, Name = "ttl", TTL = "10m", Status = ttlStatus },
        });
}
