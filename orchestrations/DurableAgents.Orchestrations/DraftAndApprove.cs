using DurableAgents.Activities.Contracts;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="DraftAndApprove"/>.</summary>
public sealed record DraftAndApproveInput(string Topic, int ApprovalTimeoutHours = 72);

/// <summary>Output of <see cref="DraftAndApprove"/>.</summary>
public sealed record DraftAndApproveOutput(string Topic, string Outline, string Draft, string Decision, DateTime DecidedAt);

/// <summary>
/// A small agent pipeline: outline then draft (each a retried activity), then a human decision
/// delivered as an external <c>approval</c> event, with a durable deadline. A crash or deploy at
/// any point resumes where it stopped; a three-day wait costs nothing.
/// </summary>
public sealed class DraftAndApprove : TaskOrchestrator<DraftAndApproveInput, DraftAndApproveOutput>
{
    private static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(new RetryPolicy(3, TimeSpan.FromSeconds(2), backoffCoefficient: 2));

    /// <inheritdoc />
    public override async Task<DraftAndApproveOutput> RunAsync(TaskOrchestrationContext context, DraftAndApproveInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        context.SetCustomStatus("outlining");
        var outline = await context.CallActivityAsync<Draft>(ActivityNames.DraftText, new DraftRequest(input.Topic, "outline", null), Retry);
        context.SetCustomStatus("drafting");
        var draft = await context.CallActivityAsync<Draft>(ActivityNames.DraftText, new DraftRequest(input.Topic, "draft", outline.Text), Retry);
        context.SetCustomStatus("awaiting approval");
        string decision;
        try
        {
            decision = await context.WaitForExternalEvent<string>("approval", TimeSpan.FromHours(input.ApprovalTimeoutHours));
        }
        catch (TaskCanceledException)
        {
            decision = "expired";
        }

        context.SetCustomStatus(decision);
        return new DraftAndApproveOutput(input.Topic, outline.Text, draft.Text, decision, context.CurrentUtcDateTime);
    }
}
