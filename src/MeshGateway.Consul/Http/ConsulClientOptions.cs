namespace MeshGateway.Consul;

/// <summary>Where and how <see cref="ConsulClient"/> talks to a Consul agent.</summary>
/// <remarks>
/// The ACL token is taken, first match wins, from <see cref="Token"/>, from the file named by <see cref="TokenFile"/>
/// (trimmed, read once when the client is created), or from the <c>CONSUL_HTTP_TOKEN</c> environment variable;
/// with none the agent's default token applies. It is sent as the <c>X-Consul-Token</c> header and never appears in
/// <see cref="ToString"/>, logs or exception messages.
/// </remarks>
public sealed class ConsulClientOptions
{
    /// <summary>The environment variable read when neither <see cref="Token"/> nor <see cref="TokenFile"/> is set.</summary>
    public const string TokenEnvironmentVariable = "CONSUL_HTTP_TOKEN";

    /// <summary>The agent's HTTP(S) address. Default <c>http://127.0.0.1:8500</c>.</summary>
    public Uri Address { get; set; } = new("http://127.0.0.1:8500");

    /// <summary>The ACL token (secret ID). Default none.</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the ACL token; used when <see cref="Token"/> is not set.</summary>
    public string? TokenFile { get; set; }

    /// <summary>The datacenter sent as <c>?dc=</c> when a call names none. Default none (the agent's own).</summary>
    public string? Datacenter { get; set; }

    /// <summary>Enterprise namespace sent as <c>?ns=</c>. Default none (Consul CE uses <c>default</c>).</summary>
    public string? Namespace { get; set; }

    /// <summary>Enterprise admin partition sent as <c>?partition=</c>. Default none.</summary>
    public string? Partition { get; set; }

    /// <summary>A PEM file with the CA certificate(s) that sign the agent's HTTPS certificate. Default none (system trust).</summary>
    public string? CaFile { get; set; }

    /// <summary>
    /// A handler to send requests through instead of the built-in <see cref="System.Net.Http.SocketsHttpHandler"/>
    /// (custom TLS, proxies, tests). The client does not dispose it. <see cref="CaFile"/> is ignored when set.
    /// </summary>
    public HttpMessageHandler? Handler { get; set; }

    /// <summary>
    /// Most HTTP connections this client opens to the agent at once (HTTP/1.1 carries one request per connection, so
    /// also the most requests in flight; more wait for a free connection). Default 8, valid 2 to 64. Consul's agent
    /// allows one client address <c>limits.http_max_conns_per_client</c> (default 200) connections and resets the
    /// excess, which would starve every other local client: the catalog watcher refuses a value above a quarter of it.
    /// </summary>
    public int MaxConnections { get; set; } = DefaultMaxConnections;

    /// <summary>Default of <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 8;

    /// <summary>Timeout of a non-blocking request, and the margin added to <c>wait + wait/16</c> of a blocking one. Default 15 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The <c>wait</c> of blocking queries. Default 5 minutes (Consul's default; the server caps it at
    /// <c>max_query_time</c>, 10 minutes by default).
    /// </summary>
    public TimeSpan BlockingWait { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Throws when an option is out of range.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it.</exception>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Address);
        if (!Address.IsAbsoluteUri || (Address.Scheme != Uri.UriSchemeHttp && Address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Consul address '{Address}' must be an absolute http:// or https:// URI.", nameof(Address));
        }

        if (MaxConnections is < 2 or > 64)
        {
            throw new ArgumentException($"MaxConnections must be between 2 and 64 (was {MaxConnections}).", nameof(MaxConnections));
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("RequestTimeout must be positive.", nameof(RequestTimeout));
        }

        if (BlockingWait < TimeSpan.FromSeconds(1) || BlockingWait > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException("BlockingWait must be between 1 second and 10 minutes (Consul's max_query_time).", nameof(BlockingWait));
        }
    }

    /// <summary>Describes the options without the token.</summary>
    /// <returns>Address, datacenter and whether a token source is set; never the token.</returns>
    public override string ToString() =>
        $"Consul {Address} dc={Datacenter ?? "(agent)"} token={(Token is not null ? "(set)" : TokenFile is not null ? "(file)" : "(env/none)")}";
}
