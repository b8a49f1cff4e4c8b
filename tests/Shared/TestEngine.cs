using MeshGateway.Gateway;

namespace MeshGateway.Testing;

/// <summary>
/// The I/O engine the gateway tests run their listeners on: <c>MESHGATEWAY_TEST_ENGINE=EventLoop</c> selects
/// <see cref="GatewayIoEngine.EventLoop"/>, unset (or <c>Sockets</c>) the default. <c>eng/test.sh</c> runs the gateway's
/// data-plane test projects once per engine, so every behaviour they assert holds on both.
/// </summary>
internal static class TestEngine
{
    /// <summary>The engine of this test run.</summary>
    public static GatewayIoEngine Current { get; } = Environment.GetEnvironmentVariable("MESHGATEWAY_TEST_ENGINE") switch
    {
        null or "" or "Sockets" => GatewayIoEngine.Sockets,
        "EventLoop" => GatewayIoEngine.EventLoop,
        string other => throw new InvalidOperationException($"MESHGATEWAY_TEST_ENGINE must be Sockets or EventLoop, not '{other}'."),
    };

    /// <summary>The SniGateway sample's <c>--engine</c> value for <see cref="Current"/>.</summary>
    public static string CommandLineName => Current == GatewayIoEngine.EventLoop ? "event-loop" : "sockets";
}
