using System.Globalization;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>
/// The management API, shaped like the Durable Functions HTTP API: start returns 202 with the
/// URIs to poll and control the instance; status is 202 while running and 200 when done.
/// </summary>
internal static class ManagementApi
{
    /// <summary>Largest request body accepted (inputs are further bounded by DurableAgents:MaxPayloadBytes).</summary>
    public const long MaxRequestBodyBytes = 2 * 1024 * 1024;

    public static void MapManagementApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<Hosting.ApiKeyFilter>().WithTags("Management");
        api.MapPost("/orchestrators/{name}/{instanceId?}", StartAsync).WithName("StartOrchestration").WithSummary("Starts a workflow; 202 with status and control URIs.");
        api.MapGet("/instances/{instanceId}", GetStatusAsync).WithName("GetInstance").WithSummary("Status of an instance: 202 while running, 200 when finished.");
        api.MapGet("/instances", ListAsync).WithName("ListInstances").WithSummary("Lists instances with filters and continuation-token paging.");
        api.MapPost("/instances/{instanceId}/raiseEvent/{eventName}", RaiseEventAsync).WithName("RaiseEvent").WithSummary("Sends an external event.");
        api.MapPost("/instances/{instanceId}/terminate", TerminateAsync).WithName("Terminate").WithSummary("Terminates an instance and its running children.");
        api.MapPost("/instances/{instanceId}/suspend", SuspendAsync).WithName("Suspend").WithSummary("Suspends an instance.");
        api.MapPost("/instances/{instanceId}/resume", ResumeAsync).WithName("Resume").WithSummary("Resumes a suspended instance.");
        api.MapDelete("/instances/{instanceId}", PurgeAsync).WithName("Purge").WithSummary("Deletes a finished instance and its history.");
    }

    private static async Task<Results<Accepted<StartResponse>, ProblemHttpResult>> StartAsync(
        string name, string? instanceId, HttpRequest request, DurableTaskClient client, IConfiguration configuration, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadAsync(request, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        var id = await client.ScheduleNewOrchestrationInstanceAsync(name, body, new StartOrchestrationOptions(instanceId), cancellationToken).ConfigureAwait(false);
        var links = StartResponse.For(request, id, configuration[StartResponse.InstanceUriKeySetting]);
        request.HttpContext.Response.Headers.RetryAfter = "1";
        return TypedResults.Accepted(links.StatusQueryGetUri, links);
    }

    private static async Task<Results<Ok<InstanceStatus>, Accepted<InstanceStatus>, ProblemHttpResult>> GetStatusAsync(
        string instanceId, DurableAgentsClient client, CancellationToken cancellationToken, bool showHistory = false, bool showInput = true)
    {
        var record = await client.GetInstanceRecordAsync(instanceId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return Problems.NotFound(instanceId);
        }

        var history = showHistory ? await client.GetHistoryEventsAsync(instanceId, cancellationToken).ConfigureAwait(false) : null;
        var m = client.ToMetadata(record);
        var status = InstanceStatus.From(m, record.ParentInstanceId, showInput, history?.Select(HistoryEventJson).ToList());
        return m.IsCompleted ? TypedResults.Ok(status) : TypedResults.Accepted((string?)null, status);
    }

    private static async Task<Results<Ok<List<InstanceStatus>>, ProblemHttpResult>> ListAsync(
        HttpContext http,
        DurableAgentsClient client,
        CancellationToken cancellationToken,
        string? runtimeStatus = null,
        string? name = null,
        DateTimeOffset? createdTimeFrom = null,
        DateTimeOffset? createdTimeTo = null,
        string? instanceIdPrefix = null,
        int top = 100,
        bool showInput = false,
        string? continuationToken = null)
    {
        if (top is < 1 or > 1000)
        {
            return Problems.BadRequest("'top' must be between 1 and 1000.");
        }

        List<OrchestrationRuntimeStatus>? statuses = null;
        if (!string.IsNullOrWhiteSpace(runtimeStatus))
        {
            statuses = [];
            foreach (var s in runtimeStatus.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!Enum.TryParse<OrchestrationRuntimeStatus>(s, ignoreCase: true, out var parsed) || !Statuses.Shown.Contains(parsed) || int.TryParse(s, out _))
                {
                    return Problems.BadRequest($"'{s}' is not a runtime status; use {string.Join(", ", Statuses.Shown)}.");
                }

                statuses.Add(parsed);
            }
        }

        var token = continuationToken ?? http.Request.Headers["x-ms-continuation-token"].FirstOrDefault();
        var page = await client.QueryInstancesAsync(
            new InstanceQuery
            {
                Statuses = statuses,
                Name = name,
                CreatedFrom = createdTimeFrom,
                CreatedTo = createdTimeTo,
                InstanceIdPrefix = instanceIdPrefix,
                PageSize = top,
                ContinuationToken = string.IsNullOrEmpty(token) ? null : token,
                FetchInputsAndOutputs = showInput,
            },
            cancellationToken).ConfigureAwait(false);
        if (page.ContinuationToken is not null)
        {
            http.Response.Headers["x-ms-continuation-token"] = page.ContinuationToken;
        }

        return TypedResults.Ok(page.Instances.Select(i => InstanceStatus.From(client.ToMetadata(i), i.ParentInstanceId, showInput, null)).ToList());
    }

    private static async Task<Results<Accepted, ProblemHttpResult>> RaiseEventAsync(
        string instanceId, string eventName, HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadAsync(request, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        await client.RaiseEventAsync(instanceId, eventName, body, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Accepted> TerminateAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken, string? reason = null)
    {
        // Children too, as the route promises (the SDK's default is not recursive).
        await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions(reason, Recursive: true), cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Accepted> SuspendAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken, string? reason = null)
    {
        await client.SuspendInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Accepted> ResumeAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken, string? reason = null)
    {
        await client.ResumeInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null);
    }

    private static async Task<Results<Ok<PurgeResponse>, ProblemHttpResult>> PurgeAsync(string instanceId, DurableTaskClient client, CancellationToken cancellationToken)
    {
        var result = await client.PurgeInstanceAsync(instanceId, new PurgeInstanceOptions(Recursive: true), cancellationToken).ConfigureAwait(false);
        return result.PurgedInstanceCount > 0
            ? TypedResults.Ok(new PurgeResponse(result.PurgedInstanceCount))
            : Problems.NotFound(instanceId);
    }

    /// <summary>A history event as the protocol's canonical JSON, with its Durable Task type name in front (<c>"type": "TaskScheduled"</c>).</summary>
    private static System.Text.Json.JsonElement HistoryEventJson(Microsoft.DurableTask.Protobuf.HistoryEvent e)
    {
        var node = new System.Text.Json.Nodes.JsonObject { ["type"] = e.TypeName() };
        foreach (var (key, value) in System.Text.Json.Nodes.JsonNode.Parse(HistoryJson.Serialize(e))!.AsObject().ToList())
        {
            node[key] = value?.DeepClone();
        }

        return System.Text.Json.JsonSerializer.SerializeToElement(node);
    }
}
