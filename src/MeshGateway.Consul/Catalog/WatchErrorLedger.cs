using System.Net;

namespace MeshGateway.Consul;

/// <summary>
/// Remembers the current failure cause of each watch source so that a failure is reported once per distinct cause
/// (not once per try), and a recovery once when the source answers again. Every failure is still counted.
/// </summary>
/// <remarks>A source is a kind of request (<c>health/connect/*</c>), not one URL, so a failing agent yields one report per
/// kind whatever the catalog size. Thread-safe.</remarks>
internal sealed class WatchErrorLedger
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string Cause, long Count)> _active = new(StringComparer.Ordinal);
    private readonly CountSignal _total = new();

    /// <summary>All failures so far.</summary>
    public long Total => _total.Value;

    /// <summary>Completes once <see cref="Total"/> is at least <paramref name="count"/> (a change signal for tests).</summary>
    public Task WhenTotalAtLeastAsync(long count, CancellationToken cancellationToken) => _total.WhenAtLeastAsync(count, cancellationToken);

    /// <summary>Counts a failure of <paramref name="source"/>; true when its cause differs from the source's current one (report it).</summary>
    public bool Fail(string source, Exception error)
    {
        _total.Increment();
        string cause = CauseOf(error);
        lock (_gate)
        {
            if (_active.TryGetValue(source, out (string Cause, long Count) current) && current.Cause == cause)
            {
                _active[source] = (cause, current.Count + 1);
                return false;
            }

            _active[source] = (cause, 1);
            return true;
        }
    }

    /// <summary>Marks <paramref name="source"/> healthy; returns how many failures it had since it last was, or 0.</summary>
    public long Succeed(string source)
    {
        lock (_gate)
        {
            return _active.Remove(source, out (string Cause, long Count) current) ? current.Count : 0;
        }
    }

    /// <summary>The cause of a failure, without request-specific detail (service names, ports), so one agent outage is one cause.</summary>
    internal static string CauseOf(Exception error) => error switch
    {
        ConsulTransportException t => t.IsTimeout ? "timeout" : "transport:" + (Innermost(t) is System.Net.Sockets.SocketException s ? s.SocketErrorCode.ToString() : Innermost(t).GetType().Name),
        ConsulException { StatusCode: HttpStatusCode status } c => c.GetType().Name + ":" + ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => error.GetType().FullName ?? error.GetType().Name,
    };

    private static Exception Innermost(Exception error)
    {
        while (error.InnerException is not null)
        {
            error = error.InnerException;
        }

        return error;
    }
}
