using System.Net;
using System.Text;
using System.Threading.Channels;

namespace MeshGateway.Consul.Tests.Fixtures;

/// <summary>A scripted Consul: answers each request with the next queued response and records the request URIs.</summary>
internal sealed class FakeConsulHandler : HttpMessageHandler
{
    private readonly Channel<Func<HttpRequestMessage, HttpResponseMessage>> _script = Channel.CreateUnbounded<Func<HttpRequestMessage, HttpResponseMessage>>();
    private readonly Channel<HttpRequestMessage> _seen = Channel.CreateUnbounded<HttpRequestMessage>();

    public List<Uri> Requests { get; } = [];

    public List<string?> Tokens { get; } = [];

    public List<string?> Bodies { get; } = [];

    public void Enqueue(HttpStatusCode status, string body, ulong? index = null, Action<HttpResponseMessage>? configure = null) =>
        _script.Writer.TryWrite(_ =>
        {
            var response = new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, status == HttpStatusCode.OK ? "application/json" : "text/plain") };
            if (index is { } i)
            {
                response.Headers.Add("X-Consul-Index", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            configure?.Invoke(response);
            return response;
        });

    public void EnqueueFailure(Exception error) => _script.Writer.TryWrite(_ => throw error);

    /// <summary>Waits (bounded) for the next request the code under test sends.</summary>
    public async Task<HttpRequestMessage> NextRequestAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        return await _seen.Reader.ReadAsync(cts.Token);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        string? body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        lock (Requests)
        {
            Bodies.Add(body);
            Requests.Add(request.RequestUri!);
            Tokens.Add(request.Headers.TryGetValues("X-Consul-Token", out IEnumerable<string>? v) ? v.First() : null);
        }

        _seen.Writer.TryWrite(request);
        Func<HttpRequestMessage, HttpResponseMessage> next = await _script.Reader.ReadAsync(cancellationToken);
        return next(request);
    }
}
