using DurableAgents.Activities.Contracts;

namespace DurableAgents.Activities;

/// <summary>Greets a city.</summary>
public sealed class SayHello : TaskActivity<string, string>
{
    /// <inheritdoc />
    public override Task<string> RunAsync(TaskActivityContext context, string input, CancellationToken cancellationToken) =>
        Task.FromResult($"Hello {input}!");
}

/// <summary>
/// Drafts text for a stage of a pipeline. This is the offline stand-in until the LLM activities
/// land: deterministic output, clearly labelled as simulated.
/// </summary>
public sealed class DraftText : TaskActivity<DraftRequest, Draft>
{
    /// <inheritdoc />
    public override Task<Draft> RunAsync(TaskActivityContext context, DraftRequest input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var text = input.Stage switch
        {
            "outline" => $"[simulated] Outline for '{input.Topic}': 1. Why it matters 2. How it works 3. What to do next",
            _ => $"[simulated] Draft for '{input.Topic}' following: {input.Previous}",
        };
        return Task.FromResult(new Draft(input.Stage, text));
    }
}
