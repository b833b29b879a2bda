using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Email;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Isolated;

/// <summary>
/// Approval links (the same pages as the custom-handler host, <see cref="ApprovalPages"/>): GET
/// /approve/{token} shows the confirmation page, POST decides and raises the decision through the
/// Durable extension's client. The link is the credential (signed, expiring, single use), so the
/// functions are anonymous; used links are marked in the activity database.
/// </summary>
public sealed class ApprovalFunctions(ApprovalTokens tokens, IUsedTokens used, TimeProvider time, DevelopmentOutbox outbox)
{
    /// <summary>GET /approve/{token}.</summary>
    [Function("ApprovalConfirm")]
    public IResult Confirm(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "approve/{token}")] HttpRequest request,
        string token)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ApprovalPages.Confirm(token, tokens, request.HttpContext);
    }

    /// <summary>POST /approve/{token}.</summary>
    [Function("ApprovalDecide")]
    public Task<IResult> DecideAsync(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "approve/{token}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string token)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ApprovalPages.DecideAsync(token, tokens, used, client, time, request.HttpContext, request.HttpContext.RequestAborted);
    }

    /// <summary>GET /api/outbox: the emails the development outbox holds instead of sending (newest first).</summary>
    [Function("DevelopmentOutbox")]
    public IResult Outbox([HttpTrigger(AuthorizationLevel.Function, "get", Route = "api/outbox")] HttpRequest request) =>
        TypedResults.Ok(outbox.Messages);
}
