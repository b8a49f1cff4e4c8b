using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace MeshGateway.Model;

/// <summary>
/// One of the twelve names Consul uses in SNI and as cluster names for mesh traffic (docs/consul-behaviour.md §2,
/// Consul <c>agent/connect/sni.go</c> <c>ServiceSNI</c>/<c>GatewaySNI</c>/<c>QuerySNI</c>/<c>PeeredServiceSNI</c>,
/// <c>agent/xds/clusters.go</c> <c>generatePeeredClusterName</c>, <c>tlsutil/config.go</c> <c>ServerSNI</c>,
/// <c>agent/connect/uri_server.go</c> <c>PeeringServerSAN</c>): created by the factory methods or by
/// <see cref="TryParse(ReadOnlySpan{char}, string, string?, out ConsulSniName?, out ConsulSniParseError)"/>.
/// </summary>
/// <remarks>
/// <para>
/// Formatting is Consul's: an empty namespace or partition becomes <c>default</c>; the partition <c>default</c>
/// (compared ordinally, like <c>sni.go</c>'s <c>switch</c>) selects the <c>internal</c> forms, any other partition the
/// <c>internal-v1</c> forms; the case of every part is kept. Like Consul's <c>dotJoin</c>, parts are not checked for
/// dots: a service name containing a dot yields a name that <see cref="TryParse(ReadOnlySpan{char}, string, string?, out ConsulSniName?, out ConsulSniParseError)"/>
/// reads differently (Consul's own <c>TrustDomainForTarget</c> has the same ambiguity); a router should match such
/// names as whole strings, as Envoy does.
/// </para>
/// <para>
/// Parsing works from the known trust-domain suffix (trust domains contain dots, so counting labels from the left
/// is wrong), then from the DNS domain for the WAN-federation server forms. The label just before the suffix says the
/// kind (<c>internal</c>, <c>internal-v1</c>, <c>query</c>, <c>external</c>, <c>peering</c>) and the number of labels
/// before it says the form. Forms 8 (<c>&lt;svc&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;peer&gt;.external</c>) and 3
/// (<c>&lt;svc&gt;.&lt;ns&gt;.&lt;ap&gt;.&lt;dc&gt;.internal-v1</c>) have the same shape, as do forms 9 and 1: only the kind label
/// separates them, and between 8 and 9 the label count does (four labels before <c>external</c> is the on-the-wire
/// form 8, three is the importer's cluster name form 9). Case: Envoy lower-cases the SNI it reads
/// (<c>source/common/network/connection_socket_impl.h</c> <c>setRequestedServerName</c>) and every <c>server_names</c>
/// entry (<c>source/common/listener_manager/filter_chain_manager_impl.cc</c>), so names compare ASCII
/// case-insensitively; the parser therefore returns every part ASCII lower-cased (as Envoy sees the name), and the
/// suffixes in the lower-case spelling. A label containing <c>*</c> is a <c>server_names</c> pattern, not a name
/// (<see cref="ConsulSniParseError.WildcardLabel"/>): <c>*.server.dc1.consul</c> is never a server node named <c>*</c>.
/// </para>
/// <para>Equality compares the kind and every part ASCII case-insensitively, as Envoy compares names (so a name built with
/// <c>Web</c> equals the parse of <c>web...</c>). Formatting keeps the case it was given, as Consul's <c>dotJoin</c> does.
/// The formatted text is computed once; <see cref="TryFormat(Span{char}, out int)"/> then only copies.</para>
/// </remarks>
public sealed record ConsulSniName : ISpanFormattable, IUtf8SpanFormattable
{
    /// <summary>The namespace and partition Consul writes for an empty one.</summary>
    public const string DefaultName = "default";

    /// <summary>The default DNS domain of a Consul agent (<c>consul.</c> without its trailing dot).</summary>
    public const string DefaultDnsDomain = "consul";

    private const string InternalLabel = "internal";
    private const string InternalVersionLabel = "internal-v1";
    private const string QueryLabel = "query";
    private const string ExternalLabel = "external";
    private const string PeeringLabel = "peering";
    private const string ServerLabel = "server";

    // The most labels before the kind label in any form (subset in a named partition: 5).
    private const int MaxLabelsBeforeKind = 5;

    private readonly string _text;

    private ConsulSniName(
        ConsulSniKind kind,
        string? service = null,
        string? subset = null,
        string? @namespace = null,
        string? partition = null,
        string? datacenter = null,
        string? peer = null,
        string? node = null,
        string? trustDomain = null,
        string? dnsDomain = null)
    {
        Kind = kind;
        Service = service;
        Subset = subset;
        Namespace = @namespace;
        Partition = partition;
        Datacenter = datacenter;
        Peer = peer;
        Node = node;
        TrustDomain = trustDomain;
        DnsDomain = dnsDomain;
        _text = Compose();
    }

    /// <summary>Which kind of name this is.</summary>
    public ConsulSniKind Kind { get; }

    /// <summary>The row of the table in docs/consul-behaviour.md §2 (1–12) this name is written with.</summary>
    public int Form => Kind switch
    {
        ConsulSniKind.Service => (IsDefaultPartition ? 1 : 3) + (Subset is null ? 0 : 1),
        ConsulSniKind.Gateway => IsDefaultPartition ? 5 : 6,
        ConsulSniKind.PreparedQuery => 7,
        ConsulSniKind.PeeredService => 8,
        ConsulSniKind.ImportedPeerCluster => 9,
        ConsulSniKind.WanFederationServers => 10,
        ConsulSniKind.WanFederationServer => 11,
        ConsulSniKind.PeeringServers => 12,
        _ => 0,
    };

    /// <summary>The service name; for <see cref="ConsulSniKind.PreparedQuery"/> the query's name. Null for gateway and server names.</summary>
    public string? Service { get; }

    /// <summary>The service-resolver subset, or null.</summary>
    public string? Subset { get; }

    /// <summary>The namespace (<c>default</c> when none was given); null for gateway and server names.</summary>
    public string? Namespace { get; }

    /// <summary>The admin partition (<c>default</c> when none was given); null for forms without one (7, 9–12).</summary>
    public string? Partition { get; }

    /// <summary>The datacenter; null for peered forms (8, 9).</summary>
    public string? Datacenter { get; }

    /// <summary>The peer label of forms 8 and 9; null otherwise.</summary>
    public string? Peer { get; }

    /// <summary>The server's node name in form 11; null otherwise.</summary>
    public string? Node { get; }

    /// <summary>The trust domain suffix; null for the WAN-federation server forms (10, 11), which use <see cref="DnsDomain"/>.</summary>
    public string? TrustDomain { get; }

    /// <summary>The DNS domain suffix of forms 10 and 11 (without a trailing dot); null otherwise.</summary>
    public string? DnsDomain { get; }

    /// <summary>Whether the name is written with <c>internal</c> (default partition) rather than <c>internal-v1</c>.</summary>
    public bool IsDefaultPartition => string.Equals(Partition, DefaultName, StringComparison.Ordinal);

    /// <summary>The length of the formatted name in characters (and in UTF-8 bytes when every part is ASCII).</summary>
    public int Length => _text.Length;

    /// <summary>Forms 1–4: a service or a subset of it (<c>ServiceSNI</c>).</summary>
    /// <param name="service">The service name.</param>
    /// <param name="namespace">The namespace; null or empty means <c>default</c>.</param>
    /// <param name="partition">The admin partition; null or empty means <c>default</c>.</param>
    /// <param name="datacenter">The datacenter the service runs in.</param>
    /// <param name="trustDomain">The trust domain (<c>&lt;cluster-uuid&gt;.consul</c>).</param>
    /// <param name="subset">The service-resolver subset, or null/empty for none.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForService(string service, string? @namespace, string? partition, string datacenter, string trustDomain, string? subset = null) =>
        new(ConsulSniKind.Service,
            service: Required(service),
            subset: string.IsNullOrEmpty(subset) ? null : subset,
            @namespace: OrDefault(@namespace),
            partition: OrDefault(partition),
            datacenter: Required(datacenter),
            trustDomain: RequiredSuffix(trustDomain));

    /// <summary>Forms 5–6: the gateway cluster of a datacenter and partition (<c>GatewaySNI</c>, formerly <c>DatacenterSNI</c>).</summary>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="partition">The admin partition; null or empty means <c>default</c>.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForGateway(string datacenter, string? partition, string trustDomain) =>
        new(ConsulSniKind.Gateway, partition: OrDefault(partition), datacenter: Required(datacenter), trustDomain: RequiredSuffix(trustDomain));

    /// <summary>Form 7: a prepared query (<c>QuerySNI</c>); the namespace label is always the literal <c>default</c>.</summary>
    /// <param name="query">The prepared query's name.</param>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForPreparedQuery(string query, string datacenter, string trustDomain) =>
        new(ConsulSniKind.PreparedQuery, service: Required(query), @namespace: DefaultName, datacenter: Required(datacenter), trustDomain: RequiredSuffix(trustDomain));

    /// <summary>Form 8: a service exported to a peer as sent on the wire (<c>PeeredServiceSNI</c>), computed by the exporter.</summary>
    /// <param name="service">The exported service.</param>
    /// <param name="namespace">Its namespace; null or empty means <c>default</c>.</param>
    /// <param name="partition">Its partition; null or empty means <c>default</c>. Always written, even when <c>default</c>.</param>
    /// <param name="peer">The exporter's local name for the importing peer.</param>
    /// <param name="exporterTrustDomain">The exporting cluster's trust domain.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForPeeredService(string service, string? @namespace, string? partition, string peer, string exporterTrustDomain) =>
        new(ConsulSniKind.PeeredService, service: Required(service), @namespace: OrDefault(@namespace), partition: OrDefault(partition),
            peer: Required(peer), trustDomain: RequiredSuffix(exporterTrustDomain));

    /// <summary>Form 9: the importer's cluster name for a peer's service (<c>generatePeeredClusterName</c>); never sent on the wire.</summary>
    /// <param name="service">The imported service.</param>
    /// <param name="namespace">Its namespace; null or empty means <c>default</c>.</param>
    /// <param name="peer">The importer's name for the peer.</param>
    /// <param name="peerTrustDomain">The peer's trust domain.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForImportedPeerCluster(string service, string? @namespace, string peer, string peerTrustDomain) =>
        new(ConsulSniKind.ImportedPeerCluster, service: Required(service), @namespace: OrDefault(@namespace), peer: Required(peer), trustDomain: RequiredSuffix(peerTrustDomain));

    /// <summary>Form 10: any server of a datacenter for WAN federation through mesh gateways (<c>server.&lt;dc&gt;.&lt;domain&gt;</c>).</summary>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="dnsDomain">The agent's DNS domain; null or empty means <c>consul</c>; a trailing dot is removed as Consul does.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForWanFederationServers(string datacenter, string? dnsDomain = null) =>
        new(ConsulSniKind.WanFederationServers, datacenter: Required(datacenter), dnsDomain: NormalizeDnsDomain(dnsDomain));

    /// <summary>Form 11: one server for WAN federation (<c>&lt;node&gt;.server.&lt;dc&gt;.&lt;domain&gt;</c>).</summary>
    /// <param name="node">The server's node name.</param>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="dnsDomain">The agent's DNS domain; null or empty means <c>consul</c>; a trailing dot is removed.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForWanFederationServer(string node, string datacenter, string? dnsDomain = null) =>
        new(ConsulSniKind.WanFederationServer, node: Required(node), datacenter: Required(datacenter), dnsDomain: NormalizeDnsDomain(dnsDomain));

    /// <summary>Form 12: the peering control plane, the local servers reached through the gateway (<c>PeeringServerSAN</c>).</summary>
    /// <param name="datacenter">The datacenter.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <returns>The name.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static ConsulSniName ForPeeringServers(string datacenter, string trustDomain) =>
        new(ConsulSniKind.PeeringServers, datacenter: Required(datacenter), trustDomain: RequiredSuffix(trustDomain));

    /// <summary>
    /// The <c>server_names</c> wildcard with which a mesh gateway routes every name for a remote datacenter/partition to
    /// that datacenter's gateways: <c>*.dc2.internal.&lt;TD&gt;</c> or <c>*.part1.dc2.internal-v1.&lt;TD&gt;</c>
    /// (<c>agent/xds/listeners.go</c>). The wildcard covers any number of leading labels and not the gateway name itself.
    /// </summary>
    /// <param name="datacenter">The remote datacenter.</param>
    /// <param name="partition">Its partition; null or empty means <c>default</c>.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <returns>The wildcard text.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static string RemoteGatewayWildcard(string datacenter, string? partition, string trustDomain) =>
        "*." + ForGateway(datacenter, partition, trustDomain)._text;

    /// <summary>The wildcard with which a WAN-federation gateway routes a remote datacenter's server names: <c>*.server.&lt;dc&gt;.&lt;domain&gt;</c>.</summary>
    /// <param name="datacenter">The remote datacenter.</param>
    /// <param name="dnsDomain">The DNS domain; null or empty means <c>consul</c>.</param>
    /// <returns>The wildcard text.</returns>
    /// <exception cref="ArgumentException">A required part is null or empty.</exception>
    public static string WanFederationServerWildcard(string datacenter, string? dnsDomain = null) =>
        "*." + ForWanFederationServers(datacenter, dnsDomain)._text;

    /// <summary>The formatted name.</summary>
    /// <returns>The name, e.g. <c>api.default.dc2.internal.&lt;TD&gt;</c>.</returns>
    public override string ToString() => _text;

    /// <summary>Whether both are the same name as Envoy compares names: same kind, every part and the text equal ignoring ASCII case.</summary>
    /// <param name="other">The other name.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(ConsulSniName? other) =>
        other is not null
        && Kind == other.Kind
        && AsciiEquals(_text, other._text)
        && AsciiEquals(Service, other.Service)
        && AsciiEquals(Subset, other.Subset)
        && AsciiEquals(Namespace, other.Namespace)
        && AsciiEquals(Partition, other.Partition)
        && AsciiEquals(Datacenter, other.Datacenter)
        && AsciiEquals(Peer, other.Peer)
        && AsciiEquals(Node, other.Node)
        && AsciiEquals(TrustDomain, other.TrustDomain)
        && AsciiEquals(DnsDomain, other.DnsDomain);

    /// <summary>A hash code consistent with <see cref="Equals(ConsulSniName?)"/> (over the ASCII lower-cased text).</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.Add(Kind);
        foreach (char c in _text)
        {
            hash.Add(char.IsAsciiLetterUpper(c) ? (char)(c | 0x20) : c);
        }

        return hash.ToHashCode();
    }

    /// <summary>Writes the name into <paramref name="destination"/> without allocating.</summary>
    /// <param name="destination">Receives the characters.</param>
    /// <param name="charsWritten">How many characters were written; 0 when the destination is too small.</param>
    /// <returns>False when <paramref name="destination"/> is shorter than <see cref="Length"/>.</returns>
    public bool TryFormat(Span<char> destination, out int charsWritten)
    {
        if (_text.AsSpan().TryCopyTo(destination))
        {
            charsWritten = _text.Length;
            return true;
        }

        charsWritten = 0;
        return false;
    }

    /// <summary>Writes the name as UTF-8 (ASCII for ordinary names, as it appears in a ClientHello) without allocating.</summary>
    /// <param name="utf8Destination">Receives the bytes.</param>
    /// <param name="bytesWritten">How many bytes were written; 0 when the destination is too small.</param>
    /// <returns>False when the destination is too small.</returns>
    public bool TryFormatUtf8(Span<byte> utf8Destination, out int bytesWritten)
    {
        if (Encoding.UTF8.TryGetBytes(_text, utf8Destination, out bytesWritten))
        {
            return true;
        }

        bytesWritten = 0;
        return false;
    }

    /// <inheritdoc cref="TryFormat(Span{char}, out int)"/>
    /// <param name="destination">Receives the characters.</param>
    /// <param name="charsWritten">How many characters were written.</param>
    /// <param name="format">Ignored: there is one format.</param>
    /// <param name="provider">Ignored: names are culture-invariant.</param>
    bool ISpanFormattable.TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider) =>
        TryFormat(destination, out charsWritten);

    /// <inheritdoc cref="TryFormatUtf8(Span{byte}, out int)"/>
    /// <param name="utf8Destination">Receives the bytes.</param>
    /// <param name="bytesWritten">How many bytes were written.</param>
    /// <param name="format">Ignored: there is one format.</param>
    /// <param name="provider">Ignored: names are culture-invariant.</param>
    bool IUtf8SpanFormattable.TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format, IFormatProvider? provider) =>
        TryFormatUtf8(utf8Destination, out bytesWritten);

    /// <inheritdoc cref="ToString()"/>
    /// <param name="format">Ignored: there is one format.</param>
    /// <param name="formatProvider">Ignored: names are culture-invariant.</param>
    string IFormattable.ToString(string? format, IFormatProvider? formatProvider) => _text;

    /// <summary>Parses a name against a trust domain and the default DNS domain <c>consul</c>. Never throws.</summary>
    /// <param name="name">The SNI or cluster name.</param>
    /// <param name="trustDomain">The trust domain the name must end with (for forms 8/9 the exporter's or peer's).</param>
    /// <param name="result">The parsed name, or null.</param>
    /// <param name="error">Why it is not a Consul name; <see cref="ConsulSniParseError.None"/> on success.</param>
    /// <returns>Whether the name is one of the twelve forms.</returns>
    public static bool TryParse(ReadOnlySpan<char> name, string trustDomain, [NotNullWhen(true)] out ConsulSniName? result, out ConsulSniParseError error) =>
        TryParse(name, trustDomain, DefaultDnsDomain, out result, out error);

    /// <summary>Parses a name against a trust domain and a DNS domain. Never throws.</summary>
    /// <param name="name">The SNI or cluster name.</param>
    /// <param name="trustDomain">The trust domain the TD-based forms must end with.</param>
    /// <param name="dnsDomain">The DNS domain of the server forms 10 and 11; null or empty means <c>consul</c>; a trailing dot is removed.</param>
    /// <param name="result">The parsed name, or null.</param>
    /// <param name="error">Why it is not a Consul name; <see cref="ConsulSniParseError.None"/> on success.</param>
    /// <returns>Whether the name is one of the twelve forms.</returns>
    /// <remarks>
    /// The trust-domain forms are tried first; the server forms only when the trust-domain reading fails, and then the
    /// trust-domain failure is reported if both fail and the name ended with the trust domain.
    /// </remarks>
    public static bool TryParse(ReadOnlySpan<char> name, string trustDomain, string? dnsDomain, [NotNullWhen(true)] out ConsulSniName? result, out ConsulSniParseError error)
    {
        result = null;
        string domain = NormalizeDnsDomain(dnsDomain);
        if (!IsValidSuffix(trustDomain) || !IsValidSuffix(domain))
        {
            error = ConsulSniParseError.InvalidSuffixArgument;
            return false;
        }

        if (name.IsEmpty)
        {
            error = ConsulSniParseError.Empty;
            return false;
        }

        if (name[^1] == '.')
        {
            error = ConsulSniParseError.TrailingDot;
            return false;
        }

        foreach (char c in name)
        {
            if (c is < '!' or > '~')
            {
                error = ConsulSniParseError.InvalidCharacter;
                return false;
            }
        }

        // "*.server.dc1.consul" and "*.dc2.internal.<TD>" are server_names patterns (agent/xds/listeners.go), not names.
        if (name.Contains('*'))
        {
            error = ConsulSniParseError.WildcardLabel;
            return false;
        }

        trustDomain = AsciiLower(trustDomain);
        domain = AsciiLower(domain);
        ConsulSniParseError tdError = ConsulSniParseError.WrongSuffix;
        if (TryStripSuffix(name, trustDomain, out ReadOnlySpan<char> tdPrefix))
        {
            if (TryParseTrustDomainForm(tdPrefix, trustDomain, out result, out tdError))
            {
                error = ConsulSniParseError.None;
                return true;
            }
        }

        if (TryStripSuffix(name, domain, out ReadOnlySpan<char> domainPrefix))
        {
            if (TryParseServerForm(domainPrefix, domain, out result, out ConsulSniParseError domainError))
            {
                error = ConsulSniParseError.None;
                return true;
            }

            error = tdError == ConsulSniParseError.WrongSuffix ? domainError : tdError;
            return false;
        }

        error = tdError;
        return false;
    }

    /// <summary>Parses a name given as ASCII bytes (as in a ClientHello's host_name) against a trust domain and a DNS domain. Never throws.</summary>
    /// <param name="asciiName">The name's bytes.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="dnsDomain">The DNS domain; null or empty means <c>consul</c>.</param>
    /// <param name="result">The parsed name, or null.</param>
    /// <param name="error">Why it is not a Consul name.</param>
    /// <returns>Whether the name is one of the twelve forms.</returns>
    public static bool TryParse(ReadOnlySpan<byte> asciiName, string trustDomain, string? dnsDomain, [NotNullWhen(true)] out ConsulSniName? result, out ConsulSniParseError error)
    {
        foreach (byte b in asciiName)
        {
            if (b is < (byte)'!' or > (byte)'~')
            {
                result = null;
                error = ConsulSniParseError.InvalidCharacter;
                return false;
            }
        }

        char[]? rented = null;
        Span<char> chars = asciiName.Length <= 512 ? stackalloc char[512] : (rented = ArrayPool<char>.Shared.Rent(asciiName.Length));
        try
        {
            Ascii.ToUtf16(asciiName, chars, out int written);
            return TryParse(chars[..written], trustDomain, dnsDomain, out result, out error);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Parses a name, throwing on failure.</summary>
    /// <param name="name">The name.</param>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="dnsDomain">The DNS domain; null or empty means <c>consul</c>.</param>
    /// <returns>The parsed name.</returns>
    /// <exception cref="FormatException">The name is not one of the twelve forms; the message says why.</exception>
    public static ConsulSniName Parse(string name, string trustDomain, string? dnsDomain = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (TryParse(name.AsSpan(), trustDomain, dnsDomain, out ConsulSniName? result, out ConsulSniParseError error))
        {
            return result;
        }

        throw new FormatException($"'{name}' is not a Consul SNI name: {DescribeParseError(error)}");
    }

    /// <summary>A sentence describing a parse error.</summary>
    /// <param name="error">The error.</param>
    /// <returns>The description.</returns>
    public static string DescribeParseError(ConsulSniParseError error) => error switch
    {
        ConsulSniParseError.None => "no error.",
        ConsulSniParseError.Empty => "the name is empty.",
        ConsulSniParseError.TrailingDot => "the name ends with a dot (RFC 6066 §3 forbids it; Consul's gateways match nothing with it).",
        ConsulSniParseError.InvalidCharacter => "the name contains a character outside printable ASCII.",
        ConsulSniParseError.EmptyLabel => "the name has an empty label.",
        ConsulSniParseError.WrongSuffix => "the name ends neither with the trust domain nor with the DNS domain.",
        ConsulSniParseError.UnknownKind => "the label before the trust domain is not internal, internal-v1, query, external or peering.",
        ConsulSniParseError.WrongLabelCount => "the number of labels fits none of the forms of its kind.",
        ConsulSniParseError.DefaultPartitionInPartitionForm => "an internal-v1 name names the default partition; Consul writes those with internal.",
        ConsulSniParseError.QueryNamespaceNotDefault => "a prepared-query name must have the literal namespace label 'default'.",
        ConsulSniParseError.NotAServerName => "a server name lacks its 'server' label.",
        ConsulSniParseError.InvalidSuffixArgument => "the trust domain or DNS domain given to the parser is empty or malformed.",
        ConsulSniParseError.WildcardLabel => "a label contains '*': that is a server_names pattern (such as *.server.<dc>.<domain>), not a name.",
        _ => "unknown error.",
    };

    private static bool TryParseTrustDomainForm(ReadOnlySpan<char> prefix, string trustDomain, [NotNullWhen(true)] out ConsulSniName? result, out ConsulSniParseError error)
    {
        result = null;
        Span<Range> ranges = stackalloc Range[MaxLabelsBeforeKind + 2];
        if (!TrySplit(prefix, ranges, out int count, out error))
        {
            return false;
        }

        ReadOnlySpan<char> kind = prefix[ranges[count - 1]];
        int n = count - 1;
        string[] labels = new string[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = AsciiLower(prefix[ranges[i]]);
        }

        string L(int i) => labels[i];

        if (Ascii.EqualsIgnoreCase(kind, InternalLabel))
        {
            result = n switch
            {
                1 => new ConsulSniName(ConsulSniKind.Gateway, partition: DefaultName, datacenter: L(0), trustDomain: trustDomain),
                3 => new ConsulSniName(ConsulSniKind.Service, service: L(0), @namespace: L(1), partition: DefaultName, datacenter: L(2), trustDomain: trustDomain),
                4 => new ConsulSniName(ConsulSniKind.Service, subset: L(0), service: L(1), @namespace: L(2), partition: DefaultName, datacenter: L(3), trustDomain: trustDomain),
                _ => null,
            };
        }
        else if (Ascii.EqualsIgnoreCase(kind, InternalVersionLabel))
        {
            // The partition is the label just before the datacenter.
            if (n is 2 or 4 or 5 && Ascii.EqualsIgnoreCase(prefix[ranges[n - 2]], DefaultName))
            {
                error = ConsulSniParseError.DefaultPartitionInPartitionForm;
                return false;
            }

            result = n switch
            {
                2 => new ConsulSniName(ConsulSniKind.Gateway, partition: L(0), datacenter: L(1), trustDomain: trustDomain),
                4 => new ConsulSniName(ConsulSniKind.Service, service: L(0), @namespace: L(1), partition: L(2), datacenter: L(3), trustDomain: trustDomain),
                5 => new ConsulSniName(ConsulSniKind.Service, subset: L(0), service: L(1), @namespace: L(2), partition: L(3), datacenter: L(4), trustDomain: trustDomain),
                _ => null,
            };
        }
        else if (Ascii.EqualsIgnoreCase(kind, QueryLabel))
        {
            if (n == 3 && !Ascii.EqualsIgnoreCase(prefix[ranges[1]], DefaultName))
            {
                error = ConsulSniParseError.QueryNamespaceNotDefault;
                return false;
            }

            result = n == 3 ? new ConsulSniName(ConsulSniKind.PreparedQuery, service: L(0), @namespace: DefaultName, datacenter: L(2), trustDomain: trustDomain) : null;
        }
        else if (Ascii.EqualsIgnoreCase(kind, ExternalLabel))
        {
            // Four labels before "external" is the on-the-wire form 8 (with partition); three is the importer's form 9.
            result = n switch
            {
                4 => new ConsulSniName(ConsulSniKind.PeeredService, service: L(0), @namespace: L(1), partition: L(2), peer: L(3), trustDomain: trustDomain),
                3 => new ConsulSniName(ConsulSniKind.ImportedPeerCluster, service: L(0), @namespace: L(1), peer: L(2), trustDomain: trustDomain),
                _ => null,
            };
        }
        else if (Ascii.EqualsIgnoreCase(kind, PeeringLabel))
        {
            if (n == 2 && !Ascii.EqualsIgnoreCase(prefix[ranges[0]], ServerLabel))
            {
                error = ConsulSniParseError.NotAServerName;
                return false;
            }

            result = n == 2 ? new ConsulSniName(ConsulSniKind.PeeringServers, datacenter: L(1), trustDomain: trustDomain) : null;
        }
        else
        {
            error = ConsulSniParseError.UnknownKind;
            return false;
        }

        error = result is null ? ConsulSniParseError.WrongLabelCount : ConsulSniParseError.None;
        return result is not null;
    }

    private static bool TryParseServerForm(ReadOnlySpan<char> prefix, string domain, [NotNullWhen(true)] out ConsulSniName? result, out ConsulSniParseError error)
    {
        result = null;
        Span<Range> ranges = stackalloc Range[5];
        if (!TrySplit(prefix, ranges, out int count, out error) && error != ConsulSniParseError.WrongLabelCount)
        {
            return false;
        }

        // Only "server.<dc>" and "<node>.server.<dc>" sit in front of the DNS domain; anything longer is not a Consul name here.
        if (count is < 2 or > 3)
        {
            error = ConsulSniParseError.WrongSuffix;
            return false;
        }

        if (!Ascii.EqualsIgnoreCase(prefix[ranges[count - 2]], ServerLabel))
        {
            error = ConsulSniParseError.NotAServerName;
            return false;
        }

        string datacenter = AsciiLower(prefix[ranges[count - 1]]);
        result = count == 2
            ? new ConsulSniName(ConsulSniKind.WanFederationServers, datacenter: datacenter, dnsDomain: domain)
            : new ConsulSniName(ConsulSniKind.WanFederationServer, node: AsciiLower(prefix[ranges[0]]), datacenter: datacenter, dnsDomain: domain);
        return true;
    }

    // Splits into at most ranges.Length - 1 labels; more (or any empty label) is a failure.
    private static bool TrySplit(ReadOnlySpan<char> prefix, Span<Range> ranges, out int count, out ConsulSniParseError error)
    {
        count = prefix.Split(ranges, '.');
        for (int i = 0; i < count; i++)
        {
            if (prefix[ranges[i]].IsEmpty)
            {
                error = ConsulSniParseError.EmptyLabel;
                return false;
            }
        }

        if (count == ranges.Length)
        {
            error = ConsulSniParseError.WrongLabelCount;
            return false;
        }

        error = ConsulSniParseError.None;
        return true;
    }

    private static bool TryStripSuffix(ReadOnlySpan<char> name, string suffix, out ReadOnlySpan<char> prefix)
    {
        int start = name.Length - suffix.Length;
        if (start >= 1 && name[start - 1] == '.' && Ascii.EqualsIgnoreCase(name[start..], suffix))
        {
            prefix = name[..(start - 1)];
            return true;
        }

        prefix = default;
        return false;
    }

    private static bool IsValidSuffix(string? suffix)
    {
        if (string.IsNullOrEmpty(suffix) || suffix[0] == '.' || suffix[^1] == '.' || suffix.Contains("..", StringComparison.Ordinal))
        {
            return false;
        }

        foreach (char c in suffix)
        {
            if (c is < '!' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    private string Compose() => Kind switch
    {
        ConsulSniKind.Service when IsDefaultPartition => Subset is null
            ? Join(Service!, Namespace!, Datacenter!, InternalLabel, TrustDomain!)
            : Join(Subset, Service!, Namespace!, Datacenter!, InternalLabel, TrustDomain!),
        ConsulSniKind.Service => Subset is null
            ? Join(Service!, Namespace!, Partition!, Datacenter!, InternalVersionLabel, TrustDomain!)
            : Join(Subset, Service!, Namespace!, Partition!, Datacenter!, InternalVersionLabel, TrustDomain!),
        ConsulSniKind.Gateway when IsDefaultPartition => Join(Datacenter!, InternalLabel, TrustDomain!),
        ConsulSniKind.Gateway => Join(Partition!, Datacenter!, InternalVersionLabel, TrustDomain!),
        ConsulSniKind.PreparedQuery => Join(Service!, DefaultName, Datacenter!, QueryLabel, TrustDomain!),
        ConsulSniKind.PeeredService => Join(Service!, Namespace!, Partition!, Peer!, ExternalLabel, TrustDomain!),
        ConsulSniKind.ImportedPeerCluster => Join(Service!, Namespace!, Peer!, ExternalLabel, TrustDomain!),
        ConsulSniKind.WanFederationServers => Join(ServerLabel, Datacenter!, DnsDomain!),
        ConsulSniKind.WanFederationServer => Join(Node!, ServerLabel, Datacenter!, DnsDomain!),
        ConsulSniKind.PeeringServers => Join(ServerLabel, Datacenter!, PeeringLabel, TrustDomain!),
        _ => string.Empty,
    };

    private static string Join(params ReadOnlySpan<string?> parts) => string.Join('.', parts);

    // Envoy's absl::AsciiStrToLower: ASCII letters only (the parser has already rejected anything outside printable ASCII).
    private static string AsciiLower(ReadOnlySpan<char> value)
    {
        if (!value.ContainsAnyInRange('A', 'Z'))
        {
            return value.ToString();
        }

        Span<char> lower = value.Length <= 256 ? stackalloc char[value.Length] : new char[value.Length];
        Ascii.ToLower(value, lower, out int written);
        return lower[..written].ToString();
    }

    private static string AsciiLower(string value) => value.AsSpan().ContainsAnyInRange('A', 'Z') ? AsciiLower(value.AsSpan()) : value;

    private static bool AsciiEquals(string? a, string? b) =>
        string.Equals(a, b, StringComparison.Ordinal) || (a is not null && b is not null && Ascii.EqualsIgnoreCase(a, b));

    private static string Required(string value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? parameter = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, parameter);
        return value;
    }

    private static string RequiredSuffix(string value, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string? parameter = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, parameter);
        return value;
    }

    private static string OrDefault(string? value) => string.IsNullOrEmpty(value) ? DefaultName : value;

    private static string NormalizeDnsDomain(string? dnsDomain)
    {
        if (string.IsNullOrEmpty(dnsDomain))
        {
            return DefaultDnsDomain;
        }

        // Consul trims the trailing dot of its "consul." domain before using it in a name (tlsutil ServerSNI).
        return dnsDomain[^1] == '.' ? dnsDomain[..^1] : dnsDomain;
    }
}
