using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Validators;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Tests.Tls;

namespace MeshGateway.Benchmarks.Gateway;

/// <summary>
/// One whole connection through a <see cref="GatewayListener"/> on loopback: accept, read the ClientHello, route,
/// connect, replay, splice a one-byte answer, close. Against the same exchange straight to the backend (the baseline),
/// so the ratio column shows what the gateway adds per connection on this machine even while other work shares it.
/// The observed gateway has an observer overriding every event and a <see cref="MeterListener"/> on every instrument:
/// the whole telemetry path runs for each connection.
/// </summary>
/// <remarks>
/// Run with <c>dotnet run -c Release --project benchmarks/MeshGateway.Benchmarks -- --filter '*GatewayConnection*' --job short</c>.
/// Allocated bytes are the process's (client, gateway and backend together), so compare them between rows and runs,
/// not with zero.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(Config))]
#pragma warning disable CA1001 // BenchmarkDotNet's [GlobalCleanup] disposes them; the class is not used otherwise.
public class GatewayConnectionBenchmarks
#pragma warning restore CA1001
{
    private readonly byte[] _answer = [(byte)'x'];
    private readonly byte[] _readBuffer = new byte[64];
    private byte[] _hello = [];
    private Socket? _backend;
    private CancellationTokenSource? _stop;
    private Task? _backendLoop;
    private GatewayListener? _plain;
    private GatewayListener? _observed;
    private MeterListener? _meterListener;
    private IPEndPoint _backendEndPoint = new(IPAddress.Loopback, 0);
    private IPEndPoint _plainEndPoint = new(IPAddress.Loopback, 0);
    private IPEndPoint _observedEndPoint = new(IPAddress.Loopback, 0);

    [GlobalSetup]
    public void Setup()
    {
        _hello = ClientHelloFixtures.ChromeLike;
        _backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _backend.Listen(512);
        _backendEndPoint = (IPEndPoint)_backend.LocalEndPoint!;
        _stop = new CancellationTokenSource();
        _backendLoop = Task.Run(() => BackendLoopAsync(_backend, _hello.Length, _answer, _stop.Token));

        var routes = new RouteTableSource(RouteTable.Create([new Route(ClientHelloFixtures.ChromeHost, new UpstreamCluster("api", [new UpstreamEndpoint(_backendEndPoint)]))]));
        _plain = Start(routes, observer: null);
        _plainEndPoint = _plain.LocalEndPoints[0];

        _meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == GatewayMetricNames.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _meterListener.SetMeasurementEventCallback<long>(static (_, _, _, _) => { });
        _meterListener.SetMeasurementEventCallback<double>(static (_, _, _, _) => { });
        _meterListener.Start();
        _observed = Start(routes, new EveryEventObserver());
        _observedEndPoint = _observed.LocalEndPoints[0];

        // Each path must work before anything is timed.
        Check(Direct());
        Check(Gateway());
        Check(ObservedGateway());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _observed?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _meterListener?.Dispose();
        _stop?.Cancel();
        _backend?.Dispose();
        try
        {
            _backendLoop?.GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop?.Dispose();
    }

    [Benchmark(Baseline = true, Description = "direct to the backend")]
    public int Direct() => Exchange(_backendEndPoint);

    [Benchmark(Description = "through the gateway")]
    public int Gateway() => Exchange(_plainEndPoint);

    [Benchmark(Description = "through the gateway, observer + metrics on")]
    public int ObservedGateway() => Exchange(_observedEndPoint);

    private static GatewayListener Start(RouteTableSource routes, GatewayObserver? observer)
    {
        var options = new GatewayListenerOptions();
        options.EndPoints.Add(new IPEndPoint(IPAddress.Loopback, 0));
        var listener = new GatewayListener(options, routes, observer);
        listener.Start();
        return listener;
    }

    /// <summary>Connects, sends the hello, reads the one-byte answer and the close.</summary>
    private int Exchange(IPEndPoint endPoint)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.Connect(endPoint);
        client.Send(_hello);
        int total = 0;
        int n;
        while ((n = client.Receive(_readBuffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    private static void Check(int received)
    {
        if (received != 1)
        {
            throw new InvalidOperationException($"expected the backend's one-byte answer, got {received} bytes");
        }
    }

    /// <summary>Per connection: read the whole hello, answer one byte, close.</summary>
    private static async Task BackendLoopAsync(Socket listener, int helloLength, byte[] answer, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket accepted = await listener.AcceptAsync(stop).ConfigureAwait(false);
            _ = ServeAsync(accepted, helloLength, answer);
        }
    }

    private static async Task ServeAsync(Socket socket, int helloLength, byte[] answer)
    {
        using (socket)
        {
            byte[] buffer = new byte[helloLength];
            int read = 0;
            try
            {
                while (read < helloLength)
                {
                    int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None).ConfigureAwait(false);
                    if (n == 0)
                    {
                        return;
                    }

                    read += n;
                }

                await socket.SendAsync(answer, SocketFlags.None).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // The client went away: nothing to serve.
            }
        }
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.Min);
            AddValidator(JitOptimizationsValidator.FailOnError);
        }
    }

    /// <summary>Overrides every event, doing as little as an observer can (reads one field).</summary>
    private sealed class EveryEventObserver : GatewayObserver
    {
        private long _events;

        public override void OnConnectionClosed(in ConnectionClosedEvent connection) => _events += connection.BytesFromUpstream;

        public override void OnConnectionRejected(in ConnectionRejectedEvent rejection) => _events++;

        public override void OnUpstreamConnectFailed(in UpstreamConnectFailedEvent failure) => _events++;
    }
}
