using Core = DurableTask.Core;
using CoreHistoryEvents = DurableTask.Core.History;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.History;

/// <summary>
/// Converts stored protocol events to the DurableTask.Core history events that
/// <see cref="Microsoft.DurableTask.Client.DurableTaskClient.GetOrchestrationHistoryAsync"/> returns,
/// field for field (as the SDK's gRPC client does for the events it streams).
/// </summary>
internal static class CoreHistory
{
    public static CoreHistoryEvents.HistoryEvent ToCore(P.HistoryEvent e)
    {
        var id = e.EventId;
        CoreHistoryEvents.HistoryEvent result = e.EventTypeCase switch
        {
            P.HistoryEvent.EventTypeOneofCase.ExecutionStarted => new CoreHistoryEvents.ExecutionStartedEvent(id, e.ExecutionStarted.Input)
            {
                Name = e.ExecutionStarted.Name,
                Version = e.ExecutionStarted.Version,
                OrchestrationInstance = new Core.OrchestrationInstance { InstanceId = e.ExecutionStarted.OrchestrationInstance?.InstanceId, ExecutionId = e.ExecutionStarted.OrchestrationInstance?.ExecutionId },
                ParentInstance = e.ExecutionStarted.ParentInstance is { } p
                    ? new Core.ParentInstance
                    {
                        Name = p.Name,
                        Version = p.Version,
                        TaskScheduleId = p.TaskScheduledId,
                        OrchestrationInstance = new Core.OrchestrationInstance { InstanceId = p.OrchestrationInstance.InstanceId, ExecutionId = p.OrchestrationInstance.ExecutionId },
                    }
                    : null,
                ScheduledStartTime = e.ExecutionStarted.ScheduledStartTimestamp?.ToDateTime(),
                Tags = e.ExecutionStarted.Tags.Count > 0 ? new Dictionary<string, string>(e.ExecutionStarted.Tags) : null,
            },
            P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted => new CoreHistoryEvents.ExecutionCompletedEvent(
                id, e.ExecutionCompleted.Result, (Core.OrchestrationStatus)(int)e.ExecutionCompleted.OrchestrationStatus, ToCore(e.ExecutionCompleted.FailureDetails)),
            P.HistoryEvent.EventTypeOneofCase.ExecutionTerminated => new CoreHistoryEvents.ExecutionTerminatedEvent(id, e.ExecutionTerminated.Input),
            P.HistoryEvent.EventTypeOneofCase.ExecutionSuspended => new CoreHistoryEvents.ExecutionSuspendedEvent(id, e.ExecutionSuspended.Input),
            P.HistoryEvent.EventTypeOneofCase.ExecutionResumed => new CoreHistoryEvents.ExecutionResumedEvent(id, e.ExecutionResumed.Input),
            P.HistoryEvent.EventTypeOneofCase.TaskScheduled => new CoreHistoryEvents.TaskScheduledEvent(id, e.TaskScheduled.Name, e.TaskScheduled.Version, e.TaskScheduled.Input),
            P.HistoryEvent.EventTypeOneofCase.TaskCompleted => new CoreHistoryEvents.TaskCompletedEvent(id, e.TaskCompleted.TaskScheduledId, e.TaskCompleted.Result),
            P.HistoryEvent.EventTypeOneofCase.TaskFailed => new CoreHistoryEvents.TaskFailedEvent(
                id, e.TaskFailed.TaskScheduledId, e.TaskFailed.FailureDetails?.ErrorMessage, e.TaskFailed.FailureDetails?.StackTrace, ToCore(e.TaskFailed.FailureDetails)),
            P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCreated => new CoreHistoryEvents.SubOrchestrationInstanceCreatedEvent(id)
            {
                Name = e.SubOrchestrationInstanceCreated.Name,
                Version = e.SubOrchestrationInstanceCreated.Version,
                InstanceId = e.SubOrchestrationInstanceCreated.InstanceId,
                Input = e.SubOrchestrationInstanceCreated.Input,
            },
            P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCompleted => new CoreHistoryEvents.SubOrchestrationInstanceCompletedEvent(
                id, e.SubOrchestrationInstanceCompleted.TaskScheduledId, e.SubOrchestrationInstanceCompleted.Result),
            P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceFailed => new CoreHistoryEvents.SubOrchestrationInstanceFailedEvent(
                id, e.SubOrchestrationInstanceFailed.TaskScheduledId, e.SubOrchestrationInstanceFailed.FailureDetails?.ErrorMessage, e.SubOrchestrationInstanceFailed.FailureDetails?.StackTrace, ToCore(e.SubOrchestrationInstanceFailed.FailureDetails)),
            P.HistoryEvent.EventTypeOneofCase.TimerCreated => new CoreHistoryEvents.TimerCreatedEvent(id, e.TimerCreated.FireAt.ToDateTime()),
            P.HistoryEvent.EventTypeOneofCase.TimerFired => new CoreHistoryEvents.TimerFiredEvent(-1, e.TimerFired.FireAt.ToDateTime()) { TimerId = e.TimerFired.TimerId },
            P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted => new CoreHistoryEvents.OrchestratorStartedEvent(id),
            P.HistoryEvent.EventTypeOneofCase.OrchestratorCompleted => new CoreHistoryEvents.OrchestratorCompletedEvent(id),
            P.HistoryEvent.EventTypeOneofCase.EventSent => new CoreHistoryEvents.EventSentEvent(id)
            {
                InstanceId = e.EventSent.InstanceId,
                Name = e.EventSent.Name,
                Input = e.EventSent.Input,
            },
            P.HistoryEvent.EventTypeOneofCase.EventRaised => new CoreHistoryEvents.EventRaisedEvent(id, e.EventRaised.Input) { Name = e.EventRaised.Name },
            P.HistoryEvent.EventTypeOneofCase.ContinueAsNew => new CoreHistoryEvents.ContinueAsNewEvent(id, e.ContinueAsNew.Input),
            _ => new CoreHistoryEvents.GenericEvent(id, e.EventTypeCase.ToString()),
        };
        result.Timestamp = e.Timestamp?.ToDateTime() ?? default;
        return result;
    }

    private static Core.FailureDetails? ToCore(P.TaskFailureDetails? f) =>
        f is null
            ? null
            : new Core.FailureDetails(
                f.ErrorType,
                f.ErrorMessage,
                f.StackTrace,
                ToCore(f.InnerFailure),
                f.IsNonRetriable,
                Events.PropertiesOf(f));
}
