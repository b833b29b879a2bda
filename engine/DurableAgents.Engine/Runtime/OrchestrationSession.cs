using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// One orchestration execution held in memory: the orchestrator's suspended code, its open tasks
/// and the bookkeeping that matches the code's decisions against history. A session is created
/// by replaying history (cache miss) or kept alive between episodes (cache hit), so a long
/// workflow does not replay from the start at every step.
/// </summary>
internal sealed partial class OrchestrationSession
{
    private readonly ITaskOrchestrator _orchestrator;
    private readonly OrchestrationSynchronizationContext _scheduler = new();
    private readonly SessionContext _context;
    private readonly long _maxPayloadBytes;
    private readonly ILoggerFactory _loggerFactory;

    // Tasks the code is awaiting, by task id. Completion events for unknown ids are ignored.
    private readonly Dictionary<int, OpenTask> _openTasks = [];

    // Actions the code took that history has not yet confirmed. During replay each scheduling
    // event in history must match the action with the same id; what is left after replay is new.
    private readonly SortedDictionary<int, PendingAction> _pendingActions = [];

    private readonly Dictionary<string, Queue<EventWaiter>> _waiters = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<EventRaisedEvent> _bufferedEvents = [];
    private readonly Dictionary<int, string> _openChildren = [];

    private int _nextTaskId;
    private int _guidCounter;
    private string? _input;
    private Task<object?>? _orchestratorTask;
    private DateTime _currentUtc;
    private bool _isReplaying;
    private string? _customStatus;
    private (string? Input, bool PreserveEvents)? _continueAsNew;
    private TaskFailureDetails? _forcedFailure;

    public OrchestrationSession(string instanceId, string executionId, string name, ITaskOrchestrator orchestrator, long maxPayloadBytes, ILoggerFactory loggerFactory)
    {
        InstanceId = instanceId;
        ExecutionId = executionId;
        Name = name;
        _orchestrator = orchestrator;
        _maxPayloadBytes = maxPayloadBytes;
        _loggerFactory = loggerFactory;
        _context = new SessionContext(this);
    }

    public string InstanceId { get; }

    public string ExecutionId { get; }

    public string Name { get; }

    public string? Version { get; private set; }

    public ParentInstanceInfo? Parent { get; private set; }

    /// <summary>History length after the last committed episode; the cache key alongside the execution id.</summary>
    public int HistoryLength { get; set; }

    public bool IsSuspended { get; private set; }

    public bool IsFinished => _forcedFailure is not null || (_orchestratorTask?.IsCompleted ?? false);

    /// <summary>False once anything outside the context completed an await: never reuse such a session.</summary>
    public bool IsReusable => _scheduler.ForeignPosts == 0 && !IsFinished;

    public IReadOnlyCollection<string> OpenChildInstanceIds => _openChildren.Values;

    /// <summary>A failure forced by the engine during replay (non-determinism, bad input), or the code's own failure.</summary>
    public TaskFailureDetails? ReplayFailure =>
        _forcedFailure ?? (_orchestratorTask is { IsCompleted: true } t && !t.IsCompletedSuccessfully ? GetFailure(t) : null);

    /// <summary>Replays past events (IsReplaying = true). Throws nothing: non-determinism fails the session.</summary>
    public void Replay(IReadOnlyList<HistoryEvent> history)
    {
        _isReplaying = true;
        try
        {
            foreach (var e in history)
            {
                // Keep going after the code returns: a scheduling event left in history means the
                // code now finishes earlier than it did, which is non-determinism too.
                if (_forcedFailure is not null)
                {
                    break;
                }

                Apply(e);
            }
        }
        finally
        {
            _isReplaying = false;
        }

        HistoryLength = history.Count;
    }

    /// <summary>
    /// Runs one episode over new messages. Returns the events to append and the side effects.
    /// Messages after a suspend are left unconsumed (they stay in the inbox).
    /// </summary>
    public EpisodeOutput RunEpisode(IReadOnlyList<OrchestrationMessage> messages, DateTimeOffset now)
    {
        var output = new EpisodeOutput();
        var started = new OrchestratorStartedEvent { Timestamp = now };
        output.NewEvents.Add(started);
        Apply(started);

        foreach (var message in messages)
        {
            if (message.ExecutionId is not null && message.ExecutionId != ExecutionId)
            {
                // Addressed to an earlier execution (before ContinueAsNew): stale, drop it.
                output.Consumed.Add(message.Id);
                continue;
            }

            if (IsFinished)
            {
                // Late messages to a finished execution are consumed and dropped.
                output.Consumed.Add(message.Id);
                continue;
            }

            var e = message.Event;
            if (IsSuspended && e is not (ExecutionResumedEvent or ExecutionSuspendedEvent))
            {
                continue; // stays in the inbox until the instance resumes
            }

            output.Consumed.Add(message.Id);
            if (e is ExecutionSuspendedEvent && IsSuspended)
            {
                continue;
            }

            if (e is ExecutionResumedEvent && !IsSuspended)
            {
                continue;
            }

            output.NewEvents.Add(e);
            Apply(e);
        }

        CollectActions(output);
        return output;
    }

    /// <summary>The instance row and completion side effects once the episode is done.</summary>
    public InstanceUpdate Finish(EpisodeOutput output, DateTimeOffset now)
    {
        if (!IsFinished)
        {
            DetectNonContextAwait();
        }

        if (!IsFinished)
        {
            return new InstanceUpdate(IsSuspended ? OrchestrationRuntimeStatus.Suspended : OrchestrationRuntimeStatus.Running, null, _customStatus, null);
        }

        if (_forcedFailure is null && _orchestratorTask!.IsCompletedSuccessfully && _continueAsNew is { } can)
        {
            var newExecutionId = Guid.NewGuid().ToString("N");
            output.NewEvents.Add(new ContinueAsNewEvent(can.Input) { Timestamp = now });
            output.ContinueAsNew = new ContinueAsNewRequest(newExecutionId, can.Input);
            output.NewMessages.Add(new OrchestrationMessage(0, InstanceId, newExecutionId, new ExecutionStartedEvent(Name, Version, can.Input, Parent) { Timestamp = now }, now));
            if (can.PreserveEvents)
            {
                foreach (var buffered in _bufferedEvents)
                {
                    output.NewMessages.Add(new OrchestrationMessage(0, InstanceId, newExecutionId, buffered, now));
                }
            }

            return new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, _customStatus, null);
        }

        var failure = _forcedFailure ?? GetFailure(_orchestratorTask!);
        string? result = null;
        if (failure is null)
        {
            result = DataConverter.Serialize(_orchestratorTask!.Result);
            var size = DataConverter.ByteCount(result);
            if (size > _maxPayloadBytes)
            {
                failure = TaskFailureDetails.FromException(new PayloadTooLargeException($"output of orchestration '{Name}'", size, _maxPayloadBytes));
                result = null;
            }
        }

        if (failure is null)
        {
            output.NewEvents.Add(new ExecutionCompletedEvent(result) { Timestamp = now });
            NotifyParent(output, new SubOrchestrationInstanceCompletedEvent(Parent?.TaskScheduledId ?? -1, result) { Timestamp = now }, now);
            return new InstanceUpdate(OrchestrationRuntimeStatus.Completed, result, _customStatus, null);
        }

        output.NewEvents.Add(new ExecutionFailedEvent(failure) { Timestamp = now });
        NotifyParent(output, new SubOrchestrationInstanceFailedEvent(Parent?.TaskScheduledId ?? -1, failure) { Timestamp = now }, now);
        return new InstanceUpdate(OrchestrationRuntimeStatus.Failed, null, _customStatus, failure);
    }

    internal void NotifyParent(EpisodeOutput output, HistoryEvent e, DateTimeOffset now)
    {
        if (Parent is { } p)
        {
            output.NewMessages.Add(new OrchestrationMessage(0, p.InstanceId, p.ExecutionId, e, now));
        }
    }

    private static TaskFailureDetails? GetFailure(Task<object?> task)
    {
        if (task.IsCompletedSuccessfully)
        {
            return null;
        }

        if (task.IsCanceled)
        {
            return new TaskFailureDetails(typeof(TaskCanceledException).FullName!, "The orchestrator's code ended with an unhandled cancellation (for example a WaitForExternalEvent timeout that was not caught).");
        }

        var ex = task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerException! : task.Exception;
        return TaskFailureDetails.FromException(ex);
    }

    private void DetectNonContextAwait()
    {
        // Blocked, yet waiting on nothing the context owns: the code awaited Task.Delay, I/O or
        // another non-context task, which would resume at a non-deterministic time.
        if (_orchestratorTask is not null && _openTasks.Count == 0 && _waiters.Values.All(q => q.Count == 0))
        {
            Fail(new DurableAgentsException(
                $"Orchestrator '{Name}' awaited a task that was not created by its TaskOrchestrationContext (for example Task.Delay, Task.Run or I/O). "
                + "Orchestrations must only await context APIs: CallActivityAsync, CallSubOrchestratorAsync, CreateTimer, WaitForExternalEvent.",
                ErrorTypes.NonContextAwait,
                nonRetryable: true));
        }
    }

    private void Fail(Exception ex) => _forcedFailure ??= TaskFailureDetails.FromException(ex);

    private void Apply(HistoryEvent e)
    {
        switch (e)
        {
            case ExecutionStartedEvent started:
                Start(started);
                break;
            case OrchestratorStartedEvent:
                _currentUtc = e.Timestamp.UtcDateTime;
                break;
            case TaskScheduledEvent or TimerCreatedEvent or SubOrchestrationInstanceCreatedEvent or EventSentEvent:
                Confirm(e);
                break;
            case TaskCompletedEvent c:
                Complete(c.TaskScheduledId, open => open.OnResult(c.Result));
                break;
            case TaskFailedEvent f:
                Complete(f.TaskScheduledId, open => open.OnFailure(f.FailureDetails));
                break;
            case TimerFiredEvent t:
                Complete(t.TimerId, open => open.OnResult(null));
                break;
            case SubOrchestrationInstanceCompletedEvent sc:
                _openChildren.Remove(sc.TaskScheduledId);
                Complete(sc.TaskScheduledId, open => open.OnResult(sc.Result));
                break;
            case SubOrchestrationInstanceFailedEvent sf:
                _openChildren.Remove(sf.TaskScheduledId);
                Complete(sf.TaskScheduledId, open => open.OnFailure(sf.FailureDetails));
                break;
            case EventRaisedEvent raised:
                _scheduler.Run(() => Deliver(raised));
                break;
            case ExecutionSuspendedEvent:
                IsSuspended = true;
                break;
            case ExecutionResumedEvent:
                IsSuspended = false;
                break;
            default:
                break; // terminal events and ContinueAsNew end the execution; nothing to replay
        }
    }

    private void Start(ExecutionStartedEvent started)
    {
        Version = started.Version;
        Parent = started.Parent;
        _input = started.Input;
        _currentUtc = started.Timestamp.UtcDateTime;
        object? input;
        try
        {
            input = DataConverter.Deserialize(started.Input, _orchestrator.InputType, $"input of orchestrator '{Name}'");
        }
        catch (DurableAgentsException ex)
        {
            Fail(ex);
            return;
        }

        _scheduler.Run(() =>
        {
            try
            {
                _orchestratorTask = _orchestrator.RunAsync(_context, input);
            }
#pragma warning disable CA1031 // any exception from user code fails the instance with its details
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _orchestratorTask = Task.FromException<object?>(ex);
            }
        });
    }

    private void Confirm(HistoryEvent e)
    {
        if (!_pendingActions.Remove(e.EventId, out var action))
        {
            Fail(new NonDeterminismException(
                $"Non-deterministic orchestration '{Name}' ({InstanceId}): history has {Describe(e)} as task #{e.EventId}, "
                + "but the orchestrator's code did not schedule it on replay. Was the code changed while this instance was running?"));
            return;
        }

        if (action.Event.GetType() != e.GetType() || action.TargetName != PendingAction.NameOf(e))
        {
            Fail(new NonDeterminismException(
                $"Non-deterministic orchestration '{Name}' ({InstanceId}): at task #{e.EventId} history has {Describe(e)}, "
                + $"but the orchestrator's code now schedules {Describe(action.Event)}. Was the code changed while this instance was running?"));
        }
    }

    private static string Describe(HistoryEvent e) => e switch
    {
        TaskScheduledEvent t => $"activity '{t.Name}' (TaskScheduled)",
        SubOrchestrationInstanceCreatedEvent s => $"sub-orchestration '{s.Name}' (SubOrchestrationInstanceCreated)",
        TimerCreatedEvent => "a timer (TimerCreated)",
        EventSentEvent s => $"event '{s.Name}' sent to '{s.InstanceId}' (EventSent)",
        _ => e.EventType,
    };

    private void Complete(int taskId, Action<OpenTask> complete)
    {
        if (!_openTasks.Remove(taskId, out var open))
        {
            return; // e.g. a timer whose wait was cancelled, or a stale result
        }

        _scheduler.Run(() => complete(open));
    }

    private void Deliver(EventRaisedEvent raised)
    {
        if (_waiters.TryGetValue(raised.Name, out var queue))
        {
            while (queue.TryDequeue(out var waiter))
            {
                if (waiter.TryComplete(raised.Input))
                {
                    return;
                }
            }
        }

        _bufferedEvents.Add(raised);
    }

    private void CollectActions(EpisodeOutput output)
    {
        foreach (var action in _pendingActions.Values)
        {
            var e = action.Event with { Timestamp = new DateTimeOffset(_currentUtc, TimeSpan.Zero) };
            output.NewEvents.Add(e);
            switch (e)
            {
                case TaskScheduledEvent t:
                    output.NewActivities.Add(new ActivityTaskRequest(InstanceId, ExecutionId, t.EventId, t.Name, t.Input));
                    break;
                case TimerCreatedEvent timer:
                    output.NewMessages.Add(new OrchestrationMessage(0, InstanceId, ExecutionId, new TimerFiredEvent(timer.EventId, timer.FireAt) { Timestamp = timer.FireAt }, timer.FireAt));
                    output.EarliestTimer = output.EarliestTimer is { } earliest && earliest < timer.FireAt ? earliest : timer.FireAt;
                    break;
                case SubOrchestrationInstanceCreatedEvent s:
                    output.NewInstances.Add(new NewInstance(
                        s.InstanceId, Guid.NewGuid().ToString("N"), s.Name, s.Version, s.Input, e.Timestamp,
                        new ParentInstanceInfo(Name, InstanceId, ExecutionId, s.EventId)));
                    break;
                case EventSentEvent sent:
                    output.NewMessages.Add(new OrchestrationMessage(0, sent.InstanceId, null, new EventRaisedEvent(sent.Name, sent.Input) { Timestamp = e.Timestamp }, e.Timestamp));
                    break;
                default:
                    throw new InvalidOperationException($"Unexpected pending action {e.EventType}.");
            }
        }

        _pendingActions.Clear();
    }

    private void EnsureOnScheduler()
    {
        if (!_scheduler.IsPumping || SynchronizationContext.Current != _scheduler)
        {
            throw new InvalidOperationException(
                $"Orchestration '{Name}' ({InstanceId}) called a TaskOrchestrationContext method outside its scheduler (from Task.Run, "
                + "after ConfigureAwait(false), or from another thread). Orchestration code must stay on the orchestration's thread.");
        }
    }

    private int Schedule(HistoryEvent action, string? serializedInput, string what)
    {
        EnsureOnScheduler();
        var size = DataConverter.ByteCount(serializedInput);
        if (size > _maxPayloadBytes)
        {
            throw new PayloadTooLargeException(what, size, _maxPayloadBytes);
        }

        var id = _nextTaskId++;
        _pendingActions[id] = new PendingAction(action with { EventId = id });
        return id;
    }

    private Task<T> ScheduleTask<T>(HistoryEvent action, string? input, string name, string what)
    {
        var id = Schedule(action, input, what);
        var tcs = new TaskCompletionSource<T>();
        _openTasks[id] = new OpenTask(
            result =>
            {
                try
                {
                    tcs.TrySetResult(DataConverter.Deserialize<T>(result, $"result of {what}")!);
                }
                catch (DurableAgentsException ex)
                {
                    tcs.TrySetException(ex);
                }
            },
            failure => tcs.TrySetException(new TaskFailedException(name, id, failure)));
        if (action is SubOrchestrationInstanceCreatedEvent s)
        {
            _openChildren[id] = s.InstanceId;
        }

        return tcs.Task;
    }

    internal sealed class EpisodeOutput
    {
        public List<HistoryEvent> NewEvents { get; } = [];

        public List<long> Consumed { get; } = [];

        public List<ActivityTaskRequest> NewActivities { get; } = [];

        public List<OrchestrationMessage> NewMessages { get; } = [];

        public List<NewInstance> NewInstances { get; } = [];

        public ContinueAsNewRequest? ContinueAsNew { get; set; }

        public DateTimeOffset? EarliestTimer { get; set; }
    }

    private sealed record OpenTask(Action<string?> OnResult, Action<TaskFailureDetails> OnFailure);

    private sealed record PendingAction(HistoryEvent Event)
    {
        public string? TargetName => NameOf(Event);

        public static string? NameOf(HistoryEvent e) => e switch
        {
            TaskScheduledEvent t => t.Name,
            SubOrchestrationInstanceCreatedEvent s => s.Name,
            EventSentEvent s => s.Name,
            _ => null,
        };
    }

    private abstract class EventWaiter
    {
        public abstract bool TryComplete(string? input);
    }

    private sealed class EventWaiter<T> : EventWaiter
    {
        private readonly TaskCompletionSource<T> _tcs = new();
        private readonly string _name;

        public EventWaiter(string name) => _name = name;

        public Task<T> Task => _tcs.Task;

        public void Cancel() => _tcs.TrySetCanceled();

        public override bool TryComplete(string? input)
        {
            if (_tcs.Task.IsCompleted)
            {
                return false;
            }

            try
            {
                return _tcs.TrySetResult(DataConverter.Deserialize<T>(input, $"payload of event '{_name}'")!);
            }
            catch (DurableAgentsException ex)
            {
                return _tcs.TrySetException(ex);
            }
        }
    }
}
