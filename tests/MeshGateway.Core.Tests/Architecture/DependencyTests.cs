using System.Reflection;

namespace MeshGateway.Tests.Architecture;

/// <summary>The design card fixes the layering: Core is BCL only.</summary>
public sealed class DependencyTests
{
    [Fact]
    public void Core_References_OnlyTheBaseClassLibrary()
    {
        Assembly core = typeof(MeshGateway.Tls.ClientHelloReader).Assembly;
        string[] foreign = core.GetReferencedAssemblies()
            .Select(a => a.Name!)
            .Where(n => !(n.StartsWith("System", StringComparison.Ordinal) || n is "netstandard" or "mscorlib"))
            .ToArray();
        Assert.Empty(foreign);
    }
}
