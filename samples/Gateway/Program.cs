using GatewaySample;
using Microsoft.Extensions.Hosting;

using IHost host = GatewayHost.Build(args);
await host.RunAsync();
