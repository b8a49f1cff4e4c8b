using Microsoft.Extensions.Logging;

namespace MeshGateway.Tests.Hosting;

/// <summary>A logger that keeps every entry (level, event name, message); safe to write from any thread.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly List<(LogLevel Level, string? EventName, string Message)> _entries = [];

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
        }
    }
}
