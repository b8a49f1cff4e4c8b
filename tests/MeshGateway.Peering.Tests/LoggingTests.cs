using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;

namespace MeshGateway.Peering.Tests;

/// <summary>What the terminator writes to the host's logging while it serves requests.</summary>
public sealed class LoggingTests
{
    [Fact]
    public async Task Requests_WithTheHostLoggingEverything_WriteNoPerRequestLinesFromKestrelOrHosting()
    {
        var recorder = new RecordingLoggerProvider();
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(recorder));
        await using PeeringHarness harness = await PeeringHarness.StartAsync(loggerFactory: logging);
        using HttpClient client = harness.CreateClient(harness.PeerClient);

        for (int i = 0; i < 5; i++)
        {
            using HttpResponseMessage response = await client.SendAsync(PeeringHarness.Get("/quiet", HttpVersion.Version11));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A mesh gateway writes no access log by default (Envoy's has none unless configured); ASP.NET Core's hosting
        // diagnostics and YARP would write two lines each at Information for every request, and Kestrel its connection
        // events at Debug, into the application's log.
        Assert.DoesNotContain(recorder.Entries, e => (e.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || e.Category.StartsWith("Yarp", StringComparison.Ordinal)) && e.Level < LogLevel.Warning);
        // The terminator's own events still reach the host's logging (the handshake accepted, at Debug).
        Assert.Contains(recorder.Entries, e => e.Category == "MeshGateway.Peering" && e.EventId == 4002);
    }

    private sealed class RecordingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<(string Category, LogLevel Level, int EventId)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Recorder(categoryName, Entries);

        public void Dispose()
        {
        }

        private sealed class Recorder(string category, ConcurrentQueue<(string Category, LogLevel Level, int EventId)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((category, logLevel, eventId.Id));
        }
    }
}
