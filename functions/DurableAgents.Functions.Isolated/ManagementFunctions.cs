using DurableAgents.Functions.Http;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace DurableAgents.Functions.Isolated;

/// <summary>
/// The management API with the same routes and shapes as the custom-handler host
/// (functions/DurableAgents.Functions/Apis/ManagementApi.cs), through the Durable extension's
/// <c>[DurableClient]</c>: start (202 with the status and control URIs), status (202 while running,
/// 200 when done), raise event, terminate (with children), suspend, resume and purge.
/// Function-level keys guard them; errors are problem details.
/// </summary>
public static class ManagementFunctions
{
    /// <summary>POST /api/orchestrators/{name}/{instanceId?}: starts a workflow.</summary>
    [Function("StartOrchestration")]
    public static Task<IResult> StartAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/orchestrators/{name}/{instanceId?}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string name,
        string? instanceId) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            var (body, problem) = await JsonBody.ReadAsync(request, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            var id = await client.ScheduleNewOrchestrationInstanceAsync(name, body, new StartOrchestrationOptions(instanceId), ct).ConfigureAwait(false);
            var configuration = request.HttpContext.RequestServices.GetService<IConfiguration>();
            var links = StartResponse.For(request, id, configuration?[StartResponse.InstanceUriKeySetting]);
            request.HttpContext.Response.Headers.RetryAfter = "1";
            return TypedResults.Accepted(links.StatusQueryGetUri, links);
        }, request);

    /// <summary>GET /api/instances/{instanceId}: the instance's status.</summary>
    [Function("GetInstance")]
    public static Task<IResult> GetStatusAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/instances/{instanceId}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            var showInput = !string.Equals(request.Query["showInput"], "false", StringComparison.OrdinalIgnoreCase);
            var m = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, ct).ConfigureAwait(false);
            if (m is null)
            {
                return Problems.NotFound(instanceId);
            }

            var status = InstanceStatus.From(m, null, showInput, null);
            return m.IsCompleted ? TypedResults.Ok(status) : TypedResults.Accepted((string?)null, status);
        }, request);

    /// <summary>POST /api/instances/{instanceId}/raiseEvent/{eventName}: sends an external event (JSON body).</summary>
    [Function("RaiseEvent")]
    public static Task<IResult> RaiseEventAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/instances/{instanceId}/raiseEvent/{eventName}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId,
        string eventName) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            var (body, problem) = await JsonBody.ReadAsync(request, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                return problem;
            }

            if (await client.GetInstanceAsync(instanceId, false, ct).ConfigureAwait(false) is null)
            {
                return Problems.NotFound(instanceId);
            }

            await client.RaiseEventAsync(instanceId, eventName, body, ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>POST /api/instances/{instanceId}/terminate?reason=: terminates an instance and its running children.</summary>
    [Function("Terminate")]
    public static Task<IResult> TerminateAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/instances/{instanceId}/terminate")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions(request.Query["reason"].FirstOrDefault(), Recursive: true), ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>POST /api/instances/{instanceId}/suspend?reason=.</summary>
    [Function("Suspend")]
    public static Task<IResult> SuspendAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/instances/{instanceId}/suspend")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            await client.SuspendInstanceAsync(instanceId, request.Query["reason"].FirstOrDefault(), ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>POST /api/instances/{instanceId}/resume?reason=.</summary>
    [Function("Resume")]
    public static Task<IResult> ResumeAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "api/instances/{instanceId}/resume")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => Guarded(async ct =>
        {
            ArgumentNullException.ThrowIfNull(request);
            await client.ResumeInstanceAsync(instanceId, request.Query["reason"].FirstOrDefault(), ct).ConfigureAwait(false);
            return TypedResults.Accepted((string?)null);
        }, request);

    /// <summary>DELETE /api/instances/{instanceId}: deletes a finished instance, its children and its history.</summary>
    [Function("Purge")]
    public static Task<IResult> PurgeAsync(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "api/instances/{instanceId}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string instanceId) => Guarded(async ct =>
        {
            var result = await client.PurgeInstanceAsync(instanceId, new PurgeInstanceOptions(Recursive: true), ct).ConfigureAwait(false);
            return result.PurgedInstanceCount > 0 ? TypedResults.Ok(new PurgeResponse(result.PurgedInstanceCount)) : Problems.NotFound(instanceId);
        }, request);

    /// <summary>
    /// Runs a call, turning the Durable client's errors into problem details: the extension answers
    /// over gRPC, so they arrive as statuses or the SDK client's argument and state exceptions.
    /// </summary>
    internal static async Task<IResult> Guarded(Func<CancellationToken, Task<IResult>> call, HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            return await call(request.HttpContext.RequestAborted).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.NotFound)
        {
            return Problem(StatusCodes.Status404NotFound, "Not Found", ex.Status.Detail);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.AlreadyExists or StatusCode.FailedPrecondition)
        {
            return Problem(StatusCodes.Status409Conflict, "Conflict", ex.Status.Detail);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.InvalidArgument)
        {
            return Problem(StatusCodes.Status400BadRequest, "Bad Request", ex.Status.Detail);
        }
        catch (Exception ex) when (ex.GetType().Name == "OrchestrationAlreadyExistsException")
        {
            return Problem(StatusCodes.Status409Conflict, "Conflict", ex.Message);
        }
        catch (ArgumentException ex)
        {
            return Problem(StatusCodes.Status400BadRequest, "Bad Request", ex.Message);
        }
        catch (InvalidOperationException ex)
        {
            return Problem(StatusCodes.Status409Conflict, "Conflict", ex.Message);
        }
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail);
}
