namespace MeshGateway.Model;

/// <summary>Why a name is not a Consul SNI name. Describe one with <see cref="ConsulSniName.DescribeParseError(ConsulSniParseError)"/>.</summary>
public enum ConsulSniParseError
{
    /// <summary>No error: the name parsed.</summary>
    None = 0,

    /// <summary>The name is empty.</summary>
    Empty,

    /// <summary>The name ends with a dot. RFC 6066 §3 forbids it in SNI and Consul's Envoy matches nothing with it.</summary>
    TrailingDot,

    /// <summary>The name contains a character outside printable ASCII (0x21–0x7E), such as a space, a control character or a non-ASCII letter.</summary>
    InvalidCharacter,

    /// <summary>The name has an empty label (two dots in a row, or a leading dot).</summary>
    EmptyLabel,

    /// <summary>The name ends neither with <c>.&lt;trust-domain&gt;</c> nor with <c>.&lt;dns-domain&gt;</c>.</summary>
    WrongSuffix,

    /// <summary>The label before the trust domain is not one of <c>internal</c>, <c>internal-v1</c>, <c>query</c>, <c>external</c>, <c>peering</c>.</summary>
    UnknownKind,

    /// <summary>The kind label is known but the number of labels before it fits none of that kind's forms.</summary>
    WrongLabelCount,

    /// <summary>An <c>internal-v1</c> name spells out the <c>default</c> partition; Consul writes default-partition names with <c>internal</c> and never produces this.</summary>
    DefaultPartitionInPartitionForm,

    /// <summary>A prepared-query name whose namespace label is not the literal <c>default</c> Consul always writes there.</summary>
    QueryNamespaceNotDefault,

    /// <summary>A server name (<c>peering</c> kind or a DNS-domain name) without the <c>server</c> label where the form has it.</summary>
    NotAServerName,

    /// <summary>The trust domain (or DNS domain) given to the parser is empty or malformed (empty label, leading or trailing dot, bad character).</summary>
    InvalidSuffixArgument,

    /// <summary>A label contains <c>*</c>: the name is a <c>server_names</c> pattern (such as <c>*.server.&lt;dc&gt;.&lt;domain&gt;</c>
    /// or <c>*.&lt;dc&gt;.internal.&lt;TD&gt;</c>), not a name; <c>*</c> is never a service, subset or server node.</summary>
    WildcardLabel,
}
