namespace MeshGateway.Testing;

/// <summary>Finds the Consul binary the real-agent tests run: <c>CONSUL_BIN</c>, then PATH, then the repo's <c>.tools/consul/consul</c>.</summary>
internal static class ConsulBinary
{
    private static readonly Lazy<string> s_path = new(Locate);

    public static string Path => s_path.Value;

    private static string SourceDirectory([System.Runtime.CompilerServices.CallerFilePath] string file = "") =>
        System.IO.Path.IsPathRooted(file) && Directory.Exists(System.IO.Path.GetDirectoryName(file)) ? System.IO.Path.GetDirectoryName(file)! : string.Empty;

    private static string Locate()
    {
        string? fromEnv = Environment.GetEnvironmentVariable("CONSUL_BIN");
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return File.Exists(fromEnv)
                ? fromEnv
                : throw new InvalidOperationException($"CONSUL_BIN points at '{fromEnv}', which does not exist. Run `bash eng/install-consul.sh` and export CONSUL_BIN=\"$(bash eng/install-consul.sh)\".");
        }

        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = System.IO.Path.Combine(dir, "consul");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        // The repository's .tools/consul/consul (eng/install-consul.sh), found from the working directory or from this
        // source file's compile-time location (test output may live outside the repository, see MG_ARTIFACTS).
        foreach (string start in new[] { Directory.GetCurrentDirectory(), SourceDirectory() })
        {
            for (DirectoryInfo? dir = string.IsNullOrEmpty(start) ? null : new(start); dir is not null; dir = dir.Parent)
            {
                string candidate = System.IO.Path.Combine(dir.FullName, ".tools", "consul", "consul");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        string ci = Environment.GetEnvironmentVariable("CI") == "true" ? " (CI=true: these tests never skip)" : string.Empty;
        throw new InvalidOperationException(
            "Consul 1.8.7 was not found: set CONSUL_BIN or put `consul` on PATH. From the repository root run " +
            "`export CONSUL_BIN=\"$(bash eng/install-consul.sh)\"` to install the pinned Debian package into .tools/consul/" + ci + ".");
    }
}
