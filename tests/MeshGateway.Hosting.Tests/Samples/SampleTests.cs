using GatewaySample;
using MeshGateway.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TwoDatacenters;

namespace MeshGateway.Tests.Samples;

public sealed class SampleTests
{
    [Fact]
    public async Task TwoDatacenters_Run_PassesEveryCheckAndPrintsEachHop()
    {
        using var output = new StringWriter();

        int exitCode = await TwoDatacentersDemo.RunAsync(output).WaitAsync(TimeSpan.FromMinutes(2));

        string text = output.ToString();
        Assert.True(exitCode == 0, text);
        Assert.Contains("PASS:", text, StringComparison.Ordinal);
        foreach (string mode in new[] { "local", "remote", "none" })
        {
            Assert.Contains($"[{mode}] web -> api (dc2)", text, StringComparison.Ordinal);
            Assert.Contains($"mode:   \"{mode}\"", text, StringComparison.Ordinal);
        }

        Assert.Contains("mode:   \"local\" decided by ProxyDefaults", text, StringComparison.Ordinal);
        Assert.Contains("mode:   \"remote\" decided by ServiceDefaults", text, StringComparison.Ordinal);
        Assert.Contains("mode:   \"none\" decided by Upstream", text, StringComparison.Ordinal);
        Assert.Contains("-> mesh-gateway dc1", text, StringComparison.Ordinal);
        Assert.Contains("-> mesh-gateway dc2", text, StringComparison.Ordinal);
        Assert.Contains("could hold one: none", text, StringComparison.Ordinal);
        Assert.Equal(3, CountOf(text, "web validated api's certificate: chain to the demo CA and name OK"));
        Assert.DoesNotContain("FAIL", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoDatacenters_InvalidModeInConfig_FailsWithConsulsMessage()
    {
        string path = Path.Combine(Path.GetTempPath(), "mg-two-dc-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(path, """{"TrustDomain":"t.consul","Scenarios":[{"Name":"x","Upstream":{"DestinationName":"api","MeshGateway":{"Mode":"Remote"}}}]}""");
        try
        {
            var ex = await Assert.ThrowsAsync<InvalidDataException>(() => TwoDatacentersDemo.RunAsync(TextWriter.Null, path));
            Assert.Contains("Invalid Mesh Gateway Mode: \"Remote\"", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task GatewaySample_NoConfiguration_ServesTheEmbeddedDemo()
    {
        using IHost host = GatewayHost.Build(["--MeshGateway:Port=0"]);

        await host.StartAsync();
        DemoCaller caller = host.Services.GetServices<IHostedService>().OfType<DemoCaller>().Single();
        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        await host.StopAsync();

        Assert.StartsWith("Hello from the demo backend", caller.LastResponse, StringComparison.Ordinal);
        Assert.Equal(1, runtime.Counters!.Routed);
    }

    [Fact]
    public void GatewaySample_RoutesFileConfigured_IsAProductionGateway()
    {
        using IHost host = GatewayHost.Build(["--MeshGateway:RoutesFile=/nonexistent/routes.json"]);

        Assert.Empty(host.Services.GetServices<IHostedService>().OfType<DemoCaller>());
        Assert.Equal("/nonexistent/routes.json", host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeshGatewayOptions>>().Value.RoutesFile);
    }

    private static int CountOf(string text, string value)
    {
        int count = 0;
        for (int i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
