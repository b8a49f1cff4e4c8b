using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Tool;

/// <summary>The process exit codes (README "The meshgateway command").</summary>
internal static class ExitCodes
{
    /// <summary>Ran and stopped cleanly (SIGTERM/Ctrl+C), printed the plan (<c>--dry-run</c>) or the help.</summary>
    public const int Ok = 0;

    /// <summary>A runtime failure: the agent unreachable, a refused registration, a listener that cannot bind, no first routing table.</summary>
    public const int RuntimeFailure = 1;

    /// <summary>Bad usage or configuration: an unknown flag, a bad value, an unsupported flag, invalid options. The message names the flag or key.</summary>
    public const int Usage = 2;
}

/// <summary>
/// The command line: flags named as <c>consul connect envoy -gateway=mesh</c> names them (each also with two dashes),
/// turned into <c>MeshGateway:*</c> configuration keys, the highest-precedence source over <c>--config</c> and the
/// <c>MeshGateway__*</c> environment variables. Values are not checked here but by the Hosting validators, so a bad value
/// gives the same message as in a configuration file; only what has no option (a malformed <c>-bind-address</c>, an
/// unsupported flag, a missing file) is refused here.
/// </summary>
internal sealed class GatewayCommand
{
    private readonly Option<bool> _register = Flag<bool>("register", "Register the gateway service with the local agent while it runs, and deregister it on stop (Consul -register).");
    private readonly Option<string?> _gateway = Flag<string?>("gateway", "The gateway kind; only 'mesh' (accepted so `consul connect envoy` command lines carry over).");
    private readonly Option<string?> _service = Flag<string?>("service", "The gateway's service name (Consul -service). Default mesh-gateway.");
    private readonly Option<string?> _proxyId = Flag<string?>("proxy-id", "The gateway's service ID (Consul -proxy-id). Default: the service name.");
    private readonly Option<string?> _address = Flag<string?>("address", "LAN address ip:port: the default listener and the registration's address (Consul -address). Default 0.0.0.0:8443.");
    private readonly Option<string?> _wanAddress = Flag<string?>("wan-address", "WAN address ip:port other datacenters dial (Consul -wan-address): the wan tagged address.");
    private readonly Option<string[]> _bindAddress = Flag<string[]>("bind-address", "An extra listener name=ip:port; repeatable (Consul -bind-address). Turns the default listener off, as Consul does.");
    private readonly Option<string?> _adminBind = Flag<string?>("admin-bind", "The admin endpoint's ip:port (Consul -admin-bind); configuration key MeshGateway:Admin:Bind.");
    private readonly Option<string?> _token = Flag<string?>("token", "The ACL token (visible in the process list: prefer -token-file or CONSUL_HTTP_TOKEN).");
    private readonly Option<string?> _tokenFile = Flag<string?>("token-file", "A file holding the ACL token.");
    private readonly Option<string?> _httpAddr = Flag<string?>("http-addr", "The agent's HTTP address (Consul -http-addr). Default CONSUL_HTTP_ADDR, else 127.0.0.1:8500.");
    private readonly Option<string?> _caFile = Flag<string?>("ca-file", "PEM CA file for an HTTPS agent (Consul -ca-file).");
    private readonly Option<string?> _caPath = Flag<string?>("ca-path", "Directory of PEM CA files (Consul -ca-path).");
    private readonly Option<string?> _clientCert = Flag<string?>("client-cert", "Client certificate for the agent (Consul -client-cert).");
    private readonly Option<string?> _clientKey = Flag<string?>("client-key", "Client certificate's key (Consul -client-key).");
    private readonly Option<string?> _tlsServerName = Flag<string?>("tls-server-name", "TLS server name of the agent (Consul -tls-server-name).");
    private readonly Option<string?> _datacenter = Flag<string?>("datacenter", "The datacenter to watch and register in (Consul -datacenter). Default: the agent's.");
    private readonly Option<string?> _partition = Flag<string?>("partition", "Enterprise admin partition (Consul -partition).");
    private readonly Option<string?> _namespace = Flag<string?>("namespace", "Enterprise namespace (Consul -namespace); mesh gateways live in 'default', the only value accepted.");
    private readonly Option<bool> _exposeServers = Flag<bool>("expose-servers", "Expose the Consul servers for WAN federation through mesh gateways (Consul -expose-servers): registers meta consul-wan-federation = 1 and routes the servers (MeshGateway:Consul:WanFederation).");
    private readonly Option<string?> _routesFile = Flag<string?>("routes-file", "Route from this routes file instead of Consul (no agent needed).");
    private readonly Option<string?> _config = Flag<string?>("config", "A JSON configuration file with a MeshGateway section (the Hosting options); flags win over it.");
    private readonly Option<bool> _dryRun = Flag<bool>("dry-run", "Print the plan as JSON (listeners, registration, routes from the current catalog, ACL policy, preflight findings) and exit.");

    public GatewayCommand()
    {
        Root = new RootCommand("meshgateway: a Consul mesh gateway (`consul connect envoy -gateway=mesh` without Envoy). Every flag takes one dash (as Consul's) or two. Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.");
        foreach (Option option in (Option[])[_register, _gateway, _service, _proxyId, _address, _wanAddress, _bindAddress, _adminBind, _token, _tokenFile,
            _httpAddr, _caFile, _caPath, _clientCert, _clientKey, _tlsServerName, _datacenter, _partition, _namespace, _exposeServers, _routesFile, _config, _dryRun])
        {
            Root.Add(option);
        }

        _gateway.AcceptOnlyFromAmong("mesh");
    }

    public RootCommand Root { get; }

    /// <summary>Parses without any Consul-style bundling of short flags (every flag here is a whole word).</summary>
    public ParseResult Parse(string[] args) => Root.Parse(args, new ParserConfiguration { EnablePosixBundling = false });

    /// <summary>
    /// The settings the parse result asks for, or the usage error (naming the flag) that refuses it.
    /// </summary>
    public ToolSettings? TryGetSettings(ParseResult result, out string? error)
    {
        error = null;
        var keys = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var flagOfKey = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        void Set(string key, string? value, Option option)
        {
            keys["MeshGateway:" + key] = value;
            flagOfKey[key] = "-" + option.Name.TrimStart('-');
        }

        if (result.GetValue(_exposeServers))
        {
            Set("Consul:WanFederation", "true", _exposeServers);
        }

        if (result.GetValue(_namespace) is { Length: > 0 } ns && ns != "default")
        {
            error = $"-namespace is '{ns}', but mesh gateways are registered in the 'default' namespace (Consul requires it); other namespaces are not supported.";
            return null;
        }

        if (result.GetValue(_address) is { } address)
        {
            if (!TryParseEndPoint(address, out IPEndPoint? endPoint))
            {
                error = $"-address is '{address}' but must be 'ip:port' (IPv6 as '[::1]:8443').";
                return null;
            }

            Set("Address", endPoint.Address.ToString(), _address);
            Set("Port", endPoint.Port.ToString(CultureInfo.InvariantCulture), _address);
        }

        string? wan = result.GetValue(_wanAddress);
        if (wan is not null)
        {
            Set("WanAddress", wan, _wanAddress);
        }

        string[] binds = result.GetValue(_bindAddress) ?? [];
        foreach (string bind in binds)
        {
            int eq = bind.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? string.Empty : bind[..eq];
            if (eq <= 0 || eq == bind.Length - 1 || name.Contains(':', StringComparison.Ordinal))
            {
                error = $"-bind-address is '{bind}' but must be 'name=ip:port' (a name without ':', e.g. 'public=0.0.0.0:443').";
                return null;
            }

            Set("BindAddresses:" + name, bind[(eq + 1)..], _bindAddress);
        }

        // Consul's -register listener choice (command/connect/envoy): bind addresses turn the default listener off; else,
        // when both the LAN and the WAN address can be bound here, it binds the tagged addresses instead of the default.
        if (binds.Length > 0)
        {
            Set("NoDefaultBind", "true", _bindAddress);
        }
        else if (wan is not null && keys.TryGetValue("MeshGateway:Address", out string? lanIp)
            && IsLocallyBindable(lanIp) && TryParseEndPoint(wan, out IPEndPoint? wanEndPoint) && IsLocallyBindable(wanEndPoint.Address.ToString()))
        {
            Set("BindTaggedAddresses", "true", _wanAddress);
            Set("NoDefaultBind", "true", _wanAddress);
        }

        SetIfGiven(result, _adminBind, "Admin:Bind", Set);
        SetIfGiven(result, _service, "Consul:ServiceName", Set);
        SetIfGiven(result, _proxyId, "Consul:ServiceId", Set);
        SetIfGiven(result, _token, "Consul:Token", Set);
        SetIfGiven(result, _tokenFile, "Consul:TokenFile", Set);
        SetIfGiven(result, _httpAddr, "Consul:Address", Set);
        SetIfGiven(result, _caFile, "Consul:CaFile", Set);
        SetIfGiven(result, _caPath, "Consul:CaPath", Set);
        SetIfGiven(result, _clientCert, "Consul:ClientCertificateFile", Set);
        SetIfGiven(result, _clientKey, "Consul:ClientKeyFile", Set);
        SetIfGiven(result, _tlsServerName, "Consul:TlsServerName", Set);
        SetIfGiven(result, _datacenter, "Consul:Datacenter", Set);
        SetIfGiven(result, _partition, "Consul:Partition", Set);
        SetIfGiven(result, _routesFile, "RoutesFile", Set);
        if (result.GetValue(_register))
        {
            Set("Consul:Register", "true", _register);
        }

        foreach ((Option<string?> option, string what) in ((Option<string?>, string)[])[(_config, "configuration file"), (_tokenFile, "token file"), (_routesFile, "routes file"), (_caFile, "CA file"), (_clientCert, "client certificate"), (_clientKey, "client key")])
        {
            if (result.GetValue(option) is { } path && !File.Exists(path))
            {
                error = $"-{option.Name.TrimStart('-')}: the {what} '{path}' does not exist.";
                return null;
            }
        }

        return new ToolSettings(keys, flagOfKey, result.GetValue(_config), result.GetValue(_dryRun));
    }

    private static void SetIfGiven(ParseResult result, Option<string?> option, string key, Action<string, string?, Option> set)
    {
        if (result.GetValue(option) is { } value)
        {
            set(key, value, option);
        }
    }

    private static Option<T> Flag<T>(string name, string description) => new("--" + name, "-" + name) { Description = description };

    private static bool TryParseEndPoint(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? endPoint)
    {
        // A port is required: IPEndPoint.TryParse alone takes "10.0.0.5" (port 0) and reads "::1" as an address.
        bool hasPort = text.StartsWith('[') ? text.Contains("]:", StringComparison.Ordinal) : text.Count(c => c == ':') == 1;
        endPoint = null;
        return hasPort && IPEndPoint.TryParse(text, out endPoint);
    }

    /// <summary>Whether an address is one of this machine's (a bind to it, port 0, succeeds), as Consul checks before binding tagged addresses.</summary>
    private static bool IsLocallyBindable(string? ip)
    {
        if (!IPAddress.TryParse(ip, out IPAddress? address))
        {
            return false;
        }

        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(address, 0));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>What the command line asked for.</summary>
/// <param name="Keys">Configuration keys (<c>MeshGateway:…</c>) from the flags.</param>
/// <param name="FlagOfKey">For each option key (without <c>MeshGateway:</c>), the flag that set it, to name it in errors.</param>
/// <param name="ConfigFile">The <c>--config</c> file, if any.</param>
/// <param name="DryRun">Print the plan and exit.</param>
internal sealed record ToolSettings(IReadOnlyDictionary<string, string?> Keys, IReadOnlyDictionary<string, string> FlagOfKey, string? ConfigFile, bool DryRun);
