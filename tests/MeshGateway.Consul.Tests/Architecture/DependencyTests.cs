using System.Reflection;

namespace MeshGateway.Tests.Architecture;

/// <summary>The design card fixes the layering: the Consul adapter depends on Core and the BCL only.</summary>
public sealed class DependencyTests
{
    [Fact]
    public void Consul_References_OnlyCoreAndTheBaseClassLibrary()
    {
        Assembly consul = Assembly.Load("MeshGateway.Consul");
        string[] foreign = consul.GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(n => !(n.StartsWith("System", StringComparison.Ordinal) || n is "netstandard" or "mscorlib" or "MeshGateway.Core"))
            .ToArray();
        Assert.Empty(foreign);
    }
}
