using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MeshGateway.Consul.Tests.Fixtures;
using Xunit.Abstractions;

namespace MeshGateway.Consul.Tests.Connect;

[CollectionDefinition("consul-ca-rotation")]
public sealed class CaRotationGroup : ICollectionFixture<SingleDatacenterFixture>;

/// <summary>The dialer's leaf and roots follow a real CA rotation through its blocking queries alone.</summary>
[Collection("consul-ca-rotation")]
public sealed class DialerRenewalTests(SingleDatacenterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Dialer_CaRotated_InstallsNewRootsAndReissuedLeafFromBlockingQueries()
    {
        using ConsulClient client = fixture.Agent.CreateClient();
        await fixture.Agent.PutJsonAsync("/v1/agent/service/register", """{"ID": "renew-web", "Name": "renew-web", "Port": 9, "Connect": {"Native": true}}""");
        await using var dialer = new ConsulConnectDialer(client, new ConsulConnectDialerOptions
        {
            Service = "renew-web",
            Watch = new BlockingQueryOptions { Wait = TimeSpan.FromSeconds(30) },
        });
        await dialer.StartAsync();
        string firstSerial = dialer.Certificate!.SerialNumber;
        string firstIssuer = dialer.Certificate.Issuer;
        Assert.Equal((1L, 1L), (dialer.LeafUpdates, dialer.RootsUpdates));

        // A new signing key makes Consul's built-in CA rotate to a new root (the old one stays trusted for a while);
        // the agent then re-signs its cached leaves within a jitter window (up to about 30 s in 1.8).
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await fixture.Agent.PutJsonAsync("/v1/connect/ca/configuration", new JsonObject
        {
            ["Provider"] = "consul",
            ["Config"] = new JsonObject { ["PrivateKey"] = key.ExportECPrivateKeyPem(), ["LeafCertTTL"] = "72h", ["RotationPeriod"] = "2160h", ["IntermediateCertTTL"] = "8760h" },
        }.ToJsonString());

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await ConsulWait.SignalAsync(ct => dialer.WhenRootsUpdatesAtLeastAsync(2, ct), "the dialer to install the rotated roots", fixture.Agent, TimeSpan.FromSeconds(60));
        TimeSpan roots = clock.Elapsed;
        await ConsulWait.SignalAsync(ct => dialer.WhenLeafUpdatesAtLeastAsync(2, ct), "the dialer to install the re-signed leaf", fixture.Agent, TimeSpan.FromSeconds(90));
        output.WriteLine($"roots installed after {roots.TotalSeconds:0.0} s, re-signed leaf after {clock.Elapsed.TotalSeconds:0.0} s");

        Assert.NotEqual(firstSerial, dialer.Certificate!.SerialNumber);
        Assert.NotEqual(firstIssuer, dialer.Certificate.Issuer);
        Assert.Equal(fixture.Agent.Datacenter, dialer.Datacenter);
    }
}
