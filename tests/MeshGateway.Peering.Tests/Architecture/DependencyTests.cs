using System.Reflection;

namespace MeshGateway.Peering.Tests.Architecture;

/// <summary>Peering sits beside the adapter, on Core only: wiring it to Consul is the host's, and nothing below takes ASP.NET Core.</summary>
public sealed class DependencyTests
{
    [Fact]
    public void Peering_References_CoreButNotTheConsulAdapterOrHosting()
    {
        string[] references = [.. typeof(PeeringTerminator).Assembly.GetReferencedAssemblies().Select(a => a.Name!)];

        Assert.Contains("MeshGateway.Core", references);
        Assert.Contains("Yarp.ReverseProxy", references);
        Assert.DoesNotContain("MeshGateway.Consul", references);
        Assert.DoesNotContain("MeshGateway.Hosting", references);
    }

    [Fact]
    public void Core_DoesNotReference_AspNetCoreOrYarp()
    {
        string[] references = [.. typeof(MeshGateway.Gateway.ConnectionTerminator).Assembly.GetReferencedAssemblies().Select(a => a.Name!)];

        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n.StartsWith("Yarp", StringComparison.Ordinal));
    }
}
