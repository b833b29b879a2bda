using System.Text.Json;
using System.Text.RegularExpressions;
using Cronos;
using DurableAgents.Activities.Contracts;
using DurableAgents.Orchestrations;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;

namespace DurableAgents.Functions.Http;

/// <summary>Schedule definitions: the rules every host checks, and the ones configured under DurableAgents:Schedules.</summary>
public static partial class ScheduleRules
{
    private static readonly OrchestrationRuntimeStatus[] Live = [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];

    /// <summary>The live schedules with their next three occurrences.</summary>
    public static async Task<List<ScheduleView>> ListAsync(DurableTaskClient client, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(time);
        var instances = new List<OrchestrationMetadata>();
        await foreach (var i in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = "schedule:", Statuses = Live, PageSize = 1000, FetchInputsAndOutputs = true }).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            instances.Add(i);
        }

        var now = time.GetUtcNow().UtcDateTime;
        var views = instances.Select(i =>
        {
            var state = i.ReadInputAs<ScheduleState>()!;
            var def = state.Definition;
            var zone = TimeZoneInfo.FindSystemTimeZoneById(def.TimeZone ?? "UTC");
            var next = ScheduleRunner.Parse(def.Cron).GetOccurrences(now, now.AddYears(5), zone).Take(3).ToList();
            return new ScheduleView(def, i.RuntimeStatus == OrchestrationRuntimeStatus.Suspended, next, state.LastOccurrenceUtc);
        }).OrderBy(v => v.Definition.Id, StringComparer.Ordinal).ToList();
        return views;
    }


    /// <summary>The schedules configured under <c>DurableAgents:Schedules:{id}</c> (Cron, Orchestrator, TimeZone, Input, CatchUp, Overlap).</summary>
    public static IEnumerable<ScheduleDefinition> Configured(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        foreach (var section in configuration.GetSection("DurableAgents:Schedules").GetChildren())
        {
            var input = section["Input"];
            yield return new ScheduleDefinition(
                section.Key,
                section["Cron"] ?? string.Empty,
                section["Orchestrator"] ?? string.Empty,
                section["TimeZone"] ?? "UTC",
                string.IsNullOrEmpty(input) ? null : JsonDocument.Parse(input).RootElement.Clone(),
                Enum.TryParse<CatchUpPolicy>(section["CatchUp"], true, out var catchUp) ? catchUp : CatchUpPolicy.Skip,
                Enum.TryParse<OverlapPolicy>(section["Overlap"], true, out var overlap) ? overlap : OverlapPolicy.Skip);
        }
    }

    /// <summary>Why a schedule definition cannot be used (problem details), or null when it can.</summary>
    public static ProblemHttpResult? Validate(ScheduleDefinition? d, Func<string, bool> hasOrchestrator)
    {
        ArgumentNullException.ThrowIfNull(hasOrchestrator);
        if (d is null)
        {
            return Bad("A schedule definition is required.");
        }

        if (d.Id is null || !ScheduleId().IsMatch(d.Id))
        {
            return Bad("'id' must be 1-64 characters of a-z, 0-9 and -.");
        }

        try
        {
            ScheduleRunner.Parse(d.Cron);
        }
        catch (Exception ex) when (ex is CronFormatException or ArgumentException)
        {
            return Bad($"'cron' is not a valid cron expression: {ex.Message}");
        }

        try
        {
            TimeZoneInfo.FindSystemTimeZoneById(d.TimeZone ?? "UTC");
        }
        catch (TimeZoneNotFoundException)
        {
            return Bad($"'timeZone' '{d.TimeZone}' is not a known time zone (use an IANA id such as Europe/Paris).");
        }

        if (string.IsNullOrWhiteSpace(d.Orchestrator) || !hasOrchestrator(d.Orchestrator))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No orchestrator named '{d.Orchestrator}' is registered.");
        }

        return null;
    }

    private static ProblemHttpResult Bad(string detail) => TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad Request", detail: detail);

    [GeneratedRegex("^[a-z0-9-]{1,64}$")]
    private static partial Regex ScheduleId();
}

/// <summary>A schedule as listed.</summary>
public sealed record ScheduleView(ScheduleDefinition Definition, bool Paused, IReadOnlyList<DateTime> NextOccurrences, DateTime? LastOccurrenceUtc);
