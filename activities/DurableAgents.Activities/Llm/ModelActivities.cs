using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// Calls a chat model through a profile (see <see cref="ModelService"/>). A completed call is never made
/// again: the engine records its result, and replays read it from history.
/// </summary>
public sealed class CallModel(ModelService models) : TaskActivity<ModelRequest, ModelResponse>
{
    /// <inheritdoc />
    public override Task<ModelResponse> RunAsync(TaskActivityContext context, ModelRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        return models.CallAsync(new ModelCallOrigin(context.InstanceId, context.GetTaskId(), context.GetIdempotencyKey()), input, cancellationToken);
    }
}

/// <summary>Embeds texts through a profile's embedding model.</summary>
public sealed class Embed(ModelService models) : TaskActivity<EmbeddingRequest, EmbeddingResponse>
{
    /// <inheritdoc />
    public override Task<EmbeddingResponse> RunAsync(TaskActivityContext context, EmbeddingRequest input) =>
        models.EmbedAsync(input, context.GetCancellationToken());
}
