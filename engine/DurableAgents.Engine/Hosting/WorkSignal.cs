namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Wakes idle dispatchers in this process as soon as work is written, so pickup does not wait on a
/// poll interval. Stores with cross-host notifications (LISTEN/NOTIFY, Redis) call it too.
/// </summary>
public sealed class WorkSignal
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _orchestrations = NewSource();
    private TaskCompletionSource _activities = NewSource();

    /// <summary>New orchestration messages are visible.</summary>
    public void NotifyOrchestrations() => Swap(ref _orchestrations).TrySetResult();

    /// <summary>New activity tasks are visible.</summary>
    public void NotifyActivities() => Swap(ref _activities).TrySetResult();

    /// <summary>
    /// A task that completes at the next orchestration notification. Take it BEFORE polling the
    /// store, so a notification between the poll and the wait is not lost.
    /// </summary>
    public Task NextOrchestrationSignal()
    {
        lock (_gate)
        {
            return _orchestrations.Task;
        }
    }

    /// <summary>A task that completes at the next activity notification; take it before polling.</summary>
    public Task NextActivitySignal()
    {
        lock (_gate)
        {
            return _activities.Task;
        }
    }

    /// <summary>Waits for a signal taken earlier, or the timeout.</summary>
    public static async Task WaitAsync(Task signal, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signal);
        try
        {
            await signal.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Poll anyway: another host may have written work.
        }
    }

    private TaskCompletionSource Swap(ref TaskCompletionSource field)
    {
        lock (_gate)
        {
            var old = field;
            field = NewSource();
            return old;
        }
    }

    private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
