using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>
/// One gateway's telemetry: its running totals (<see cref="GatewayCounters"/>), its instruments
/// (<see cref="GatewayMetrics"/>) and its <see cref="GatewayObserver"/>, behind one method per event that does all three.
/// The listener and its connections report an event by calling that method and nothing else, so each event reaches the
/// counters, the metrics and the observer alike, and every observer call is guarded the same way.
/// </summary>
/// <remarks>
/// <para><b>The observer guard.</b> An observer must not throw; one that does must still not stop accepting, fail a
/// drain, leave a socket open or skip a connection's accounting. Each observer call is wrapped here, after the counters
/// and the metrics, and an exception is counted in <see cref="GatewayCounters.ObserverErrors"/> instead, so the faulty
/// observer is visible. A try block costs nothing until something throws.</para>
/// <para><b>Hot path.</b> No allocation and no exception per event: counters are interlocked increments, instruments
/// record only when a metrics listener enabled them and take their tags as stack-passed pairs of cached strings, and an
/// observer event (a <c>ref struct</c>) is built only when there is an observer.</para>
/// </remarks>
internal sealed class GatewayTelemetry : IDisposable
{
    private readonly GatewayObserver? _observer;
    private readonly GatewayMetrics _metrics;

    public GatewayTelemetry(GatewayObserver? observer, IMeterFactory? meterFactory)
    {
        _observer = observer;
        _metrics = new GatewayMetrics(meterFactory);
    }

    /// <summary>The running totals (<see cref="GatewayListener.Counters"/>).</summary>
    public GatewayCounters Counters { get; } = new();

    /// <summary>Whether an observer receives events (the wave trimmer reports to it only then).</summary>
    public bool HasObserver => _observer is not null;

    /// <summary>Describes one bound address for its connections and its byte counts.</summary>
    public ListenerContext CreateListener(IPEndPoint endPoint, string name, bool proxyProtocol) => new(_metrics, endPoint, name, proxyProtocol);

    /// <summary>A connection was accepted (before the limit is checked: a refused one is accepted, then rejected).</summary>
    public void Accepted(ListenerContext listener)
    {
        Counters.OnAccepted();
        _metrics.Accepted(listener.Tag);
    }

    /// <summary>An accepted connection became one of the open ones.</summary>
    public void Opened(ListenerContext listener) => _metrics.ConnectionOpened(listener.Tag);

    /// <summary>An open connection ended, however it ended.</summary>
    public void Ended(ListenerContext listener) => _metrics.ConnectionEnded(listener.Tag);

    /// <summary>A connection was closed without splicing: counted by reason, measured and reported once.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="reason">Why.</param>
    /// <param name="helloError">The reader's error, for the hello rejections.</param>
    /// <param name="serverNameIssues">How the server name departs from a DNS name, once the hello was read.</param>
    public void Rejected(in ConnectionContext connection, RejectionReason reason, ClientHelloError helloError = ClientHelloError.None, HostNameIssues serverNameIssues = HostNameIssues.None)
    {
        Counters.OnRejected(reason);
        _metrics.Rejected(reason, connection.Listener.Tag);
        if (_observer is { } observer)
        {
            try
            {
                observer.OnConnectionRejected(new ConnectionRejectedEvent(reason, connection.ClientEndPoint, connection.Listener.EndPoint, connection.ServerName, helloError, serverNameIssues, connection.Route));
            }
#pragma warning disable CA1031 // Whatever the observer throws is its failure, counted, never the gateway's (see remarks).
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>A ClientHello was read completely (whether or not it is valid), <paramref name="elapsed"/> after accept.</summary>
    public void HelloRead(ListenerContext listener, TimeSpan elapsed) => _metrics.HelloRead(elapsed, listener.Tag);

    /// <summary>An endpoint was chosen in panic mode (no healthy endpoint).</summary>
    public void Panic()
    {
        Counters.OnPanic();
        _metrics.Panic();
    }

    /// <summary>One connect attempt failed or timed out (<paramref name="error"/> is <see cref="SocketError.TimedOut"/> then).</summary>
    /// <param name="connection">The connection; its route is set.</param>
    /// <param name="upstream">The endpoint that failed.</param>
    /// <param name="attempt">1 for the connection's first attempt.</param>
    /// <param name="timedOut">Whether the cluster's connect timeout ended it.</param>
    /// <param name="error">The socket error.</param>
    /// <param name="panic">Whether the endpoint was chosen in panic mode.</param>
    public void ConnectFailed(in ConnectionContext connection, IPEndPoint upstream, int attempt, bool timedOut, SocketError error, bool panic)
    {
        Counters.OnConnectFailed();
        _metrics.ConnectFailed(error);
        if (_observer is { } observer)
        {
            try
            {
                observer.OnUpstreamConnectFailed(new UpstreamConnectFailedEvent(connection.Route!, upstream, attempt, timedOut, error, panic));
            }
#pragma warning disable CA1031 // As in Rejected.
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>A connection was connected upstream and its splice begins.</summary>
    public void Routed(in ConnectionContext connection)
    {
        Counters.OnRouted();
        _metrics.Routed(connection.Route!.Kind, connection.Listener.Tag);
    }

    /// <summary>A connection was handed to its route's terminator.</summary>
    public void Terminated(in ConnectionContext connection)
    {
        Counters.OnTerminated();
        _metrics.Terminated(connection.Listener.Tag);
    }

    /// <summary>A terminator's task faulted (counted with the observer errors: user code that broke its contract).</summary>
    public void TerminatorFaulted() => Counters.OnObserverError();

    /// <summary>A spliced connection ended: the bytes not yet measured, its duration, and the access-log record.</summary>
    /// <param name="connection">The connection; its route and upstream endpoint are set.</param>
    /// <param name="result">How the splice ended; its byte counts include the replayed ClientHello.</param>
    /// <param name="reportedFromClient">Bytes from the client already measured while the splice ran.</param>
    /// <param name="reportedFromUpstream">Bytes from the upstream already measured while the splice ran.</param>
    /// <param name="duration">From accept to close.</param>
    public void Closed(in ConnectionContext connection, in SpliceResult result, long reportedFromClient, long reportedFromUpstream, TimeSpan duration)
    {
        _metrics.Spliced(Math.Max(0, result.BytesFromClient - reportedFromClient), Math.Max(0, result.BytesFromUpstream - reportedFromUpstream), duration, result.CloseReason, connection.Listener.Tag);
        if (_observer is { } observer)
        {
            try
            {
                observer.OnConnectionClosed(new ConnectionClosedEvent(connection.ClientEndPoint, connection.Listener.EndPoint, connection.ServerName, connection.Route!, connection.UpstreamEndPoint!, result, result.BytesFromClient, duration));
            }
#pragma warning disable CA1031 // As in Rejected.
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>An accept failed; the loop waits <paramref name="retryDelay"/> and tries again.</summary>
    public void AcceptFailed(ListenerContext listener, SocketError error, TimeSpan retryDelay)
    {
        Counters.OnAcceptError();
        _metrics.AcceptFailed(listener.Tag);
        if (_observer is { } observer)
        {
            try
            {
                observer.OnAcceptFailed(listener.EndPoint, error, retryDelay);
            }
#pragma warning disable CA1031 // As in Rejected.
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>A drain's deadline passed and <paramref name="count"/> connections were cut.</summary>
    public void Cut(int count)
    {
        Counters.OnCut(count);
        _metrics.Cut(count);
    }

    /// <summary>The gateway stopped.</summary>
    public void Stopped(GatewayStopResult result)
    {
        if (_observer is { } observer)
        {
            try
            {
                observer.OnStopped(result);
            }
#pragma warning disable CA1031 // As in Rejected.
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>A wave of connections drained and its memory was returned (<see cref="GatewayListenerOptions.ReturnMemoryAfterWaves"/>).</summary>
    public void MemoryReturned(int peakConnections, long heapBytesBefore, long heapBytesAfter)
    {
        if (_observer is { } observer)
        {
            try
            {
                observer.OnMemoryReturned(peakConnections, heapBytesBefore, heapBytesAfter);
            }
#pragma warning disable CA1031 // As in Rejected.
            catch (Exception)
#pragma warning restore CA1031
            {
                Counters.OnObserverError();
            }
        }
    }

    /// <summary>Releases the meter (when the gateway created it).</summary>
    public void Dispose() => _metrics.Dispose();
}
