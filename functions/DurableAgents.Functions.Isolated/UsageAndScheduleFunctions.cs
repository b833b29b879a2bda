using System.Text.Json;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Llm;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Isolated;

/// <summary>
/// Model usage and the schedules API, on the custom handler's routes and shapes: usage per
/// instance (totals and every attempt) and per workflow from the model ledger; schedules listed
/// with their next occurrences, created, paused (the runner is suspended), resumed and deleted.
/// </summary>
public sealed class UsageAndScheduleFunctions(IModelLedger ledger, TimeProvider time)
{
    /// <summary>GET /api/instances/{instanceId}/usage.</summary>
    [Function("GetInstanceModelUsage")]
    public Task<IResult> InstanceUsageAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/instances/{instanceId}/usage")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => ManagementFunctions.Guarded(async ct =>
        {
            if (await client.GetInstanceAsync(instanceId, false, ct).ConfigureAwait(false) is null)
            {
                return Problems.NotFound(instanceId);
            }

            var totals = await ledger.GetInstanceTotalsAsync(instanceId, ct).ConfigureAwait(false);
            var attempts = await ledger.GetAttemptsAsync(instanceId, ct).ConfigureAwait(false);
            return TypedResults.Ok(new InstanceUsage(totals, attempts));
        }, request);

    /// <summary>GET /api/usage.</summary>
    [Function("GetWorkflowModelUsage")]
    public Task<IResult> WorkflowUsageAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/usage")] HttpRequest request) => ManagementFunctions.Guarded(
            async ct => TypedResults.Ok(await ledger.GetWorkflowTotalsAsync(ct).ConfigureAwait(false)), request);

    /// <summary>GET /api/schedules.</summary>
    [Function("ListSchedules")]
    public Task<IResult> ListSchedulesAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/schedules")] HttpRequest request,
        [DurableClient] DurableTaskClient client) => ManagementFunctions.Guarded(
            async ct => TypedResults.Ok(await ScheduleRules.ListAsync(client, time, ct).ConfigureAwait(false)), request);

    /// <summary>POST /api/schedules with a schedule definition.</summary>
    [Function("CreateSchedule")]
    public static Task<IResult> CreateScheduleAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/schedules")] HttpRequest request,
        [DurableClient] DurableTaskClient client) => ManagementFunctions.Guarded(async ct =>
        {
            var (body, problem) = await JsonBody.ReadAsync(request, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            ScheduleDefinition? definition;
            try
            {
                definition = body?.Deserialize<ScheduleDefinition>(DurableAgents.Engine.DataConverter.Options);
            }
            catch (JsonException ex)
            {
                return Problems.BadRequest($"The body is not a schedule definition: {ex.Message}");
            }

            if (ScheduleRules.Validate(definition, TaskWrappers.IsWorkflow) is { } invalid)
            {
                return invalid;
            }

            var id = ScheduleNames.InstanceId(definition!.Id);
            if (await client.GetInstanceAsync(id, false, ct).ConfigureAwait(false) is { IsCompleted: false })
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: $"A schedule with id '{definition.Id}' exists.");
            }

            await client.ScheduleNewOrchestrationInstanceAsync(ScheduleNames.Runner, new ScheduleState(definition with { TimeZone = definition.TimeZone ?? "UTC" }, null), new StartOrchestrationOptions(id), ct).ConfigureAwait(false);
            return TypedResults.Created($"/api/schedules/{definition.Id}", definition);
        }, request);

    /// <summary>POST /api/schedules/{id}/pause.</summary>
    [Function("PauseSchedule")]
    public static Task<IResult> PauseAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/schedules/{id}/pause")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) => ManagementFunctions.Guarded(async ct =>
        {
            await client.SuspendInstanceAsync(ScheduleNames.InstanceId(id), "paused through the API", ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>POST /api/schedules/{id}/resume.</summary>
    [Function("ResumeSchedule")]
    public static Task<IResult> ResumeAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/schedules/{id}/resume")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) => ManagementFunctions.Guarded(async ct =>
        {
            await client.ResumeInstanceAsync(ScheduleNames.InstanceId(id), "resumed through the API", ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>DELETE /api/schedules/{id}: stops the schedule (runs already started go on).</summary>
    [Function("DeleteSchedule")]
    public static Task<IResult> DeleteAsync(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "api/schedules/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) => ManagementFunctions.Guarded(async ct =>
        {
            await client.TerminateInstanceAsync(ScheduleNames.InstanceId(id), "schedule deleted", ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);
}
