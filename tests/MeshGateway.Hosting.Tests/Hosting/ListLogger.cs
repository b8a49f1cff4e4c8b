using Microsoft.Extensions.Logging;

namespace MeshGateway.Tests.Hosting;

/// <summary>A logger that keeps every entry (level, event name, message); safe to write from any thread.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly List<(LogLevel Level, string? EventName, string Message)> _entries = [];
    private TaskCompletionSource _logged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A copy of the entries so far.</summary>
    public List<(LogLevel Level, string? EventName, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, eventId.Name, formatter(state, exception)));
            _logged.TrySetResult();
            _logged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Waits until an entry matches <paramref name="match"/> (checked now and after every new entry).</summary>
    public async Task WaitForAsync(Func<(LogLevel Level, string? EventName, string Message), bool> match, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next;
            lock (_entries)
            {
                if (_entries.Exists(e => match(e)))
                {
                    return;
                }

                next = _logged.Task;
            }

            await next.WaitAsync(cancellationToken);
        }
    }
}
