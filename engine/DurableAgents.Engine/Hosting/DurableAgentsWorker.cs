using System.Threading.Channels;
using DurableAgents.Engine.History;
using DurableAgents.Engine.Runtime;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Hosting;

/// <summary>
/// The DurableAgents backend's worker, a <see cref="DurableTaskWorker"/> of the Durable Task SDK
/// (built by <c>services.AddDurableTaskWorker(b => b.UseDurableAgents())</c>, which hands it the
/// SDK's task factory for the registered orchestrators and activities). It leases episodes and
/// activities from the store and runs them: orchestrations on the SDK's runner, activities through
/// the factory with the SDK's data converter. Shutdown stops taking work and waits for in-flight
/// items; activities still running when the host's shutdown timeout expires are cancelled and
/// abandoned (their lease released), never recorded as failed.
/// </summary>
public sealed class DurableAgentsWorker : DurableTaskWorker
{
    private readonly IOrchestrationStore _store;
    private readonly Microsoft.DurableTask.DataConverter _converter;
    private readonly IServiceScopeFactory _scopes;
    private readonly WorkSignal _signal;
    private readonly TimeProvider _time;
    private readonly DurableAgentsOptions _options;
    private readonly ILogger _logger;
    private readonly EpisodeRunner _episodes;
    private readonly EpisodeObservers? _observers;
    // Most items leased in one store round trip.
    private const int MaxLeaseBatch = 32;

    // Most activity results committed in one store transaction.
    private const int MaxCompletionBatch = 128;

    private readonly CancellationTokenSource _hardStop = new();
    private readonly string _workerId;
    private readonly SemaphoreSlim _activitySlots;
    private readonly SemaphoreSlim _orchestrationSlots;
    private volatile bool _dispatching;
    private readonly HashSet<Task> _running = [];

    // Activity results wait here briefly so that several share one store transaction (group commit).
    private readonly Channel<PendingCompletion> _completions = Channel.CreateUnbounded<PendingCompletion>(new UnboundedChannelOptions { SingleReader = true });
    private int _inFlight;

    /// <summary>Created by the SDK's worker builder (<see cref="IDurableTaskWorkerBuilder.Build"/>).</summary>
    public DurableAgentsWorker(
        string? name,
        IDurableTaskFactory factory,
        IOrchestrationStore store,
        IServiceProvider services,
        IServiceScopeFactory scopes,
        WorkSignal signal,
        HostIdentity identity,
        TimeProvider time,
        IOptions<DurableAgentsOptions> options,
        IOptionsMonitor<DurableTaskWorkerOptions> workerOptions,
        IOptionsMonitor<DurableTaskRegistry> registry,
        ILoggerFactory loggerFactory)
        : base(name, factory)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(workerOptions);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentNullException.ThrowIfNull(identity);
        _store = store;
        _converter = workerOptions.Get(Name).DataConverter;
        _scopes = scopes;
        _signal = signal;
        _time = time;
        _options = options.Value;
        _logger = loggerFactory.CreateLogger<DurableAgentsWorker>();
        _episodes = new EpisodeRunner(store, factory, services, time, loggerFactory, _options);
        _observers = services.GetService(typeof(EpisodeObservers)) as EpisodeObservers;
        _workerId = identity.HostId;
        _activitySlots = new SemaphoreSlim(_options.MaxConcurrentActivities, _options.MaxConcurrentActivities);
        _orchestrationSlots = new SemaphoreSlim(_options.MaxConcurrentOrchestrations, _options.MaxConcurrentOrchestrations);
        if (_options.TakeRegisteredTasksOnly)
        {
            var tasks = registry.Get(Name);
            _orchestrationNames = NameFilter.Only(tasks.GetOrchestrators().Select(o => o.Key.Name));
            _activityNames = NameFilter.Only(tasks.GetActivities().Select(a => a.Key.Name));
        }
    }

    // With TakeRegisteredTasksOnly, what this worker leases; null: everything.
    private readonly NameFilter? _orchestrationNames;
    private readonly NameFilter? _activityNames;

    /// <summary>
    /// The <see cref="WorkSignal.NextInstanceChange"/> key signalled each time the orchestration
    /// dispatcher polled and found no visible work: "nothing was due" as an event tests can await.
    /// </summary>
    public const string IdlePollKey = "\u0000idle-orchestration-poll";

    private long _emptyOrchestrationPolls;

    /// <summary>Orchestration polls that found no visible work while no episode ran (a counter for "nothing was due").</summary>
    public long EmptyOrchestrationPolls => Interlocked.Read(ref _emptyOrchestrationPolls);

    /// <summary>Episodes that resumed a cached orchestrator (no replay).</summary>
    public long CacheHits => _episodes.CacheHits;

    /// <summary>Episodes that replayed history.</summary>
    public long CacheMisses => _episodes.CacheMisses;

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        var inFlight = Volatile.Read(ref _inFlight);
        _logger.WorkerStopping(_workerId, inFlight);

        // Graceful first: no new work, in-flight work may finish until the host's shutdown timeout.
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (ExecuteTask is { IsCompleted: false } running)
        {
            // Timed out: cancel what still runs. Cancelled activities release their lease
            // (abandon), which is quick, so give them a moment to do it before the host disposes the store.
            await _hardStop.CancelAsync().ConfigureAwait(false);
            await running.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        _episodes.Dispose();
        _hardStop.Dispose();
        _activitySlots.Dispose();
        _orchestrationSlots.Dispose();
        base.Dispose();
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.EnableWorker)
        {
            return; // a client-only host
        }

        _logger.WorkerStarted(_workerId, _options.MaxConcurrentOrchestrations, _options.MaxConcurrentActivities);
        _dispatching = true;
        var flusher = FlushCompletionsAsync();
        await Task.WhenAll(
            DispatchAsync("orchestration", _orchestrationSlots, _signal.NextOrchestrationSignal, TryRunEpisodesAsync, stoppingToken),
            DispatchAsync("activity", _activitySlots, _signal.NextActivitySignal, TryRunActivitiesAsync, stoppingToken)).ConfigureAwait(false);

        // Stop taking work (results no longer lease their instances), then let everything in flight
        // finish (episodes start claimed activities too).
        _dispatching = false;
        await DrainAsync().ConfigureAwait(false);

        // Every activity has handed in its result by now: flush the last ones, then wait for any
        // episode a flush leased before it saw that we are stopping.
        _completions.Writer.Complete();
        await flusher.ConfigureAwait(false);
        await DrainAsync().ConfigureAwait(false);
    }

    /// <summary>Waits until no tracked work item runs (work may start more work while it waits).</summary>
    private async Task DrainAsync()
    {
        while (true)
        {
            Task[] remaining;
            lock (_running)
            {
                remaining = [.. _running];
            }

            if (remaining.Length == 0)
            {
                return;
            }

            await Task.WhenAll(remaining).ConfigureAwait(false);
        }
    }

    private async Task DispatchAsync(
        string kind,
        SemaphoreSlim slots,
        Func<Task> nextSignal,
        Func<int, CancellationToken, Task<IReadOnlyList<Func<Task>>>> tryLock,
        CancellationToken stoppingToken)
    {
        var delay = _options.MinPollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            // Lease as many items as there are free slots, in one store round trip.
            var taken = 1;
            while (taken < MaxLeaseBatch && slots.Wait(0, CancellationToken.None))
            {
                taken++;
            }

            var signal = nextSignal();
            IReadOnlyList<Func<Task>> work;
            try
            {
                work = await tryLock(taken, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                slots.Release(taken);
                break;
            }
#pragma warning disable CA1031 // a store outage must not kill the worker: log, back off, poll again
            catch (Exception ex)
#pragma warning restore CA1031
            {
                slots.Release(taken);
                delay = Next(delay);
                _logger.PollError(kind, delay, ex);
                await DelayQuietlyAsync(delay, stoppingToken).ConfigureAwait(false);
                continue;
            }

            if (work.Count < taken)
            {
                slots.Release(taken - work.Count);
            }

            if (work.Count == 0)
            {
                // Idle means nothing was due and no episode is still running (its commit could change that).
                if (kind == "orchestration" && slots.CurrentCount == _options.MaxConcurrentOrchestrations)
                {
                    Interlocked.Increment(ref _emptyOrchestrationPolls);
                    _signal.InstanceChanged(IdlePollKey);
                }

                try
                {
                    await WorkSignal.WaitAsync(signal, delay, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break; // stop taking work; in-flight items are awaited below
                }

                delay = Next(delay);
                continue;
            }

            delay = _options.MinPollInterval;
            foreach (var item in work)
            {
                Track(RunReleasingAsync(item, slots));
            }
        }
    }

    private void Track(Task task)
    {
        lock (_running)
        {
            _running.Add(task);
        }

        _ = task.ContinueWith(
            t =>
            {
                lock (_running)
                {
                    _running.Remove(t);
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private async Task RunReleasingAsync(Func<Task> work, SemaphoreSlim slots)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            await work().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            slots.Release();
        }
    }

    private TimeSpan Next(TimeSpan delay)
    {
        var doubled = delay * 2;
        return doubled > _options.MaxPollInterval ? _options.MaxPollInterval : doubled;
    }

    private static async Task DelayQuietlyAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // shutting down
        }
    }

    private async Task<IReadOnlyList<Func<Task>>> TryRunEpisodesAsync(int maxCount, CancellationToken stoppingToken)
    {
        var items = await _store.TryLockOrchestrationsAsync(_workerId, _options.OrchestrationLease, _time.GetUtcNow(), maxCount, _orchestrationNames, stoppingToken).ConfigureAwait(false);
        return items.Select(item => (Func<Task>)(() => RunEpisodeAsync(item))).ToList();
    }

    private async Task RunEpisodeAsync(OrchestrationWorkItem item)
    {
        // An episode is short and CPU-bound; it is not cancelled at shutdown, so that its commit lands.
        var ct = CancellationToken.None;
        var claimedSlots = 0;
        using var span = DurableAgentsTelemetry.Source.StartActivity($"orchestration {item.Name}");
        span?.SetTag(DurableAgentsTelemetry.InstanceIdAttribute, item.InstanceId);
        span?.SetTag(DurableAgentsTelemetry.OrchestrationAttribute, item.Name);
        DurableAgentsTelemetry.Episodes.Add(1, new KeyValuePair<string, object?>(DurableAgentsTelemetry.OrchestrationAttribute, item.Name));
        try
        {
            var result = await _episodes.RunAsync(item, ct).ConfigureAwait(false);
            var commit = result.Commit;
            if (commit.Instance is { } after)
            {
                span?.SetTag(DurableAgentsTelemetry.OutcomeAttribute, after.Status.ToString());
                if (after.Status.IsTerminal())
                {
                    DurableAgentsTelemetry.OrchestrationsFinished.Add(
                        1,
                        new KeyValuePair<string, object?>(DurableAgentsTelemetry.OrchestrationAttribute, item.Name),
                        new KeyValuePair<string, object?>(DurableAgentsTelemetry.OutcomeAttribute, after.Status.ToString()));
                }

                if (after.Failure is { } failure)
                {
                    span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, failure.ErrorType);
                }
            }

            // Run the activities this episode schedules here, as far as free slots allow: they are
            // inserted already leased to us, saving a queue round trip and a wake-up per activity.
            while (claimedSlots < commit.NewActivities.Count && _activitySlots.Wait(0, CancellationToken.None))
            {
                claimedSlots++;
            }

            if (claimedSlots > 0)
            {
                commit = commit.WithActivityClaim(new ActivityClaim(_workerId, _options.ActivityLease, claimedSlots));
            }

            IReadOnlyList<ActivityWorkItem> claimed;
            try
            {
                claimed = await _store.CommitOrchestrationAsync(item, commit, _time.GetUtcNow(), ct).ConfigureAwait(false);
            }
            catch
            {
                // The SDK's session moved ahead of what the store holds: replay from history next time.
                _episodes.Forget(item.InstanceId);
                throw;
            }

            result.Committed?.Invoke();
            if (_observers is not null)
            {
                await _observers.CommittedAsync(item, commit, ct).ConfigureAwait(false);
            }

            // Every commit wakes the instance's local waiters (status waits, tests awaiting a step)
            // and whoever has work from it.
            _signal.EpisodeCommitted(item.InstanceId, commit, claimed.Count, result.EarliestTimer, _time);

            foreach (var activity in claimed)
            {
                claimedSlots--;
                Track(RunReleasingAsync(() => RunActivityAsync(activity), _activitySlots));
            }
        }
        catch (LeaseLostException)
        {
            _logger.OrchestrationLeaseLost(item.InstanceId);
        }
#pragma warning disable CA1031 // a failing episode (store error) is retried; it must not stop the dispatcher
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.EpisodeError(item.InstanceId, ex);
            try
            {
                await _store.AbandonOrchestrationAsync(item, TimeSpan.FromSeconds(1), _time.GetUtcNow(), ct).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // the lease lapses by itself if the abandon cannot be written either
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        finally
        {
            if (claimedSlots > 0)
            {
                _activitySlots.Release(claimedSlots); // claimed but not started (failed or partial commit)
            }
        }
    }

    private async Task<IReadOnlyList<Func<Task>>> TryRunActivitiesAsync(int maxCount, CancellationToken stoppingToken)
    {
        var items = await _store.TryLockActivitiesAsync(_workerId, _options.ActivityLease, _time.GetUtcNow(), maxCount, _activityNames, stoppingToken).ConfigureAwait(false);
        return items.Select(item => (Func<Task>)(() => RunActivityAsync(item))).ToList();
    }

    private async Task RunActivityAsync(ActivityWorkItem item)
    {
        var task = item.Task;
        using var span = DurableAgentsTelemetry.Source.StartActivity($"activity {task.Name}");
        span?.SetTag(DurableAgentsTelemetry.InstanceIdAttribute, task.InstanceId);
        span?.SetTag(DurableAgentsTelemetry.ActivityAttribute, task.Name);
        span?.SetTag(DurableAgentsTelemetry.TaskIdAttribute, task.TaskId);
        var started = _time.GetTimestamp();
        using var leaseLost = new CancellationTokenSource();
        using var activityCts = CancellationTokenSource.CreateLinkedTokenSource(leaseLost.Token, _hardStop.Token);
        using var renewal = _time.CreateTimer(
            _ => _ = RenewAsync(item, leaseLost),
            null,
            _options.ActivityLease / 3,
            _options.ActivityLease / 3);

        P.HistoryEvent result;
        string outcome;
        try
        {
            var output = await InvokeActivityAsync(item, activityCts.Token).ConfigureAwait(false);
            var size = DataConverter.ByteCount(output);
            if (size > _options.MaxPayloadBytes)
            {
                throw new PayloadTooLargeException($"result of activity '{task.Name}'", size, _options.MaxPayloadBytes);
            }

            result = Events.TaskCompleted(task.TaskId, output, _time.GetUtcNow());
            outcome = "completed";
        }
        catch (OperationCanceledException) when (activityCts.IsCancellationRequested)
        {
            // Cancelled because we are stopping or lost the lease: not the activity's failure.
            // Release the lease so another worker runs it (at-least-once).
            _logger.ActivityAbandoned(task.Name, task.TaskId, task.InstanceId);
            await AbandonQuietlyAsync(item).ConfigureAwait(false);
            return;
        }
#pragma warning disable CA1031 // any exception from activity code becomes TaskFailed with its details
        catch (Exception ex)
#pragma warning restore CA1031
        {
            result = Events.TaskFailed(task.TaskId, Events.Failure(ex), _time.GetUtcNow());
            outcome = "failed";
        }

        span?.SetTag(DurableAgentsTelemetry.OutcomeAttribute, outcome);
        if (outcome == "failed")
        {
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, result.TaskFailed.FailureDetails.ErrorType);
        }

        var tags = new[]
        {
            new KeyValuePair<string, object?>(DurableAgentsTelemetry.ActivityAttribute, task.Name),
            new KeyValuePair<string, object?>(DurableAgentsTelemetry.OutcomeAttribute, outcome),
        };
        DurableAgentsTelemetry.ActivityRuns.Add(1, tags);
        DurableAgentsTelemetry.ActivityDuration.Record(_time.GetElapsedTime(started).TotalMilliseconds, tags);
        try
        {
            var pending = new PendingCompletion(new ActivityCompletion(item, result));
            await _completions.Writer.WriteAsync(pending, CancellationToken.None).ConfigureAwait(false);
            if (await pending.Applied.Task.ConfigureAwait(false))
            {
                _logger.ActivityFinished(task.Name, task.TaskId, task.InstanceId, outcome);
            }
            else
            {
                _logger.ActivityDuplicateDiscarded(task.Name, task.TaskId, task.InstanceId);
            }
        }
#pragma warning disable CA1031 // the task stays leased and runs again after the lease expires
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.ActivityStoreError(task.Name, task.TaskId, task.InstanceId, ex);
        }
    }

    private async Task FlushCompletionsAsync()
    {
        var reader = _completions.Reader;
        var batch = new List<PendingCompletion>(MaxCompletionBatch);
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (batch.Count < MaxCompletionBatch && reader.TryRead(out var next))
            {
                batch.Add(next);
            }

            // The instances that get a result are leased in the same transaction, as far as free
            // episode slots allow: their next episode runs here at once, without a poll and a lease
            // round trip.
            var slots = 0;
            while (_dispatching && slots < batch.Count && _orchestrationSlots.Wait(0, CancellationToken.None))
            {
                slots++;
            }

            try
            {
                var results = await _store.CompleteActivitiesAndLeaseAsync(
                    batch.Select(p => p.Completion).ToList(), _workerId, _options.OrchestrationLease, slots, _time.GetUtcNow(), _orchestrationNames, CancellationToken.None).ConfigureAwait(false);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Applied.TrySetResult(results.Applied[i]);
                }

                foreach (var item in results.Leased)
                {
                    slots--;
                    Track(RunReleasingAsync(() => RunEpisodeAsync(item), _orchestrationSlots));
                }

                _signal.NotifyOrchestrations();
            }
#pragma warning disable CA1031 // each waiting activity logs the failure; its task runs again after the lease expires
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (var p in batch)
                {
                    p.Applied.TrySetException(ex);
                }
            }
            finally
            {
                if (slots > 0)
                {
                    _orchestrationSlots.Release(slots); // taken but not leased
                }
            }

            batch.Clear();
        }
    }

    private async Task<string?> InvokeActivityAsync(ActivityWorkItem item, CancellationToken cancellationToken)
    {
        var task = item.Task;
        var scope = _scopes.CreateAsyncScope();
        await using (scope.ConfigureAwait(false))
        {
            var name = new TaskName(task.Name);
            if (!Factory.TryCreateActivity(name, scope.ServiceProvider, out var activity))
            {
                throw new TaskNotRegisteredException("activity", task.Name, []);
            }

            object? input;
            try
            {
                input = _converter.Deserialize(UnwrapInput(task.Input), activity.InputType);
            }
            catch (System.Text.Json.JsonException ex)
            {
                throw new DurableAgentsException($"The input of activity '{task.Name}' could not be read as {activity.InputType.Name}: {ex.Message}", ErrorTypes.SerializationFailed, nonRetryable: true, innerException: ex);
            }

            var context = new DurableAgentsActivityContext(name, new ActivityInvocation(task.InstanceId, task.ExecutionId, task.TaskId, item.DequeueCount, cancellationToken), task.Version);
            var output = await activity.RunAsync(context, input).ConfigureAwait(false);
            return _converter.Serialize(output);
        }
    }

    /// <summary>
    /// The SDK schedules an activity's input as a one-element JSON array (the Functions
    /// activity-trigger convention); the activity gets the element. As the SDK's own activity shim does.
    /// </summary>
    private static string? UnwrapInput(string? input) =>
        input is { Length: >= 2 } && input[0] == '[' && input[^1] == ']'
            ? (input.Length == 2 ? null : input[1..^1])
            : input;

    private async Task RenewAsync(ActivityWorkItem item, CancellationTokenSource leaseLost)
    {
        try
        {
            if (!await _store.RenewActivityLeaseAsync(item, _options.ActivityLease, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false))
            {
                await leaseLost.CancelAsync().ConfigureAwait(false);
            }
        }
        catch (ObjectDisposedException)
        {
            // the activity finished while the renewal was in flight
        }
#pragma warning disable CA1031 // a failed renewal is retried at the next tick; the fence protects correctness
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task AbandonQuietlyAsync(ActivityWorkItem item)
    {
        try
        {
            await _store.AbandonActivityAsync(item, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // if the abandon cannot be written, the lease simply expires
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private sealed record PendingCompletion(ActivityCompletion Completion)
    {
        public TaskCompletionSource<bool> Applied { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
