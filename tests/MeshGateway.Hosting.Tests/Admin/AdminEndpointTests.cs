using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using MeshGateway.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshGateway.Tests.Admin;

/// <summary>The admin endpoint over real loopback HTTP, in front of a real gateway carrying real traffic.</summary>
public sealed partial class AdminEndpointTests
{
    private const string Sni = "web.default.dc1.internal.admin.consul";

    [Fact]
    public async Task Admin_ReadyFlipsWhenTheFirstTableArrives_MetricsAndRoutesDescribeTheTraffic()
    {
        byte[] hello = TestHello.Create(Sni);
        await using RawBackend backend = RawBackend.Echo(hello);
        var source = new GatedRouteSource(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint, weight: 3)])));
        using IHost host = HostFixture.Build(g => g.UseRouteSource(_ => source), new() { ["MeshGateway:Admin:Bind"] = "127.0.0.1:0" });
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        IMeterFactory factory = host.Services.GetRequiredService<IMeterFactory>();

        // Signal: the host's connection-duration histogram records when the spliced connection has been closed and counted.
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var closeListener = new MeterListener();
        closeListener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == GatewayMetricNames.ConnectionDuration && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        closeListener.SetMeasurementEventCallback<double>((_, _, _, _) => closed.TrySetResult());
        closeListener.Start();

        Task start = host.StartAsync();
        await source.Started.Task.WaitAsync(HostFixture.SafetyTimeout);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{runtime.AdminEndPoint}"), Timeout = HostFixture.SafetyTimeout };

        // Before the first table: 503 with the reason.
        using (HttpResponseMessage notReady = await http.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            Assert.Contains("no routing table received yet", await notReady.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        source.Release.SetResult();
        await start.WaitAsync(HostFixture.SafetyTimeout);
        using (HttpResponseMessage ready = await http.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal("LIVE\n", await ready.Content.ReadAsStringAsync());
        }

        byte[] payload = new byte[3000];
        Random.Shared.NextBytes(payload);
        using (Socket client = await HostFixture.ConnectAsync(HostFixture.GatewayEndPoint(host), hello))
        {
            await HostFixture.EchoAsync(client, payload);
            client.Shutdown(SocketShutdown.Send);
            await RawBackend.ReadToEndAsync(client).WaitAsync(HostFixture.SafetyTimeout);
        }

        await closed.Task.WaitAsync(HostFixture.SafetyTimeout);

        // Prometheus text: every sample line well-formed; the traffic's counters present.
        using HttpResponseMessage metricsResponse = await http.GetAsync("/stats/prometheus");
        Assert.Equal(HttpStatusCode.OK, metricsResponse.StatusCode);
        Assert.Equal("text/plain", metricsResponse.Content.Headers.ContentType!.MediaType);
        Dictionary<string, double> samples = ParsePrometheus(await metricsResponse.Content.ReadAsStringAsync());
        Assert.Equal(1, samples["meshgateway_connections_accepted_total{meshgateway_listener=\"default\"}"]);
        Assert.Equal(1, samples["meshgateway_connections_routed_total{meshgateway_route_kind=\"exact\",meshgateway_listener=\"default\"}"]);
        Assert.Equal(hello.Length + payload.Length, samples["meshgateway_bytes_total{meshgateway_direction=\"upstream\",meshgateway_listener=\"default\"}"]);
        Assert.Equal(payload.Length, samples["meshgateway_bytes_total{meshgateway_direction=\"downstream\",meshgateway_listener=\"default\"}"]);
        Assert.Equal(0, samples["meshgateway_connections_active{meshgateway_listener=\"default\"}"]);
        string durationCount = Assert.Single(samples.Keys, k => k.StartsWith("meshgateway_connection_duration_seconds_count", StringComparison.Ordinal));
        Assert.Equal(1, samples[durationCount]);
        Assert.Equal(1, samples["meshgateway_cluster_connections_total{meshgateway_cluster=\"web\"}"]);
        Assert.Equal(1, samples["meshgateway_cluster_endpoints{meshgateway_cluster=\"web\",meshgateway_endpoint_state=\"healthy\"}"]);
        Assert.Equal(1, samples["meshgateway_routes"]);

        // /metrics is the same exposition.
        using (HttpResponseMessage metricsAlias = await http.GetAsync("/metrics"))
        {
            Assert.Equal(HttpStatusCode.OK, metricsAlias.StatusCode);
            Assert.Equal(1, ParsePrometheus(await metricsAlias.Content.ReadAsStringAsync())["meshgateway_connections_accepted_total{meshgateway_listener=\"default\"}"]);
        }

        // The route table as JSON.
        using HttpResponseMessage routesResponse = await http.GetAsync("/routes");
        Assert.Equal("application/json", routesResponse.Content.Headers.ContentType!.MediaType);
        using JsonDocument routes = JsonDocument.Parse(await routesResponse.Content.ReadAsStringAsync());
        JsonElement root = routes.RootElement;
        Assert.True(root.GetProperty("ready").GetBoolean());
        Assert.Equal(1, root.GetProperty("version").GetInt64());
        Assert.Equal(HostFixture.GatewayEndPoint(host).ToString(), Assert.Single(root.GetProperty("listeners").EnumerateArray()).GetProperty("address").GetString());
        JsonElement route = Assert.Single(root.GetProperty("routes").EnumerateArray());
        Assert.Equal(Sni, route.GetProperty("sni").GetString());
        Assert.Equal("exact", route.GetProperty("kind").GetString());
        JsonElement cluster = route.GetProperty("cluster");
        Assert.Equal("web", cluster.GetProperty("name").GetString());
        Assert.Equal(5000, cluster.GetProperty("connectTimeoutMs").GetDouble());
        Assert.Equal(1, cluster.GetProperty("connections").GetInt64());
        JsonElement endpoint = Assert.Single(cluster.GetProperty("endpoints").EnumerateArray());
        Assert.Equal(backend.EndPoint.ToString(), endpoint.GetProperty("endpoint").GetString());
        Assert.Equal(3, endpoint.GetProperty("weight").GetInt32());
        Assert.True(endpoint.GetProperty("healthy").GetBoolean());
        Assert.False(endpoint.GetProperty("ejected").GetBoolean());
        Assert.Equal(1, endpoint.GetProperty("connections").GetInt64());
        Assert.Equal(0, endpoint.GetProperty("activeConnections").GetInt32());

        await host.StopAsync();
    }

    [Fact]
    public async Task Admin_BadRequests_GetClientErrorsAndTheEndpointKeepsServing()
    {
        await using RawBackend backend = RawBackend.Echo(TestHello.Create(Sni));
        using IHost host = HostFixture.Build(
            g => g.UseStaticRoutes(new Route(Sni, new UpstreamCluster("web", [new UpstreamEndpoint(backend.EndPoint)]))),
            new() { ["MeshGateway:Admin:Bind"] = "127.0.0.1:0", ["MeshGateway:Admin:MaxRequestHeadSize"] = "1024" });
        await host.StartAsync();
        IPEndPoint admin = host.Services.GetRequiredService<MeshGatewayRuntime>().AdminEndPoint!;

        Assert.StartsWith("HTTP/1.1 400 ", await RawRequestAsync(admin, "NONSENSE\r\n\r\n"u8.ToArray()), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 400 ", await RawRequestAsync(admin, "GET /ready HTTP/9.9\r\n\r\n"u8.ToArray()), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 400 ", await RawRequestAsync(admin, "GET /re\u0001dy HTTP/1.1\r\n\r\n"u8.ToArray()), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 404 ", await RawRequestAsync(admin, "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray()), StringComparison.Ordinal);
        string post = await RawRequestAsync(admin, "POST /ready HTTP/1.1\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 405 ", post, StringComparison.Ordinal);
        Assert.Contains("Allow: GET, HEAD", post, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 431 ", await RawRequestAsync(admin, Encoding.ASCII.GetBytes("GET /ready HTTP/1.1\r\nX-Long: " + new string('a', 2000))), StringComparison.Ordinal);

        // A client that sends half a head and goes away gets a 400, never a crash.
        Assert.StartsWith("HTTP/1.1 400 ", await RawRequestAsync(admin, "GET /ready HTT"u8.ToArray(), shutdown: true), StringComparison.Ordinal);

        // HEAD: headers only.
        string head = await RawRequestAsync(admin, "HEAD /ready HTTP/1.1\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 200 ", head, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", head, StringComparison.Ordinal);

        Assert.StartsWith("HTTP/1.1 200 ", await RawRequestAsync(admin, "GET /ready?verbose HTTP/1.1\r\n\r\n"u8.ToArray()), StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task Admin_IsOffByDefault_AndABadBindFailsTheStartNamingTheKey()
    {
        using (IHost off = HostFixture.Build(g => g.UseStaticRoutes()))
        {
            await off.StartAsync();
            Assert.Null(off.Services.GetRequiredService<MeshGatewayRuntime>().AdminEndPoint);
            await off.StopAsync();
        }

        using IHost bad = HostFixture.Build(g => g.UseStaticRoutes(), new() { ["MeshGateway:Admin:Bind"] = "localhost:19000" });
        OptionsValidationException ex = await Assert.ThrowsAsync<OptionsValidationException>(() => bad.StartAsync());
        Assert.Contains("Admin:Bind is 'localhost:19000'", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Parses Prometheus text format 0.0.4: every line is a comment (HELP/TYPE) or a well-formed sample.</summary>
    private static Dictionary<string, double> ParsePrometheus(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                Assert.Matches(CommentLine(), line);
                continue;
            }

            Match match = SampleLine().Match(line);
            Assert.True(match.Success, $"Not a Prometheus sample line: '{line}'");
            double value = match.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                string v => double.Parse(v, CultureInfo.InvariantCulture),
            };
            Assert.True(samples.TryAdd(match.Groups["series"].Value, value), $"Series twice: '{line}'");
        }

        return samples;
    }

    private static async Task<string> RawRequestAsync(IPEndPoint admin, byte[] request, bool shutdown = false)
    {
        using var socket = new Socket(admin.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(admin);
        await socket.SendAsync(request, SocketFlags.None);
        if (shutdown)
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        byte[] answer = await RawBackend.ReadToEndAsync(socket).WaitAsync(HostFixture.SafetyTimeout);
        return Encoding.UTF8.GetString(answer);
    }

    [GeneratedRegex(@"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$")]
    private static partial Regex CommentLine();

    [GeneratedRegex(@"^(?<series>[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*=""(\\.|[^""\\])*""(,[a-zA-Z_][a-zA-Z0-9_]*=""(\\.|[^""\\])*"")*\})?) (?<value>[-+0-9.eE]+|\+Inf|-Inf|NaN)$")]
    private static partial Regex SampleLine();

    /// <summary>A route source that publishes its table only when released (so the test sees the gateway before it).</summary>
    private sealed class GatedRouteSource : IMeshGatewayRouteSource
    {
        private readonly Route[] _routes;

        public GatedRouteSource(params Route[] routes) => _routes = routes;

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task StartAsync(RouteTableSource routes, CancellationToken cancellationToken)
        {
            Started.SetResult();
            await Release.Task.WaitAsync(cancellationToken);
            routes.Update(RouteTable.Create(_routes));
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
