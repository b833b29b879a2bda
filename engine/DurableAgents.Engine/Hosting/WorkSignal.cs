namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Wakes idle dispatchers as soon as work is written, so pickup does not wait on a poll interval.
/// <c>Notify*</c> is called by whoever wrote work in this process: it wakes local dispatchers and
/// tells other hosts through the broadcaster, if one is set (Redis). <c>Wake*</c> is called by
/// receivers of remote notifications (LISTEN/NOTIFY, Redis) and stays local.
/// </summary>
public sealed class WorkSignal
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _orchestrations = NewSource();
    private TaskCompletionSource _activities = NewSource();
    private readonly Dictionary<string, InstanceWaiter> _instances = new(StringComparer.Ordinal);
    private Action<WorkKind>? _broadcaster;

    /// <summary>Sets the cross-host broadcaster (one per host). It must not block or throw.</summary>
    public void SetBroadcaster(Action<WorkKind> broadcaster) => _broadcaster = broadcaster;

    /// <summary>New orchestration messages are visible: wake local dispatchers and tell other hosts.</summary>
    public void NotifyOrchestrations()
    {
        WakeOrchestrations();
        _broadcaster?.Invoke(WorkKind.Orchestration);
    }

    /// <summary>New activity tasks are visible: wake local dispatchers and tell other hosts.</summary>
    public void NotifyActivities()
    {
        WakeActivities();
        _broadcaster?.Invoke(WorkKind.Activity);
    }

    /// <summary>Wakes this host's orchestration dispatcher only.</summary>
    public void WakeOrchestrations() => Swap(ref _orchestrations).TrySetResult();

    /// <summary>Wakes this host's activity dispatcher only.</summary>
    public void WakeActivities() => Swap(ref _activities).TrySetResult();

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
    public static Task WaitAsync(Task signal, TimeSpan timeout, CancellationToken cancellationToken) =>
        WaitAsync(signal, timeout, TimeProvider.System, cancellationToken);

    /// <summary>Waits for a signal taken earlier, or the timeout on <paramref name="time"/>'s clock.</summary>
    public static async Task WaitAsync(Task signal, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signal);
        try
        {
            await signal.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Poll anyway: another host may have written work.
        }
    }

    /// <summary>
    /// A task that completes at the next change of the instance's status (a commit of this host, or
    /// a notification of another host's). Take it before reading the instance; hand it back with
    /// <see cref="ReleaseInstanceChange"/> when done waiting.
    /// </summary>
    public Task NextInstanceChange(string instanceId)
    {
        lock (_gate)
        {
            if (!_instances.TryGetValue(instanceId, out var waiter))
            {
                waiter = new InstanceWaiter();
                _instances[instanceId] = waiter;
            }

            waiter.Count++;
            return waiter.Source.Task;
        }
    }

    /// <summary>Stops waiting on a task from <see cref="NextInstanceChange"/>.</summary>
    public void ReleaseInstanceChange(string instanceId, Task change)
    {
        lock (_gate)
        {
            if (_instances.TryGetValue(instanceId, out var waiter) && waiter.Source.Task == change && --waiter.Count == 0)
            {
                _instances.Remove(instanceId);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="check"/> until it reports done, again after every change of
    /// <paramref name="key"/> (an instance id, or another key such as the worker's idle-poll key).
    /// The change is taken before each check, so one that lands between the check and the wait is
    /// not lost. With <paramref name="firstPoll"/>, each wait also ends after a delay on
    /// <paramref name="time"/>'s clock, doubling up to <paramref name="maxPoll"/>, for changes no
    /// notification reports (another process without a notification path).
    /// </summary>
    public async Task<T> WaitForAsync<T>(string key, Func<Task<(bool Done, T Result)>> check, TimeSpan? firstPoll, TimeSpan maxPoll, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(check);
        var poll = firstPoll;
        while (true)
        {
            var changed = NextInstanceChange(key);
            try
            {
                var (done, result) = await check().ConfigureAwait(false);
                if (done)
                {
                    return result;
                }

                if (poll is { } delay)
                {
                    await WaitAsync(changed, delay, time, cancellationToken).ConfigureAwait(false);
                    poll = delay * 2 > maxPoll ? maxPoll : delay * 2;
                }
                else
                {
                    await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ReleaseInstanceChange(key, changed);
            }
        }
    }

    /// <summary>
    /// An episode was committed: wakes the instance's local waiters, the activity dispatchers when
    /// it scheduled activities its committer did not claim, the orchestration dispatchers when it
    /// sent messages or created instances, and those again when <paramref name="earliestTimer"/> is due
    /// (a one-shot timer on <paramref name="time"/>, so that with a fake clock advancing time fires it).
    /// </summary>
    public void EpisodeCommitted(string instanceId, Storage.OrchestrationCommit commit, int claimedActivities, DateTimeOffset? earliestTimer, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(commit);
        ArgumentNullException.ThrowIfNull(time);
        InstanceChanged(instanceId);
        if (commit.NewActivities.Count > claimedActivities)
        {
            NotifyActivities();
        }

        if (commit.NewMessages.Count > 0 || commit.NewInstances.Count > 0)
        {
            NotifyOrchestrations();
        }

        if (earliestTimer is not { } fireAt)
        {
            return;
        }

        var due = fireAt - time.GetUtcNow();
        if (due <= TimeSpan.Zero)
        {
            WakeOrchestrations();
            return;
        }

        ITimer? timer = null;
        timer = time.CreateTimer(
            _ =>
            {
                WakeOrchestrations();
                timer?.Dispose();
            },
            null,
            due,
            Timeout.InfiniteTimeSpan);
    }

    /// <summary>The instance's status changed: wake its local waiters.</summary>
    public void InstanceChanged(string instanceId)
    {
        InstanceWaiter? waiter;
        lock (_gate)
        {
            if (!_instances.Remove(instanceId, out waiter))
            {
                return;
            }
        }

        waiter.Source.TrySetResult();
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

    private sealed class InstanceWaiter
    {
        public TaskCompletionSource Source { get; } = NewSource();

        public int Count { get; set; }
    }
}

/// <summary>The kind of work a notification announces.</summary>
public enum WorkKind
{
    /// <summary>Orchestration inbox messages.</summary>
    Orchestration,

    /// <summary>Activity tasks.</summary>
    Activity,
}
