using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Email;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Http;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>
/// Approval links from email. GET shows a confirmation page and changes nothing (mail scanners
/// prefetch links); the page's POST records the decision as the instance's event. Tokens are
/// HMAC-signed, expire, and count once per instance, event, approver and deadline: approve or
/// reject, whichever comes first.
/// </summary>
internal static class ApprovalApi
{
    public static void MapApprovalApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/approve/{token}", Confirm).WithName("ApprovalConfirm").WithSummary("Confirmation page for an approval link (no state change).").ExcludeFromDescription();
        app.MapPost("/approve/{token}", DecideAsync).WithName("ApprovalDecide").WithSummary("Records the decision of an approval link.").DisableAntiforgery().ExcludeFromDescription();
        app.MapGet("/api/outbox", (DevelopmentOutbox outbox) => TypedResults.Ok(outbox.Messages))
            .AddEndpointFilter<Hosting.ApiKeyFilter>()
            .WithName("DevelopmentOutbox")
            .WithSummary("Emails the development outbox holds instead of sending (newest first).")
            .WithTags("Management");
    }

    private static IResult Confirm(string token, ApprovalTokens tokens, HttpContext http) => ApprovalPages.Confirm(token, tokens, http);

    internal static Task<IResult> DecideAsync(string token, ApprovalTokens tokens, IOrchestrationStore store, DurableTaskClient client, TimeProvider time, HttpContext http, CancellationToken cancellationToken) =>
        ApprovalPages.DecideAsync(token, tokens, new StoreUsedTokens(store), client, time, http, cancellationToken);

    /// <summary>Single-use marks in the engine's store (shared by every host of the task hub).</summary>
    private sealed class StoreUsedTokens(IOrchestrationStore store) : IUsedTokens
    {
        public Task<bool> TryConsumeAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken) =>
            store.TryConsumeTokenAsync(tokenId, expiresAt, now, cancellationToken);

        public Task ReleaseAsync(string tokenId, CancellationToken cancellationToken) => store.ReleaseTokenAsync(tokenId, cancellationToken);
    }
}
