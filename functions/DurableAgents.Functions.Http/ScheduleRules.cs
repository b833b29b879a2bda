using System.Text.Json;
using System.Text.RegularExpressions;
using Cronos;
using DurableAgents.Activities.Contracts;
using DurableAgents.Orchestrations;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Configuration;

namespace DurableAgents.Functions.Http;

/// <summary>Schedule definitions: the rules every host checks, and the ones configured under DurableAgents:Schedules.</summary>
public static partial class ScheduleRules
{
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
