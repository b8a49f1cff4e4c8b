using System.Net;
using System.Runtime.InteropServices;
using MeshGateway.Gateway;
using MeshGateway.Routing;
using MeshGateway.Splicing;
using SniGateway;

const string Usage = """
    SniGateway --listen ADDR:PORT [--listen ADDR:PORT ...] --routes FILE
               [--connect-timeout-ms 5000] [--hello-timeout-ms 10000] [--idle-timeout-s 3600]
               [--max-connections 50000] [--drain-s 5] [--splice-pipes 0] [--access-log]
               [--engine sockets|event-loop] [--event-loop-threads 1] [--event-loop-bulk-pause-us 100] [--buffer-size 32768]

    Routes TLS connections by SNI to the endpoints in FILE without decrypting them. Unknown or missing SNI is refused.
    FILE: {"routes":[{"sni":"web.default.dc1.internal.<uuid>.consul","endpoints":["127.0.0.1:19440"]}]}
    --buffer-size BYTES: the splice's read size per direction (SpliceOptions.BufferSize, 1024 to 1048576).
    --splice-pipes N: on Linux, move bulk bytes with splice(2) through at most N pipes (SpliceOptions.MaxKernelPipes; 0: off).
    --engine event-loop: on Linux, the gateway's own epoll loops (GatewayIoEngine.EventLoop) instead of .NET's sockets;
    --event-loop-threads N of them (GatewayListenerOptions.EventLoopThreads); --event-loop-bulk-pause-us: their sleep after
    a turn that read a bulk amount (GatewayListenerOptions.EventLoopBulkPause, 0 to 1000; 0: off).
    SIGTERM or Ctrl+C stops accepting, drains open connections for --drain-s seconds, then closes the rest.
    """;

var listen = new List<IPEndPoint>();
string? routesPath = null;
int connectTimeoutMs = 5000, helloTimeoutMs = 10_000, idleTimeoutS = 3600, maxConnections = GatewayListenerOptions.DefaultMaxConnections, drainS = 5, splicePipes = 0, bufferSize = SpliceOptions.DefaultBufferSize;
bool accessLog = false;
GatewayIoEngine engine = GatewayIoEngine.Sockets;
int loopThreads = 1;
TimeSpan bulkPause = GatewayListenerOptions.DefaultEventLoopBulkPause;
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Value() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{args[i]} needs a value.");
        static int Positive(string name, string text) => int.TryParse(text, out int v) && v > 0 ? v : throw new FormatException($"{name} must be a positive integer, not '{text}'.");
        switch (args[i])
        {
            case "--listen":
                string text = Value();
                listen.Add(IPEndPoint.TryParse(text, out IPEndPoint? endPoint) ? endPoint : throw new FormatException($"--listen needs IP:PORT, not '{text}'."));
                break;
            case "--routes": routesPath = Value(); break;
            case "--connect-timeout-ms": connectTimeoutMs = Positive(args[i], Value()); break;
            case "--hello-timeout-ms": helloTimeoutMs = Positive(args[i], Value()); break;
            case "--idle-timeout-s": idleTimeoutS = Positive(args[i], Value()); break;
            case "--max-connections": maxConnections = Positive(args[i], Value()); break;
            case "--drain-s": drainS = Positive(args[i], Value()); break;
            case "--splice-pipes": splicePipes = int.TryParse(Value(), out int pipes) && pipes >= 0 ? pipes : throw new FormatException($"--splice-pipes must be 0 or more, not '{args[i]}'."); break;
            case "--buffer-size":
                bufferSize = Positive(args[i], Value());
                bufferSize = bufferSize is >= 1024 and <= 1024 * 1024 ? bufferSize : throw new FormatException($"--buffer-size must be 1024 to 1048576, not {bufferSize}.");
                break;
            case "--access-log": accessLog = true; break;
            case "--engine":
                string name = Value();
                engine = name switch
                {
                    "sockets" => GatewayIoEngine.Sockets,
                    "event-loop" => GatewayIoEngine.EventLoop,
                    _ => throw new FormatException($"--engine must be sockets or event-loop, not '{name}'."),
                };
                break;
            case "--event-loop-threads":
                loopThreads = Positive(args[i], Value());
                loopThreads = loopThreads <= 64 ? loopThreads : throw new FormatException($"--event-loop-threads must be 1 to 64, not {loopThreads}.");
                break;
            case "--event-loop-bulk-pause-us":
                string pause = Value();
                bulkPause = int.TryParse(pause, out int us) && us is >= 0 and <= 1000 ? TimeSpan.FromMicroseconds(us)
                    : throw new FormatException($"--event-loop-bulk-pause-us must be 0 to 1000, not '{pause}'.");
                break;
            case "-h" or "--help":
                Console.WriteLine(Usage);
                return 0;
            default: throw new FormatException($"Unknown argument '{args[i]}'.");
        }
    }

    if (listen.Count == 0 || routesPath is null)
    {
        throw new FormatException("--listen and --routes are required.");
    }
}
catch (FormatException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}

byte[] routesJson;
try
{
    routesJson = File.ReadAllBytes(routesPath);
}
catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"Cannot read routes from '{routesPath}': {ex.Message}");
    return 2;
}

if (!RouteFileParser.TryParse(routesJson, TimeSpan.FromMilliseconds(connectTimeoutMs), UpstreamCluster.DefaultMaxConnectAttempts, out RouteTable? table, out string? routesError))
{
    Console.Error.WriteLine($"Cannot load routes from '{routesPath}': {routesError}");
    return 2;
}

var options = new GatewayListenerOptions
{
    HelloTimeout = TimeSpan.FromMilliseconds(helloTimeoutMs),
    MaxConnections = maxConnections,
    Engine = engine,
    EventLoopThreads = loopThreads,
    EventLoopBulkPause = bulkPause,
    Splice = new SpliceOptions { IdleTimeout = TimeSpan.FromSeconds(idleTimeoutS), MaxKernelPipes = splicePipes, BufferSize = bufferSize },
};
foreach (IPEndPoint endPoint in listen)
{
    options.EndPoints.Add(endPoint);
}

var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stop.TrySetResult();
}

using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

await using var gateway = new GatewayListener(options, new RouteTableSource(table), new ConsoleObserver(accessLog));
try
{
    gateway.Start();
}
catch (System.Net.Sockets.SocketException ex)
{
    Console.Error.WriteLine($"Cannot listen: {ex.Message}");
    return 1;
}

Console.WriteLine($"SniGateway listening on {string.Join(", ", gateway.LocalEndPoints)} with {table.Routes.Count} routes, connection limit {gateway.ConnectionLimit} (open-file limit {gateway.FileDescriptorLimit?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}), {gateway.Engine} engine");
await stop.Task;
Console.WriteLine("SniGateway stopping");
GatewayStopResult result = await gateway.StopAsync(TimeSpan.FromSeconds(drainS));
Console.WriteLine($"SniGateway stopped: {result.Drained} drained, {result.Cut} cut, {gateway.Counters.Routed} routed, {gateway.Counters.Rejected} rejected, {gateway.Counters.AcceptErrors} failed accepts");
return 0;
