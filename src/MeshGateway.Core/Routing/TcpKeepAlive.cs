using System.Net.Sockets;

namespace MeshGateway.Routing;

/// <summary>
/// TCP keepalive for one leg of a connection: probes an idle peer so a dead one (a crashed host, a NAT or firewall that
/// dropped the flow) is noticed and its sockets released instead of lasting until the idle timeout. The settings are
/// Envoy's <c>TcpKeepalive</c>, which Consul fills for a mesh gateway's remote-gateway clusters from the proxy
/// configuration keys <c>envoy_gateway_remote_tcp_enable_keepalive</c>, <c>envoy_gateway_remote_tcp_keepalive_time</c>,
/// <c>…_interval</c> and <c>…_probes</c> (each set only when given: unset values keep the operating system's defaults,
/// on Linux 7200 s, 75 s and 9 probes).
/// </summary>
/// <remarks>
/// Applied with <see cref="Socket.SetSocketOption(SocketOptionLevel, SocketOptionName, int)"/>: <c>SO_KEEPALIVE</c>,
/// then <c>TCP_KEEPIDLE</c>, <c>TCP_KEEPINTVL</c> and <c>TCP_KEEPCNT</c> for the values given; a few system calls per
/// connection, no allocation.
/// </remarks>
public sealed record TcpKeepAlive
{
    /// <summary>The largest <see cref="Time"/> and <see cref="Interval"/>, in seconds, Linux accepts (<c>MAX_TCP_KEEPIDLE</c>, <c>MAX_TCP_KEEPINTVL</c>): 32767.</summary>
    public const int MaxSeconds = 32767;

    /// <summary>The largest <see cref="Probes"/> Linux accepts (<c>MAX_TCP_KEEPCNT</c>): 127.</summary>
    public const int MaxProbes = 127;

    /// <summary>Keepalive with the operating system's timings.</summary>
    public static TcpKeepAlive SystemDefaults { get; } = new();

    private readonly int? _time;
    private readonly int? _interval;
    private readonly int? _probes;

    /// <summary>
    /// Seconds a connection must be idle before the first probe (<c>TCP_KEEPIDLE</c>; Consul
    /// <c>envoy_gateway_remote_tcp_keepalive_time</c>). Default none: the system's.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to <see cref="MaxSeconds"/>.</exception>
    public int? Time
    {
        get => _time;
        init => _time = Check(value, MaxSeconds);
    }

    /// <summary>Seconds between probes (<c>TCP_KEEPINTVL</c>; Consul <c>envoy_gateway_remote_tcp_keepalive_interval</c>). Default none: the system's.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to <see cref="MaxSeconds"/>.</exception>
    public int? Interval
    {
        get => _interval;
        init => _interval = Check(value, MaxSeconds);
    }

    /// <summary>Unanswered probes before the connection is dropped (<c>TCP_KEEPCNT</c>; Consul <c>envoy_gateway_remote_tcp_keepalive_probes</c>). Default none: the system's.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside 1 to <see cref="MaxProbes"/>.</exception>
    public int? Probes
    {
        get => _probes;
        init => _probes = Check(value, MaxProbes);
    }

    /// <summary>Turns keepalive on for <paramref name="socket"/> with these timings.</summary>
    /// <param name="socket">A TCP socket (connected or not).</param>
    /// <returns>Whether every option was set; <see langword="false"/> when the socket is closed or the system refuses one (never throws).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    public bool TryApply(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            if (_time is { } time)
            {
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, time);
            }

            if (_interval is { } interval)
            {
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, interval);
            }

            if (_probes is { } probes)
            {
                socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, probes);
            }

            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or PlatformNotSupportedException)
        {
            // A client that left between accept and here, or a platform without one of the options: the connection
            // goes on without (or with partial) keepalive rather than fail.
            return false;
        }
    }

    private static int? Check(int? value, int max)
    {
        if (value is { } v)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(v, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(v, max);
        }

        return value;
    }
}
