using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine.Client;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>Model-call accounting, under the management API key.</summary>
internal static class ModelUsageApi
{
    public static void MapModelUsageApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<Hosting.ApiKeyFilter>().WithTags("Model usage");
        api.MapGet("/instances/{instanceId}/usage", GetInstanceUsageAsync).WithName("GetInstanceModelUsage").WithSummary("Model-call totals of an instance and every attempt (failed, retried and cache hits included).");
        api.MapGet("/usage", GetWorkflowUsageAsync).WithName("GetWorkflowModelUsage").WithSummary("Model-call totals per workflow name.");
    }

    private static async Task<Results<Ok<InstanceUsage>, ProblemHttpResult>> GetInstanceUsageAsync(
        string instanceId, DurableTaskClient client, IModelLedger ledger, CancellationToken cancellationToken)
    {
        if (await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) is null)
        {
            return Problems.NotFound(instanceId);
        }

        var totals = await ledger.GetInstanceTotalsAsync(instanceId, cancellationToken).ConfigureAwait(false);
        var attempts = await ledger.GetAttemptsAsync(instanceId, cancellationToken).ConfigureAwait(false);
        return TypedResults.Ok(new InstanceUsage(totals, attempts));
    }

    private static async Task<Ok<IReadOnlyList<ModelUsageTotals>>> GetWorkflowUsageAsync(IModelLedger ledger, CancellationToken cancellationToken) =>
        TypedResults.Ok(await ledger.GetWorkflowTotalsAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>An instance's model usage.</summary>
}
