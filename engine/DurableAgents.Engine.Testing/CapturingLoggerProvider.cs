using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Testing;

/// <summary>Captures every log entry: logs are a contract (event ids, levels, no payloads, no secrets).</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    /// <summary>Everything logged, in order; the message includes the exception's text, if any.</summary>
    public ConcurrentQueue<(string Category, LogLevel Level, EventId Id, string Message)> Entries { get; } = new();

    /// <inheritdoc />
    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            ArgumentNullException.ThrowIfNull(formatter);
            var message = formatter(state, exception);
            owner.Entries.Enqueue((category, logLevel, eventId, exception is null ? message : message + "\n" + exception));
        }
    }
}
