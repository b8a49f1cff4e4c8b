using System.Diagnostics;
using MeshGateway.Testing;

namespace MeshGateway.Consul.Tests.Fixtures;

/// <summary>
/// A CA, a server certificate (<c>server.dc1.consul</c>, <c>localhost</c>, 127.0.0.1) and a client certificate made by
/// <c>consul tls ca create</c> / <c>consul tls cert create -server|-client</c> in a temp directory, as operators make them.
/// </summary>
internal sealed class ConsulTlsMaterial : IDisposable
{
    private ConsulTlsMaterial(string directory) => Directory = directory;

    public string Directory { get; }

    public string CaFile => Path.Combine(Directory, "consul-agent-ca.pem");

    public string ServerCertificateFile => Path.Combine(Directory, "dc1-server-consul-0.pem");

    public string ServerKeyFile => Path.Combine(Directory, "dc1-server-consul-0-key.pem");

    public string ClientCertificateFile => Path.Combine(Directory, "dc1-client-consul-0.pem");

    public string ClientKeyFile => Path.Combine(Directory, "dc1-client-consul-0-key.pem");

    public static async Task<ConsulTlsMaterial> CreateAsync()
    {
        var material = new ConsulTlsMaterial(System.IO.Directory.CreateTempSubdirectory("mg-consul-tls-").FullName);
        try
        {
            await material.RunAsync("tls", "ca", "create").ConfigureAwait(false);
            await material.RunAsync("tls", "cert", "create", "-server", "-dc", "dc1").ConfigureAwait(false);
            await material.RunAsync("tls", "cert", "create", "-client", "-dc", "dc1").ConfigureAwait(false);
        }
        catch
        {
            material.Dispose();
            throw;
        }

        return material;
    }

    /// <summary>The server certificate of <paramref name="datacenter"/> (see <see cref="CreateForWanFederationAsync"/>).</summary>
    public string ServerCertificateFileOf(string datacenter) => Path.Combine(Directory, datacenter + "-server-consul-0.pem");

    /// <summary>The server key of <paramref name="datacenter"/>.</summary>
    public string ServerKeyFileOf(string datacenter) => Path.Combine(Directory, datacenter + "-server-consul-0-key.pem");

    /// <summary>
    /// A CA and one server certificate per datacenter, each also valid for <c>*.server.&lt;dc&gt;.consul</c>: WAN federation
    /// through mesh gateways dials servers by those names and fails after the first join without them (docs/consul-behaviour.md §14).
    /// </summary>
    public static async Task<ConsulTlsMaterial> CreateForWanFederationAsync(params string[] datacenters)
    {
        var material = new ConsulTlsMaterial(System.IO.Directory.CreateTempSubdirectory("mg-consul-tls-").FullName);
        try
        {
            await material.RunAsync("tls", "ca", "create").ConfigureAwait(false);
            foreach (string dc in datacenters)
            {
                await material.RunAsync("tls", "cert", "create", "-server", "-dc", dc, "-additional-dnsname=*.server." + dc + ".consul").ConfigureAwait(false);
            }
        }
        catch
        {
            material.Dispose();
            throw;
        }

        return material;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task RunAsync(params string[] args)
    {
        var psi = new ProcessStartInfo(ConsulBinary.Path) { WorkingDirectory = Directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {ConsulBinary.Path}.");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"consul {string.Join(' ', args)} did not finish within 60 s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"consul {string.Join(' ', args)} exited with {process.ExitCode}: {await output.ConfigureAwait(false)} {await error.ConfigureAwait(false)}");
        }
    }
}
