using MeshGateway.Testing;

namespace MeshGateway.Tool.Tests;

/// <summary>Exit codes without an agent: 0 for help, 2 naming the flag or key for bad usage or configuration, 1 for an unreachable agent.</summary>
public sealed class UsageTests
{
    [Fact]
    public async Task Help_ExitsZeroListingConsulStyleFlags()
    {
        using ToolProcess tool = await ToolProcess.RunAsync("--help");
        Assert.Equal(0, tool.Process.ExitCode);
        foreach (string flag in new[] { "-register", "-service", "-address", "-wan-address", "-bind-address", "-admin-bind", "-token", "-token-file", "-expose-servers", "-partition", "-namespace", "-config", "-dry-run" })
        {
            Assert.Contains(flag + " ", tool.StandardOutput, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("-bogus", "-bogus")]
    [InlineData("-wan-address nonsense", "-wan-address")]
    [InlineData("--wan-address [::1]", "-wan-address")]
    [InlineData("-address 10.0.0.5", "-address")]
    [InlineData("-bind-address public", "-bind-address")]
    [InlineData("-bind-address public=nowhere", "-bind-address")]
    [InlineData("-expose-servers -partition part1", "default partition")]
    [InlineData("-namespace team-a", "-namespace")]
    [InlineData("-gateway terminating", "terminating")]
    [InlineData("-token-file /nonexistent/meshgateway-token", "-token-file")]
    [InlineData("--config /nonexistent/meshgateway.json", "-config")]
    [InlineData("-register -address 0.0.0.0:8443 --dry-run", "LAN address")]
    public async Task BadFlag_ExitsTwoNamingIt(string args, string named)
    {
        using ToolProcess tool = await ToolProcess.RunAsync(args.Split(' '));
        Assert.True(tool.Process.ExitCode == 2, tool.Output);
        Assert.Contains(named, tool.StandardError, StringComparison.Ordinal);
        Assert.Equal(string.Empty, tool.StandardOutput);
    }

    [Theory]
    [InlineData("""{"MeshGateway":{"HelloTimeout":"01:00:00"}}""", "HelloTimeout is '01:00:00' but must be between 00:00:00.001 and 00:10:00")]
    [InlineData("""{"MeshGateway":{"Port":"abc"}}""", "MeshGateway:Port")]
    [InlineData("""{"MeshGateway":{"Consul":{"Meta":{"consul-version":"1"}}}}""", "Consul:Meta has the key 'consul-version'")]
    [InlineData("""{"MeshGateway":{""", "--config")]
    public async Task BadConfigurationFile_ExitsTwoNamingTheKey(string json, string named)
    {
        string file = Path.Combine(Path.GetTempPath(), $"mg-tool-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, json);
        try
        {
            using ToolProcess tool = await ToolProcess.RunAsync("--config", file, "--dry-run");
            Assert.True(tool.Process.ExitCode == 2, tool.Output);
            Assert.Contains(named, tool.StandardError, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task BadValueFromFlag_SameMessageAsTheOptionsValidatorNamingTheFlag()
    {
        using ToolProcess tool = await ToolProcess.RunAsync("-wan-address", "nonsense");
        Assert.Equal(2, tool.Process.ExitCode);
        Assert.Contains("WanAddress is 'nonsense' but must be 'ip:port' (IPv6 as '[::1]:8443'). (set by -wan-address)", tool.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DryRun_NoAgent_ExitsOneNamingTheAgentAddress()
    {
        int port = FreePorts.Next();
        using ToolProcess tool = await ToolProcess.RunAsync("--dry-run", "-http-addr", $"127.0.0.1:{port}");
        Assert.True(tool.Process.ExitCode == 1, tool.Output);
        Assert.Contains($"cannot reach the Consul agent at http://127.0.0.1:{port}/", tool.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownAdminBindKey_IsPassedThroughWithoutFailing()
    {
        // -admin-bind maps to MeshGateway:Admin:Bind; an options class without that key ignores it, a static gateway runs.
        string routes = Path.Combine(Path.GetTempPath(), $"mg-tool-routes-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(routes, """{"routes":[{"sni":"web.example","endpoints":["127.0.0.1:9"]}]}""");
        try
        {
            using ToolProcess tool = await ToolProcess.RunAsync("-routes-file", routes, "-admin-bind", "127.0.0.1:19000", "-address", "127.0.0.1:0", "--dry-run");
            Assert.True(tool.Process.ExitCode == 0, tool.Output);
            Assert.Contains("\"mode\": \"static\"", tool.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("\"sni\": \"web.example\"", tool.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(routes);
        }
    }
}
