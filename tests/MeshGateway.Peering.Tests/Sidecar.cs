using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;

namespace MeshGateway.Peering.Tests;

/// <summary>What a sidecar saw of one request.</summary>
internal sealed record SeenRequest(string Path, string Protocol, string[] ForwardedClientCert, string? ClientSpiffeId)
{
    /// <summary>The request's <c>X-Forwarded-*</c> headers other than XFCC, name → values.</summary>
    public Dictionary<string, string> Forwarded { get; init; } = [];

    /// <summary>The request's <c>x-test-*</c> headers, name → values (comma-joined).</summary>
    public Dictionary<string, string> TestHeaders { get; init; } = [];

    /// <summary>The SNI of the TLS connection the request came on (null when none was sent).</summary>
    public string? ServerName { get; init; }

    /// <summary>The request's <c>Host</c> header (HTTP/2's <c>:authority</c>).</summary>
    public string Host { get; init; } = "";

    /// <summary>Kestrel's id of the connection the request came on.</summary>
    public string ConnectionId { get; init; } = "";
}

/// <summary>
/// A local service behind its Connect sidecar, stood in by Kestrel on 127.0.0.1:0: HTTPS with its SPIFFE leaf, a
/// client certificate required and accepted only from the local CA with the gateway's SPIFFE ID. Answers
/// "<c>name path</c>"; <c>/stream</c> sends one line, waits for <see cref="ReleaseStream"/>, then sends another.
/// </summary>
internal sealed class Sidecar : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, string?> _serverNames = new();

    private Sidecar(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public DnsEndPoint EndPoint { get; private set; } = null!;

    public ConcurrentQueue<SeenRequest> Seen { get; } = new();

    public int Requests => Seen.Count;

    /// <summary>Client certificates the sidecar refused (for example not the gateway's).</summary>
    public int RefusedClients;

    public void ReleaseStream() => _release.TrySetResult();

    /// <summary>The status <c>/flaky</c> answers with (200 and the sidecar's name when null).</summary>
    public int? FlakyStatus { get; set; }

    /// <summary>A header <c>/flaky</c> adds to that answer (a gRPC status, a rate-limit mark), if any.</summary>
    public KeyValuePair<string, string>? FlakyHeader { get; set; }

    /// <summary>Completes when a <c>/hang</c> request (which never gets an answer) is aborted by the gateway.</summary>
    public Task HangAborted => _hangAborted.Task;

    private readonly TaskCompletionSource _hangAborted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<Sidecar> StartAsync(string name, X509Certificate2 certificate, X509Certificate2 localRoot, string gatewaySpiffeId)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        Sidecar? self = null;
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            // The selector sees the SNI of each handshake: kept per connection for SeenRequest.ServerName.
            ServerCertificateSelector = (connection, serverName) =>
            {
                if (connection is not null)
                {
                    self!._serverNames[connection.ConnectionId] = serverName;
                }

                return certificate;
            },
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            CheckCertificateRevocation = false,
            ClientCertificateValidation = (client, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(localRoot);
                bool ok = chain.Build(client) && SpiffeIdOf(client) == gatewaySpiffeId;
                if (!ok)
                {
                    Interlocked.Increment(ref self!.RefusedClients);
                }

                return ok;
            },
        })));
        WebApplication app = builder.Build();
        self = new Sidecar(name, app);
        app.Run(self.HandleAsync);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self.EndPoint = new DnsEndPoint("127.0.0.1", new Uri(address).Port);
        return self;
    }

    /// <summary>The URI SAN of a certificate (Linux formats the extension as <c>URI:...</c>).</summary>
    public static string? SpiffeIdOf(X509Certificate2? certificate)
    {
        string? text = certificate?.Extensions["2.5.29.17"]?.Format(false);
        if (text is null)
        {
            return null;
        }

        int at = text.IndexOf("URI:", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        string rest = text[(at + 4)..];
        int end = rest.IndexOfAny([',', '\n', ' ']);
        return end < 0 ? rest : rest[..end];
    }

    private async Task HandleAsync(HttpContext context)
    {
        X509Certificate2? client = await context.Connection.GetClientCertificateAsync();
        Seen.Enqueue(new SeenRequest(
            context.Request.Path.Value ?? "",
            context.Request.Protocol,
            [.. context.Request.Headers["X-Forwarded-Client-Cert"].Select(v => v ?? "")],
            SpiffeIdOf(client))
        {
            Forwarded = context.Request.Headers
                .Where(h => h.Key.StartsWith("X-Forwarded-", StringComparison.OrdinalIgnoreCase) && !h.Key.Equals("X-Forwarded-Client-Cert", StringComparison.OrdinalIgnoreCase))
                .ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            TestHeaders = context.Request.Headers
                .Where(h => h.Key.StartsWith("x-test-", StringComparison.OrdinalIgnoreCase))
                .ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            ServerName = _serverNames.TryGetValue(context.Connection.Id, out string? sni) && !string.IsNullOrEmpty(sni) ? sni : null,
            Host = context.Request.Host.Value ?? "",
            ConnectionId = context.Connection.Id,
        });

        // Identifies the sidecar in the response headers too (a route's ResponseHeaders may remove or change it).
        context.Response.Headers["x-test-sidecar"] = Name;
        if (context.Request.Path == "/body")
        {
            // The request body as received: its length and SHA-256, so a test can check every byte arrived in order.
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            byte[] buffer = new byte[16 * 1024];
            long length = 0;
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                length += read;
            }

            await context.Response.WriteAsync(Name + " " + length.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + Convert.ToHexString(hash.GetHashAndReset()));
            return;
        }

        if (context.Request.Path == "/hang")
        {
            // Never answers: only the gateway giving up ends the request (bounded, so a broken test cannot hang).
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(60), context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                _hangAborted.TrySetResult();
            }

            return;
        }

        if (context.Request.Path == "/flaky" && FlakyStatus is { } status)
        {
            context.Response.StatusCode = status;
            if (FlakyHeader is { } header)
            {
                context.Response.Headers[header.Key] = header.Value;
            }

            return;
        }

        if (context.Request.Path == "/stream")
        {
            await context.Response.WriteAsync("first\n");
            await context.Response.Body.FlushAsync();
            await _release.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await context.Response.WriteAsync("second\n");
            return;
        }

        await context.Response.WriteAsync(Name + " " + context.Request.Path.Value + context.Request.QueryString.Value);
    }

    public async ValueTask DisposeAsync()
    {
        _release.TrySetResult();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
