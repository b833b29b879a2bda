using Cronos;
using DurableAgents.Activities.Contracts;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>
/// One schedule, as an eternal orchestration: sleep on a durable timer until the next cron
/// occurrence, start that occurrence's run (an activity with a deterministic instance id, so each
/// occurrence starts exactly once however many hosts run), then ContinueAsNew so history stays
/// small. Occurrences that passed while nothing ran (downtime, a pause) follow the catch-up
/// policy. Pause and resume are suspend and resume of this instance.
/// </summary>
public sealed class ScheduleRunner : TaskOrchestrator<ScheduleState, string>
{
    /// <summary>An occurrence handled later than this counts as missed.</summary>
    public static readonly TimeSpan MissedAfter = TimeSpan.FromMinutes(1);

    /// <inheritdoc />
    public override async Task<string> RunAsync(TaskOrchestrationContext context, ScheduleState input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var def = input.Definition;
        var cron = Parse(def.Cron);
        var zone = TimeZoneInfo.FindSystemTimeZoneById(def.TimeZone ?? "UTC");
        var from = input.LastOccurrenceUtc ?? context.CurrentUtcDateTime;
        var next = cron.GetNextOccurrence(DateTime.SpecifyKind(from, DateTimeKind.Utc), zone);
        if (next is null)
        {
            return "no further occurrences";
        }

        if (next > context.CurrentUtcDateTime)
        {
            context.SetCustomStatus(new { next });
            await context.CreateTimer(next.Value, CancellationToken.None);
        }

        var now = context.CurrentUtcDateTime;
        var due = cron.GetOccurrences(DateTime.SpecifyKind(from, DateTimeKind.Utc), now, zone, fromInclusive: false, toInclusive: true).Take(10_000).ToList();
        var onTime = due.Where(o => now - o <= MissedAfter).ToList();
        var run = onTime.Count > 0
            ? new ScheduledRun(def, onTime[^1], CaughtUp: false)
            : def.CatchUp == CatchUpPolicy.RunOnce && due.Count > 0 ? new ScheduledRun(def, due[^1], CaughtUp: true) : null;
        if (run is not null)
        {
            await context.CallActivityAsync<string>(ScheduleNames.StartRun, run);
        }

        context.ContinueAsNew(input with { LastOccurrenceUtc = due.Count > 0 ? due[^1] : next.Value });
        return "continued";
    }

    /// <summary>Parses 5-field cron, or 6-field with seconds (as Functions' NCRONTAB).</summary>
    public static CronExpression Parse(string cron)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(cron);
        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        return CronExpression.Parse(cron, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
    }
}
