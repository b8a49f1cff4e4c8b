using BenchmarkDotNet.Running;

namespace MeshGateway.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project benchmarks/MeshGateway.Benchmarks -- --filter '*'</c> (BenchmarkDotNet), or
/// <c>-- --catalog-scale</c> for the end-to-end catalog scenario (<see cref="Catalog.CatalogScale"/>).
/// </summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    public static async Task Main(string[] args)
    {
        if (args.Contains("--catalog-scale"))
        {
            await Catalog.CatalogScale.RunAsync(args);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
