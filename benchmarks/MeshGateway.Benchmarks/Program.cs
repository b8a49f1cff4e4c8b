using BenchmarkDotNet.Running;

namespace MeshGateway.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project benchmarks/MeshGateway.Benchmarks -- --filter '*'</c> (BenchmarkDotNet);
/// <c>-- --catalog-scale</c> for the end-to-end catalog scenario (<see cref="Catalog.CatalogScale"/>); <c>-- catalog-footprint
/// [instances]</c> for the catalog memory measurement (<see cref="Catalog.CatalogFootprint"/>).
/// </summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    public static async Task Main(string[] args)
    {
        if (args is ["catalog-footprint", ..])
        {
            Catalog.CatalogFootprint.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50_000);
            return;
        }

        if (args.Contains("--catalog-scale"))
        {
            await Catalog.CatalogScale.RunAsync(args);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
