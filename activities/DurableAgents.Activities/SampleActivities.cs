using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Activities;

/// <summary>Greets a city.</summary>
public sealed class SayHello : TaskActivity<string, string>
{
    /// <inheritdoc />
    public override Task<string> RunAsync(TaskActivityContext context, string input) =>
        Task.FromResult($"Hello {input}!");
}

/// <summary>Drafts text for a stage of a pipeline with the "fast" model profile (the simulator when none is configured).</summary>
public sealed class DraftText(ModelService models) : TaskActivity<DraftRequest, Draft>
{
    /// <inheritdoc />
    public override async Task<Draft> RunAsync(TaskActivityContext context, DraftRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var ask = input.Stage switch
        {
            "outline" => $"Write a three-point outline for a short article about '{input.Topic}'.",
            _ => $"Write the {input.Stage} of a short article about '{input.Topic}', following: {input.Previous}",
        };
        var answer = await models.CallAsync(
            new ModelCallOrigin(context.InstanceId, context.GetTaskId(), context.GetIdempotencyKey()),
            new ModelRequest { Messages = [ModelMessage.System("You are a concise content writer."), ModelMessage.User(ask)] },
            cancellationToken).ConfigureAwait(false);
        return new Draft(input.Stage, answer.Text ?? string.Empty);
    }
}
