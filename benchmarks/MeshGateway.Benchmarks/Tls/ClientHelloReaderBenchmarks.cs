using System.Buffers;
using System.Net.Security;
using System.Security.Authentication;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Validators;
using MeshGateway.Tests.Tls;
using MeshGateway.Tls;

namespace MeshGateway.Benchmarks.Tls;

/// <summary>
/// The ClientHello reader on realistic hellos, against the way a .NET user gets the SNI name today: an
/// <see cref="SslStream"/> server whose <c>ServerCertificateSelectionCallback</c> receives it.
/// </summary>
/// <remarks>
/// The default (out-of-process, generated csproj) toolchain of BenchmarkDotNet 0.14.0 works with net10.0 here, so no
/// in-process toolchain is needed. Median and Min are shown next to the Mean because the benchmark machine is shared:
/// other builds inflate the mean and its error, the minimum shows the undisturbed cost.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class ClientHelloReaderBenchmarks
{
    /// <summary>A typical MSS with TCP timestamps: where a 1.8 KB hello is cut into two segments.</summary>
    private const int SegmentSize = 1448;

    private byte[] _tls12Small = [];
    private byte[] _chromeLike = [];
    private byte[] _postQuantum = [];
    private byte[] _postQuantumTwoRecords = [];
    private ReadOnlySequence<byte> _postQuantumTwoSegments;

    [GlobalSetup]
    public void Setup()
    {
        _tls12Small = ClientHelloFixtures.Tls12Small;
        _chromeLike = ClientHelloFixtures.ChromeLike;
        _postQuantum = ClientHelloFixtures.PostQuantum;
        _postQuantumTwoRecords = ClientHelloFixtures.Record(ClientHelloFixtures.Unrecord(_postQuantum), [1024]);
        _postQuantumTwoSegments = TwoSegments(_postQuantum, SegmentSize);

        // Every shape must give the same answer before anything is timed.
        string expected = Describe(ClientHelloReader.TryRead(_postQuantum, out ClientHelloInfo one), one);
        Check(expected, Describe(ClientHelloReader.TryRead(_postQuantumTwoSegments, out ClientHelloInfo segments), segments));
        Check(expected.Replace($"/{_postQuantum.Length}", $"/{_postQuantumTwoRecords.Length}", StringComparison.Ordinal),
            Describe(ClientHelloReader.TryRead(_postQuantumTwoRecords, out ClientHelloInfo records), records));
        Check($"Done/{ClientHelloFixtures.ChromeHost}", SslStreamServerName(_chromeLike) is string name ? $"Done/{name}" : "none");
        Check("Done/Example.com", Describe(ClientHelloReader.TryRead(_tls12Small, out ClientHelloInfo small), small).Split('/')[0] + "/Example.com");
        Check(Describe(ClientHelloReader.TryRead(_chromeLike, out ClientHelloInfo chrome), chrome).Split('/')[0], "Done");
    }

    [Benchmark(Baseline = true, Description = "SslStream SNI callback, Chrome-like 600 B")]
    public string? SslStreamServerCertificateSelection() => SslStreamServerName(_chromeLike);

    [Benchmark(Description = "TLS 1.2 small (103 B)")]
    public int Tls12Small() => Read(_tls12Small);

    [Benchmark(Description = "Chrome-like (~600 B)")]
    public int ChromeLike() => Read(_chromeLike);

    [Benchmark(Description = "post-quantum (~1.8 KB)")]
    public int PostQuantum() => Read(_postQuantum);

    [Benchmark(Description = "post-quantum, 2 segments")]
    public int PostQuantumTwoSegments()
    {
        ClientHelloReader.TryRead(_postQuantumTwoSegments, out ClientHelloInfo hello);
        return hello.BytesConsumed + hello.ServerName.Length;
    }

    [Benchmark(Description = "post-quantum, 2 records")]
    public int PostQuantumTwoRecords() => Read(_postQuantumTwoRecords);

    private static int Read(byte[] input)
    {
        ClientHelloReader.TryRead(input, out ClientHelloInfo hello);
        return hello.BytesConsumed + hello.ServerName.Length;
    }

    /// <summary>
    /// What a .NET server does today to learn the SNI name: start an SslStream server handshake over an in-memory
    /// stream holding the hello, take the name from <c>ServerCertificateSelectionCallback</c> and stop there (the
    /// callback throws, so no certificate or key exchange work is included).
    /// </summary>
    private static string? SslStreamServerName(byte[] hello)
    {
        string? name = null;
        using var ssl = new SslStream(new HelloStream(hello), leaveInnerStreamOpen: false);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateSelectionCallback = (_, hostName) =>
            {
                name = hostName;
                throw new NameSeenException();
            },
        };
        try
        {
            ssl.AuthenticateAsServer(options);
        }
        catch (NameSeenException)
        {
        }
        catch (AuthenticationException)
        {
        }

        return name;
    }

    private static string Describe(ClientHelloStatus status, in ClientHelloInfo hello) =>
        $"{status}/{System.Text.Encoding.ASCII.GetString(hello.ServerName)}/{hello.BytesConsumed}/{hello.ExtensionCount}/{hello.OffersTls13}";

    private static void Check(string expected, string actual)
    {
        if (expected != actual)
        {
            throw new InvalidOperationException($"benchmark inputs disagree: expected {expected}, got {actual}");
        }
    }

    private static ReadOnlySequence<byte> TwoSegments(byte[] data, int firstLength)
    {
        var first = new Segment(data.AsMemory(0, firstLength), 0);
        var second = new Segment(data.AsMemory(firstLength), firstLength);
        first.SetNext(second);
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(StatisticColumn.Median, StatisticColumn.Min);
            AddValidator(JitOptimizationsValidator.FailOnError);
        }
    }

    private sealed class NameSeenException : Exception
    {
    }

    /// <summary>The client side of an in-memory stream pair: reads return the hello, writes are discarded.</summary>
    private sealed class HelloStream(byte[] hello) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, hello.Length - _position);
            hello.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
