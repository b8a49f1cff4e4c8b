namespace MeshGateway.Tls;

/// <summary>Why a ClientHello was not accepted. <see cref="None"/> unless the status is a failure.</summary>
public enum ClientHelloError
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The first byte is not the TLS handshake content type (22).</summary>
    NotHandshakeRecord,

    /// <summary>A record's legacy_record_version major byte is not 3 (RFC 8446 §5.1).</summary>
    UnsupportedRecordVersion,

    /// <summary>A record declares more than 2^14 bytes of plaintext (RFC 8446 §5.1).</summary>
    RecordTooLong,

    /// <summary>A record that is not a handshake record arrived before the ClientHello was complete.</summary>
    UnexpectedRecordType,

    /// <summary>More zero-length handshake records than <see cref="ClientHelloReaderOptions.MaxEmptyRecords"/> allows.</summary>
    TooManyEmptyRecords,

    /// <summary>The handshake message type is not client_hello (1).</summary>
    NotClientHello,

    /// <summary>The hello, its records or the bytes needed to complete it exceed <see cref="ClientHelloReaderOptions.MaxHelloSize"/>.</summary>
    HelloTooLarge,

    /// <summary>A nested length field runs past the end of its parent structure.</summary>
    LengthOutOfBounds,

    /// <summary>The legacy_session_id is longer than 32 bytes.</summary>
    SessionIdTooLong,

    /// <summary>The cipher_suites vector is empty or has an odd length.</summary>
    InvalidCipherSuites,

    /// <summary>The legacy_compression_methods vector is empty.</summary>
    InvalidCompressionMethods,

    /// <summary>Bytes remain inside the ClientHello after its last field, or the extensions block does not fill its length exactly.</summary>
    TrailingBytes,

    /// <summary>Handshake bytes follow the ClientHello in its last record.</summary>
    TrailingHandshakeData,

    /// <summary>The same extension type appears twice (RFC 8446 §4.2).</summary>
    DuplicateExtension,

    /// <summary>More extensions than the reader tracks (<see cref="ClientHelloInfo.MaxExtensions"/>).</summary>
    TooManyExtensions,

    /// <summary>The server_name extension is malformed (RFC 6066 §3).</summary>
    InvalidServerNameExtension,

    /// <summary>The server_name list holds more than one host_name entry (RFC 6066 §3).</summary>
    MultipleHostNames,

    /// <summary>The host_name is empty.</summary>
    EmptyHostName,

    /// <summary>
    /// The host_name is longer than 255 bytes: no DNS name in any encoding is (RFC 1035 §2.3.4), and the reader keeps the
    /// name inline. Other departures from a DNS name are reported, not rejected (<see cref="ClientHelloInfo.ServerNameIssues"/>).
    /// </summary>
    HostNameTooLong,

    /// <summary>The application_layer_protocol_negotiation extension is malformed (RFC 7301 §3.1).</summary>
    InvalidAlpnExtension,

    /// <summary>The supported_versions extension is malformed (RFC 8446 §4.2.1).</summary>
    InvalidSupportedVersionsExtension,

    /// <summary>An extension follows pre_shared_key, which must be the last extension (RFC 8446 §4.2.11).</summary>
    PreSharedKeyNotLast,
}
