using System.Net.Sockets;

namespace MeshGateway.Splicing;

/// <summary>
/// Copies bytes both ways between two connections until both are done: the core of a TCP (or TLS passthrough) proxy.
/// Usable on its own: splice two sockets or two streams.
/// </summary>
/// <remarks>
/// <para>One loop per direction, each receive → send; a loop sends only after the previous send completed, so a slow
/// reader slows its writer (back-pressure through the kernel's socket buffers) and at most one buffer per direction
/// is held. Before renting a buffer a loop waits with a zero-byte receive, so an idle connection holds no buffer.</para>
/// <para><b>Half-close.</b> When one side sends FIN, sending to the other side is shut down (it sees FIN) and the
/// opposite direction keeps flowing until it ends too, bounded by <see cref="SpliceOptions.IdleTimeout"/>. For
/// streams, half-close reaches a <see cref="NetworkStream"/> (socket shutdown) or an <see cref="System.Net.Security.SslStream"/>
/// (close_notify); other streams get no signal and keep their write side open until the splice ends.</para>
/// <para><b>Errors.</b> A failure on one side (a reset, a failed send) resets the other side too (SO_LINGER 0, so the
/// peer gets RST, not a clean FIN), and the first reason is recorded once: <see cref="SpliceResult.CloseReason"/>.</para>
/// <para><b>Ownership.</b> The splicer owns both connections: they are closed (disposed) when the returned task completes.</para>
/// </remarks>
/// <example>
/// <code>
/// var splicer = new DuplexSplicer(new SpliceOptions { IdleTimeout = TimeSpan.FromMinutes(5) });
/// SpliceResult result = await splicer.SpliceAsync(acceptedSocket, upstreamSocket, cancellationToken);
/// Console.WriteLine($"{result.CloseReason}: {result.BytesFromClient} up, {result.BytesFromUpstream} down");
/// </code>
/// </example>
public sealed class DuplexSplicer
{
    private readonly SpliceOptions _options;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates a splicer. One instance can run any number of splices at once.</summary>
    /// <param name="options">Timeouts and buffer size; <see cref="SpliceOptions.Default"/> when null.</param>
    /// <param name="timeProvider">The clock for the timeouts and durations; <see cref="TimeProvider.System"/> when null.</param>
    public DuplexSplicer(SpliceOptions? options = null, TimeProvider? timeProvider = null)
    {
        _options = options ?? SpliceOptions.Default;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The options in use.</summary>
    public SpliceOptions Options => _options;

    /// <summary>Splices two connected stream sockets until both directions ended, a side failed, a timeout hit or <paramref name="cancellationToken"/> fired.</summary>
    /// <param name="client">The accepted (downstream) socket.</param>
    /// <param name="upstream">The socket connected to the upstream.</param>
    /// <param name="cancellationToken">Aborts the splice (both sides reset, reason <see cref="SpliceCloseReason.Aborted"/>).</param>
    /// <returns>The outcome; the task does not fault for network errors.</returns>
    /// <exception cref="ArgumentNullException">A socket is null.</exception>
    public Task<SpliceResult> SpliceAsync(Socket client, Socket upstream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(upstream);
        return RunAsync(new SocketSplice(client, upstream, _options, _timeProvider), cancellationToken);
    }

    /// <summary>Splices two streams until both directions ended, a side failed, a timeout hit or <paramref name="cancellationToken"/> fired.</summary>
    /// <param name="client">The client (downstream) stream.</param>
    /// <param name="upstream">The upstream stream.</param>
    /// <param name="cancellationToken">Aborts the splice (reason <see cref="SpliceCloseReason.Aborted"/>).</param>
    /// <returns>The outcome; the task does not fault for I/O errors.</returns>
    /// <exception cref="ArgumentNullException">A stream is null.</exception>
    public Task<SpliceResult> SpliceAsync(Stream client, Stream upstream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(upstream);
        return RunAsync(new StreamSplice(client, upstream, _options, _timeProvider), cancellationToken);
    }

    private static async Task<SpliceResult> RunAsync(SpliceSession session, CancellationToken cancellationToken)
    {
        try
        {
            if (!cancellationToken.CanBeCanceled)
            {
                return await session.RunAsync().ConfigureAwait(false);
            }

            using CancellationTokenRegistration registration = cancellationToken.UnsafeRegister(static s => ((SpliceSession)s!).Abort(), session);
            if (cancellationToken.IsCancellationRequested)
            {
                session.Abort();
            }

            return await session.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            (session as IDisposable)?.Dispose();
        }
    }
}
