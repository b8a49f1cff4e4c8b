namespace MeshGateway.Tls;

/// <summary>Limits applied by <see cref="ClientHelloReader"/>.</summary>
/// <remarks>
/// <c>default(ClientHelloReaderOptions)</c> is valid and means the defaults: a 16 KiB maximum hello and at most
/// <see cref="DefaultMaxEmptyRecords"/> empty handshake records.
/// </remarks>
public readonly struct ClientHelloReaderOptions
{
    /// <summary>
    /// The default for <see cref="MaxHelloSize"/>: 16 KiB, one full TLS record. Every browser, .NET, Go, Java, Envoy and
    /// OpenSSL client in its default configuration sends well under it (about 0.2 to 2 KiB, post-quantum key shares
    /// included); the limit is how many bytes an unauthenticated peer can make a connection buffer before it is routed,
    /// so it stays low unless clients with large hellos are expected (see <see cref="MaxAllowedHelloSize"/>).
    /// </summary>
    public const int DefaultMaxHelloSize = 16 * 1024;

    /// <summary>
    /// The largest ClientHello handshake message the protocol allows, header included: 131,400 bytes (RFC 8446 §4.1.2
    /// vector maxima: version 2, random 32, session id 1+32, cipher suites 2+65,534, compression methods 1+255,
    /// extensions 2+65,535, plus the 4-byte handshake header).
    /// </summary>
    public const int LargestClientHelloMessage = 4 + 2 + 32 + (1 + 32) + (2 + 65_534) + (1 + 255) + (2 + 65_535);

    /// <summary>
    /// The largest value <see cref="MaxHelloSize"/> accepts: the largest legal ClientHello
    /// (<see cref="LargestClientHelloMessage"/>) framed in records of 2^14 bytes, the largest allowed (RFC 8446 §5.1): 9
    /// records, so 131,445 bytes. With it an embedder accepts every hello TLS stacks send, such as OpenSSL's with long
    /// ALPN or certificate_authorities lists; a peer that cuts such a hello into smaller records needs more bytes and gets
    /// <see cref="ClientHelloStatus.TooLarge"/>.
    /// </summary>
    public const int MaxAllowedHelloSize = LargestClientHelloMessage + (ClientHelloReader.RecordHeaderLength * ((LargestClientHelloMessage + ClientHelloReader.MaxRecordPayload - 1) / ClientHelloReader.MaxRecordPayload));

    /// <summary>The default for <see cref="MaxEmptyRecords"/>.</summary>
    public const int DefaultMaxEmptyRecords = 4;

    private readonly int _maxHelloSize;
    private readonly int _maxEmptyRecords;

    /// <summary>
    /// The most input bytes (record headers included) a ClientHello may occupy before the reader reports
    /// <see cref="ClientHelloStatus.TooLarge"/>. 0 means <see cref="DefaultMaxHelloSize"/>; at most
    /// <see cref="MaxAllowedHelloSize"/>, which admits the largest legal hello.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative or above <see cref="MaxAllowedHelloSize"/>.</exception>
    public int MaxHelloSize
    {
        get => _maxHelloSize == 0 ? DefaultMaxHelloSize : _maxHelloSize;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaxAllowedHelloSize);
            _maxHelloSize = value;
        }
    }

    /// <summary>
    /// How many zero-length handshake records are tolerated before the input is rejected as invalid (RFC 8446 §5.1
    /// forbids them; a small allowance keeps old stacks working while bounding the work a peer can cause).
    /// 0 means <see cref="DefaultMaxEmptyRecords"/>; use <see cref="NoEmptyRecords"/> to allow none.
    /// </summary>
    public int MaxEmptyRecords
    {
        get => _maxEmptyRecords == 0 ? DefaultMaxEmptyRecords : _maxEmptyRecords < 0 ? 0 : _maxEmptyRecords;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, NoEmptyRecords);
            _maxEmptyRecords = value;
        }
    }

    /// <summary>Value for <see cref="MaxEmptyRecords"/> that rejects the first empty handshake record.</summary>
    public const int NoEmptyRecords = -1;
}
