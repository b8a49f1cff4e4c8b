using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MeshGateway.Tls;

/// <summary>
/// What <see cref="ClientHelloReader"/> learned from a ClientHello. The values that matter for routing are copied
/// into the struct itself, so the result does not depend on the input buffer staying alive and is the same for
/// single-record, multi-record and multi-segment input.
/// </summary>
/// <remarks>
/// <para>Only meaningful when the reader returned <see cref="ClientHelloStatus.Done"/>; otherwise see <see cref="Error"/>
/// (the other members then hold whatever was read before the failure).</para>
/// <para>Inline storage limits (the struct never refers to the caller's buffer):</para>
/// <list type="bullet">
/// <item>host_name: <see cref="MaxHostNameLength"/> bytes, the protocol maximum; a longer name is rejected
/// (<see cref="ClientHelloError.HostNameTooLong"/>).</item>
/// <item>ALPN: the protocol_name_list is kept up to <see cref="MaxAlpnLength"/> bytes. A longer (legal) list is still
/// fully validated and accepted; the reader then keeps the leading protocols that fit whole and sets
/// <see cref="AlpnTruncated"/>.</item>
/// <item>Extension types: up to <see cref="MaxExtensions"/>; more is rejected as <see cref="ClientHelloError.TooManyExtensions"/>
/// (no real client sends more than about 25; the bound keeps duplicate detection and storage fixed-size).</item>
/// </list>
/// <para>The struct is about 0.6 KB: pass it by <see langword="ref"/> or <see langword="in"/>, not by value.</para>
/// </remarks>
public struct ClientHelloInfo
{
    /// <summary>The longest host_name the reader accepts (RFC 1035 / RFC 6066 §3): 255 bytes.</summary>
    public const int MaxHostNameLength = 255;

    /// <summary>The most extensions the reader tracks in one hello; more is <see cref="ClientHelloError.TooManyExtensions"/>.</summary>
    public const int MaxExtensions = 64;

    /// <summary>
    /// How many bytes of the ALPN protocol_name_list (RFC 7301 §3.1, without its 2-byte length) are kept inline. Longer lists
    /// are accepted; the protocols that fit whole are kept and <see cref="AlpnTruncated"/> is set.
    /// </summary>
    public const int MaxAlpnLength = 128;

    // The buffers are only meaningful up to their lengths in _state; the reader resets _state alone (36 bytes),
    // not the whole ~0.6 KB struct, so stale bytes past those lengths are never exposed.
    private HostNameBuffer _serverName;
    private AlpnBuffer _alpn;
    private ExtensionTypeBuffer _extensionTypes;
    private State _state;

    /// <summary>How many input bytes the ClientHello occupied, record headers included. Forward exactly these (and whatever followed them).</summary>
    public int BytesConsumed
    {
        readonly get => _state.BytesConsumed;
        internal set => _state.BytesConsumed = value;
    }

    /// <summary>Why the input was rejected; <see cref="ClientHelloError.None"/> after <see cref="ClientHelloStatus.Done"/>.</summary>
    public ClientHelloError Error
    {
        readonly get => _state.Error;
        internal set => _state.Error = value;
    }

    /// <summary>The legacy_record_version of the first record (RFC 8446 §5.1), e.g. 0x0301.</summary>
    public ushort RecordVersion
    {
        readonly get => _state.RecordVersion;
        internal set => _state.RecordVersion = value;
    }

    /// <summary>The ClientHello's legacy_version (RFC 8446 §4.1.2): 0x0303 for TLS 1.2 and 1.3 clients.</summary>
    public ushort LegacyVersion
    {
        readonly get => _state.LegacyVersion;
        internal set => _state.LegacyVersion = value;
    }

    /// <summary>Whether a supported_versions extension (RFC 8446 §4.2.1) was present.</summary>
    public bool HasSupportedVersions
    {
        readonly get => _state.HasSupportedVersions;
        internal set => _state.HasSupportedVersions = value;
    }

    /// <summary>Whether supported_versions offers TLS 1.3 (0x0304).</summary>
    public bool OffersTls13
    {
        readonly get => _state.OffersTls13;
        internal set => _state.OffersTls13 = value;
    }

    /// <summary>
    /// The highest version in supported_versions, GREASE values (RFC 8701) excluded; 0 when the extension is absent
    /// (the client then speaks at most <see cref="LegacyVersion"/>).
    /// </summary>
    public ushort MaxSupportedVersion
    {
        readonly get => _state.MaxSupportedVersion;
        internal set => _state.MaxSupportedVersion = value;
    }

    /// <summary>
    /// Whether an encrypted_client_hello extension (0xfe0d) is present. The <see cref="ServerName"/> is then the outer,
    /// public name, not the name the client wants to reach.
    /// </summary>
    public bool HasEncryptedClientHello
    {
        readonly get => _state.HasEncryptedClientHello;
        internal set => _state.HasEncryptedClientHello = value;
    }

    /// <summary>The number of entries in cipher_suites, GREASE values included.</summary>
    public int CipherSuiteCount
    {
        readonly get => _state.CipherSuiteCount;
        internal set => _state.CipherSuiteCount = value;
    }

    /// <summary>Whether the hello carried a server_name extension with a host_name.</summary>
    public readonly bool HasServerName => _state.ServerNameLength > 0;

    /// <summary>Whether the host_name ends with a dot. RFC 6066 §3 forbids it; it is reported, never stripped.</summary>
    public readonly bool ServerNameEndsWithDot => _state.ServerNameLength > 0 && _serverName[_state.ServerNameLength - 1] == (byte)'.';

    /// <summary>
    /// How the host_name departs from a valid DNS host name (<see cref="HostNameIssues.None"/> when it is one, or when
    /// there is no host_name). The reader accepts any bytes in a host_name of 1 to <see cref="MaxHostNameLength"/> bytes
    /// and reports them here; what to do with a name that is not a DNS name is the caller's policy.
    /// </summary>
    /// <remarks>
    /// <para>Classified from the kept name on each call (block-wise, about 10 ns for a 70-byte name), not by the reader:
    /// a router that routes on the name and never asks pays nothing for it. Read it once into a local when it is needed
    /// more than once.</para>
    /// <para>The gateway (<c>GatewayListener</c>) rejects names with <see cref="HostNameIssues.NonAscii"/> or
    /// <see cref="HostNameIssues.ControlOrSpace"/> (rejection reason <c>InvalidServerName</c>; it tests just those bytes,
    /// with <see cref="ServerNameHasNonVisibleAscii"/>) and lets the route table judge the rest; an embedder may route,
    /// log or fingerprint such names instead.</para>
    /// </remarks>
    public readonly HostNameIssues ServerNameIssues =>
        _state.ServerNameLength == 0 ? HostNameIssues.None : HostNameClassifier.Classify(ServerName, _serverName);

    /// <summary>
    /// Whether the host_name holds a byte outside visible ASCII (0x21-0x7E): exactly when <see cref="ServerNameIssues"/>
    /// includes <see cref="HostNameIssues.NonAscii"/> or <see cref="HostNameIssues.ControlOrSpace"/>, at the cost of one
    /// vectorised scan (the check a router that only rejects such names needs).
    /// </summary>
    public readonly bool ServerNameHasNonVisibleAscii => ServerName.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E);

    /// <summary>Whether the hello carried a host_name that is a valid DNS host name (<see cref="ServerNameIssues"/> is <see cref="HostNameIssues.None"/>).</summary>
    public readonly bool HasDnsServerName => _state.ServerNameLength > 0 && ServerNameIssues == HostNameIssues.None;

    /// <summary>
    /// The host_name bytes exactly as sent: usually ASCII, but any bytes are possible (see <see cref="ServerNameIssues"/>;
    /// decode or log them with care). Empty when <see cref="HasServerName"/> is false.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> ServerName => ((ReadOnlySpan<byte>)_serverName)[.._state.ServerNameLength];

    /// <summary>Whether the hello carried an application_layer_protocol_negotiation extension (RFC 7301).</summary>
    public bool HasAlpn
    {
        readonly get => _state.HasAlpn;
        internal set => _state.HasAlpn = value;
    }

    /// <summary>
    /// Whether the ALPN list was longer than <see cref="MaxAlpnLength"/>: <see cref="AlpnProtocolsRaw"/> then holds only the
    /// leading protocols that fit whole. The full list was still validated.
    /// </summary>
    public bool AlpnTruncated
    {
        readonly get => _state.AlpnTruncated;
        internal set => _state.AlpnTruncated = value;
    }

    /// <summary>
    /// The ALPN protocol_name_list as sent, without its 2-byte length: each protocol is a 1-byte length and that many
    /// bytes (RFC 7301 §3.1). Empty when <see cref="HasAlpn"/> is false. See <see cref="AlpnTruncated"/>.
    /// </summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> AlpnProtocolsRaw => ((ReadOnlySpan<byte>)_alpn)[.._state.AlpnLength];

    /// <summary>The ALPN protocols in the client's order of preference, each as raw bytes (e.g. "h2", "http/1.1").</summary>
    /// <example><code>foreach (ReadOnlySpan&lt;byte&gt; protocol in hello.AlpnProtocols) { ... }</code></example>
    [UnscopedRef]
    public readonly AlpnProtocolEnumerator AlpnProtocols => new(AlpnProtocolsRaw);

    /// <summary>The number of extensions in the hello (at most <see cref="MaxExtensions"/>).</summary>
    public readonly int ExtensionCount => _state.ExtensionCount;

    /// <summary>The extension types in the order sent, GREASE values included: enough for JA3/JA4-style fingerprints.</summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<ushort> ExtensionTypes => ((ReadOnlySpan<ushort>)_extensionTypes)[.._state.ExtensionCount];

    /// <summary>Copies the host_name into <paramref name="destination"/> with ASCII letters lower-cased (other bytes as they are), without allocating.</summary>
    /// <param name="destination">Receives the name; <see cref="MaxHostNameLength"/> bytes always suffice.</param>
    /// <returns>The number of bytes written, or -1 when <paramref name="destination"/> is too small.</returns>
    public readonly int CopyServerNameLowerCase(Span<byte> destination)
    {
        ReadOnlySpan<byte> name = ServerName;
        if (name.Length > destination.Length)
        {
            return -1;
        }

        // Ascii.ToLower stops at the first byte outside ASCII, and a host_name may hold such bytes (ServerNameIssues):
        // lower-case the ASCII letters and copy every other byte as it is, so the result is always the whole name.
        if (System.Text.Ascii.ToLower(name, destination, out int written) != System.Buffers.OperationStatus.Done)
        {
            for (int i = written; i < name.Length; i++)
            {
                byte b = name[i];
                destination[i] = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
            }
        }

        return name.Length;
    }

    /// <summary>The whole inline host_name buffer, for the reader to fill before <see cref="SetServerNameLength"/>.</summary>
    [UnscopedRef]
    internal Span<byte> ServerNameBuffer => _serverName;

    internal void SetServerNameLength(int length) => _state.ServerNameLength = length;

    /// <summary>The whole inline ALPN buffer, for the reader to fill before <see cref="SetAlpnLength"/>.</summary>
    [UnscopedRef]
    internal Span<byte> AlpnBufferSpan => _alpn;

    internal void SetAlpnLength(int length) => _state.AlpnLength = length;

    /// <summary>The whole inline extension type list (<see cref="MaxExtensions"/> slots), for the reader to fill before <see cref="SetExtensionCount"/>.</summary>
    [UnscopedRef]
    internal Span<ushort> ExtensionTypeSlots => _extensionTypes;

    /// <summary>Sets how many slots of <see cref="ExtensionTypeSlots"/> hold recorded types (at most <see cref="MaxExtensions"/>).</summary>
    internal void SetExtensionCount(int count) => _state.ExtensionCount = count;

    /// <summary>Starts a new read: clears every scalar and length, leaving the inline buffers as they are (see remarks on the fields).</summary>
    internal void Reset() => _state = default;

    /// <summary>One byte more than the longest name, so the classifier reads it in whole 16-byte blocks.</summary>
    [InlineArray(HostNameClassifier.BufferLength)]
    private struct HostNameBuffer
    {
        private byte _element0;
    }

    [InlineArray(MaxAlpnLength)]
    private struct AlpnBuffer
    {
        private byte _element0;
    }

    [InlineArray(MaxExtensions)]
    private struct ExtensionTypeBuffer
    {
        private ushort _element0;
    }

    private struct State
    {
        public int BytesConsumed;
        public ClientHelloError Error;
        public int CipherSuiteCount;
        public int ServerNameLength;
        public int AlpnLength;
        public int ExtensionCount;
        public ushort RecordVersion;
        public ushort LegacyVersion;
        public ushort MaxSupportedVersion;
        public bool HasSupportedVersions;
        public bool OffersTls13;
        public bool HasEncryptedClientHello;
        public bool HasAlpn;
        public bool AlpnTruncated;
    }
}
