using BenchmarkDotNet.Running;

namespace MeshGateway.Benchmarks;

/// <summary>
/// Entry point: <c>dotnet run -c Release --project benchmarks/MeshGateway.Benchmarks -- --filter '*'</c>; the catalog memory
/// measurement: <c>… -- catalog-footprint [instances]</c> (see <see cref="Catalog.CatalogFootprint"/>).
/// </summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line.</summary>
    public static void Main(string[] args)
    {
        if (args is ["catalog-footprint", ..])
        {
            Catalog.CatalogFootprint.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 50_000);
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
