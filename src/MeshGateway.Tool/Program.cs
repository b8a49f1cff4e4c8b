using System.CommandLine;
using MeshGateway.Consul;
using MeshGateway.Hosting;
using MeshGateway.Tool;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

var command = new GatewayCommand();
ParseResult parsed = command.Parse(args);
if (parsed.Errors.Count > 0)
{
    // System.CommandLine exits 1 on a parse error; usage errors are 2 here (as Consul's flag errors), so report them here.
    foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
    {
        await Console.Error.WriteLineAsync("meshgateway: " + error.Message);
    }

    await Console.Error.WriteLineAsync("Run 'meshgateway --help' for the flags.");
    return ExitCodes.Usage;
}

command.Root.SetAction((result, cancellationToken) => RunAsync(command, result, cancellationToken));

// ProcessTerminationTimeout = null: SIGTERM and Ctrl+C belong to the host's console lifetime, which runs the gateway's
// stop sequence (deregister, propagation delay, drain); System.CommandLine's own handler would exit after 2 s.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

static async Task<int> RunAsync(GatewayCommand command, ParseResult result, CancellationToken cancellationToken)
{
    ToolSettings? settings = command.TryGetSettings(result, out string? usageError);
    if (settings is null)
    {
        await Console.Error.WriteLineAsync("meshgateway: " + usageError);
        return ExitCodes.Usage;
    }

    IHost host;
    bool consul;
    try
    {
        host = ToolHost.Build(settings, out consul);
    }
    catch (Exception ex) when (ex is InvalidDataException or FormatException or IOException)
    {
        // A configuration file that is not JSON (the JSON provider's message names the file and the position).
        await Console.Error.WriteLineAsync($"meshgateway: --config: {ex.Message}");
        return ExitCodes.Usage;
    }

    using (host)
    {
        MeshGatewayOptions options;
        try
        {
            // The Hosting validators (the same that stop a host's start), so a bad value reads as it does anywhere else.
            options = host.Services.GetRequiredService<IOptions<MeshGatewayOptions>>().Value;
        }
        catch (OptionsValidationException ex)
        {
            foreach (string failure in ex.Failures)
            {
                await Console.Error.WriteLineAsync("meshgateway: invalid configuration: " + Explain(failure, settings));
            }

            return ExitCodes.Usage;
        }
        catch (InvalidOperationException ex)
        {
            // Binding: a value that does not convert to the option's type (e.g. "abc" for a port); the binder names the key.
            await Console.Error.WriteLineAsync("meshgateway: invalid configuration: " + ex.Message + (ex.InnerException is { } inner ? " " + inner.Message : string.Empty));
            return ExitCodes.Usage;
        }

        if (settings.DryRun)
        {
            return await DryRun.RunAsync(host.Services, options, consul, Console.Out, cancellationToken);
        }

        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ConsulException or TimeoutException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("meshgateway: the gateway did not start: " + ex.Message);
            return ExitCodes.RuntimeFailure;
        }

        MeshGatewayRuntime runtime = host.Services.GetRequiredService<MeshGatewayRuntime>();
        await Console.Out.WriteLineAsync($"meshgateway: ready: {string.Join(", ", runtime.Listeners)} ({(consul ? "routes from Consul" + (options.Consul.Register ? ", registered as " + (string.IsNullOrEmpty(options.Consul.ServiceId) ? options.Consul.ServiceName : options.Consul.ServiceId) : ", not registered") : "routes from configuration")})");
        await Console.Out.FlushAsync(CancellationToken.None);

        // Returns after SIGTERM/SIGINT once the stop sequence ran (deregister, propagation delay, drain).
        await host.WaitForShutdownAsync(CancellationToken.None);
        return ExitCodes.Ok;
    }
}

// "WanAddress is 'x' but ..." → "... (from -wan-address)" when a flag set that option.
static string Explain(string failure, ToolSettings settings)
{
    foreach (KeyValuePair<string, string> pair in settings.FlagOfKey)
    {
        if (failure.StartsWith(pair.Key + " ", StringComparison.OrdinalIgnoreCase) || failure.StartsWith(pair.Key + ":", StringComparison.OrdinalIgnoreCase)
            || failure.Contains(" " + pair.Key + " ", StringComparison.OrdinalIgnoreCase) || failure.Contains("MeshGateway." + pair.Key.Replace(':', '.') + " ", StringComparison.OrdinalIgnoreCase))
        {
            return $"{failure} (set by {pair.Value})";
        }
    }

    return failure;
}
