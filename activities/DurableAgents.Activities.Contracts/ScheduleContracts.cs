using System.Text.Json;

namespace DurableAgents.Activities.Contracts;

/// <summary>What to do with occurrences missed while nothing ran (downtime, pause).</summary>
public enum CatchUpPolicy
{
    /// <summary>Missed occurrences are dropped; the next on-time one runs.</summary>
    Skip,

    /// <summary>One run stands for all missed occurrences.</summary>
    RunOnce,
}

/// <summary>What to do when an occurrence comes while the previous run is still going.</summary>
public enum OverlapPolicy
{
    /// <summary>Do not start another run.</summary>
    Skip,

    /// <summary>Start it anyway.</summary>
    Allow,
}

/// <summary>A cron schedule that starts a workflow.</summary>
/// <param name="Id">1–64 of a–z, 0–9 and -.</param>
/// <param name="Cron">Cron expression: 5 fields, or 6 with seconds first (NCRONTAB style).</param>
/// <param name="TimeZone">IANA time zone the expression is read in. The default value is UTC.</param>
/// <param name="Orchestrator">The workflow to start.</param>
/// <param name="Input">Its input.</param>
/// <param name="CatchUp">Missed-occurrence policy.</param>
/// <param name="Overlap">Overlap policy.</param>
public sealed record ScheduleDefinition(
    string Id,
    string Cron,
    string Orchestrator,
    string? TimeZone = "UTC",
    JsonElement? Input = null,
    CatchUpPolicy CatchUp = CatchUpPolicy.Skip,
    OverlapPolicy Overlap = OverlapPolicy.Skip);

/// <summary>The schedule orchestration's state, carried through ContinueAsNew.</summary>
public sealed record ScheduleState(ScheduleDefinition Definition, DateTime? LastOccurrenceUtc);

/// <summary>One occurrence to start.</summary>
public sealed record ScheduledRun(ScheduleDefinition Definition, DateTime OccurrenceUtc, bool CaughtUp);

/// <summary>Names used by schedules.</summary>
public static class ScheduleNames
{
    /// <summary>The orchestrator that runs a schedule.</summary>
    public const string Runner = "ScheduleRunner";

    /// <summary>The activity that starts one occurrence.</summary>
    public const string StartRun = "StartScheduledRun";

    /// <summary>Instance id of a schedule's orchestration.</summary>
    public static string InstanceId(string scheduleId) => $"schedule:{scheduleId}";

    /// <summary>Instance id of one occurrence's run: the same on every host, so each occurrence starts once.</summary>
    public static string RunId(string scheduleId, DateTime occurrenceUtc) =>
        $"{scheduleId}@{occurrenceUtc.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture)}";
}
