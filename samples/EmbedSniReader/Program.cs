using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using EmbedSniReader;
using MeshGateway.Tls;

// Usage:
//   dotnet run -c Release --project samples/EmbedSniReader                          self-demo, exits 0 when every check passed
//   dotnet run -c Release --project samples/EmbedSniReader -- --listen 127.0.0.1:8443  serve until Ctrl+C
//   (then e.g.: openssl s_client -connect 127.0.0.1:8443 -servername Web.Example -alpn h2 </dev/null)
if (args.Length == 2 && args[0] == "--listen")
{
    if (!IPEndPoint.TryParse(args[1], out IPEndPoint? endPoint))
    {
        Console.Error.WriteLine($"not an address:port: {args[1]}");
        return 2;
    }

    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.Cancel();
    };

    // `kill PID` (SIGTERM) stops it the same way, e.g. when started in the background by a script.
    using PosixSignalRegistration onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
    {
        context.Cancel = true;
        stop.Cancel();
    });
    using var server = new SniServer(endPoint, (n, remote, hello) => hello.WriteTo(Console.Out, n, remote));
    Console.WriteLine($"EmbedSniReader listening on {server.LocalEndPoint}; Ctrl+C stops.");
    await server.RunAsync(stop.Token);
    return 0;
}

if (args.Length != 0)
{
    Console.Error.WriteLine("usage: EmbedSniReader [--listen 127.0.0.1:PORT]");
    return 2;
}

return await SelfDemo.RunAsync();

/// <summary>Starts the server on 127.0.0.1 port 0, connects a few different clients to it and checks what it saw.</summary>
internal static class SelfDemo
{
    private const string MeshName = "web.default.dc1.internal.5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul";

    public static async Task<int> RunAsync()
    {
        var seen = new BlockingCollection<HelloSummary>();
        using var stop = new CancellationTokenSource();
        using var server = new SniServer(new IPEndPoint(IPAddress.Loopback, 0), (n, remote, hello) =>
        {
            lock (Console.Out)
            {
                hello.WriteTo(Console.Out, n, remote);
            }

            seen.Add(hello);
        });
        int port = server.LocalEndPoint.Port;
        Console.WriteLine($"EmbedSniReader self-demo: server on {server.LocalEndPoint}");
        Task serving = server.RunAsync(stop.Token);

        (string What, Func<Task> Client, Func<HelloSummary, bool> Check)[] cases =
        [
            ("TLS 1.3, mesh SNI, ALPN h2 + http/1.1",
                () => TlsClientAsync(port, MeshName, SslProtocols.Tls13, ["h2", "http/1.1"]),
                h => h.Status == ClientHelloStatus.Done && h.ServerName == MeshName && h.Alpn.SequenceEqual(["h2", "http/1.1"]) && h.OffersTls13),
            ("TLS 1.2 only, mixed-case SNI (printed lower-cased), ALPN http/1.1",
                () => TlsClientAsync(port, "API.Example.COM", SslProtocols.Tls12, ["http/1.1"]),
                h => h.Status == ClientHelloStatus.Done && h.ServerName == "api.example.com" && h.Alpn.SequenceEqual(["http/1.1"]) && !h.OffersTls13),
            ("TLS 1.2 or 1.3, no ALPN",
                () => TlsClientAsync(port, "grpc.service.local", SslProtocols.Tls12 | SslProtocols.Tls13, []),
                h => h.Status == ClientHelloStatus.Done && h.ServerName == "grpc.service.local" && h.Alpn.Count == 0 && h.OffersTls13),
            ("TLS 1.3 to an IP address: no SNI",
                () => TlsClientAsync(port, "127.0.0.1", SslProtocols.Tls13, ["h2"]),
                h => h.Status == ClientHelloStatus.Done && h.ServerName is null && h.OffersTls13),
            ("plain HTTP: not TLS",
                () => RawClientAsync(port, "GET / HTTP/1.1\r\nHost: example\r\n\r\n"u8.ToArray()),
                h => h.Status == ClientHelloStatus.NotTls),
        ];

        int passed = 0;
        foreach ((string what, Func<Task> client, Func<HelloSummary, bool> check) in cases)
        {
            Console.WriteLine($"--- {what}");
            Task clientTask = client();
            bool ok = seen.TryTake(out HelloSummary? hello, TimeSpan.FromSeconds(30)) && check(hello!);
            await Quietly(clientTask);
            Console.WriteLine(ok ? "    check         ok" : "    check         FAILED");
            passed += ok ? 1 : 0;
        }

        await stop.CancelAsync();
        await serving;
        Console.WriteLine($"self-demo: {passed}/{cases.Length} checks passed");
        return passed == cases.Length ? 0 : 1;
    }

    /// <summary>An SslStream client; the demo server hangs up after the hello, so the handshake fails by design.</summary>
    private static async Task TlsClientAsync(int port, string host, SslProtocols protocols, string[] alpn)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(
            new SslClientAuthenticationOptions
            {
                TargetHost = host,
                EnabledSslProtocols = protocols,
                ApplicationProtocols = alpn.Length == 0 ? null : [.. alpn.Select(p => new SslApplicationProtocol(p))],
            },
            timeout.Token);
    }

    private static async Task RawClientAsync(int port, byte[] bytes)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        await socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
        byte[] sink = new byte[16];
        while (await socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token) > 0)
        {
        }
    }

    private static async Task Quietly(Task client)
    {
        try
        {
            await client;
        }
        catch (Exception e) when (e is IOException or AuthenticationException or SocketException or OperationCanceledException)
        {
            // Expected: the server closes the connection once it has read the hello.
        }
    }
}
