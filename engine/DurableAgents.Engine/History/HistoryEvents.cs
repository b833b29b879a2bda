using System.Text.Json.Serialization;

namespace DurableAgents.Engine.History;

/// <summary>
/// One entry of an orchestration execution's append-only history, named as in Durable Task.
/// The same types travel as inbox messages (TaskCompleted, TimerFired, EventRaised, ...).
/// WARNING: the JSON shape (discriminator names, property names) is persisted; renaming is a
/// breaking change for in-flight orchestrations.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(ExecutionStartedEvent), "ExecutionStarted")]
[JsonDerivedType(typeof(OrchestratorStartedEvent), "OrchestratorStarted")]
[JsonDerivedType(typeof(TaskScheduledEvent), "TaskScheduled")]
[JsonDerivedType(typeof(TaskCompletedEvent), "TaskCompleted")]
[JsonDerivedType(typeof(TaskFailedEvent), "TaskFailed")]
[JsonDerivedType(typeof(TimerCreatedEvent), "TimerCreated")]
[JsonDerivedType(typeof(TimerFiredEvent), "TimerFired")]
[JsonDerivedType(typeof(EventRaisedEvent), "EventRaised")]
[JsonDerivedType(typeof(EventSentEvent), "EventSent")]
[JsonDerivedType(typeof(SubOrchestrationInstanceCreatedEvent), "SubOrchestrationInstanceCreated")]
[JsonDerivedType(typeof(SubOrchestrationInstanceCompletedEvent), "SubOrchestrationInstanceCompleted")]
[JsonDerivedType(typeof(SubOrchestrationInstanceFailedEvent), "SubOrchestrationInstanceFailed")]
[JsonDerivedType(typeof(ExecutionCompletedEvent), "ExecutionCompleted")]
[JsonDerivedType(typeof(ExecutionFailedEvent), "ExecutionFailed")]
[JsonDerivedType(typeof(ExecutionTerminatedEvent), "ExecutionTerminated")]
[JsonDerivedType(typeof(ContinueAsNewEvent), "ContinueAsNew")]
[JsonDerivedType(typeof(ExecutionSuspendedEvent), "ExecutionSuspended")]
[JsonDerivedType(typeof(ExecutionResumedEvent), "ExecutionResumed")]
public abstract record HistoryEvent
{
    /// <summary>The task id for scheduling events (TaskScheduled, TimerCreated, ...); -1 otherwise.</summary>
    public int EventId { get; init; } = -1;

    /// <summary>When the event was recorded.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The Durable Task name of the event, e.g. <c>TaskScheduled</c>.</summary>
    [JsonIgnore]
    public string EventType => GetType().Name[..^"Event".Length];
}

/// <summary>Where a sub-orchestration reports back to.</summary>
public sealed record ParentInstanceInfo(string Name, string InstanceId, string ExecutionId, int TaskScheduledId);

/// <summary>The first event of every execution.</summary>
public sealed record ExecutionStartedEvent(string Name, string? Version, string? Input, ParentInstanceInfo? Parent) : HistoryEvent;

/// <summary>Marks the start of an episode; its timestamp is the orchestration's CurrentUtcDateTime.</summary>
public sealed record OrchestratorStartedEvent : HistoryEvent;

/// <summary>An activity was scheduled (EventId is the task id).</summary>
public sealed record TaskScheduledEvent(string Name, string? Input) : HistoryEvent;

/// <summary>An activity returned.</summary>
public sealed record TaskCompletedEvent(int TaskScheduledId, string? Result) : HistoryEvent;

/// <summary>An activity threw.</summary>
public sealed record TaskFailedEvent(int TaskScheduledId, TaskFailureDetails FailureDetails) : HistoryEvent;

/// <summary>A durable timer was created (EventId is the timer id).</summary>
public sealed record TimerCreatedEvent(DateTimeOffset FireAt) : HistoryEvent;

/// <summary>A durable timer fired.</summary>
public sealed record TimerFiredEvent(int TimerId, DateTimeOffset FireAt) : HistoryEvent;

/// <summary>An external event arrived.</summary>
public sealed record EventRaisedEvent(string Name, string? Input) : HistoryEvent;

/// <summary>This orchestration sent an event to another instance (EventId is the task id).</summary>
public sealed record EventSentEvent(string InstanceId, string Name, string? Input) : HistoryEvent;

/// <summary>A child orchestration was started (EventId is the task id).</summary>
public sealed record SubOrchestrationInstanceCreatedEvent(string Name, string InstanceId, string? Version, string? Input) : HistoryEvent;

/// <summary>A child orchestration completed.</summary>
public sealed record SubOrchestrationInstanceCompletedEvent(int TaskScheduledId, string? Result) : HistoryEvent;

/// <summary>A child orchestration failed or was terminated.</summary>
public sealed record SubOrchestrationInstanceFailedEvent(int TaskScheduledId, TaskFailureDetails FailureDetails) : HistoryEvent;

/// <summary>The execution completed with an output.</summary>
public sealed record ExecutionCompletedEvent(string? Result) : HistoryEvent;

/// <summary>The execution failed.</summary>
public sealed record ExecutionFailedEvent(TaskFailureDetails FailureDetails) : HistoryEvent;

/// <summary>The execution was terminated (also the terminate request message).</summary>
public sealed record ExecutionTerminatedEvent(string? Reason) : HistoryEvent;

/// <summary>The execution restarted itself with a new input.</summary>
public sealed record ContinueAsNewEvent(string? Input) : HistoryEvent;

/// <summary>The execution was suspended (also the suspend request message).</summary>
public sealed record ExecutionSuspendedEvent(string? Reason) : HistoryEvent;

/// <summary>The execution was resumed (also the resume request message).</summary>
public sealed record ExecutionResumedEvent(string? Reason) : HistoryEvent;
