using System.Net;
using MeshGateway.Gateway;

namespace MeshGateway.Tests.Gateway;

public sealed class ProxyProtocolTests
{
    public static TheoryData<string, string> Addresses => new()
    {
        { "203.0.113.7:40123", "198.51.100.1:443" },
        { "[2001:db8::7]:5555", "[2001:db8::1]:8443" },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public void WriteThenTryRead_RoundTripsAndEveryStrictPrefixNeedsMoreData(string from, string to)
    {
        IPEndPoint source = IPEndPoint.Parse(from), destination = IPEndPoint.Parse(to);
        byte[] header = new byte[ProxyProtocol.GetLength(source, destination)];
        Assert.Equal(header.Length, ProxyProtocol.Write(header, source, destination));

        Assert.Equal(ProxyHeaderStatus.Done, ProxyProtocol.TryRead([.. header, 0x16, 0x03], out int length, out IPEndPoint? readSource, out IPEndPoint? readDestination));
        Assert.Equal(header.Length, length);
        Assert.Equal(source, readSource);
        Assert.Equal(destination, readDestination);
        for (int i = 0; i < header.Length; i++)
        {
            Assert.Equal(ProxyHeaderStatus.NeedMoreData, ProxyProtocol.TryRead(header.AsSpan(0, i), out _, out _, out _));
        }
    }

    [Fact]
    public void TryRead_Local_DoneWithoutAddresses()
    {
        // Signature, version 2 + LOCAL, UNSPEC, no address block.
        byte[] header = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00];
        Assert.Equal(ProxyHeaderStatus.Done, ProxyProtocol.TryRead(header, out int length, out IPEndPoint? source, out _));
        Assert.Equal(16, length);
        Assert.Null(source);
    }

    [Fact]
    public void TryRead_TlsRecordOrV1Text_Missing()
    {
        Assert.Equal(ProxyHeaderStatus.Missing, ProxyProtocol.TryRead([0x16, 0x03, 0x01], out _, out _, out _));
        Assert.Equal(ProxyHeaderStatus.Missing, ProxyProtocol.TryRead("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"u8, out _, out _, out _));
        Assert.Equal(ProxyHeaderStatus.Missing, ProxyProtocol.TryRead([0x0D, 0x0A, 0x0D, 0x0B], out _, out _, out _));
    }

    [Theory]
    [InlineData(12, 0x10)] // version 1 in binary form
    [InlineData(12, 0x22)] // command 2
    [InlineData(15, 11)]   // TCP/IPv4 with 11 address bytes (needs 12)
    [InlineData(14, 0x04)] // 1 KiB + of addresses and TLVs announced
    public void TryRead_Malformed_Invalid(int offset, byte value)
    {
        byte[] header = new byte[ProxyProtocol.Ipv4HeaderLength];
        ProxyProtocol.Write(header, IPEndPoint.Parse("10.0.0.1:1"), IPEndPoint.Parse("10.0.0.2:2"));
        header[offset] = value;
        Assert.Equal(ProxyHeaderStatus.Invalid, ProxyProtocol.TryRead(header, out _, out _, out _));
    }
}
