using System.Collections.Concurrent;
using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.Hosting;
using MeshGateway.Routing;
using MeshGateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace MeshGateway.Tests.Hosting;

public sealed class LogRateLimitTests
{
    [Fact]
    public async Task RejectionFlood_LogsLimitPerSecondThenOneSummary_CountersExact()
    {
        var time = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        using IHost host = HostFixture.Build(
            g =>
            {
                g.UseStaticRoutes(new Route("web.default.dc1.internal.r.consul", new UpstreamCluster("web", [new UpstreamEndpoint(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 9))])));
                g.Services.AddSingleton<TimeProvider>(time);
                g.Services.AddSingleton<ILoggerProvider>(logs);
                g.Services.AddLogging(l => l.AddFilter(MeshGatewayLog.GatewayCategory, LogLevel.Information));
            },
            options: o => o.LogRateLimit = 5);
        await host.StartAsync();
        try
        {
            System.Net.IPEndPoint gateway = HostFixture.GatewayEndPoint(host);
            GatewayCounters counters = host.Services.GetRequiredService<MeshGatewayRuntime>().Counters!;

            // 50 plain-HTTP connections within one second of the (manual) clock: 5 logged, 45 only counted.
            for (int i = 0; i < 50; i++)
            {
                await RejectedAsync(gateway);
            }

            Assert.Equal(50, counters.GetRejected(RejectionReason.NotTls));
            Assert.Equal(5, logs.Count(4));
            Assert.Equal(0, logs.Count(14));

            // A second later the next rejection is logged, preceded by one summary of what was left out.
            time.Advance(TimeSpan.FromSeconds(1));
            await RejectedAsync(gateway);
            Assert.Equal(51, counters.GetRejected(RejectionReason.NotTls));
            Assert.Equal(6, logs.Count(4));
            (EventId _, string message) = Assert.Single(logs.Entries, e => e.Id.Id == 14);
            Assert.StartsWith("45 rejected-connection log lines left out in the last 1 s", message, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static async Task RejectedAsync(System.Net.IPEndPoint gateway)
    {
        using Socket client = await HostFixture.ConnectAsync(gateway, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        try
        {
            // The gateway logs (or counts) the rejection before it closes the connection.
            Assert.Empty(await RawBackend.ReadToEndAsync(client).WaitAsync(HostFixture.SafetyTimeout));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<(EventId Id, string Message)> _entries = new();

        public IReadOnlyCollection<(EventId Id, string Message)> Entries => _entries;

        public int Count(int eventId) => _entries.Count(e => e.Id.Id == eventId);

        public ILogger CreateLogger(string categoryName) => categoryName == MeshGatewayLog.GatewayCategory ? this : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => _entries.Enqueue((eventId, formatter(state, exception)));

        public void Dispose()
        {
        }
    }
}
