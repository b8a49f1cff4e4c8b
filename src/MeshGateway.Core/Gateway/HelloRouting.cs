using System.Net;
using MeshGateway.Routing;
using MeshGateway.Tls;

namespace MeshGateway.Gateway;

/// <summary>
/// The gateway's decision on a ClientHello, shared by both I/O engines (<see cref="GatewayConnection"/> on the
/// runtime's sockets, <see cref="EventLoopConnection"/> on the event loop): read it, then reject it with a reason
/// (reported once) or route it.
/// </summary>
internal static class HelloRouting
{
    /// <summary>Reads the hello bytes so far.</summary>
    /// <param name="owner">The listener (reader options).</param>
    /// <param name="input">The bytes received so far.</param>
    /// <param name="full">Whether <paramref name="input"/> already holds the most a hello may take: incomplete is then too large.</param>
    /// <param name="hello">The parsed hello (as far as it got).</param>
    /// <param name="status">The reader's verdict, <see cref="ClientHelloStatus.TooLarge"/> for a full, incomplete input.</param>
    /// <returns>False while more bytes are needed.</returns>
    public static bool TryRead(GatewayListener owner, ReadOnlySpan<byte> input, bool full, out ClientHelloInfo hello, out ClientHelloStatus status)
    {
        status = ClientHelloReader.TryRead(input, in owner.ReaderOptions, out hello);
        if (status == ClientHelloStatus.NeedMoreData)
        {
            if (!full)
            {
                return false;
            }

            status = ClientHelloStatus.TooLarge;
        }

        return true;
    }

    /// <summary>
    /// Decides a complete hello: reports the hello's read time, then either rejects it (reported with the hello's server
    /// name and error; the caller closes the client) or routes it.
    /// </summary>
    /// <param name="owner">The listener (routes, telemetry).</param>
    /// <param name="listener">The address the connection came in on.</param>
    /// <param name="client">The client's address, for the rejection event.</param>
    /// <param name="hello">The hello <see cref="TryRead"/> parsed.</param>
    /// <param name="status">Its status.</param>
    /// <param name="sinceAccept">Time from accept to now (the hello-read metric).</param>
    /// <param name="serverName">
    /// When routed, the server name: an exact route's own bytes when the name is its pattern (the usual case, kept by
    /// reference), else a small copy (a wildcard's match, other letter case). Empty when rejected.
    /// </param>
    /// <returns>The route, or null when the hello was rejected (and reported).</returns>
    public static Route? Decide(GatewayListener owner, ListenerContext listener, EndPoint? client, in ClientHelloInfo hello, ClientHelloStatus status, TimeSpan sinceAccept, out ReadOnlyMemory<byte> serverName)
    {
        serverName = default;
        GatewayTelemetry telemetry = owner.Telemetry;
        telemetry.HelloRead(listener, sinceAccept);
        RejectionReason? rejection = status switch
        {
            ClientHelloStatus.Done => null,
            ClientHelloStatus.NotTls => RejectionReason.NotTls,
            ClientHelloStatus.TooLarge => RejectionReason.HelloTooLarge,
            _ => RejectionReason.InvalidHello,
        };

        // The gateway's policy on host names the reader accepts but reports (ClientHelloInfo.ServerNameIssues): bytes
        // outside ASCII and control characters or spaces (HostNameIssues.NonAscii, ControlOrSpace) are rejected, as
        // Consul's SNI names are ASCII (a Unicode IDN must arrive as its A-label) and such bytes would reach logs; other
        // departures from a DNS name (_ in a service name, empty or long labels) are left to the route table, where
        // they simply fail to match or match a route configured with them. Those two issues are exactly the bytes
        // outside visible ASCII: one vectorised scan here, not a full classification on every connection.
        Route? route = null;
        if (rejection is null && !hello.HasServerName)
        {
            rejection = RejectionReason.NoServerName;
        }
        else if (rejection is null && hello.ServerNameHasNonVisibleAscii)
        {
            rejection = RejectionReason.InvalidServerName;
        }
        else if (rejection is null && !owner.Routes.Current.TryMatch(hello.ServerName, out route))
        {
            rejection = RejectionReason.NoRoute;
        }

        if (rejection is { } reason)
        {
            ClientHelloError helloError = reason is RejectionReason.NotTls or RejectionReason.InvalidHello or RejectionReason.HelloTooLarge ? hello.Error : ClientHelloError.None;

            // The name's classification is for the observer's event only: not computed when no one receives it.
            telemetry.Rejected(new ConnectionContext(listener, client, hello.ServerName), reason, helloError, telemetry.HasObserver ? hello.ServerNameIssues : HostNameIssues.None);
            return null;
        }

        ReadOnlySpan<byte> name = hello.ServerName;
        serverName = name.SequenceEqual(route!.PatternBytes) ? route.PatternBytes : name.ToArray();
        return route;
    }
}
