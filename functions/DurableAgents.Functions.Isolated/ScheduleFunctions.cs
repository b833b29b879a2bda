using DurableAgents.Activities.Contracts;
using DurableAgents.Functions.Http;
using DurableAgents.Orchestrations;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Functions.Isolated;

/// <summary>
/// Schedules on the isolated app: the same ScheduleRunner orchestrations as the custom handler
/// (one per schedule, durable timers between occurrences, each occurrence started once under an id
/// derived from it), started and kept alive by this timer from DurableAgents:Schedules. A runner
/// that is running or suspended (paused) is left alone; a missing or finished one is started again.
/// </summary>
public sealed partial class ScheduleFunctions(IConfiguration configuration, ILogger<ScheduleFunctions> logger)
{
    /// <summary>Every 5 minutes and at start.</summary>
    [Function("SchedulerHeartbeat")]
    public Task HeartbeatAsync(
        [TimerTrigger("0 */5 * * * *", RunOnStartup = true)] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return SyncAsync(client, context.CancellationToken);
    }

    /// <summary>Starts the configured schedules' runners that are missing or finished; returns how many.</summary>
    internal async Task<int> SyncAsync(DurableTaskClient client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var started = 0;
        foreach (var def in ScheduleRules.Configured(configuration))
        {
            if (ScheduleRules.Validate(def, TaskWrappers.IsWorkflow) is { } problem)
            {
                LogInvalid(logger, def.Id, problem.ProblemDetails.Detail ?? "invalid");
                continue;
            }

            var id = ScheduleNames.InstanceId(def.Id);
            var runner = await client.GetInstanceAsync(id, false, cancellationToken).ConfigureAwait(false);
            if (runner is not null && !runner.IsCompleted)
            {
                continue; // running, or paused (suspended)
            }

            await client.ScheduleNewOrchestrationInstanceAsync(ScheduleNames.Runner, new ScheduleState(def, null), new StartOrchestrationOptions(id), cancellationToken).ConfigureAwait(false);
            LogStarted(logger, def.Id, def.Orchestrator, def.Cron);
            started++;
        }

        return started;
    }

    [LoggerMessage(EventId = 2200, Level = LogLevel.Error, Message = "Configured schedule '{Id}' is not valid and was not started: {Reason}")]
    private static partial void LogInvalid(ILogger logger, string id, string reason);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Information, Message = "Schedule '{Id}' runs {Orchestrator} on '{Cron}'.")]
    private static partial void LogStarted(ILogger logger, string id, string orchestrator, string cron);
}
