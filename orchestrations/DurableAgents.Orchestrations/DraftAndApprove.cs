using DurableAgents.Activities.Contracts;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="DraftAndApprove"/>.</summary>
public sealed record DraftAndApproveInput(string Topic, string Approver = "founder@example.com", int ApprovalTimeoutHours = 72);

/// <summary>Output of <see cref="DraftAndApprove"/>: the decision is approve, reject or expired.</summary>
public sealed record DraftAndApproveOutput(string Topic, string Outline, string Draft, string Decision, string? DecidedBy, DateTimeOffset DecidedAt);

/// <summary>
/// A small agent pipeline: outline then draft (each a retried activity), then a human decision:
/// the approver gets an email with signed approve/reject links, and the click arrives as the
/// <c>approval</c> event, with a durable deadline. A crash or deploy at any point resumes where it
/// stopped; a three-day wait costs nothing.
/// </summary>
public sealed class DraftAndApprove : TaskOrchestrator<DraftAndApproveInput, DraftAndApproveOutput>
{
    private static readonly TaskOptions Retry = RetryPolicies.Options(3, TimeSpan.FromSeconds(2), backoffCoefficient: 2);

    /// <inheritdoc />
    public override async Task<DraftAndApproveOutput> RunAsync(TaskOrchestrationContext context, DraftAndApproveInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        context.SetCustomStatus("outlining");
        var outline = await context.CallActivityAsync<Draft>(ActivityNames.DraftText, new DraftRequest(input.Topic, "outline", null), Retry);
        context.SetCustomStatus("drafting");
        var draft = await context.CallActivityAsync<Draft>(ActivityNames.DraftText, new DraftRequest(input.Topic, "draft", outline.Text), Retry);
        var deadline = context.CurrentUtcDateTime.AddHours(input.ApprovalTimeoutHours);
        await context.CallActivityAsync<int>(
            ActivityNames.SendApprovalRequest,
            new ApprovalRequest("approval", [input.Approver], $"Approve the draft: {input.Topic}", draft.Text, deadline),
            Retry);
        context.SetCustomStatus("awaiting approval");
        string decision;
        string? decidedBy = null;
        DateTimeOffset decidedAt;
        try
        {
            var answer = await context.WaitForExternalEvent<ApprovalDecision>("approval", deadline - context.CurrentUtcDateTime);
            (decision, decidedBy, decidedAt) = (answer.Decision, answer.Approver, answer.DecidedAt);
        }
        catch (TaskCanceledException)
        {
            (decision, decidedAt) = ("expired", new DateTimeOffset(context.CurrentUtcDateTime, TimeSpan.Zero));
        }

        context.SetCustomStatus(decision);
        return new DraftAndApproveOutput(input.Topic, outline.Text, draft.Text, decision, decidedBy, decidedAt);
    }
}
