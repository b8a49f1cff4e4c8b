using BenchmarkDotNet.Attributes;
using MeshGateway.Tests.Tls;
using MeshGateway.Tls;

namespace MeshGateway.Benchmarks.Tls;

/// <summary>
/// JA3 and JA4 of an already-read Chrome-like hello, written into a caller's buffer (0 B allocated); the lists they need
/// are read on request from the same bytes (<see cref="ClientHelloLists.TryRead(ReadOnlySpan{byte}, in ClientHelloInfo, out ClientHelloLists)"/>).
/// </summary>
[MemoryDiagnoser]
public class ClientHelloFingerprintBenchmarks
{
    private readonly char[] _buffer = new char[ClientHelloFingerprint.MaxJa4RawLength];
    private byte[] _input = [];
    private ClientHelloInfo _chrome;

    [GlobalSetup]
    public void Setup()
    {
        _input = ClientHelloFixtures.ChromeLike;
        if (ClientHelloReader.TryRead(_input, out _chrome) != ClientHelloStatus.Done
            || !ClientHelloLists.TryRead(_input, _chrome, out ClientHelloLists lists)
            || !ClientHelloFingerprint.TryFormatJa4(_chrome, lists, _buffer, out _))
        {
            throw new InvalidOperationException("the Chrome-like hello must read and fingerprint");
        }
    }

    [Benchmark(Description = "lists (second walk), Chrome-like")]
    public int Lists()
    {
        ClientHelloLists.TryRead(_input, _chrome, out ClientHelloLists lists);
        return lists.CipherSuitesRaw.Length;
    }

    [Benchmark(Description = "lists + JA4, Chrome-like")]
    public int Ja4()
    {
        ClientHelloLists.TryRead(_input, _chrome, out ClientHelloLists lists);
        ClientHelloFingerprint.TryFormatJa4(_chrome, lists, _buffer, out int written);
        return written;
    }

    [Benchmark(Description = "lists + JA3, Chrome-like")]
    public int Ja3()
    {
        ClientHelloLists.TryRead(_input, _chrome, out ClientHelloLists lists);
        ClientHelloFingerprint.TryFormatJa3(_chrome, lists, _buffer, out int written);
        return written;
    }
}
