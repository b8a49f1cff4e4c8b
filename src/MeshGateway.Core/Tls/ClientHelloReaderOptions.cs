namespace MeshGateway.Tls;

/// <summary>Limits applied by <see cref="ClientHelloReader"/>.</summary>
/// <remarks>
/// <c>default(ClientHelloReaderOptions)</c> is valid and means the defaults: a 16 KiB maximum hello and at most
/// <see cref="DefaultMaxEmptyRecords"/> empty handshake records.
/// </remarks>
public readonly struct ClientHelloReaderOptions
{
    /// <summary>The default for <see cref="MaxHelloSize"/>: 16 KiB.</summary>
    public const int DefaultMaxHelloSize = 16 * 1024;

    /// <summary>The largest value <see cref="MaxHelloSize"/> accepts: 64 KiB.</summary>
    public const int MaxAllowedHelloSize = 64 * 1024;

    /// <summary>The default for <see cref="MaxEmptyRecords"/>.</summary>
    public const int DefaultMaxEmptyRecords = 4;

    private readonly int _maxHelloSize;
    private readonly int _maxEmptyRecords;

    /// <summary>
    /// The most input bytes (record headers included) a ClientHello may occupy before the reader reports
    /// <see cref="ClientHelloStatus.TooLarge"/>. 0 means <see cref="DefaultMaxHelloSize"/>.
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
