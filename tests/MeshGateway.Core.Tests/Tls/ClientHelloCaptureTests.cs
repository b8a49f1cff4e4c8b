using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using MeshGateway.Tls;
using Xunit.Abstractions;

namespace MeshGateway.Tests.Tls;

/// <summary>Hellos written by real TLS clients in this test run (SslStream, openssl s_client), captured over loopback.</summary>
public sealed class ClientHelloCaptureTests
{
    private static readonly TimeSpan s_safetyNet = TimeSpan.FromSeconds(60);
    private static readonly ClientHelloReaderOptions s_large = new() { MaxHelloSize = ClientHelloReaderOptions.MaxAllowedHelloSize };
    private readonly ITestOutputHelper _output;

    public ClientHelloCaptureTests(ITestOutputHelper output) => _output = output;

    public static TheoryData<string, SslProtocols, string[]> SslStreamCases => new()
    {
        { "web.default.dc1.internal.5fcd4b81-a2ca-405a-ac62-0fac602c1949.consul", SslProtocols.Tls12, ["h2"] },
        { "API.Example.COM", SslProtocols.Tls13, ["h2", "http/1.1"] },
        { "grpc.service.local", SslProtocols.Tls12 | SslProtocols.Tls13, [] },
        { "a.b", SslProtocols.Tls13, ["grpc-exp", "h2", "http/1.1", "spdy/3.1"] },
    };

    [Theory]
    [MemberData(nameof(SslStreamCases))]
    public async Task TryRead_SslStreamClientHello_ReportsWhatTheClientSent(string host, SslProtocols protocols, string[] alpn)
    {
        byte[] hello = await CaptureAsync((port, ct) => SslStreamClientAsync(port, host, protocols, alpn, ct));

        HelloResult result = HelloResult.ReadEveryWay(hello);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(hello.Length, result.BytesConsumed);
        Assert.Equal(host, result.ServerName);
        Assert.Equal(alpn.Length == 0 ? "" : "alpn:" + string.Concat(alpn.Select(p => p + ",")), result.Alpn);
        Assert.Equal(0x0303, result.LegacyVersion);
        Assert.Equal(protocols.HasFlag(SslProtocols.Tls13), result.OffersTls13);
        Assert.False(result.Ech);
        AssertEveryPrefixNeedsMoreData(hello);
    }

    [Fact]
    public async Task TryRead_SslStreamClientToUnicodeHost_NameReportedAsSentNotRejected()
    {
        // A .NET client given a Unicode (IDN) host sends it in host_name as UTF-8, not as its A-label (xn--bcher-kva):
        // the reader must accept it and report it, so the caller's policy can reject, route or log it.
        const string host = "b\u00FCcher.example";
        byte[] hello = await CaptureAsync((port, ct) => SslStreamClientAsync(port, host, SslProtocols.Tls13, ["h2"], ct));
        HelloResult result = HelloResult.ReadEveryWay(hello);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(host)), result.ServerName);
        Assert.Equal(HostNameIssues.NonAscii, result.ServerNameIssues);
    }

    [Fact]
    public async Task TryRead_SslStreamClientToIpAddress_NoServerName()
    {
        // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName": clients send no SNI.
        byte[] hello = await CaptureAsync((port, ct) => SslStreamClientAsync(port, "127.0.0.1", SslProtocols.Tls13, ["h2"], ct));
        HelloResult result = HelloResult.ReadEveryWay(hello);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Null(result.ServerName);
        Assert.DoesNotContain("0000", result.ExtensionTypes.Split(','));
    }

    [Fact]
    public async Task TryRead_OpenSslClientHello_ReportsWhatTheClientSent()
    {
        if (FindOpenSsl() is not string openssl)
        {
            _output.WriteLine("openssl is not on PATH: only the SslStream captures ran (apt-get install openssl).");
            return;
        }

        byte[] hello = await CaptureAsync((port, ct) => RunOpenSslAsync(openssl, ct,
            "s_client", "-connect", $"127.0.0.1:{port}", "-servername", "Mixed.Case.Example", "-alpn", "h2,http/1.1", "-tls1_3"));
        HelloResult result = HelloResult.ReadEveryWay(hello);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal("Mixed.Case.Example", result.ServerName);
        Assert.Equal("alpn:h2,http/1.1,", result.Alpn);
        Assert.True(result.OffersTls13);
        Assert.Equal(0x0304, result.MaxSupportedVersion);
        AssertEveryPrefixNeedsMoreData(hello);
    }

    [Fact]
    public async Task TryRead_OpenSslLargeHello_ReassembledFromRealRecords()
    {
        if (FindOpenSsl() is not string openssl)
        {
            _output.WriteLine("openssl is not on PATH: only the SslStream captures ran (apt-get install openssl).");
            return;
        }

        // With X25519MLKEM768 (OpenSSL 3.5+) the hello carries a 1216-byte key share, as Chrome's does. Older OpenSSL
        // (3.0 on Debian 12) cannot, so a ~1.7 KB hello is made with a long ALPN list instead. Either way
        // -max_send_frag 512 makes OpenSSL cut the hello into several real 512-byte records.
        bool mlkem = SupportsMlKem(openssl);
        string alpn = string.Join(",", Enumerable.Range(0, 150).Select(i => $"proto{i:D3}"));
        string[] args = mlkem
            ? ["s_client", "-connect", "", "-servername", "pq.example", "-groups", "X25519MLKEM768:X25519", "-alpn", alpn, "-max_send_frag", "512"]
            : ["s_client", "-connect", "", "-servername", "pq.example", "-alpn", alpn, "-max_send_frag", "512"];
        byte[] hello = await CaptureAsync((port, ct) =>
        {
            args[2] = $"127.0.0.1:{port}";
            return RunOpenSslAsync(openssl, ct, args);
        });
        _output.WriteLine($"openssl {(mlkem ? "X25519MLKEM768" : "long ALPN")} hello: {hello.Length} bytes");

        Assert.InRange(hello.Length, 1500, 4000);
        Assert.True(hello.Length > 512 + 5, "the hello spans several records");
        Assert.Equal(512, (hello[3] << 8) | hello[4]);

        HelloResult result = HelloResult.ReadEveryWay(hello, s_large);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(hello.Length, result.BytesConsumed);
        Assert.Equal("pq.example", result.ServerName);
        Assert.True(result.AlpnTruncated);
        Assert.StartsWith("alpn:proto000,proto001,", result.Alpn, StringComparison.Ordinal);
        AssertEveryPrefixNeedsMoreData(hello);
    }

    [Fact]
    public async Task TryRead_OpenSslHelloOverDefaultLimit_DoneWithTheAllowedMaximum()
    {
        if (FindOpenSsl() is not string openssl)
        {
            _output.WriteLine("openssl is not on PATH: only the SslStream captures ran (apt-get install openssl).");
            return;
        }

        // A long ALPN list (legal up to 2^16-1 bytes) makes OpenSSL send a ~40 KB hello in three full records: over the
        // 16 KiB default, which is why the allowed maximum covers the largest legal hello.
        string alpn = string.Join(",", Enumerable.Range(0, 4000).Select(i => $"p{i:D8}"));
        byte[] hello = await CaptureAsync((port, ct) => RunOpenSslAsync(openssl, ct,
            "s_client", "-connect", $"127.0.0.1:{port}", "-servername", "big.example", "-alpn", alpn));
        _output.WriteLine($"openssl long-ALPN hello: {hello.Length} bytes");
        Assert.InRange(hello.Length, ClientHelloReaderOptions.DefaultMaxHelloSize + 1, ClientHelloReaderOptions.MaxAllowedHelloSize);

        Assert.Equal(ClientHelloStatus.TooLarge, ClientHelloReader.TryRead(hello, out _));
        HelloResult result = HelloResult.ReadEveryWay(hello, s_large);
        Assert.Equal(ClientHelloStatus.Done, result.Status);
        Assert.Equal(hello.Length, result.BytesConsumed);
        Assert.Equal("big.example", result.ServerName);
        Assert.True(result.AlpnTruncated);
    }

    private static void AssertEveryPrefixNeedsMoreData(byte[] hello)
    {
        for (int length = 0; length < hello.Length; length++)
        {
            Assert.Equal(ClientHelloStatus.NeedMoreData, ClientHelloReader.TryRead(hello.AsSpan(0, length), s_large, out _));
        }
    }

    /// <summary>
    /// Listens on 127.0.0.1 port 0, runs <paramref name="client"/> against it and returns the bytes the client sent
    /// up to the end of its ClientHello (read until the reader stops asking for more). Then closes the connection,
    /// which makes the client give up.
    /// </summary>
    private static async Task<byte[]> CaptureAsync(Func<int, CancellationToken, Task> client)
    {
        using var cts = new CancellationTokenSource(s_safetyNet);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        Task clientTask = Task.CompletedTask;
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            clientTask = Task.Run(() => client(port, cts.Token), cts.Token);
            using Socket socket = await listener.AcceptSocketAsync(cts.Token);
            byte[] buffer = new byte[ClientHelloReaderOptions.MaxAllowedHelloSize];
            int received = 0;
            int reads = 0;
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, cts.Token);
                Assert.True(n > 0, "the client closed before its hello was complete");
                received += n;
                Assert.True(++reads < 1000, "too many reads");
                ClientHelloStatus status = ClientHelloReader.TryRead(buffer.AsSpan(0, received), s_large, out ClientHelloInfo info);
                if (status != ClientHelloStatus.NeedMoreData)
                {
                    Assert.Equal(ClientHelloStatus.Done, status);
                    return buffer.AsSpan(0, info.BytesConsumed).ToArray();
                }
            }
        }
        finally
        {
            listener.Stop();
            await cts.CancelAsync();
            try
            {
                await clientTask;
            }
            catch (Exception e) when (e is IOException or AuthenticationException or OperationCanceledException or SocketException)
            {
                // Expected: the capture server hangs up after the hello.
            }
        }
    }

    private static async Task SslStreamClientAsync(int port, string host, SslProtocols protocols, string[] alpn, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, ct);
        using var ssl = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = host,
            EnabledSslProtocols = protocols,
            ApplicationProtocols = alpn.Length == 0 ? null : [.. alpn.Select(p => new SslApplicationProtocol(p))],
        };
        await ssl.AuthenticateAsClientAsync(options, ct);
    }

    /// <summary>Runs openssl with stdin closed; kills it (by its own process object) if it is still running when done.</summary>
    private static async Task RunOpenSslAsync(string openssl, CancellationToken ct, params string[] args)
    {
        var info = new ProcessStartInfo(openssl)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException("openssl did not start");
        try
        {
            process.StandardInput.Close();
            Task<string> stdout = process.StandardOutput.ReadToEndAsync(ct);
            Task<string> stderr = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            await Task.WhenAll(stdout, stderr);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    private static string? FindOpenSsl()
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            string candidate = Path.Combine(directory, "openssl");
            if (directory.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool SupportsMlKem(string openssl)
    {
        var info = new ProcessStartInfo(openssl, ["list", "-kem-algorithms"]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using Process process = Process.Start(info)!;
        try
        {
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit((int)s_safetyNet.TotalMilliseconds);
            return output.Contains("X25519MLKEM768", StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
