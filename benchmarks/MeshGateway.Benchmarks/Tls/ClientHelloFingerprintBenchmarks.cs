using BenchmarkDotNet.Attributes;
using MeshGateway.Tests.Tls;
using MeshGateway.Tls;

namespace MeshGateway.Benchmarks.Tls;

/// <summary>JA3 and JA4 of an already-read Chrome-like hello, written into a caller's buffer (0 B allocated).</summary>
[MemoryDiagnoser]
public class ClientHelloFingerprintBenchmarks
{
    private readonly char[] _buffer = new char[ClientHelloFingerprint.MaxJa4RawLength];
    private ClientHelloInfo _chrome;

    [GlobalSetup]
    public void Setup()
    {
        if (ClientHelloReader.TryRead(ClientHelloFixtures.ChromeLike, new ClientHelloReaderOptions { KeepFingerprintLists = true }, out _chrome) != ClientHelloStatus.Done
            || !ClientHelloFingerprint.TryFormatJa4(_chrome, _buffer, out _))
        {
            throw new InvalidOperationException("the Chrome-like hello must read and fingerprint");
        }
    }

    [Benchmark(Description = "JA4, Chrome-like")]
    public int Ja4()
    {
        ClientHelloFingerprint.TryFormatJa4(_chrome, _buffer, out int written);
        return written;
    }

    [Benchmark(Description = "JA3, Chrome-like")]
    public int Ja3()
    {
        ClientHelloFingerprint.TryFormatJa3(_chrome, _buffer, out int written);
        return written;
    }
}
