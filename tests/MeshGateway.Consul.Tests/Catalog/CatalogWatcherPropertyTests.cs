using System.Diagnostics;
using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using MeshGateway.Testing;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// FsCheck property, run inside a [Fact] rather than FsCheck.Xunit's [Property]: each history is asynchronous and the
/// property blocks on it, which must happen off xunit's synchronisation context (Task.Run), and the test reports and
/// checks statistics over the whole run afterwards. Over random catalog histories on a
/// <see cref="SimulatedConsulAgent"/>, the watcher's incrementally maintained view always converges to the route table a
/// from-scratch view of the agent's state gives.
/// </summary>
public sealed class CatalogWatcherPropertyTests(ITestOutputHelper output)
{
    private const int ServiceCount = 5;
    private const int SlotCount = 4;
    private const int NodeCount = 3;

    /// <summary>The service that runs behind sidecars (app instance + <c>connect-proxy</c>); the others are Connect-native.</summary>
    private const int SidecarService = ServiceCount - 1;

    private static readonly TimeSpan s_stepTimeout = TimeSpan.FromSeconds(10);

    private enum Op
    {
        Register,
        Deregister,
        CheckPassing,
        CheckWarning,
        CheckCritical,
        Weights,
        Port,
        SubsetAdd,
        SubsetRemove,
        NodeCritical,
        NodePassing,
    }

    private sealed record Step(Op Op, int Service, int Slot, int Value)
    {
        public override string ToString() => $"{Op}(svc{Service}/{Slot}, {Value})";
    }

    private static Gen<Step> StepGen =>
        from op in Gen.Elements(Enum.GetValues<Op>())
        from service in Gen.Choose(0, ServiceCount - 1)
        from slot in Gen.Choose(0, SlotCount - 1)
        from value in Gen.Choose(0, 6)
        select new Step(op, service, slot, value);

    private static Gen<Step[]> HistoryGen => Gen.Choose(1, 15).SelectMany(n => StepGen.ArrayOf(n));

    [Fact]
    public async Task View_RandomHistories_AlwaysConvergesToTheFromScratchTable()
    {
        var stats = new List<(int Steps, TimeSpan Worst)>();
        var total = Stopwatch.StartNew();

        // Off the test's synchronisation context: the property blocks on each (async) history.
        await Task.Run(() => Prop.ForAll(HistoryGen.ToArbitrary(), history =>
        {
            (bool ok, string detail, TimeSpan worst) = RunHistoryAsync(history).GetAwaiter().GetResult();
            lock (stats)
            {
                stats.Add((history.Length, worst));
            }

            return ok.Label(detail);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(20)));

        output.WriteLine($"{stats.Count} histories, {stats.Sum(s => s.Steps)} steps in {total.Elapsed.TotalSeconds:0.0} s; slowest convergence {stats.Max(s => s.Worst).TotalMilliseconds:0} ms");
        Assert.Equal(20, stats.Count);
    }

    private static async Task<(bool Ok, string Detail, TimeSpan Worst)> RunHistoryAsync(Step[] history)
    {
        await using SimulatedConsulAgent agent = await SimulatedConsulAgent.StartAsync();
        agent.AddDatacenter("dc2", gateways: 2);
        for (int s = 0; s < ServiceCount; s++)
        {
            Register(agent, s, 0);
            Register(agent, s, 1);
        }

        using ConsulClient client = SimulatedCatalog.Client(agent);
        await using var watcher = new ConsulCatalogWatcher(client, SimulatedCatalog.FastOptions());
        await watcher.StartAsync();
        await watcher.WaitForFirstViewAsync(s_stepTimeout);
        TimeSpan worst = TimeSpan.Zero;
        var done = new List<string> { "initial" };
        for (int i = 0; i <= history.Length; i++)
        {
            if (i > 0)
            {
                Apply(agent, history[i - 1]);
                done.Add(history[i - 1].ToString());
            }

            string[] expected = SimulatedCatalog.Render(SimulatedCatalog.ReferenceView(agent));
            try
            {
                TimeSpan elapsed = await SimulatedCatalog.WaitForTableAsync(watcher, expected, s_stepTimeout);
                worst = elapsed > worst ? elapsed : worst;
            }
            catch (TimeoutException ex)
            {
                return (false, $"after [{string.Join(", ", done)}]: {ex.Message}", worst);
            }
        }

        return (true, string.Empty, worst);
    }

    private static string Name(int service) => "svc" + service.ToString(CultureInfo.InvariantCulture);

    private static string Id(int service, int slot) => Name(service) + "-" + slot.ToString(CultureInfo.InvariantCulture);

    /// <summary>The ID that carries the routable instance (the sidecar for the sidecar service).</summary>
    private static string RoutableId(int service, int slot) => service == SidecarService ? Id(service, slot) + "-sidecar-proxy" : Id(service, slot);

    private static string Node(int service, int slot) => "node-" + ((service + slot) % NodeCount).ToString(CultureInfo.InvariantCulture);

    private static bool Exists(SimulatedConsulAgent agent, int service, int slot) =>
        agent.Snapshot().Instances.Any(i => i.Id == RoutableId(service, slot));

    private static void Register(SimulatedConsulAgent agent, int service, int slot)
    {
        string node = Node(service, slot);
        string address = "10.0.0." + ((service + slot) % NodeCount + 1).ToString(CultureInfo.InvariantCulture);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["version"] = slot % 2 == 0 ? "v1" : "v2" };
        int port = 20000 + (service * 10) + slot;
        if (service == SidecarService)
        {
            agent.Register(new SimInstance { Id = Id(service, slot), Name = Name(service), Node = node, Address = address, Port = 8080, Meta = meta });
            agent.Register(new SimInstance
            {
                Id = RoutableId(service, slot),
                Name = Name(service) + "-sidecar-proxy",
                Kind = "connect-proxy",
                DestinationService = Name(service),
                Node = node,
                Address = address,
                Port = port,
                Meta = meta,
            });
        }
        else
        {
            agent.Register(new SimInstance { Id = Id(service, slot), Name = Name(service), Node = node, Address = address, Port = port, Meta = meta, Native = true });
        }
    }

    private static void Apply(SimulatedConsulAgent agent, Step step)
    {
        int s = step.Service;
        int slot = step.Slot;
        bool exists = Exists(agent, s, slot);
        string id = RoutableId(s, slot);
        switch (step.Op)
        {
            case Op.Register when !exists:
                Register(agent, s, slot);
                break;
            case Op.Deregister when exists:
                agent.Deregister(id);
                if (s == SidecarService)
                {
                    agent.Deregister(Id(s, slot));
                }

                break;
            case Op.CheckPassing when exists:
                agent.SetServiceCheck(id, "passing");
                break;
            case Op.CheckWarning when exists:
                agent.SetServiceCheck(id, "warning");
                break;
            case Op.CheckCritical when exists:
                agent.SetServiceCheck(id, "critical");
                break;
            case Op.Weights when exists:
                // Value 0 gives a passing weight of 0: unhealthy with weight 1 (docs/consul-behaviour.md §3).
                agent.SetWeights(id, passing: step.Value, warning: 1 + (step.Value % 3));
                break;
            case Op.Port when exists:
                agent.Update(id, i => i with { Port = 30000 + (s * 100) + (slot * 10) + step.Value });
                break;
            case Op.SubsetAdd:
                string filter = step.Value % 2 == 0 ? "Service.Meta.version == v1" : "Service.Meta.version == v2";
                string onlyPassing = step.Value >= 4 ? "true" : "false";
                string defaultSubset = step.Value % 3 == 0 ? "\"DefaultSubset\": \"s0\", " : string.Empty;
                agent.SetConfigEntry("service-resolver", Name(s), $$"""{ {{defaultSubset}}"Subsets": { "s0": { "Filter": "{{filter}}", "OnlyPassing": {{onlyPassing}} }, "s{{step.Value}}": { "Filter": "Service.Meta.version == v2" } } }""");
                break;
            case Op.SubsetRemove:
                agent.DeleteConfigEntry("service-resolver", Name(s));
                break;
            case Op.NodeCritical:
                agent.SetNodeCheck(Node(s, slot), "critical");
                break;
            case Op.NodePassing:
                agent.SetNodeCheck(Node(s, slot), "passing");
                break;
            default:
                // The step does not apply to the current state (e.g. deregistering an absent instance): the table must stay as it is.
                break;
        }
    }
}
