using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Fixtures;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshGateway.Tests.Hosting;

/// <summary>The stop sequence as operators run it (deregister, keep accepting while peers learn, stop, drain), on a real Consul agent.</summary>
public sealed class RollingStopTests
{
    // How long the simulated peer takes to act on a catalog change (a remote gateway's watch plus its configuration
    // push); the gateway's propagation delay must cover it.
    private static readonly TimeSpan s_peerLag = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan s_propagationDelay = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Stop_PeerDialsUntilItSeesTheDeregistration_NoConnectionLost()
    {
        await using ConsulAgent agent = await ConsulAgent.StartAsync(new ConsulAgentSettings("dc1"));
        (string sni, byte[] hello, RawBackend api) = await HostFixture.RegisterEchoApiAsync(agent);
        await using RawBackend _ = api;

        using IHost leaving = await StartGatewayAsync(agent, "gw-a", sni);
        using IHost staying = await StartGatewayAsync(agent, "gw-b", sni);
        IPEndPoint a = HostFixture.GatewayEndPoint(leaving);
        IPEndPoint b = HostFixture.GatewayEndPoint(staying);
        MeshGatewayRuntime leavingRuntime = leaving.Services.GetRequiredService<MeshGatewayRuntime>();

        using var stopPeer = new CancellationTokenSource(HostFixture.SafetyTimeout);
        var peer = new CatalogPeer(agent, a);
        Task watching = peer.WatchAsync(stopPeer.Token);
        await peer.SeesBoth.WaitAsync(HostFixture.SafetyTimeout);

        // A long connection through the leaving gateway, open before the stop: it must survive the drain.
        using Socket longLived = await HostFixture.ConnectAsync(a, hello);
        await HostFixture.EchoAsync(longLived, "before the stop"u8.ToArray());

        // The peer dials round-robin over what it last saw in the catalog, one full round trip per connection.
        var failures = new ConcurrentQueue<string>();
        int toLeaving = 0;
        int toStaying = 0;
        int toLeavingDuringStop = 0;
        int stopStarted = 0;
        Task dialing = Task.Run(async () =>
        {
            for (int i = 0; i < 20_000 && !stopPeer.IsCancellationRequested; i++)
            {
                IPEndPoint[] targets = peer.Gateways;
                IPEndPoint target = targets[i % targets.Length];
                bool duringStop = Volatile.Read(ref stopStarted) != 0;
                try
                {
                    using Socket client = await HostFixture.ConnectAsync(target, hello);
                    await HostFixture.EchoAsync(client, "x"u8.ToArray());
                }
                catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
                {
                    failures.Enqueue($"{target}: {ex.GetType().Name} {ex.Message}");
                }

                if (target.Equals(a))
                {
                    Interlocked.Increment(ref toLeaving);
                    toLeavingDuringStop += duringStop ? 1 : 0;
                }
                else
                {
                    Interlocked.Increment(ref toStaying);
                }
            }
        });

        Volatile.Write(ref stopStarted, 1);
        Task stopping = leaving.StopAsync();
        await peer.SeesOnlyOthers.WaitAsync(HostFixture.SafetyTimeout);
        await HostFixture.EchoAsync(longLived, "after the peer saw it leave"u8.ToArray());
        longLived.Shutdown(SocketShutdown.Send);
        await RawBackend.ReadToEndAsync(longLived).WaitAsync(HostFixture.SafetyTimeout);
        await stopping.WaitAsync(HostFixture.SafetyTimeout);

        await stopPeer.CancelAsync();
        await dialing;
        await watching;

        Assert.Empty(failures);
        Assert.True(toLeavingDuringStop > 0, "no connection reached the leaving gateway between its deregistration and the peer seeing it");
        Assert.True(toStaying > 0);
        Assert.Equal(0, leavingRuntime.Counters!.Cut);
        Assert.Equal(toLeaving + 1, leavingRuntime.Counters.Routed);

        // After the stop the leaving gateway refuses; the other one serves.
        await Assert.ThrowsAsync<SocketException>(async () =>
        {
            using Socket refused = await HostFixture.ConnectAsync(a, hello);
        });
        using (Socket client = await HostFixture.ConnectAsync(b, hello))
        {
            await HostFixture.EchoAsync(client, "still served"u8.ToArray());
        }

        await staying.StopAsync();
    }

    private static async Task<IHost> StartGatewayAsync(ConsulAgent agent, string serviceId, string sni)
    {
        IHost host = HostFixture.Build(
            g => g.UseConsulCatalog(c =>
            {
                c.Address = agent.HttpAddress.ToString();
                c.ServiceId = serviceId;
                c.Preflight = false;
            }),
            options: o => o.PropagationDelay = s_propagationDelay);
        await host.StartAsync();

        // Start waits for the first complete table, which has the service registered before it.
        Assert.True(host.Services.GetRequiredService<MeshGatewayRuntime>().Routes.Current.TryMatch(sni, out Route? _));
        return host;
    }

    /// <summary>
    /// A peer of the gateways (another datacenter's gateway, in effect): watches the catalog's mesh-gateway instances
    /// with blocking queries and acts on each answer <see cref="s_peerLag"/> later.
    /// </summary>
    private sealed class CatalogPeer(ConsulAgent agent, IPEndPoint leaving)
    {
        private IPEndPoint[] _gateways = [];

        public IPEndPoint[] Gateways => Volatile.Read(ref _gateways);

        public TaskCompletionSource BothSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task SeesBoth => BothSeen.Task;

        public TaskCompletionSource OnlyOthersSeen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task SeesOnlyOthers => OnlyOthersSeen.Task;

        public async Task WatchAsync(CancellationToken cancellationToken)
        {
            using HttpClient http = agent.CreateRawClient();
            long index = 0;
            try
            {
                for (int answers = 0; answers < 1000; answers++)
                {
                    using HttpResponseMessage response = await http.GetAsync($"/v1/catalog/service/mesh-gateway?index={index}&wait=5s", cancellationToken);
                    response.EnsureSuccessStatusCode();
                    index = Math.Max(1, long.Parse(response.Headers.GetValues("X-Consul-Index").First(), CultureInfo.InvariantCulture));
                    JsonArray instances = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsArray();
                    IPEndPoint[] seen = [.. instances.Select(i => new IPEndPoint(IPAddress.Parse(i!["ServiceAddress"]!.GetValue<string>()), i["ServicePort"]!.GetValue<int>()))];
                    if (seen.Length == 0)
                    {
                        continue;
                    }

                    // The peer's own propagation lag: what this test's propagation delay exists to cover.
                    await Task.Delay(s_peerLag, cancellationToken);
                    Volatile.Write(ref _gateways, seen);
                    if (seen.Length == 2)
                    {
                        BothSeen.TrySetResult();
                    }
                    else if (!seen.Contains(leaving) && BothSeen.Task.IsCompleted)
                    {
                        OnlyOthersSeen.TrySetResult();
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Done.
            }
        }
    }
}
