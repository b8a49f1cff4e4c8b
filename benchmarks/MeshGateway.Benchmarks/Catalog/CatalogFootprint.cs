using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using MeshGateway.Consul;
using MeshGateway.Model;

namespace MeshGateway.Benchmarks.Catalog;

/// <summary>
/// Managed memory per catalog instance at mesh size: <c>dotnet run -c Release --project benchmarks/MeshGateway.Benchmarks -- catalog-footprint [instances]</c>.
/// Generates <c>/v1/health/connect</c> responses shaped like a real 1.8 agent's (docs/consul-behaviour.md §8.2: sidecars with lan/wan tagged addresses,
/// the agent's auto-added <c>lan_ipv4</c>/<c>wan_ipv4</c>, meta, weights, a node check and a service check), 10 instances per
/// service, 4 instances per node; parses them with the client's JSON context, builds the view and the route table, and reports
/// <see cref="GC.GetTotalMemory(bool)"/> deltas per instance.
/// </summary>
public static class CatalogFootprint
{
    private const int InstancesPerService = 10;
    private const int InstancesPerNode = 4;

    /// <summary>Runs the measurement and prints the result.</summary>
    /// <param name="instances">How many instances.</param>
    public static void Run(int instances)
    {
        int services = instances / InstancesPerService;
        byte[][] responses = [.. Enumerable.Range(0, services).Select(Response)];
        long baseline = Measure();

        var parsed = new ImmutableArray<CatalogServiceInstance>[services];
        for (int s = 0; s < services; s++)
        {
            parsed[s] = CatalogInstances.Sorted(JsonSerializer.Deserialize(responses[s], ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance)!, gatewaysOnly: false);
        }

        var view = new ConsulCatalogView
        {
            TrustDomain = "11111111-2222-3333-4444-555555555555.consul",
            Datacenter = "dc1",
            Datacenters = ["dc1"],
            Services = Enumerable.Range(0, services).ToImmutableSortedDictionary(
                s => ServiceName(s), s => new ConsulServiceView { Name = ServiceName(s), Instances = parsed[s] }, StringComparer.Ordinal),
            LocalGateways = [],
            RemoteGateways = ImmutableSortedDictionary<string, ImmutableArray<CatalogServiceInstance>>.Empty,
        };
        parsed = null!;
        long withView = Measure();

        ConsulRouteConversion table = ConsulRouteTableBuilder.Convert(view);
        long withTable = Measure();

        int count = view.Services.Values.Sum(v => v.Instances.Length);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"instances: {count} in {services} services; JSON {responses.Sum(r => r.Length) / count} bytes/instance"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"view (parsed model):  {(withView - baseline) / (double)count,8:0} bytes/instance"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"route table:          {(withTable - withView) / (double)count,8:0} bytes/instance ({table.Table?.Routes.Count} routes)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"view + route table:   {(withTable - baseline) / (double)count,8:0} bytes/instance (budget 2048)"));
        GC.KeepAlive(responses);
        GC.KeepAlive(view);
        GC.KeepAlive(table);
    }

    internal static string ServiceName(int service) => "svc-" + service.ToString("D5", CultureInfo.InvariantCulture);

    internal static byte[] Response(int service)
    {
        var json = new StringBuilder("[");
        for (int i = 0; i < InstancesPerService; i++)
        {
            int global = (service * InstancesPerService) + i;
            int node = global / InstancesPerNode;
            string ip = string.Create(CultureInfo.InvariantCulture, $"10.{node / 65536 % 256}.{node / 256 % 256}.{node % 256}");
            string name = ServiceName(service);
            int port = 21000 + (global % InstancesPerNode);
            string nodeName = "node-" + node.ToString("D6", CultureInfo.InvariantCulture);
            json.Append(i == 0 ? string.Empty : ",").Append(CultureInfo.InvariantCulture, $$$"""
                {"Node": {"ID": "{{{Guid.NewGuid()}}}", "Node": "{{{nodeName}}}", "Address": "{{{ip}}}", "Datacenter": "dc1",
                          "TaggedAddresses": {"lan": "{{{ip}}}", "lan_ipv4": "{{{ip}}}", "wan": "{{{ip}}}", "wan_ipv4": "{{{ip}}}"},
                          "Meta": {"consul-network-segment": ""}, "CreateIndex": 12, "ModifyIndex": 14},
                 "Service": {"Kind": "connect-proxy", "ID": "{{{name}}}-sidecar-proxy-{{{i}}}", "Service": "{{{name}}}-sidecar-proxy", "Tags": [],
                             "Address": "{{{ip}}}", "Port": {{{port}}},
                             "TaggedAddresses": {"lan_ipv4": {"Address": "{{{ip}}}", "Port": {{{port}}}}, "wan_ipv4": {"Address": "{{{ip}}}", "Port": {{{port}}}}},
                             "Meta": {"version": "v{{{i % 2 + 1}}}"}, "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
                             "Proxy": {"DestinationServiceName": "{{{name}}}", "DestinationServiceID": "{{{name}}}-{{{i}}}", "LocalServiceAddress": "127.0.0.1",
                                       "LocalServicePort": 8080, "MeshGateway": {}, "Expose": {}},
                             "Connect": {}, "CreateIndex": {{{20 + global}}}, "ModifyIndex": {{{20 + global}}}},
                 "Checks": [{"Node": "{{{nodeName}}}", "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing",
                             "Notes": "", "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
                             "Definition": {}, "CreateIndex": 12, "ModifyIndex": 12},
                            {"Node": "{{{nodeName}}}", "CheckID": "service:{{{name}}}-sidecar-proxy-{{{i}}}", "Name": "Connect Sidecar Listening",
                             "Status": "passing", "Notes": "", "Output": "TCP connect {{{ip}}}:{{{port}}}: Success", "ServiceID": "{{{name}}}-sidecar-proxy-{{{i}}}",
                             "ServiceName": "{{{name}}}-sidecar-proxy", "ServiceTags": [], "Type": "tcp", "Definition": {}, "CreateIndex": 21, "ModifyIndex": 21}]}
                """);
        }

        return Encoding.UTF8.GetBytes(json.Append(']').ToString());
    }

    private static long Measure()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}

/// <summary>Parse cost of one <c>/v1/health/connect</c> response of 10 sidecar instances.</summary>
[MemoryDiagnoser]
public class CatalogParseBenchmarks
{
    private readonly byte[] _response = CatalogFootprint.Response(7);

    /// <summary>Parses the response into the catalog model.</summary>
    /// <returns>The instances.</returns>
    [Benchmark]
    public IReadOnlyList<CatalogServiceInstance> ParseHealthConnect() =>
        JsonSerializer.Deserialize(_response, ConsulJsonContext.Default.IReadOnlyListCatalogServiceInstance)!;
}
