using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// Turns an <see cref="P.OrchestratorResponse"/> into the writes of one commit, as a Durable Task
/// backend must: each action becomes its history event (TaskScheduled, TimerCreated,
/// SubOrchestrationInstanceCreated, EventSent, ExecutionCompleted; the event id is the action id,
/// which is what replay matches on) and the work it stands for (an activity task, a timer message
/// visible at its fire time, a child instance, a message to another instance).
/// </summary>
internal sealed class EpisodePlan
{
    private readonly OrchestrationWorkItem _item;
    private readonly DateTimeOffset _now;
    private readonly long _maxPayloadBytes;
    private readonly List<P.HistoryEvent> _events = [];
    private readonly List<ActivityTaskRequest> _activities = [];
    private readonly List<OrchestrationMessage> _messages = [];
    private readonly List<NewInstance> _instances = [];
    private InstanceUpdate? _update;
    private ContinueAsNewRequest? _continueAsNew;

    private Func<P.ParentInstanceInfo, P.HistoryEvent>? _toParent;
    private (string ExecutionId, P.CompleteOrchestrationAction Action)? _continueAsNewStarted;

    public EpisodePlan(OrchestrationWorkItem item, DateTimeOffset now, long maxPayloadBytes)
    {
        _item = item;
        _now = now;
        _maxPayloadBytes = maxPayloadBytes;
    }

    /// <summary>The earliest timer this episode creates, so the worker can wake for it.</summary>
    public DateTimeOffset? EarliestTimer { get; private set; }

    public void Apply(IReadOnlyList<P.HistoryEvent> newEvents, IReadOnlyList<OrchestrationMessage> delivered, P.OrchestratorResponse response)
    {
        _events.AddRange(newEvents);
        var suspended = _item.Status == OrchestrationRuntimeStatus.Suspended;
        foreach (var m in delivered)
        {
            suspended = m.Event.EventTypeCase switch
            {
                P.HistoryEvent.EventTypeOneofCase.ExecutionSuspended => true,
                P.HistoryEvent.EventTypeOneofCase.ExecutionResumed => false,
                _ => suspended,
            };
        }

        var failure = Validate(response);
        if (failure is not null)
        {
            // Nothing the episode asked for is written: the instance fails with the reason.
            Complete(new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Failed, FailureDetails = failure });
        }
        else
        {
            foreach (var action in response.Actions)
            {
                ApplyAction(action);
            }
        }

        _update ??= new InstanceUpdate(
            suspended ? OrchestrationRuntimeStatus.Suspended : OrchestrationRuntimeStatus.Running,
            null,
            response.CustomStatus,
            null);
        if (_update.Status.IsTerminal() || _continueAsNew is not null)
        {
            // An execution that ended keeps the custom status its code set last, unless the
            // episode was refused (the status may be the oversized payload).
            _update = _update with { CustomStatus = failure is null ? response.CustomStatus : null };
        }

        _events.Add(Events.OrchestratorCompleted(_now));
    }

    /// <summary>
    /// True when the execution ended: a sub-orchestration then reports to its parent, and a
    /// ContinueAsNew passes the parent on to the new execution.
    /// </summary>
    public bool NeedsParent => _toParent is not null || _continueAsNewStarted is not null;

    /// <summary>The commit; <paramref name="parent"/> is the instance's parent, if it has one.</summary>
    public OrchestrationCommit ToCommit(IReadOnlyList<long> consumed, P.ParentInstanceInfo? parent)
    {
        var messages = new List<OrchestrationMessage>(_messages);
        if (parent is not null && _toParent is not null)
        {
            messages.Add(new OrchestrationMessage(0, parent.OrchestrationInstance.InstanceId, parent.OrchestrationInstance.ExecutionId, _toParent(parent), _now));
        }

        if (_continueAsNewStarted is { } can)
        {
            var started = Events.ExecutionStarted(_item.InstanceId, can.ExecutionId, _item.Name, can.Action.NewVersion ?? _item.Version, can.Action.Result, parent, null, null, _now);
            messages.Add(new OrchestrationMessage(0, _item.InstanceId, can.ExecutionId, started, _now));
            foreach (var carried in can.Action.CarryoverEvents)
            {
                messages.Add(new OrchestrationMessage(0, _item.InstanceId, can.ExecutionId, carried, _now));
            }
        }

        return new OrchestrationCommit
        {
            NewEvents = _events,
            ConsumedMessageIds = consumed,
            NewActivities = _activities,
            NewMessages = messages,
            NewInstances = _instances,
            Instance = _update,
            ContinueAsNew = _continueAsNew,
        };
    }

    private P.TaskFailureDetails? Validate(P.OrchestratorResponse response)
    {
        if (TooLarge(response.CustomStatus) is { } status)
        {
            return PayloadTooLarge("custom status", status);
        }

        foreach (var action in response.Actions)
        {
            var (what, payload) = action.OrchestratorActionTypeCase switch
            {
                P.OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask => ($"input of activity '{action.ScheduleTask.Name}'", action.ScheduleTask.Input),
                P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration => ($"input of sub-orchestration '{action.CreateSubOrchestration.Name}'", action.CreateSubOrchestration.Input),
                P.OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent => ($"payload of event '{action.SendEvent.Name}'", action.SendEvent.Data),
                P.OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration => ("orchestration output", action.CompleteOrchestration.Result),
                _ => (string.Empty, null),
            };
            if (TooLarge(payload) is { } size)
            {
                return PayloadTooLarge(what, size);
            }

            if (action.OrchestratorActionTypeCase == P.OrchestratorAction.OrchestratorActionTypeOneofCase.SendEntityMessage)
            {
                return Events.Failure(ErrorTypes.NotSupported, "Durable entities are not yet supported by the DurableAgents backend: the orchestration signalled, called or locked an entity. Use an activity or a sub-orchestration instead.");
            }

            if (action.OrchestratorActionTypeCase == P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration
                && !string.IsNullOrEmpty(action.CreateSubOrchestration.InstanceId))
            {
                try
                {
                    InstanceIds.Validate(action.CreateSubOrchestration.InstanceId);
                }
                catch (InvalidInstanceIdException ex)
                {
                    return Events.Failure(ex);
                }
            }
        }

        return null;
    }

    private long? TooLarge(string? payload)
    {
        var size = DataConverter.ByteCount(payload);
        return size > _maxPayloadBytes ? size : null;
    }

    private P.TaskFailureDetails PayloadTooLarge(string what, long size) =>
        Events.Failure(new PayloadTooLargeException(what, size, _maxPayloadBytes));

    private void ApplyAction(P.OrchestratorAction action)
    {
        var id = action.Id;
        switch (action.OrchestratorActionTypeCase)
        {
            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask:
                var task = action.ScheduleTask;
                _events.Add(Events.WithId(id, _now, e =>
                {
                    e.TaskScheduled = new P.TaskScheduledEvent { Name = task.Name, Version = task.Version, Input = task.Input };
                    e.TaskScheduled.Tags.Add(task.Tags);
                }));
                _activities.Add(new ActivityTaskRequest(_item.InstanceId, _item.ExecutionId, id, task.Name, task.Input, task.Version));
                break;

            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateTimer:
                var fireAt = action.CreateTimer.FireAt;
                _events.Add(Events.WithId(id, _now, e => e.TimerCreated = new P.TimerCreatedEvent { FireAt = fireAt }));
                var due = fireAt.ToDateTimeOffset();
                _messages.Add(new OrchestrationMessage(0, _item.InstanceId, _item.ExecutionId, Events.TimerFired(id, fireAt, due > _now ? due : _now), due));
                if (EarliestTimer is null || due < EarliestTimer)
                {
                    EarliestTimer = due;
                }

                break;

            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration:
                var sub = action.CreateSubOrchestration;
                _events.Add(Events.WithId(id, _now, e =>
                {
                    e.SubOrchestrationInstanceCreated = new P.SubOrchestrationInstanceCreatedEvent { InstanceId = sub.InstanceId, Name = sub.Name, Version = sub.Version, Input = sub.Input };
                    e.SubOrchestrationInstanceCreated.Tags.Add(sub.Tags);
                }));
                _instances.Add(new NewInstance(
                    sub.InstanceId,
                    NewExecutionId(),
                    sub.Name,
                    sub.Version,
                    sub.Input,
                    _now,
                    Events.Parent(_item.Name, _item.Version, _item.InstanceId, _item.ExecutionId, id),
                    sub.Tags.Count > 0 ? sub.Tags : null));
                break;

            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent:
                var send = action.SendEvent;
                _events.Add(Events.WithId(id, _now, e => e.EventSent = new P.EventSentEvent { InstanceId = send.Instance.InstanceId, Name = send.Name, Input = send.Data }));
                _messages.Add(new OrchestrationMessage(0, send.Instance.InstanceId, null, Events.EventRaised(send.Name, send.Data, _now), _now));
                break;

            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.TerminateOrchestration:
                var terminate = action.TerminateOrchestration;
                _messages.Add(new OrchestrationMessage(0, terminate.InstanceId, null, Events.ExecutionTerminated(terminate.Reason, terminate.Recurse, _now), _now));
                break;

            case P.OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration:
                Complete(action.CompleteOrchestration);
                break;

            default:
                // RewindOrchestration is answered by the backend, never sent by a worker for us;
                // entity messages were refused in Validate.
                break;
        }
    }

    private void Complete(P.CompleteOrchestrationAction complete)
    {
        switch (complete.OrchestrationStatus)
        {
            case P.OrchestrationStatus.ContinuedAsNew:
                var executionId = NewExecutionId();
                _continueAsNew = new ContinueAsNewRequest(executionId, complete.Result);
                _events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.ContinuedAsNew, complete.Result, null, _now));

                // The new execution keeps the parent: it is read when the new execution finishes.
                _continueAsNewStarted = (executionId, complete);
                _update = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null);
                break;

            case P.OrchestrationStatus.Failed:
                var failure = complete.FailureDetails ?? Events.Failure("DurableAgents.OrchestrationFailed", complete.Details ?? "The orchestration failed.");
                _events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.Failed, null, failure, _now));
                _update = new InstanceUpdate(OrchestrationRuntimeStatus.Failed, null, null, failure);
                _toParent = parent => Events.SubOrchestrationFailed(parent.TaskScheduledId, failure, _now);
                break;

            case P.OrchestrationStatus.Terminated:
                _events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.Terminated, complete.Result, null, _now));
                _update = new InstanceUpdate(OrchestrationRuntimeStatus.Terminated, complete.Result, null, null);
                _toParent = parent => Events.SubOrchestrationFailed(parent.TaskScheduledId, Events.Failure(ErrorTypes.Terminated, $"Sub-orchestration '{_item.InstanceId}' was terminated."), _now);
                break;

            default:
                _events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.Completed, complete.Result, null, _now));
                _update = new InstanceUpdate(OrchestrationRuntimeStatus.Completed, complete.Result, null, null);
                _toParent = parent => Events.SubOrchestrationCompleted(parent.TaskScheduledId, complete.Result, _now);
                break;
        }
    }

    private static string NewExecutionId() => Guid.NewGuid().ToString("N");
}
