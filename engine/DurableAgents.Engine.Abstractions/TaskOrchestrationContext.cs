using Microsoft.Extensions.Logging;

namespace DurableAgents;

/// <summary>
/// The orchestration's window on the world. Everything here is replay-safe: on replay the same
/// calls return the same results from history instead of doing the work again.
/// </summary>
public abstract class TaskOrchestrationContext
{
    /// <summary>The orchestrator name.</summary>
    public abstract string Name { get; }

    /// <summary>The instance id.</summary>
    public abstract string InstanceId { get; }

    /// <summary>The parent, when this runs as a sub-orchestration.</summary>
    public abstract ParentOrchestrationInstance? Parent { get; }

    /// <summary>The version tag stored when the instance started.</summary>
    public abstract string? Version { get; }

    /// <summary>Replay-safe current time: the time the current episode started.</summary>
    public abstract DateTime CurrentUtcDateTime { get; }

    /// <summary>True while the code is re-running past events from history.</summary>
    public abstract bool IsReplaying { get; }

    /// <summary>The instance's input.</summary>
    public abstract T? GetInput<T>();

    /// <summary>Schedules an activity and returns its result.</summary>
    /// <exception cref="TaskFailedException">The activity failed (after any retries).</exception>
    public abstract Task<TResult> CallActivityAsync<TResult>(string name, object? input = null, TaskOptions? options = null);

    /// <summary>Schedules an activity that returns nothing.</summary>
    public Task CallActivityAsync(string name, object? input = null, TaskOptions? options = null) =>
        CallActivityAsync<object?>(name, input, options);

    /// <summary>Starts a child orchestration and returns its output.</summary>
    /// <exception cref="TaskFailedException">The child failed or was terminated.</exception>
    public abstract Task<TResult> CallSubOrchestratorAsync<TResult>(string orchestratorName, object? input = null, SubOrchestrationOptions? options = null);

    /// <summary>Starts a child orchestration that returns nothing.</summary>
    public Task CallSubOrchestratorAsync(string orchestratorName, object? input = null, SubOrchestrationOptions? options = null) =>
        CallSubOrchestratorAsync<object?>(orchestratorName, input, options);

    /// <summary>A durable timer that fires at <paramref name="fireAt"/> (UTC). Cancelling it only stops the wait.</summary>
    public abstract Task CreateTimer(DateTime fireAt, CancellationToken cancellationToken);

    /// <summary>A durable timer that fires after <paramref name="delay"/>.</summary>
    public Task CreateTimer(TimeSpan delay, CancellationToken cancellationToken) =>
        CreateTimer(CurrentUtcDateTime.Add(delay), cancellationToken);

    /// <summary>
    /// Waits for an external event. Names are case-insensitive; an event that arrived before the
    /// wait is buffered and returned at once; each event completes exactly one waiter.
    /// </summary>
    public abstract Task<T> WaitForExternalEvent<T>(string eventName, CancellationToken cancellationToken = default);

    /// <summary>Waits for an external event with a durable timeout.</summary>
    /// <exception cref="TaskCanceledException">The timeout elapsed first.</exception>
    public async Task<T> WaitForExternalEvent<T>(string eventName, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // Timeouts are durable timers; whichever task finishes first cancels the other.
        // No ConfigureAwait: orchestration code must resume on the orchestration's scheduler.
#pragma warning disable CA2007
        using var timerCts = new CancellationTokenSource();
        var timeoutTask = CreateTimer(timeout, timerCts.Token);
        using var eventCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var eventTask = WaitForExternalEvent<T>(eventName, eventCts.Token);
        var winner = await Task.WhenAny(timeoutTask, eventTask);

        // Cancel synchronously: CancelAsync would run the callbacks on the thread pool, outside
        // the orchestration's single-threaded scheduler.
#pragma warning disable CA1849
        if (winner == eventTask)
        {
            timerCts.Cancel();
        }
        else
        {
            eventCts.Cancel();
        }
#pragma warning restore CA1849

        return await eventTask;
#pragma warning restore CA2007
    }

    /// <summary>Sends an event to another instance (dropped with a warning if it does not exist).</summary>
    public abstract void SendEvent(string instanceId, string eventName, object? payload);

    /// <summary>
    /// Restarts the orchestration with a new input and an empty history once the current code returns.
    /// Events not yet consumed are carried over when <paramref name="preserveUnprocessedEvents"/> is true.
    /// </summary>
    public abstract void ContinueAsNew(object? newInput = null, bool preserveUnprocessedEvents = true);

    /// <summary>Sets a status value visible to clients (e.g. the current stage).</summary>
    public abstract void SetCustomStatus(object? customStatus);

    /// <summary>A deterministic GUID: the same on every replay.</summary>
    public abstract Guid NewGuid();

    /// <summary>A logger that stays silent while the orchestration is replaying.</summary>
    public abstract ILogger CreateReplaySafeLogger(string categoryName);

    /// <summary>A logger that stays silent while the orchestration is replaying.</summary>
    public ILogger CreateReplaySafeLogger<T>() => CreateReplaySafeLogger(typeof(T).FullName!);
}
