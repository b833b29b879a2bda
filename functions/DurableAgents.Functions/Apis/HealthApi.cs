using DurableAgents.Engine.Storage;

namespace DurableAgents.Functions.Apis;

/// <summary>Liveness (the process answers) and readiness (the store answers).</summary>
internal static class HealthApi
{
    public static void MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "alive" })).WithName("Liveness").WithSummary("The process is up.");
        app.MapGet("/readyz", async (IOrchestrationStore store, CancellationToken cancellationToken) =>
        {
            await store.GetInstanceAsync("readiness-probe", false, cancellationToken).ConfigureAwait(false);
            return TypedResults.Ok(new { status = "ready" });
        }).WithName("Readiness").WithSummary("The store answers queries.");
    }
}
