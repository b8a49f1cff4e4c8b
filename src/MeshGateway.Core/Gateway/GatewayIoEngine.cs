namespace MeshGateway.Gateway;

/// <summary>How a <see cref="GatewayListener"/> moves its connections (<see cref="GatewayListenerOptions.Engine"/>).</summary>
public enum GatewayIoEngine
{
    /// <summary>
    /// .NET's sockets (<see cref="System.Net.Sockets.Socket"/> and its asynchronous operations) on any system: the
    /// default, and the engine wherever <see cref="EventLoop"/> cannot run.
    /// </summary>
    Sockets = 0,

    /// <summary>
    /// Linux on x86-64 or arm64: the gateway's own edge-triggered epoll loops
    /// (<see cref="GatewayListenerOptions.EventLoopThreads"/>) over non-blocking descriptors, as HAProxy and nginx run.
    /// Same routing, retries, timeouts, fault handling, telemetry and terminators; bytes are copied through one buffer per
    /// loop (<see cref="Splicing.SpliceOptions.MaxKernelPipes"/> applies to the sockets engine only: with pipes set, the
    /// sockets engine serves).
    /// </summary>
    EventLoop = 1,
}
