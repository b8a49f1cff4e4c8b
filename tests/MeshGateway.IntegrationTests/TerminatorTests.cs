using System.Net.Sockets;
using MeshGateway.Gateway;
using MeshGateway.IntegrationTests.Infrastructure;
using MeshGateway.Routing;
using MeshGateway.Testing;

namespace MeshGateway.IntegrationTests;

/// <summary>The <see cref="ConnectionTerminator"/> seam: a route hands its connections to in-process code instead of dialling.</summary>
public sealed class TerminatorTests
{
    private const string Sni = "web.default.default.peer-b.external.11111111-2222-3333-4444-555555555555.consul";

    [Fact]
    public async Task Terminator_GetsTheReadBytesThenTheSocket_AndTheConnectionEndsWithItsTask()
    {
        var echo = new EchoTerminator();
        await using TestGateway gateway = TestGateway.Start([new Route(Sni, new UpstreamCluster(Sni, [])) { Terminator = echo }]);
        byte[] hello = TestHello.Create(Sni);
        byte[] first = [.. hello, .. "early"u8];
        using Socket client = await gateway.ConnectAsync();

        await client.SendAsync(first);
        TerminatedConnection handed = await echo.Handed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await client.SendAsync("late"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);
        byte[] answer = await RawBackend.ReadToEndAsync(client).WaitAsync(TimeSpan.FromSeconds(60));

        // The prefix is the ClientHello and whatever came with it; the rest is read from the socket after it.
        Assert.Equal([.. first, .. "late"u8], answer);
        Assert.True(handed.Prefix.Length >= hello.Length && handed.Prefix.Span.StartsWith(hello));
        Assert.Equal(Sni, handed.ServerName);
        Assert.Equal(Sni, handed.Route.Pattern);

        // The accepted socket inherits TCP_NODELAY from the listener (no Nagle delay on the client leg).
        Assert.True(echo.AcceptedNoDelay);
        await gateway.WaitIdleAsync();
        Assert.Equal(1, gateway.Listener.Counters.Terminated);
        Assert.Equal(0, gateway.Listener.Counters.Routed);
        Assert.Equal(0, gateway.Listener.Counters.Rejected);
    }

    [Fact]
    public async Task Terminator_SessionStillOpenAtTheDrainDeadline_IsCut()
    {
        var echo = new EchoTerminator();
        TestGateway gateway = TestGateway.Start([new Route(Sni, new UpstreamCluster(Sni, [])) { Terminator = echo }]);
        try
        {
            using Socket client = await gateway.ConnectAsync();
            await client.SendAsync(TestHello.Create(Sni));
            await echo.Handed.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1, gateway.Listener.ActiveConnections);

            GatewayStopResult result = await gateway.Listener.StopAsync(TimeSpan.Zero).WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(1, result.Cut);
            Assert.Equal(0, gateway.Listener.ActiveConnections);
            await echo.Ended.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            await gateway.DisposeAsync();
        }
    }

    /// <summary>Echoes the prefix, then every byte read from the socket, and closes at the client's end of stream.</summary>
    private sealed class EchoTerminator : ConnectionTerminator
    {
        public TaskCompletionSource<TerminatedConnection> Handed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool AcceptedNoDelay { get; private set; }

        public override Task RunAsync(TerminatedConnection connection)
        {
            AcceptedNoDelay = connection.Socket.NoDelay;
            Handed.TrySetResult(connection);
            return EchoAsync(connection);
        }

        private async Task EchoAsync(TerminatedConnection connection)
        {
            Socket socket = connection.Socket;
            try
            {
                await socket.SendAsync(connection.Prefix);
                byte[] buffer = new byte[1024];
                int read;
                while ((read = await socket.ReceiveAsync(buffer)) > 0)
                {
                    await socket.SendAsync(buffer.AsMemory(0, read));
                }

                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Cut by the listener.
            }
            finally
            {
                socket.Dispose();
                Ended.TrySetResult();
            }
        }
    }
}
