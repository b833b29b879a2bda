using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine.Client;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Apis;

/// <summary>Model-call accounting and live token streams, under the management API key.</summary>
internal static class ModelUsageApi
{
    public static void MapModelUsageApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<Hosting.ApiKeyFilter>().WithTags("Model usage");
        api.MapGet("/instances/{instanceId}/usage", GetInstanceUsageAsync).WithName("GetInstanceModelUsage").WithSummary("Model-call totals of an instance and every attempt (failed, retried and cache hits included).");
        api.MapGet("/usage", GetWorkflowUsageAsync).WithName("GetWorkflowModelUsage").WithSummary("Model-call totals per workflow name.");
        api.MapGet("/instances/{instanceId}/stream", StreamAsync).WithName("StreamModelTokens").WithSummary("Server-sent events: tokens of the instance's in-flight streaming model calls.");
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

    /// <summary>
    /// Streams chunks as server-sent events until the instance finishes or the client goes away; 404 for an
    /// unknown instance, 204 for a finished one (nothing more will stream).
    /// </summary>
    internal static async Task<IResult> StreamAsync(string instanceId, HttpContext http, DurableTaskClient client, ModelStreamHub streams, CancellationToken cancellationToken)
    {
        var instance = await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false);
        if (instance is null)
        {
            return Problems.NotFound(instanceId);
        }

        if (instance.IsCompleted)
        {
            return TypedResults.NoContent();
        }

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var watcher = WatchForCompletionAsync(client, instanceId, done);
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var chunk in streams.SubscribeAsync(instanceId, done.Token).ConfigureAwait(false))
            {
                await http.Response.WriteAsync($"data: {JsonSerializer.Serialize(chunk, LlmJson.Options)}\n\n", done.Token).ConfigureAwait(false);
                await http.Response.Body.FlushAsync(done.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            // the instance finished or the client left
        }

        await done.CancelAsync().ConfigureAwait(false);
        await watcher.ConfigureAwait(false);
        return TypedResults.Empty;
    }

    private static async Task WatchForCompletionAsync(DurableTaskClient client, string instanceId, CancellationTokenSource done)
    {
        try
        {
            while (!done.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), done.Token).ConfigureAwait(false);
                if (await client.GetInstanceAsync(instanceId, false, done.Token).ConfigureAwait(false) is not { IsCompleted: false })
                {
                    await done.CancelAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>An instance's model usage.</summary>
}
