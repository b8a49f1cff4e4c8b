using System.Reflection;

namespace MeshGateway.Tests.Architecture;

/// <summary>The design card fixes the layering: Hosting is the only assembly that knows Microsoft.Extensions.</summary>
public sealed class DependencyTests
{
    [Theory]
    [InlineData("MeshGateway.Core")]
    [InlineData("MeshGateway.Consul")]
    public void OtherPackages_DoNotReference_MicrosoftExtensions(string assemblyName)
    {
        Assembly assembly = Assembly.Load(assemblyName);
        Assert.DoesNotContain(assembly.GetReferencedAssemblies(), a => a.Name!.StartsWith("Microsoft.Extensions", StringComparison.Ordinal));
    }
}
