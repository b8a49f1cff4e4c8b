using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace MeshGateway.Splicing;

/// <summary>
/// A reusable <see cref="SocketAsyncEventArgs"/> awaited as a <see cref="ValueTask{TResult}"/>: one receive, send or
/// connect at a time, no allocation per operation and no exception for a network error (the result is -1 and
/// <see cref="SocketAsyncEventArgs.SocketError"/> says why).
/// </summary>
/// <remarks>
/// Modelled on Kestrel's <c>SocketAwaitableEventArgs</c> (aspnetcore: src/Servers/Kestrel/Transport.Sockets/src/Internal).
/// The BCL's <c>Socket.ReceiveAsync(Memory)</c> is allocation-free too, but reports a reset peer by throwing, and a
/// proxy sees resets as a matter of course. The continuation runs on the thread that completed the operation (a
/// thread-pool thread for the sockets engine); the splice loops only issue the next non-blocking call there.
/// </remarks>
internal sealed class SocketOperation : SocketAsyncEventArgs, IValueTaskSource<int>
{
    private static readonly Action<object?> s_completed = static _ => { };
    private Action<object?>? _continuation;

    public SocketOperation()
        : base(unsafeSuppressExecutionContextFlow: true)
    {
    }

    /// <summary>Receives into <paramref name="buffer"/> (empty: waits until data or FIN arrives without taking a buffer).</summary>
    /// <returns>Bytes received, 0 at FIN, -1 on error.</returns>
    public ValueTask<int> ReceiveAsync(Socket socket, Memory<byte> buffer)
    {
        SetBuffer(buffer);
        try
        {
            return socket.ReceiveAsync(this) ? new ValueTask<int>(this, 0) : new ValueTask<int>(SyncResult());
        }
        catch (ObjectDisposedException)
        {
            SocketError = SocketError.OperationAborted;
            return new ValueTask<int>(-1);
        }
    }

    /// <summary>Sends <paramref name="buffer"/>.</summary>
    /// <returns>Bytes sent (the sockets engine sends all of a stream socket's buffer), -1 on error.</returns>
    public ValueTask<int> SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        SetBuffer(System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer));
        try
        {
            return socket.SendAsync(this) ? new ValueTask<int>(this, 0) : new ValueTask<int>(SyncResult());
        }
        catch (ObjectDisposedException)
        {
            SocketError = SocketError.OperationAborted;
            return new ValueTask<int>(-1);
        }
    }

    /// <summary>Connects <paramref name="socket"/> to <paramref name="endPoint"/>.</summary>
    /// <returns>0 when connected, -1 on error.</returns>
    public ValueTask<int> ConnectAsync(Socket socket, EndPoint endPoint)
    {
        SetBuffer(Memory<byte>.Empty);
        RemoteEndPoint = endPoint;
        try
        {
            return socket.ConnectAsync(this) ? new ValueTask<int>(this, 0) : new ValueTask<int>(SyncResult());
        }
        catch (ObjectDisposedException)
        {
            SocketError = SocketError.OperationAborted;
            return new ValueTask<int>(-1);
        }
        catch (SocketException ex)
        {
            SocketError = ex.SocketErrorCode;
            return new ValueTask<int>(-1);
        }
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        _continuation = null;
        return SyncResult();
    }

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token)
        => ReferenceEquals(_continuation, s_completed) ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        UserToken = state;
        Action<object?>? previous = Interlocked.CompareExchange(ref _continuation, continuation, null);
        if (ReferenceEquals(previous, s_completed))
        {
            UserToken = null;
            ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
        }
    }

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        Action<object?>? continuation = _continuation;
        if (continuation is not null || (continuation = Interlocked.CompareExchange(ref _continuation, s_completed, null)) is not null)
        {
            object? state = UserToken;
            UserToken = null;
            _continuation = s_completed;
            continuation(state);
        }
    }

    private int SyncResult() => SocketError == SocketError.Success ? BytesTransferred : -1;
}
