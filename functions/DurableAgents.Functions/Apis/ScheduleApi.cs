using System.Text.Json;
using System.Text.RegularExpressions;
using Cronos;
using DurableAgents.Activities.Contracts;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Http;
using DurableAgents.Orchestrations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>
/// Cron schedules: each is a ScheduleRunner instance <c>schedule:&lt;id&gt;</c>. Defined in configuration
/// (DurableAgents:Schedules:&lt;id&gt;:Cron/TimeZone/Orchestrator/Input/CatchUp/Overlap, applied at start and
/// by the SchedulerHeartbeat timer) or through this API.
/// </summary>
internal static class ScheduleApi
{
        public static void MapScheduleApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/schedules").AddEndpointFilter<Hosting.ApiKeyFilter>().WithTags("Schedules");
        api.MapGet("/", ListAsync).WithName("ListSchedules").WithSummary("Schedules with their next occurrences.");
        api.MapPost("/", CreateAsync).WithName("CreateSchedule").WithSummary("Creates a schedule.");
        api.MapPost("/{id}/pause", PauseAsync).WithName("PauseSchedule").WithSummary("Pauses a schedule.");
        api.MapPost("/{id}/resume", ResumeAsync).WithName("ResumeSchedule").WithSummary("Resumes a schedule; missed occurrences follow its catch-up policy.");
        api.MapDelete("/{id}", DeleteAsync).WithName("DeleteSchedule").WithSummary("Deletes a schedule (runs already started go on).");
    }

    private static async Task<Ok<List<ScheduleView>>> ListAsync(DurableTaskClient client, TimeProvider time, CancellationToken cancellationToken) =>
        TypedResults.Ok(await ScheduleRules.ListAsync(client, time, cancellationToken).ConfigureAwait(false));

    private static async Task<Results<Created<ScheduleDefinition>, ProblemHttpResult>> CreateAsync(ScheduleDefinition definition, DurableTaskClient client, DurableAgentsClient registry, CancellationToken cancellationToken)
    {
        if (ScheduleRules.Validate(definition, registry.HasOrchestrator) is { } problem)
        {
            return problem;
        }

        await client.ScheduleNewOrchestrationInstanceAsync(
            ScheduleNames.Runner,
            new ScheduleState(definition with { TimeZone = definition.TimeZone ?? "UTC" }, null),
            new StartOrchestrationOptions { InstanceId = ScheduleNames.InstanceId(definition.Id) },
            cancellationToken).ConfigureAwait(false);
        return TypedResults.Created($"/api/schedules/{definition.Id}", definition);
    }

    private static async Task<Accepted> PauseAsync(string id, DurableTaskClient client, CancellationToken cancellationToken)
    {
        await client.SuspendInstanceAsync(ScheduleNames.InstanceId(id), "paused through the API", cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Accepted> ResumeAsync(string id, DurableTaskClient client, CancellationToken cancellationToken)
    {
        await client.ResumeInstanceAsync(ScheduleNames.InstanceId(id), "resumed through the API", cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Accepted> DeleteAsync(string id, DurableTaskClient client, CancellationToken cancellationToken)
    {
        await client.TerminateInstanceAsync(ScheduleNames.InstanceId(id), "schedule deleted", cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }
}

/// <summary>
/// Puts the schedules from configuration in place (creates the ones that do not run yet). Runs at
/// start and on every SchedulerHeartbeat timer invocation, so they come back after anything.
/// </summary>
internal sealed partial class ScheduleSync(IConfiguration configuration, DurableTaskClient client, DurableAgentsClient registry, ILogger<ScheduleSync> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => SyncAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task<int> SyncAsync(CancellationToken cancellationToken)
    {
        var created = 0;
        foreach (var def in ScheduleRules.Configured(configuration))
        {
            if (ScheduleRules.Validate(def, registry.HasOrchestrator) is { } problem)
            {
                LogInvalid(logger, def.Id, problem.ProblemDetails.Detail ?? "invalid");
                continue;
            }

            try
            {
                await client.ScheduleNewOrchestrationInstanceAsync(ScheduleNames.Runner, new ScheduleState(def, null), new StartOrchestrationOptions { InstanceId = ScheduleNames.InstanceId(def.Id) }, cancellationToken).ConfigureAwait(false);
                created++;
            }
            catch (OrchestrationAlreadyExistsException)
            {
                // already in place (or paused): leave it
            }
        }

        return created;
    }

    [LoggerMessage(EventId = 2200, Level = LogLevel.Error, Message = "Configured schedule '{Id}' is not valid and was not started: {Reason}")]
    private static partial void LogInvalid(ILogger logger, string id, string reason);
}
