using System.Text;
using MeshGateway.Gateway;

namespace SniGateway;

/// <summary>
/// Writes rejections, connect failures and accept errors to stderr (at most 20 lines per second each, then a
/// "left out" summary: a flood must not turn into a log flood) and, with <c>--access-log</c>, one line per connection to stdout.
/// </summary>
internal sealed class ConsoleObserver(bool accessLog) : GatewayObserver
{
    private const int LinesPerSecond = 20;
    private readonly LogRateLimiter _rejections = new(LinesPerSecond, TimeSpan.FromSeconds(1));
    private readonly LogRateLimiter _connectFailures = new(LinesPerSecond, TimeSpan.FromSeconds(1));
    private readonly LogRateLimiter _acceptFailures = new(LinesPerSecond, TimeSpan.FromSeconds(1));

    public override void OnConnectionClosed(in ConnectionClosedEvent connection)
    {
        if (accessLog)
        {
            Console.Out.WriteLine(
                $"conn client={connection.ClientEndPoint} sni={Encoding.ASCII.GetString(connection.ServerName)} route={connection.Route.Pattern} " +
                $"upstream={connection.UpstreamEndPoint} up={connection.BytesFromClient} down={connection.BytesFromUpstream} " +
                $"ms={connection.Duration.TotalMilliseconds:F1} close={connection.CloseReason}");
        }
    }

    public override void OnConnectionRejected(in ConnectionRejectedEvent rejection)
    {
        if (Allow(_rejections, "reject"))
        {
            Console.Error.WriteLine(
                $"reject reason={rejection.Reason} client={rejection.ClientEndPoint} sni={Encoding.ASCII.GetString(rejection.ServerName)} hello_error={rejection.HelloError}");
        }
    }

    public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure)
    {
        if (Allow(_connectFailures, "connect-failed"))
        {
            Console.Error.WriteLine(
                $"connect-failed route={failure.Route.Pattern} upstream={failure.UpstreamEndPoint} attempt={failure.Attempt} timed_out={failure.TimedOut} error={failure.Error}");
        }
    }

    public override void OnAcceptFailed(System.Net.IPEndPoint listener, System.Net.Sockets.SocketError socketError, TimeSpan retryDelay)
    {
        if (Allow(_acceptFailures, "accept-failed"))
        {
            Console.Error.WriteLine($"accept-failed listener={listener} error={socketError} retry_ms={retryDelay.TotalMilliseconds}");
        }
    }

    private static bool Allow(LogRateLimiter limiter, string what)
    {
        if (!limiter.TryAcquire(out long suppressed))
        {
            return false;
        }

        if (suppressed > 0)
        {
            Console.Error.WriteLine($"suppressed {suppressed} {what} lines (at most {LinesPerSecond} per second)");
        }

        return true;
    }

    public override void OnStopped(GatewayStopResult result)
        => Console.Error.WriteLine($"stopped drained={result.Drained} cut={result.Cut}");

    public override void OnMemoryReturned(int peakConnections, long heapBytesBefore, long heapBytesAfter)
        => Console.Error.WriteLine($"memory returned after a wave of {peakConnections} connections: heap {heapBytesBefore / 1048576.0:0.0} -> {heapBytesAfter / 1048576.0:0.0} MiB");
}
