using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using PeeringBench;

const string Usage = """
    PeeringBench certs --out DIR
    PeeringBench backend --listen IP:PORT --certs DIR [--body-bytes 1024]
    PeeringBench gateway --listen IP:PORT --backend IP:PORT --certs DIR [--log-level LEVEL]
    PeeringBench yarp    --listen IP:PORT --backend IP:PORT --certs DIR
    PeeringBench embedded --certs DIR
    PeeringBench load    --target IP:PORT --certs DIR [--connections 16] [--warmup-s 2] [--duration-s 10]
                         [--timeout-s 10] [--path /] [--proxy-pids PID,PID] [--backend-pids PID,PID]

    Issue 14's benchmark host (eng/bench-peering.sh runs it; docs/benchmarks.md has the results). Loopback only.
      certs    writes the PKI as PEM: local-ca, peer-ca; gateway, backend, client (.crt + .key)
      backend  the local service behind mTLS: answers every request with --body-bytes bytes
      gateway  GatewayListener + PeeringTerminator (MeshGateway.Peering) terminating peer mTLS for `web`;
               --log-level (Trace ... Critical) logs to the console at that level, as a host's default logging
               does (Information); without it nothing is logged
      yarp     Kestrel HTTPS (client certificate required) + YARP, no MeshGateway code
      embedded only a PeeringTerminator, no signal handling of its own (a test checks that SIGTERM ends it)
      load     HTTP/1.1 keep-alive load presenting the peer's client certificate; prints one PEERING_RESULT line
    Servers run until SIGTERM or SIGINT.
    """;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

var values = new Dictionary<string, string>(StringComparer.Ordinal);
try
{
    for (int i = 1; i < args.Length; i++)
    {
        if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
        {
            throw new FormatException($"Expected '--name value' pairs, got '{args[i]}'.");
        }

        values[args[i]] = args[++i];
    }

    string Required(string name) => values.TryGetValue(name, out string? v) ? v : throw new FormatException($"{args[0]} needs {name}.");
    IPEndPoint EndPoint(string name) => IPEndPoint.TryParse(Required(name), out IPEndPoint? e) ? e : throw new FormatException($"{name} needs IP:PORT, not '{values[name]}'.");
    int Int(string name, int fallback) => !values.TryGetValue(name, out string? v) ? fallback
        : int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : throw new FormatException($"{name} must be a positive integer, not '{v}'.");
    int IntOrZero(string name, int fallback) => values.TryGetValue(name, out string? v) && v == "0" ? 0 : Int(name, fallback);
    int[] Pids(string name) => !values.TryGetValue(name, out string? v) || v.Length == 0 ? []
        : [.. v.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : throw new FormatException($"{name}: '{p}' is not a PID."))];

    string[] known = args[0] switch
    {
        "certs" => ["--out"],
        "backend" => ["--listen", "--certs", "--body-bytes"],
        "gateway" => ["--listen", "--backend", "--certs", "--log-level"],
        "yarp" => ["--listen", "--backend", "--certs"],
        "embedded" => ["--certs"],
        "load" => ["--target", "--certs", "--connections", "--warmup-s", "--duration-s", "--timeout-s", "--path", "--proxy-pids", "--backend-pids"],
        _ => throw new FormatException($"Unknown mode '{args[0]}'."),
    };
    foreach (string name in values.Keys)
    {
        if (!known.Contains(name))
        {
            throw new FormatException($"{args[0]} has no option {name}.");
        }
    }

    switch (args[0])
    {
        case "certs":
            Certificates.Write(Required("--out"));
            Console.WriteLine($"certs: written to {values["--out"]}");
            return 0;
        case "backend":
            return await Servers.RunBackendAsync(EndPoint("--listen"), Required("--certs"), Int("--body-bytes", 1024));
        case "gateway":
            LogLevel? logLevel = !values.TryGetValue("--log-level", out string? level) ? null
                : Enum.TryParse(level, ignoreCase: true, out LogLevel parsed) && Enum.IsDefined(parsed) && parsed != LogLevel.None ? parsed
                : throw new FormatException($"--log-level must be one of Trace, Debug, Information, Warning, Error, Critical, not '{level}'.");
            return await Servers.RunGatewayAsync(EndPoint("--listen"), EndPoint("--backend"), Required("--certs"), logLevel);
        case "embedded":
            return await Servers.RunEmbeddedAsync(Required("--certs"));
        case "yarp":
            return await Servers.RunYarpAsync(EndPoint("--listen"), EndPoint("--backend"), Required("--certs"));
        default:
            string path = values.GetValueOrDefault("--path", "/");
            if (!path.StartsWith('/') || path.Any(c => c <= ' ' || c >= 0x7f))
            {
                throw new FormatException($"--path must be an absolute path of visible ASCII, not '{path}'.");
            }

            return await LoadClient.RunAsync(new LoadOptions(
                EndPoint("--target"),
                Required("--certs"),
                Int("--connections", 16),
                TimeSpan.FromSeconds(IntOrZero("--warmup-s", 2)),
                TimeSpan.FromSeconds(Int("--duration-s", 10)),
                TimeSpan.FromSeconds(Int("--timeout-s", 10)),
                path,
                Pids("--proxy-pids"),
                Pids("--backend-pids")));
    }
}
catch (FormatException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}
