using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Http;

/// <summary>Problem-details results of the API.</summary>
public static class Problems
{
    /// <summary>404: no such instance.</summary>
    public static ProblemHttpResult NotFound(string instanceId) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"No orchestration instance with id '{instanceId}' exists.");

    /// <summary>400 with the reason.</summary>
    public static ProblemHttpResult BadRequest(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad Request", detail: detail);
}

/// <summary>Optional JSON request bodies.</summary>
public static class JsonBody
{
    /// <summary>Reads an optional JSON body (passed on as parsed JSON). A non-empty body must be declared application/json and be valid JSON.</summary>
    public static async Task<(JsonElement? Body, ProblemHttpResult? Problem)> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(body))
        {
            return (null, null);
        }

        if (!request.HasJsonContentType())
        {
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status415UnsupportedMediaType,
                title: "Unsupported Media Type",
                detail: $"The body must be JSON with Content-Type: application/json, not '{request.ContentType ?? "(none)"}'."));
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException ex)
        {
            return (null, TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "Bad Request",
                detail: $"The body is not valid JSON: {ex.Message}",
                extensions: new Dictionary<string, object?> { ["errorType"] = "DurableAgents.InvalidJson" }));
        }
    }
}

/// <summary>The runtime statuses an instance on this backend can have, in display order.</summary>
public static class Statuses
{
    /// <summary>The statuses, in display order.</summary>
    public static readonly OrchestrationRuntimeStatus[] Shown =
    [
        OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended,
        OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated,
    ];
}

/// <summary>The 202 body of a start: where to poll and how to control the instance.</summary>
public sealed record StartResponse(
    string Id,
    string StatusQueryGetUri,
    string SendEventPostUri,
    string TerminatePostUri,
    string SuspendPostUri,
    string ResumePostUri,
    string PurgeHistoryDeleteUri)
{
    /// <summary>The configuration key of the function key put in the URIs (<c>code=</c>), see <see cref="For"/>.</summary>
    public const string InstanceUriKeySetting = "DurableAgents:Api:InstanceUriKey";

    /// <summary>
    /// The URIs for an instance, on the host and path base the request came to. Under function-level
    /// auth they carry <paramref name="instanceUriKey"/> as <c>code=</c>, as Durable Functions does,
    /// so they work as given: a function key that opens the instance routes only (never the master key).
    /// </summary>
    public static StartResponse For(HttpRequest request, string id, string? instanceUriKey = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var root = $"{request.Scheme}://{request.Host}{request.PathBase}/api/instances/{Uri.EscapeDataString(id)}";
        var code = string.IsNullOrEmpty(instanceUriKey) ? string.Empty : "code=" + Uri.EscapeDataString(instanceUriKey);
        string Plain(string uri) => code.Length == 0 ? uri : $"{uri}?{code}";
        string WithReason(string uri) => code.Length == 0 ? $"{uri}?reason={{text}}" : $"{uri}?reason={{text}}&{code}";
        return new StartResponse(id, Plain(root), Plain(root + "/raiseEvent/{eventName}"), WithReason(root + "/terminate"), WithReason(root + "/suspend"), WithReason(root + "/resume"), Plain(root));
    }
}

/// <summary>An instance as the API shows it (Durable Functions field names).</summary>
public sealed record InstanceStatus(
    string Name,
    string InstanceId,
    string RuntimeStatus,
    System.Text.Json.JsonElement? Input,
    System.Text.Json.JsonElement? CustomStatus,
    System.Text.Json.JsonElement? Output,
    TaskFailureDetails? FailureDetails,
    DateTimeOffset CreatedTime,
    DateTimeOffset LastUpdatedTime,
    string? ParentInstanceId,
    IReadOnlyList<System.Text.Json.JsonElement>? HistoryEvents)
{
    /// <summary>The API's view of an instance; <paramref name="history"/> is shown when asked for.</summary>
    public static InstanceStatus From(OrchestrationMetadata m, string? parentInstanceId, bool showInput, IReadOnlyList<JsonElement>? history)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new(
            m.Name,
            m.InstanceId,
            m.RuntimeStatus.ToString(),
            showInput ? Json(m.SerializedInput) : null,
            Json(m.SerializedCustomStatus),
            Json(m.SerializedOutput),
            m.FailureDetails,
            m.CreatedAt,
            m.LastUpdatedAt,
            parentInstanceId,
            history);
    }

    private static System.Text.Json.JsonElement? Json(string? json) =>
        json is null ? null : System.Text.Json.JsonDocument.Parse(json).RootElement.Clone();
}

/// <summary>The purge result.</summary>
public sealed record PurgeResponse(int InstancesDeleted);

/// <summary>An instance's model-call totals and every attempt.</summary>
public sealed record InstanceUsage(DurableAgents.Activities.Llm.ModelUsageTotals Totals, IReadOnlyList<DurableAgents.Activities.Llm.ModelAttemptRecord> Attempts);
