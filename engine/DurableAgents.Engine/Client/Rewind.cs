using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Client;

/// <summary>Plans a rewind from a failed execution's history (see <see cref="DurableAgentsClient.RewindInstanceAsync"/>).</summary>
internal static class Rewind
{
    public static RewindRequest Plan(InstanceRecord instance, IReadOnlyList<P.HistoryEvent> history, DateTimeOffset now)
    {
        // The episode that failed the instance is the last one: from its OrchestratorStarted on.
        var keep = history.Count - 1;
        while (keep > 0 && history[keep].EventTypeCase != P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted)
        {
            keep--;
        }

        var before = history.Take(keep).ToList();
        var messages = new List<OrchestrationMessage>();
        var activities = new List<ActivityTaskRequest>();
        var children = new List<NewInstance>();
        foreach (var e in history.Skip(keep))
        {
            switch (e.EventTypeCase)
            {
                case P.HistoryEvent.EventTypeOneofCase.TaskFailed:
                    var scheduled = before.Single(s => s.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TaskScheduled && s.EventId == e.TaskFailed.TaskScheduledId).TaskScheduled;
                    activities.Add(new ActivityTaskRequest(instance.InstanceId, instance.ExecutionId, e.TaskFailed.TaskScheduledId, scheduled.Name, scheduled.Input, scheduled.Version));
                    break;
                case P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceFailed:
                    var id = e.SubOrchestrationInstanceFailed.TaskScheduledId;
                    var created = before.Single(s => s.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCreated && s.EventId == id).SubOrchestrationInstanceCreated;
                    children.Add(new NewInstance(
                        created.InstanceId,
                        Guid.NewGuid().ToString("N"),
                        created.Name,
                        created.Version,
                        created.Input,
                        now,
                        Events.Parent(instance.Name, instance.Version, instance.InstanceId, instance.ExecutionId, id)));
                    break;
                case P.HistoryEvent.EventTypeOneofCase.ExecutionStarted:
                case P.HistoryEvent.EventTypeOneofCase.TaskCompleted:
                case P.HistoryEvent.EventTypeOneofCase.TimerFired:
                case P.HistoryEvent.EventTypeOneofCase.EventRaised:
                case P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCompleted:
                case P.HistoryEvent.EventTypeOneofCase.ExecutionSuspended:
                case P.HistoryEvent.EventTypeOneofCase.ExecutionResumed:
                    // The episode's other inputs are delivered again, in their order.
                    messages.Add(new OrchestrationMessage(0, instance.InstanceId, instance.ExecutionId, e, now));
                    break;
                default:
                    // What the failed episode decided (its schedules and the failure) is forgotten.
                    break;
            }
        }

        return new RewindRequest(instance.InstanceId, instance.ExecutionId, history.Count, keep, messages, activities, children);
    }
}
