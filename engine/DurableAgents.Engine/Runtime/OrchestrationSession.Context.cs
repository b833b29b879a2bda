using System.Security.Cryptography;
using System.Text;
using DurableAgents.Engine.History;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Runtime;

internal sealed partial class OrchestrationSession
{
    /// <summary>The <see cref="TaskOrchestrationContext"/> handed to orchestrator code.</summary>
    private sealed class SessionContext : TaskOrchestrationContext
    {
        private readonly OrchestrationSession _s;

        public SessionContext(OrchestrationSession session) => _s = session;

        public override string Name => _s.Name;

        public override string InstanceId => _s.InstanceId;

        public override ParentOrchestrationInstance? Parent =>
            _s.Parent is { } p ? new ParentOrchestrationInstance(p.Name, p.InstanceId) : null;

        public override string? Version => _s.Version;

        public override DateTime CurrentUtcDateTime => _s._currentUtc;

        public override bool IsReplaying => _s._isReplaying;

        public override T? GetInput<T>() where T : default =>
            DataConverter.Deserialize<T>(_s._input, $"input of orchestrator '{_s.Name}'");

        public override Task<TResult> CallActivityAsync<TResult>(string name, object? input = null, TaskOptions? options = null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            var serialized = DataConverter.Serialize(input);
            Task<TResult> Call() => _s.ScheduleTask<TResult>(new TaskScheduledEvent(name, serialized), serialized, name, $"activity '{name}'");
            return options?.Retry is { } retry ? WithRetry(Call, retry) : Call();
        }

        public override Task<TResult> CallSubOrchestratorAsync<TResult>(string orchestratorName, object? input = null, SubOrchestrationOptions? options = null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(orchestratorName);
            var serialized = DataConverter.Serialize(input);
            Task<TResult> Call()
            {
                // The default child id is derived from the parent id and the next task id: stable on replay.
                var childId = options?.InstanceId ?? $"{_s.InstanceId}:{_s._nextTaskId:D4}";
                InstanceIds.Validate(childId);
                return _s.ScheduleTask<TResult>(
                    new SubOrchestrationInstanceCreatedEvent(orchestratorName, childId, options?.Version, serialized),
                    serialized,
                    orchestratorName,
                    $"sub-orchestration '{orchestratorName}'");
            }

            return options?.Retry is { } retry ? WithRetry(Call, retry) : Call();
        }

        public override Task CreateTimer(DateTime fireAt, CancellationToken cancellationToken)
        {
            var fireAtUtc = new DateTimeOffset(DateTime.SpecifyKind(fireAt.ToUniversalTime(), DateTimeKind.Utc), TimeSpan.Zero);
            var id = _s.Schedule(new TimerCreatedEvent(fireAtUtc), null, "timer");
            var tcs = new TaskCompletionSource();
            _s._openTasks[id] = new OpenTask(_ => tcs.TrySetResult(), f => tcs.TrySetException(new TaskFailedException("timer", id, f)));
            if (cancellationToken.CanBeCanceled)
            {
                // Cancelling only abandons the wait: the TimerCreated is history already, and the
                // TimerFired that arrives later is ignored because the id is no longer open.
                cancellationToken.Register(() =>
                {
                    _s._openTasks.Remove(id);
                    tcs.TrySetCanceled(cancellationToken);
                });
            }

            return tcs.Task;
        }

        public override Task<T> WaitForExternalEvent<T>(string eventName, CancellationToken cancellationToken = default)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(eventName);
            _s.EnsureOnScheduler();
            var index = _s._bufferedEvents.FindIndex(e => string.Equals(e.Name, eventName, StringComparison.OrdinalIgnoreCase));
            var waiter = new EventWaiter<T>(eventName);
            if (index >= 0)
            {
                var buffered = _s._bufferedEvents[index];
                _s._bufferedEvents.RemoveAt(index);
                waiter.TryComplete(buffered.Input);
                return waiter.Task;
            }

            if (!_s._waiters.TryGetValue(eventName, out var queue))
            {
                _s._waiters[eventName] = queue = new Queue<EventWaiter>();
            }

            queue.Enqueue(waiter);
            if (cancellationToken.CanBeCanceled)
            {
                cancellationToken.Register(() =>
                {
                    waiter.Cancel();
                    // Drop cancelled waiters so an idle orchestration is not mistaken for a live wait.
                    var remaining = queue.Where(w => w != waiter).ToList();
                    queue.Clear();
                    foreach (var w in remaining)
                    {
                        queue.Enqueue(w);
                    }
                });
            }

            return waiter.Task;
        }

        public override void SendEvent(string instanceId, string eventName, object? payload)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(instanceId);
            ArgumentException.ThrowIfNullOrWhiteSpace(eventName);
            var serialized = DataConverter.Serialize(payload);
            _s.Schedule(new EventSentEvent(instanceId, eventName, serialized), serialized, $"event '{eventName}'");
        }

        public override void ContinueAsNew(object? newInput = null, bool preserveUnprocessedEvents = true)
        {
            _s.EnsureOnScheduler();
            var serialized = DataConverter.Serialize(newInput);
            var size = DataConverter.ByteCount(serialized);
            if (size > _s._maxPayloadBytes)
            {
                throw new PayloadTooLargeException("ContinueAsNew input", size, _s._maxPayloadBytes);
            }

            _s._continueAsNew = (serialized, preserveUnprocessedEvents);
        }

        public override void SetCustomStatus(object? customStatus)
        {
            _s.EnsureOnScheduler();
            var serialized = DataConverter.Serialize(customStatus);
            var size = DataConverter.ByteCount(serialized);
            if (size > _s._maxPayloadBytes)
            {
                throw new PayloadTooLargeException("custom status", size, _s._maxPayloadBytes);
            }

            _s._customStatus = serialized;
        }

        public override Guid NewGuid()
        {
            _s.EnsureOnScheduler();

            // Name-based and deterministic: instance id, episode time and a per-execution counter.
            var name = $"{_s.InstanceId}_{_s._currentUtc:o}_{_s._guidCounter++}";
            Span<byte> hash = stackalloc byte[32];
            SHA256.HashData(Encoding.UTF8.GetBytes(name), hash);
            var bytes = hash[..16];
            bytes[7] = (byte)((bytes[7] & 0x0F) | 0x80); // version 8 (custom, RFC 9562), in Guid's little-endian layout
            bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80); // RFC variant
            return new Guid(bytes);
        }

        public override ILogger CreateReplaySafeLogger(string categoryName) =>
            new ReplaySafeLogger(_s._loggerFactory.CreateLogger(categoryName), this);

        private async Task<T> WithRetry<T>(Func<Task<T>> call, RetryPolicy policy)
        {
            // Runs on the orchestration scheduler: every await here is a context task, and the
            // delays are durable timers, so a retry schedule survives restarts.
#pragma warning disable CA2007
            var started = CurrentUtcDateTime;
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    return await call();
                }
                catch (TaskFailedException ex) when (attempt < policy.MaxNumberOfAttempts && policy.HandleFailure(ex.FailureDetails))
                {
                    var delay = policy.GetDelay(attempt + 1);
                    if (policy.RetryTimeout != Timeout.InfiniteTimeSpan && CurrentUtcDateTime + delay - started > policy.RetryTimeout)
                    {
                        throw;
                    }

                    await CreateTimer(delay, CancellationToken.None);
                }
            }
#pragma warning restore CA2007
        }
    }

    private sealed class ReplaySafeLogger : ILogger
    {
        private readonly ILogger _inner;
        private readonly TaskOrchestrationContext _context;

        public ReplaySafeLogger(ILogger inner, TaskOrchestrationContext context)
        {
            _inner = inner;
            _context = context;
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => _inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => !_context.IsReplaying && _inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!_context.IsReplaying)
            {
                _inner.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}
