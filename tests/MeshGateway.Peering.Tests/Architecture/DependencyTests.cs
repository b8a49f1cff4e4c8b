using System.Reflection;

namespace MeshGateway.Peering.Tests.Architecture;

/// <summary>
/// Peering sits on top: Core for the terminator seam, Hosting (and through it the Consul adapter) for the hosted feed
/// (<c>AddMeshGatewayPeering</c>); nothing below references it or takes ASP.NET Core, so hosts without peering do not.
/// </summary>
public sealed class DependencyTests
{
    [Fact]
    public void Peering_References_CoreAndHosting_AndNothingBelowReferencesPeeringOrAspNetCore()
    {
        string[] references = [.. typeof(PeeringTerminator).Assembly.GetReferencedAssemblies().Select(a => a.Name!)];

        Assert.Contains("MeshGateway.Core", references);
        Assert.Contains("Yarp.ReverseProxy", references);
        Assert.Contains("MeshGateway.Hosting", references);
        foreach (System.Reflection.Assembly below in new[] { typeof(MeshGateway.Hosting.IMeshGatewayBuilder).Assembly, typeof(MeshGateway.Consul.ConsulClient).Assembly })
        {
            string[] names = [.. below.GetReferencedAssemblies().Select(a => a.Name!)];
            Assert.DoesNotContain("MeshGateway.Peering", names);
            Assert.DoesNotContain(names, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n.StartsWith("Yarp", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Core_DoesNotReference_AspNetCoreOrYarp()
    {
        string[] references = [.. typeof(MeshGateway.Gateway.ConnectionTerminator).Assembly.GetReferencedAssemblies().Select(a => a.Name!)];

        Assert.DoesNotContain(references, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n.StartsWith("Yarp", StringComparison.Ordinal));
    }
}
