using System.Globalization;

namespace MeshGateway.Consul;

/// <summary>Where and how <see cref="ConsulClient"/> talks to a Consul agent.</summary>
/// <remarks>
/// <para>
/// Every connection setting can also come from the environment variables Consul's own CLI and Go <c>api</c> package read
/// (<c>CONSUL_HTTP_ADDR</c>, <c>CONSUL_HTTP_SSL</c>, <c>CONSUL_HTTP_TOKEN</c>, <c>CONSUL_HTTP_TOKEN_FILE</c>,
/// <c>CONSUL_CACERT</c>, <c>CONSUL_CAPATH</c>, <c>CONSUL_CLIENT_CERT</c>, <c>CONSUL_CLIENT_KEY</c>,
/// <c>CONSUL_TLS_SERVER_NAME</c>, <c>CONSUL_HTTP_SSL_VERIFY</c>), with the same meaning (hashicorp/consul
/// <c>api/api.go</c>, <c>defaultConfig</c>, <c>NewClient</c> and <c>SetupTLSConfig</c>). An option that is set wins over its
/// variable; the token (<see cref="Token"/>/<see cref="TokenFile"/>), the CA (<see cref="CaFile"/>/<see cref="CaPath"/>) and the
/// client certificate (<see cref="ClientCertificateFile"/>/<see cref="ClientKeyFile"/>) are each taken as a group, so an
/// option never mixes with a variable of the same group. Variables are read through <see cref="EnvironmentVariables"/>
/// once, when the client is created; an empty variable counts as unset (as in Go).
/// </para>
/// <para>
/// The ACL token is sent only as the <c>X-Consul-Token</c> header and never appears in <see cref="ToString"/>, logs,
/// exception messages or URLs. An address carrying credentials (<c>http://user:pass@host</c>) is rejected with a message
/// that does not repeat them.
/// </para>
/// </remarks>
public sealed class ConsulClientOptions
{
    /// <summary><c>CONSUL_HTTP_ADDR</c>: the agent address when <see cref="Address"/> is not set.</summary>
    public const string AddressEnvironmentVariable = "CONSUL_HTTP_ADDR";

    /// <summary><c>CONSUL_HTTP_SSL</c>: <c>true</c> makes a scheme-less (or <c>http://</c>) address use HTTPS.</summary>
    public const string SslEnvironmentVariable = "CONSUL_HTTP_SSL";

    /// <summary><c>CONSUL_HTTP_TOKEN</c>: the ACL token when neither <see cref="Token"/> nor <see cref="TokenFile"/> is set.</summary>
    public const string TokenEnvironmentVariable = "CONSUL_HTTP_TOKEN";

    /// <summary><c>CONSUL_HTTP_TOKEN_FILE</c>: a file holding the ACL token; wins over <c>CONSUL_HTTP_TOKEN</c> (as in Go).</summary>
    public const string TokenFileEnvironmentVariable = "CONSUL_HTTP_TOKEN_FILE";

    /// <summary><c>CONSUL_CACERT</c>: a PEM file of CA certificates.</summary>
    public const string CaFileEnvironmentVariable = "CONSUL_CACERT";

    /// <summary><c>CONSUL_CAPATH</c>: a directory of PEM CA files.</summary>
    public const string CaPathEnvironmentVariable = "CONSUL_CAPATH";

    /// <summary><c>CONSUL_CLIENT_CERT</c>: the client certificate (PEM) for agents with <c>verify_incoming</c>.</summary>
    public const string ClientCertificateEnvironmentVariable = "CONSUL_CLIENT_CERT";

    /// <summary><c>CONSUL_CLIENT_KEY</c>: the client certificate's private key (PEM).</summary>
    public const string ClientKeyEnvironmentVariable = "CONSUL_CLIENT_KEY";

    /// <summary><c>CONSUL_TLS_SERVER_NAME</c>: the name sent as SNI and checked against the agent's certificate.</summary>
    public const string TlsServerNameEnvironmentVariable = "CONSUL_TLS_SERVER_NAME";

    /// <summary><c>CONSUL_HTTP_SSL_VERIFY</c>: <c>false</c> disables verification of the agent's certificate.</summary>
    public const string SslVerifyEnvironmentVariable = "CONSUL_HTTP_SSL_VERIFY";

    /// <summary>The address used when neither <see cref="Address"/> nor <c>CONSUL_HTTP_ADDR</c> is set (Go's default).</summary>
    public const string DefaultAddress = "127.0.0.1:8500";

    /// <summary>The default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 8;

    /// <summary>The smallest allowed <see cref="MaxConnections"/>.</summary>
    public const int MinMaxConnections = 2;

    /// <summary>The largest allowed <see cref="MaxConnections"/>.</summary>
    public const int MaxMaxConnections = 64;

    /// <summary>The agent setting that limits connections per client IP (reported as <c>DebugConfig.HTTPMaxConnsPerClient</c>).</summary>
    public const string AgentConnectionLimitSetting = "limits.http_max_conns_per_client";

    /// <summary>
    /// The agent's address: <c>http://host:port</c>, <c>https://host:port</c> (a path is kept as a prefix, as behind a reverse
    /// proxy) or <c>unix:///path/to/consul.sock</c> (a Unix domain socket). Default none: <c>CONSUL_HTTP_ADDR</c>, else
    /// <c>http://127.0.0.1:8500</c>. Use <see cref="ParseAddress"/> for Consul's text forms (<c>127.0.0.1:8500</c>).
    /// </summary>
    public Uri? Address { get; set; }

    /// <summary>
    /// Use HTTPS for an address without a scheme or with <c>http://</c> (Go's api never reverts to HTTP once TLS is asked
    /// for). Default none: <c>CONSUL_HTTP_SSL</c>, else <see langword="false"/>.
    /// </summary>
    public bool? UseHttps { get; set; }

    /// <summary>The ACL token (secret ID). Default none.</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the ACL token (trimmed, read once when the client is created); used when <see cref="Token"/> is not set.</summary>
    public string? TokenFile { get; set; }

    /// <summary>The datacenter sent as <c>?dc=</c> when a call names none. Default none (the agent's own).</summary>
    public string? Datacenter { get; set; }

    /// <summary>Enterprise namespace sent as <c>?ns=</c>. Default none (Consul CE uses <c>default</c>).</summary>
    public string? Namespace { get; set; }

    /// <summary>Enterprise admin partition sent as <c>?partition=</c>. Default none.</summary>
    public string? Partition { get; set; }

    /// <summary>
    /// A PEM file with the CA certificate(s) that sign the agent's HTTPS certificate; wins over <see cref="CaPath"/> (as in
    /// go-rootcerts). Default none: <c>CONSUL_CACERT</c>/<c>CONSUL_CAPATH</c>, else the system trust store.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>A directory of PEM CA files (read recursively; every file must hold a certificate). Default none.</summary>
    public string? CaPath { get; set; }

    /// <summary>
    /// The client certificate (PEM) presented to an agent with <c>verify_incoming = true</c>; needs <see cref="ClientKeyFile"/>.
    /// Default none: <c>CONSUL_CLIENT_CERT</c>.
    /// </summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The client certificate's private key (PEM). Default none: <c>CONSUL_CLIENT_KEY</c>.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>
    /// The name sent as SNI and checked against the agent's certificate instead of the address's host (a port, if any, is
    /// dropped). Default none: <c>CONSUL_TLS_SERVER_NAME</c>, else the address's host.
    /// </summary>
    public string? TlsServerName { get; set; }

    /// <summary>
    /// Verify the agent's certificate. <see langword="false"/> accepts any certificate (insecure: anyone on the path can read
    /// the ACL token); the client then reports <see cref="ConsulClient.ServerCertificateVerificationDisabled"/> and hosts log
    /// a warning. Default none: <c>CONSUL_HTTP_SSL_VERIFY</c>, else <see langword="true"/>.
    /// </summary>
    public bool? VerifyServerCertificate { get; set; }

    /// <summary>
    /// The most connections the client opens to the agent at once (<see cref="System.Net.Http.SocketsHttpHandler.MaxConnectionsPerServer"/>);
    /// further requests queue. Default 8; 2 to 64.
    /// </summary>
    /// <remarks>
    /// Consul limits concurrent HTTP connections per client IP (<c>limits.http_max_conns_per_client</c>, default 200) and
    /// refuses connections beyond it; everything on the same host (CLI, sidecars, checks) shares that budget, so keep this at
    /// most a quarter of the agent's limit (<see cref="ValidateAgainstAgentLimit"/>). Over HTTPS the client asks for HTTP/2,
    /// which multiplexes all requests on one connection.
    /// </remarks>
    public int MaxConnections { get; set; } = DefaultMaxConnections;

    /// <summary>
    /// Reads an environment variable (the <c>CONSUL_*</c> fallbacks). Default <see cref="Environment.GetEnvironmentVariable(string)"/>;
    /// set <c>_ =&gt; null</c> to ignore the environment.
    /// </summary>
    public Func<string, string?> EnvironmentVariables { get; set; } = Environment.GetEnvironmentVariable;

    /// <summary>
    /// A handler to send requests through instead of the built-in <see cref="System.Net.Http.SocketsHttpHandler"/>
    /// (custom TLS, proxies, tests). The client does not dispose it. The TLS options, a Unix socket address and
    /// <see cref="MaxConnections"/> are not applied to it.
    /// </summary>
    public HttpMessageHandler? Handler { get; set; }

    /// <summary>Timeout of a non-blocking request, and the margin added to <c>wait + wait/16</c> of a blocking one. Default 15 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The <c>wait</c> of blocking queries. Default 5 minutes (Consul's default; the server caps it at
    /// <c>max_query_time</c>, 10 minutes by default).
    /// </summary>
    public TimeSpan BlockingWait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Parses an address in the forms <c>CONSUL_HTTP_ADDR</c> accepts: <c>host:port</c> (HTTP, or HTTPS when
    /// <paramref name="useHttps"/>), <c>http://…</c> (HTTPS when <paramref name="useHttps"/>, as Go's api never reverts),
    /// <c>https://…</c>, <c>unix:///path/to/consul.sock</c> (a relative socket path is made absolute).
    /// </summary>
    /// <param name="address">The address text.</param>
    /// <param name="useHttps">Whether TLS was asked for (<c>CONSUL_HTTP_SSL</c>).</param>
    /// <returns>An absolute <c>http</c>, <c>https</c> or <c>unix</c> URI.</returns>
    /// <exception cref="ArgumentException">The text is empty, has an unknown scheme, carries credentials or is not an address;
    /// the message never repeats credentials.</exception>
    public static Uri ParseAddress(string address, bool useHttps = false)
    {
        ArgumentNullException.ThrowIfNull(address);
        string text = address.Trim();
        if (text.Length == 0)
        {
            throw new ArgumentException("The Consul address is empty.", nameof(address));
        }

        // api/api.go NewClient: strings.SplitN(address, "://", 2); "http" keeps a TLS scheme already asked for, "https"
        // forces TLS, "unix" dials the rest as a socket path, anything else is "Unknown protocol scheme".
        int separator = text.IndexOf("://", StringComparison.Ordinal);
        string scheme = separator < 0 ? (useHttps ? "https" : "http") : text[..separator].ToLowerInvariant();
        string rest = separator < 0 ? text : text[(separator + 3)..];
        switch (scheme)
        {
            case "unix":
                if (rest.Length == 0)
                {
                    throw new ArgumentException($"The Consul address '{RedactAddress(text)}' names no socket path (expected unix:///path/to/consul.sock).", nameof(address));
                }

                string path = Path.GetFullPath(rest);
                return new Uri("unix://" + path.Replace("%", "%25", StringComparison.Ordinal).Replace(" ", "%20", StringComparison.Ordinal));
            case "http":
            case "https":
                if (scheme == "http" && useHttps)
                {
                    scheme = "https";
                }

                int slash = rest.IndexOf('/');
                string authority = slash < 0 ? rest : rest[..slash];
                if (authority.Contains('@'))
                {
                    throw new ArgumentException($"The Consul address '{RedactAddress(text)}' carries credentials (user:password@); Consul authenticates with the ACL token, so remove them.", nameof(address));
                }

                if (!Uri.TryCreate(scheme + "://" + rest, UriKind.Absolute, out Uri? uri) || uri.Host.Length == 0)
                {
                    throw new ArgumentException($"The Consul address '{RedactAddress(text)}' is not host:port, http(s)://host:port or unix:///path.", nameof(address));
                }

                return uri;
            default:
                throw new ArgumentException($"The Consul address '{RedactAddress(text)}' has an unknown protocol scheme '{scheme}' (expected http, https or unix).", nameof(address));
        }
    }

    /// <summary>
    /// Checks <see cref="MaxConnections"/> against the agent's own per-client limit (<c>limits.http_max_conns_per_client</c>,
    /// read by <see cref="ConsulClient.GetAgentHttpMaxConnsPerClientAsync"/>): the gateway may use at most a quarter of it,
    /// leaving the rest to everything else on the same host.
    /// </summary>
    /// <param name="maxConnections">The configured <see cref="MaxConnections"/>.</param>
    /// <param name="agentLimit">The agent's limit; null (unknown) or 0 and below (no limit) pass.</param>
    /// <exception cref="ArgumentException"><paramref name="maxConnections"/> is above <paramref name="agentLimit"/> / 4.</exception>
    public static void ValidateAgainstAgentLimit(int maxConnections, int? agentLimit)
    {
        if (agentLimit is not { } limit || limit <= 0)
        {
            return;
        }

        int allowed = limit / 4;
        if (maxConnections > allowed)
        {
            throw new ArgumentException(
                $"{nameof(MaxConnections)} is {maxConnections.ToString(CultureInfo.InvariantCulture)} but the agent allows {limit.ToString(CultureInfo.InvariantCulture)} " +
                $"connections per client IP ({AgentConnectionLimitSetting}); the gateway may use at most a quarter of that ({allowed.ToString(CultureInfo.InvariantCulture)}). " +
                $"Lower {nameof(MaxConnections)} or raise {AgentConnectionLimitSetting} on the agent.",
                nameof(maxConnections));
        }
    }

    /// <summary>Throws when an option is out of range or inconsistent.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it (and never shows the token or credentials).</exception>
    public void Validate()
    {
        if (Address is { } address)
        {
            if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps && address.Scheme != "unix"))
            {
                throw new ArgumentException($"Consul address '{RedactAddress(address.OriginalString)}' must be an absolute http://, https:// or unix:// URI.", nameof(Address));
            }

            if (address.UserInfo.Length > 0)
            {
                throw new ArgumentException($"Consul address '{RedactAddress(address.OriginalString)}' carries credentials (user:password@); Consul authenticates with the ACL token, so remove them.", nameof(Address));
            }

            if (address.Scheme == "unix" && address.AbsolutePath.Length <= 1)
            {
                throw new ArgumentException($"Consul address '{address}' names no socket path (expected unix:///path/to/consul.sock).", nameof(Address));
            }
        }

        if (MaxConnections < MinMaxConnections || MaxConnections > MaxMaxConnections)
        {
            throw new ArgumentException(
                $"{nameof(MaxConnections)} is {MaxConnections.ToString(CultureInfo.InvariantCulture)} but must be between {MinMaxConnections} and {MaxMaxConnections}.",
                nameof(MaxConnections));
        }

        if (string.IsNullOrEmpty(ClientCertificateFile) != string.IsNullOrEmpty(ClientKeyFile))
        {
            throw new ArgumentException(
                $"Both {nameof(ClientCertificateFile)} and {nameof(ClientKeyFile)} must be set for a client certificate (only {(string.IsNullOrEmpty(ClientKeyFile) ? nameof(ClientCertificateFile) : nameof(ClientKeyFile))} is).",
                string.IsNullOrEmpty(ClientKeyFile) ? nameof(ClientKeyFile) : nameof(ClientCertificateFile));
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("RequestTimeout must be positive.", nameof(RequestTimeout));
        }

        if (BlockingWait < TimeSpan.FromSeconds(1) || BlockingWait > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException("BlockingWait must be between 1 second and 10 minutes (Consul's max_query_time).", nameof(BlockingWait));
        }

        ArgumentNullException.ThrowIfNull(EnvironmentVariables);
    }

    /// <summary>Describes the options without the token or address credentials.</summary>
    /// <returns>Address, datacenter, connection bound and whether a token source is set; never the token.</returns>
    public override string ToString() =>
        $"Consul {(Address is null ? "(env/default)" : RedactAddress(Address.OriginalString))} dc={Datacenter ?? "(agent)"} maxConnections={MaxConnections} " +
        $"token={(Token is not null ? "(set)" : TokenFile is not null ? "(file)" : "(env/none)")}" +
        (VerifyServerCertificate == false ? " TLS-VERIFICATION-DISABLED" : string.Empty);

    /// <summary>Removes <c>user:password@</c> from an address text, for messages and logs.</summary>
    /// <param name="address">An address as configured.</param>
    /// <returns>The text with any credentials replaced by <c>***@</c>.</returns>
    public static string RedactAddress(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        int scheme = address.IndexOf("://", StringComparison.Ordinal);
        int start = scheme < 0 ? 0 : scheme + 3;
        int end = address.IndexOfAny(['/', '?', '#'], start);
        int searchEnd = end < 0 ? address.Length : end;
        int at = searchEnd > start ? address.LastIndexOf('@', searchEnd - 1, searchEnd - start) : -1;
        return at < 0 ? address : string.Concat(address.AsSpan(0, start), "***", address.AsSpan(at));
    }
}
