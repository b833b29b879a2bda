using DurableAgents.Activities.Contracts;
using DurableAgents.Engine;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Activities.Schedules;

/// <summary>
/// Starts one occurrence of a schedule. The instance id is derived from the schedule and the
/// occurrence, and every status dedupes, so a retried activity (at-least-once) or a second host
/// never starts the same occurrence twice. With overlap Skip, nothing starts while an earlier run
/// of the schedule is still going.
/// </summary>
public sealed class StartScheduledRun(DurableTaskClient client) : TaskActivity<ScheduledRun, string>
{
    private static readonly OrchestrationRuntimeStatus[] Active = [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];

    /// <inheritdoc />
    public override async Task<string> RunAsync(TaskActivityContext context, ScheduledRun input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(input);
        var def = input.Definition;
        var id = ScheduleNames.RunId(def.Id, input.OccurrenceUtc);
        if (def.Overlap == OverlapPolicy.Skip)
        {
            var running = client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = $"{def.Id}@", Statuses = Active, PageSize = 10 });
            await foreach (var other in running.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                if (other.InstanceId != id)
                {
                    return $"skipped {id}: {other.InstanceId} is still {other.RuntimeStatus}";
                }
            }
        }

        // Started by an earlier attempt of this activity: exactly once per occurrence. (Checked
        // first: a backend that replaces finished instances on start, as Durable Functions' default
        // overridableExistingInstanceStates does, would otherwise run the occurrence again.)
        if (await client.GetInstanceAsync(id, false, cancellationToken).ConfigureAwait(false) is not null)
        {
            return id;
        }

        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(
                def.Orchestrator,
                def.Input,
                new StartOrchestrationOptions(id).WithDedupeStatuses(Enum.GetValues<OrchestrationRuntimeStatus>()),
                cancellationToken).ConfigureAwait(false);
        }
        catch (OrchestrationAlreadyExistsException)
        {
            // Started by an earlier attempt of this activity: exactly once per occurrence.
        }

        return id;
    }
}
