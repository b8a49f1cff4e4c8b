using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MeshGateway.Consul;

/// <summary>
/// The connection settings of a <see cref="ConsulClient"/> after options and <c>CONSUL_*</c> environment variables are
/// merged, with the rules of Consul's Go api package (hashicorp/consul <c>api/api.go</c>: <c>defaultConfig</c> reads the
/// variables, <c>NewClient</c> splits the address on <c>://</c> and reads the token file, <c>SetupTLSConfig</c> loads
/// certificates through go-rootcerts). Deliberate differences: an option wins over its variable (Go's callers get that by
/// overwriting <c>DefaultConfig()</c> fields); an unparsable boolean variable is an error instead of a logged warning
/// (Go treats an unparsable <c>CONSUL_HTTP_SSL_VERIFY</c> as "do not verify", which we refuse to copy).
/// </summary>
internal sealed class ConsulAgentConnection
{
    private ConsulAgentConnection(Uri address, string? token, string tokenSource)
    {
        Address = address;
        Token = token;
        TokenSource = tokenSource;
    }

    /// <summary>The resolved address (<c>http</c>, <c>https</c> or <c>unix</c>; never with credentials).</summary>
    public Uri Address { get; }

    /// <summary>The path of the Unix domain socket, or null for TCP.</summary>
    public string? UnixSocketPath { get; private init; }

    /// <summary>Whether requests use TLS.</summary>
    public bool UseTls { get; private init; }

    /// <summary>The base address requests are sent to (<c>http(s)://localhost/</c> for a Unix socket).</summary>
    public Uri BaseAddress { get; private init; } = null!;

    /// <summary>The ACL token, or null for the agent's default token.</summary>
    public string? Token { get; }

    /// <summary>Where the token came from (for messages: an option or variable name, never the value).</summary>
    public string TokenSource { get; }

    /// <summary>The CA file, if any, and the option or variable that named it.</summary>
    public string? CaFile { get; private init; }

    /// <summary>The CA directory, if any (ignored when <see cref="CaFile"/> is set, as in go-rootcerts).</summary>
    public string? CaPath { get; private init; }

    /// <summary>The client certificate and key files, if any.</summary>
    public (string Certificate, string Key)? ClientCertificate { get; private init; }

    /// <summary>The TLS server name (SNI and name check), or null for the address's host.</summary>
    public string? TlsServerName { get; private init; }

    /// <summary>Whether the agent's certificate is verified.</summary>
    public bool VerifyServerCertificate { get; private init; } = true;

    /// <summary>The address as shown in messages (no credentials; a Unix socket as <c>unix:///path</c>).</summary>
    public string Display => UnixSocketPath is { } path ? "unix://" + path : Address.GetLeftPart(UriPartial.Path);

    /// <summary>Merges options and environment.</summary>
    /// <param name="options">Validated options.</param>
    /// <returns>The connection settings.</returns>
    /// <exception cref="ArgumentException">A variable or option is invalid.</exception>
    /// <exception cref="IOException">A token file cannot be read.</exception>
    public static ConsulAgentConnection Resolve(ConsulClientOptions options)
    {
        Func<string, string?> env = options.EnvironmentVariables;
        string? Env(string name) => env(name) is { Length: > 0 } value ? value : null;

        bool useHttps = options.UseHttps ?? ParseGoBool(ConsulClientOptions.SslEnvironmentVariable, Env(ConsulClientOptions.SslEnvironmentVariable)) ?? false;
        Uri address;
        if (options.Address is { } configured)
        {
            address = useHttps && configured.Scheme == Uri.UriSchemeHttp
                ? new UriBuilder(configured) { Scheme = Uri.UriSchemeHttps, Port = configured.IsDefaultPort ? -1 : configured.Port }.Uri
                : configured;
        }
        else
        {
            string? fromEnv = Env(ConsulClientOptions.AddressEnvironmentVariable);
            try
            {
                address = ConsulClientOptions.ParseAddress(fromEnv ?? ConsulClientOptions.DefaultAddress, useHttps);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"{ConsulClientOptions.AddressEnvironmentVariable}: {ex.Message}", nameof(options), ex);
            }
        }

        (string? token, string tokenSource) = ResolveToken(options, Env);

        // Each group comes wholly from the options or wholly from the environment, so an option never mixes with a variable.
        bool caFromOptions = !string.IsNullOrEmpty(options.CaFile) || !string.IsNullOrEmpty(options.CaPath);
        string? caFile = caFromOptions ? NullIfEmpty(options.CaFile) : Env(ConsulClientOptions.CaFileEnvironmentVariable);
        string? caPath = caFromOptions ? NullIfEmpty(options.CaPath) : Env(ConsulClientOptions.CaPathEnvironmentVariable);

        bool certFromOptions = !string.IsNullOrEmpty(options.ClientCertificateFile) || !string.IsNullOrEmpty(options.ClientKeyFile);
        string? certFile = certFromOptions ? NullIfEmpty(options.ClientCertificateFile) : Env(ConsulClientOptions.ClientCertificateEnvironmentVariable);
        string? keyFile = certFromOptions ? NullIfEmpty(options.ClientKeyFile) : Env(ConsulClientOptions.ClientKeyEnvironmentVariable);
        if ((certFile is null) != (keyFile is null))
        {
            // SetupTLSConfig: "both client cert and client key must be provided".
            throw new ArgumentException(
                $"Both {ConsulClientOptions.ClientCertificateEnvironmentVariable} and {ConsulClientOptions.ClientKeyEnvironmentVariable} must be set for a client certificate (only {(certFile is null ? ConsulClientOptions.ClientKeyEnvironmentVariable : ConsulClientOptions.ClientCertificateEnvironmentVariable)} is).",
                nameof(options));
        }

        string? serverName = NullIfEmpty(options.TlsServerName) ?? Env(ConsulClientOptions.TlsServerNameEnvironmentVariable);
        if (serverName is not null && serverName.LastIndexOf(':') > serverName.LastIndexOf(']'))
        {
            // SetupTLSConfig drops a port: hasPort := LastIndex(":") > LastIndex("]").
            serverName = serverName[..serverName.LastIndexOf(':')];
        }

        serverName = serverName?.Trim('[', ']');
        bool verify = options.VerifyServerCertificate ?? ParseGoBool(ConsulClientOptions.SslVerifyEnvironmentVariable, Env(ConsulClientOptions.SslVerifyEnvironmentVariable)) ?? true;

        string? unixPath = address.Scheme == "unix" ? Uri.UnescapeDataString(address.AbsolutePath) : null;
        bool tls = address.Scheme == Uri.UriSchemeHttps || (unixPath is not null && useHttps);
        Uri baseAddress = unixPath is not null
            ? new Uri(tls ? "https://localhost/" : "http://localhost/")
            : address.AbsoluteUri.EndsWith('/') ? address : new Uri(address.AbsoluteUri + "/");
        return new ConsulAgentConnection(address, token, tokenSource)
        {
            UnixSocketPath = unixPath,
            UseTls = tls,
            BaseAddress = baseAddress,
            CaFile = caFile,
            CaPath = caFile is null ? caPath : null,
            ClientCertificate = certFile is not null ? (certFile, keyFile!) : null,
            TlsServerName = serverName,
            VerifyServerCertificate = verify,
        };
    }

    /// <summary>Go's <c>strconv.ParseBool</c>: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.</summary>
    internal static bool? ParseGoBool(string variable, string? value) => value switch
    {
        null => null,
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => throw new ArgumentException($"{variable} is '{value}' but must be a boolean (true/false, 1/0, t/f).", variable),
    };

    /// <summary>Creates the transport: connection bound, Unix socket dialling, TLS trust, client certificate.</summary>
    /// <param name="maxConnections">The connection bound.</param>
    /// <returns>A handler the client owns.</returns>
    public SocketsHttpHandler CreateHandler(int maxConnections)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            UseProxy = false,
            MaxConnectionsPerServer = maxConnections,
        };
        if (UnixSocketPath is { } socketPath)
        {
            // api/api.go: a unix:// address dials the path whatever the request's host; the request URI uses localhost.
            var endPoint = new UnixDomainSocketEndPoint(socketPath);
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        if (!UseTls)
        {
            return handler;
        }

        var ssl = new SslClientAuthenticationOptions();
        if (ClientCertificate is { } pair)
        {
            ssl.ClientCertificates = [LoadClientCertificate(pair.Certificate, pair.Key)];
        }

        if (!VerifyServerCertificate)
        {
            // Asked for explicitly (VerifyServerCertificate = false or CONSUL_HTTP_SSL_VERIFY=false, Go's InsecureSkipVerify);
            // the client reports it through ServerCertificateVerificationDisabled so hosts log it loudly.
#pragma warning disable CA5359 // The user turned verification off; this mirrors Consul's CONSUL_HTTP_SSL_VERIFY=false.
            ssl.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (CaFile is not null || CaPath is not null)
        {
            X509Certificate2Collection roots = CaFile is not null ? LoadCaFile(CaFile) : LoadCaPath(CaPath!);
            ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }

        handler.SslOptions = ssl;
        return handler;
    }

    private static (string? Token, string Source) ResolveToken(ConsulClientOptions options, Func<string, string?> env)
    {
        if (!string.IsNullOrEmpty(options.Token))
        {
            return (CheckToken(options.Token.Trim(), nameof(ConsulClientOptions.Token)), nameof(ConsulClientOptions.Token));
        }

        if (!string.IsNullOrEmpty(options.TokenFile))
        {
            string fromFile = ReadTokenFile(options.TokenFile, nameof(ConsulClientOptions.TokenFile));
            if (fromFile.Length == 0)
            {
                throw new ArgumentException($"The Consul token file '{options.TokenFile}' is empty.", nameof(options));
            }

            return (CheckToken(fromFile, nameof(ConsulClientOptions.TokenFile)), nameof(ConsulClientOptions.TokenFile));
        }

        // NewClient: "If the TokenFile is set, always use that, even if a Token is configured"; an empty file falls back.
        if (env(ConsulClientOptions.TokenFileEnvironmentVariable) is { } envFile)
        {
            string fromFile = ReadTokenFile(envFile, ConsulClientOptions.TokenFileEnvironmentVariable);
            if (fromFile.Length > 0)
            {
                return (CheckToken(fromFile, ConsulClientOptions.TokenFileEnvironmentVariable), ConsulClientOptions.TokenFileEnvironmentVariable);
            }
        }

        if (env(ConsulClientOptions.TokenEnvironmentVariable) is { } envToken && envToken.Trim().Length > 0)
        {
            return (CheckToken(envToken.Trim(), ConsulClientOptions.TokenEnvironmentVariable), ConsulClientOptions.TokenEnvironmentVariable);
        }

        return (null, "(none: the agent's default token)");
    }

    private static string ReadTokenFile(string path, string source)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"The Consul token file '{path}' ({source}) cannot be read: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Rejects a token that cannot travel in an HTTP header, before any request: the HTTP stack's own error for a bad header
    /// value may quote the value. The message gives the position, never the token.
    /// </summary>
    private static string CheckToken(string token, string source)
    {
        for (int i = 0; i < token.Length; i++)
        {
            if (token[i] is < '!' or > '~')
            {
                throw new ArgumentException($"The Consul ACL token from {source} has a character that cannot be sent in an HTTP header at position {i} (the token is not shown).", source);
            }
        }

        return token;
    }

    private static X509Certificate2 LoadClientCertificate(string certificateFile, string keyFile)
    {
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);

            // A PEM key is ephemeral; round-trip through PKCS#12 so SslStream can use it on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"The Consul client certificate '{certificateFile}' with key '{keyFile}' cannot be loaded: {ex.Message}", nameof(certificateFile), ex);
        }
    }

    private static X509Certificate2Collection LoadCaFile(string caFile)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(caFile);
        }
        catch (CryptographicException ex)
        {
            throw new ArgumentException($"The Consul CA file '{caFile}' is not valid PEM: {ex.Message}", nameof(caFile), ex);
        }

        if (roots.Count == 0)
        {
            throw new ArgumentException($"The Consul CA file '{caFile}' holds no PEM certificate.", nameof(caFile));
        }

        return roots;
    }

    /// <summary>go-rootcerts <c>LoadCAPath</c>: walks the directory; every regular file must hold a PEM certificate.</summary>
    private static X509Certificate2Collection LoadCaPath(string caPath)
    {
        if (!Directory.Exists(caPath))
        {
            throw new ArgumentException($"The Consul CA directory '{caPath}' does not exist.", nameof(caPath));
        }

        var roots = new X509Certificate2Collection();
        foreach (string file in Directory.EnumerateFiles(caPath, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var one = new X509Certificate2Collection();
            try
            {
                one.ImportFromPemFile(file);
            }
            catch (CryptographicException ex)
            {
                throw new ArgumentException($"The file '{file}' in the Consul CA directory '{caPath}' is not valid PEM: {ex.Message}", nameof(caPath), ex);
            }

            if (one.Count == 0)
            {
                throw new ArgumentException($"The file '{file}' in the Consul CA directory '{caPath}' holds no PEM certificate.", nameof(caPath));
            }

            roots.AddRange(one);
        }

        if (roots.Count == 0)
        {
            throw new ArgumentException($"The Consul CA directory '{caPath}' holds no certificate.", nameof(caPath));
        }

        return roots;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
