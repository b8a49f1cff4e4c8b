using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Peering.Tests;

/// <summary>What the terminator writes to the host's logging while it serves requests.</summary>
public sealed class LoggingTests
{
    [Fact]
    public async Task Requests_WithTheHostLoggingEverything_WriteNoPerRequestLinesFromKestrelOrHosting()
    {
        var recorder = new RecordingLoggerProvider();
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(recorder));
        await using PeeringHarness harness = await PeeringHarness.StartAsync(configure: o => o.LoggerFactory = logging);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < 5; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/quiet", HttpVersion.Version11));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A mesh gateway writes no access log by default (Envoy's has none unless configured); ASP.NET Core's hosting
        // diagnostics and YARP would write two lines each at Information for every request, and Kestrel its connection
        // events at Debug, into the application's log. Nothing went wrong here, so no framework line at all: not the
        // private application's "Application started", nor Kestrel's start-up warning that HTTP/2 needs TLS (the
        // in-process end point has none; the connections bring theirs, and HTTP/2 works: RoutingTests).
        Assert.DoesNotContain(recorder.Entries, e => e.Category.StartsWith("Microsoft.", StringComparison.Ordinal) || e.Category.StartsWith("Yarp", StringComparison.Ordinal));
        // The terminator's own events still reach the host's logging (the handshake accepted, at Debug).
        Assert.Contains(recorder.Entries, e => e.Category == "MeshGateway.Peering" && e.EventId == 4002);
    }

    [Fact]
    public async Task Requests_ToASidecarThatIsGone_AreLoggedAtTheRateLimitThenSummarised()
    {
        // A sidecar that went away under load fails every request: each is answered 502 and counted, but the log gets
        // LogRateLimit warnings a second and then one line saying how many were left out (Envoy writes none).
        var recorder = new RecordingLoggerProvider();
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(recorder));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using PeeringHarness harness = await PeeringHarness.StartAsync(configure: o =>
        {
            o.LoggerFactory = logging;
            o.TimeProvider = time;
            o.LogRateLimit = 3;
        });
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0)); // bound, never listening: connections to it are refused
        ExportedHttpService web = harness.Snapshot(harness.GatewayLeaf).Services[0];
        harness.Terminator.Update(harness.Snapshot(harness.GatewayLeaf) with
        {
            Services = [web with { Targets = [web.Targets[0] with { Endpoints = [new DnsEndPoint("127.0.0.1", ((IPEndPoint)closed.LocalEndPoint!).Port)] }, web.Targets[1]] }],
        });
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < 20; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/gone", HttpVersion.Version11));
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        }

        Assert.Equal(20, harness.Terminator.Counters.UpstreamFailures);
        Assert.Equal(3, recorder.Entries.Count(e => e.EventId == 4007));
        Assert.DoesNotContain(recorder.Entries, e => e.EventId == 4010);
        // YARP's own "error proxying" warning would double every line: its forwarder category is not written.
        Assert.DoesNotContain(recorder.Entries, e => e.Category.StartsWith("Yarp", StringComparison.Ordinal));

        time.Advance(TimeSpan.FromSeconds(1));
        using (HttpResponseMessage next = await client.SendAsync(PeeringHarness.Get("/gone", HttpVersion.Version11)))
        {
            Assert.Equal(HttpStatusCode.BadGateway, next.StatusCode);
        }

        Assert.Equal(1, recorder.Entries.Count(e => e.EventId == 4010));
        Assert.Equal(4, recorder.Entries.Count(e => e.EventId == 4007));
        Assert.Equal(21, harness.Terminator.Counters.UpstreamFailures);
    }
}
