using System.Net.Http.Json;
using MeshGateway.Consul.Tests.Fixtures;

namespace MeshGateway.Consul.Tests.Catalog;

/// <summary>
/// The index facts of the real agent (Consul 1.8.7) the catalog watch relies on, checked against the agent itself
/// (docs/consul-watch.md, "Facts measured on the agent").
/// </summary>
[Collection("consul-dc1")]
public sealed class AgentIndexFactsTests(SingleDatacenterFixture fixture)
{
    [Fact]
    public async Task ReRegistration_WithItsUnchangedCheck_MovesTheChecksIndexButNoChecksOwnIndex()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        using HttpClient raw = fixture.Agent.CreateRawClient();
        string name = "facts-" + Guid.NewGuid().ToString("N")[..8];
        object Registration(int weight, string? status) => status is null
            ? new { Node = name, Address = "10.77.0.1", Service = new { ID = name, Service = name, Port = 7000, Weights = new { Passing = weight, Warning = 1 } } }
            : new
            {
                Node = name,
                Address = "10.77.0.1",
                Service = new { ID = name, Service = name, Port = 7000, Weights = new { Passing = weight, Warning = 1 } },
                Check = new { CheckID = name + "-check", Name = "facts", Status = status, ServiceID = name },
            };
        async Task<(ulong Services, ulong Checks, ulong CheckOwn)> ReadAsync()
        {
            ulong services = (await client.GetServicesAsync()).Index;
            ConsulResponse<IReadOnlyList<ConsulCheckState>> checks = await client.GetHealthStateAsync("any");
            return (services, checks.Index, checks.Value.Single(c => c.CheckID == name + "-check").ModifyIndex);
        }

        (await raw.PutAsJsonAsync("/v1/catalog/register", Registration(1, "passing"))).EnsureSuccessStatusCode();
        var first = await ReadAsync();

        // The weight changed, the check in the body did not (a client agent's sync sends both): both tables' indexes move
        // to the registration's, the check's own index stays. The checks trigger wakes and names no check.
        (await raw.PutAsJsonAsync("/v1/catalog/register", Registration(5, "passing"))).EnsureSuccessStatusCode();
        var withCheck = await ReadAsync();
        Assert.True(withCheck.Services > first.Services);
        Assert.Equal(withCheck.Services, withCheck.Checks);
        Assert.Equal(first.CheckOwn, withCheck.CheckOwn);

        // Without the check in the body only the services index moves.
        (await raw.PutAsJsonAsync("/v1/catalog/register", Registration(7, null))).EnsureSuccessStatusCode();
        var serviceOnly = await ReadAsync();
        Assert.True(serviceOnly.Services > withCheck.Services);
        Assert.Equal(withCheck.Checks, serviceOnly.Checks);
    }
}
