namespace MeshGateway.Consul.Tests.Registration;

/// <summary><see cref="ConsulGatewayRegistrar"/> can be disposed twice, and concurrently, without throwing (no agent needed: the client points at a closed port).</summary>
public sealed class ConsulGatewayRegistrarDisposeTests
{
    private static ConsulClient DeadClient() => new(new ConsulClientOptions { Address = new Uri("http://127.0.0.1:1") });

    [Fact]
    public async Task RegistrarDisposeAsync_CalledTwice_DoesNotThrowAndStopStaysANoOp()
    {
        using ConsulClient client = DeadClient();
        var registrar = new ConsulGatewayRegistrar(client, new ConsulGatewayRegistrationOptions { LanAddress = "127.0.0.1", LanPort = 8443 });
        var errors = new List<Exception>();
        registrar.ErrorObserved = errors.Add;

        await registrar.DisposeAsync();
        await registrar.DisposeAsync();
        await registrar.StopAsync();

        Assert.Empty(errors);
        Assert.Equal(0, registrar.RegistrationCount);
    }
}
