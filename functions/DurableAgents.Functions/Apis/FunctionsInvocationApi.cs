using System.Text.Json;
using System.Text.Json.Nodes;

namespace DurableAgents.Functions.Apis;

/// <summary>
/// Non-HTTP triggers of the Functions custom handler: the host POSTs <c>/{FunctionName}</c> with
/// <c>{ "Data": {...}, "Metadata": {...} }</c> and expects <c>{ "Outputs", "Logs", "ReturnValue" }</c>.
/// Only the local Functions host may call these (loopback).
/// </summary>
internal static class FunctionsInvocationApi
{
    public static void MapFunctionsInvocations(this IEndpointRouteBuilder app)
    {
        app.MapPost("/SchedulerHeartbeat", SchedulerHeartbeatAsync).WithName("SchedulerHeartbeat").ExcludeFromDescription();
    }

    private static async Task<IResult> SchedulerHeartbeatAsync(HttpContext http, ScheduleSync schedules, CancellationToken cancellationToken)
    {
        if (http.Connection.RemoteIpAddress is not { } remote || !System.Net.IPAddress.IsLoopback(remote))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: "Function invocations come from the local Functions host only.");
        }

        JsonNode? envelope;
        try
        {
            envelope = await JsonNode.ParseAsync(http.Request.Body, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad Request", detail: $"The invocation body is not JSON: {ex.Message}");
        }

        if (envelope is not JsonObject)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Bad Request", detail: "The invocation body must be an object with Data and Metadata.");
        }

        // Defensive: ScheduleStatus is null on the first run and after restarts; IsPastDue may be missing.
        var timer = envelope["Data"]?["timer"] as JsonObject ?? envelope["Data"]?["Timer"] as JsonObject;
        var pastDue = (timer?["IsPastDue"] ?? timer?["isPastDue"]) is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        var created = await schedules.SyncAsync(cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new
        {
            Outputs = new Dictionary<string, object?>(),
            Logs = new[] { $"SchedulerHeartbeat: {created} configured schedule(s) started{(pastDue ? " (past due)" : string.Empty)}." },
            ReturnValue = (object?)null,
        });
    }
}
