using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="ResearchBrief"/>.</summary>
/// <param name="Topic">What to research.</param>
/// <param name="Questions">One model call each.</param>
/// <param name="MaxTokens">The instance's token budget across all its calls.</param>
/// <param name="Approver">Who is asked when the budget runs out.</param>
/// <param name="ApprovalTimeoutHours">How long the approver has.</param>
public sealed record ResearchBriefInput(string Topic, IReadOnlyList<string> Questions, long MaxTokens = 4000, string Approver = "founder@example.com", int ApprovalTimeoutHours = 24);

/// <summary>Output of <see cref="ResearchBrief"/>.</summary>
/// <param name="Answers">Answers to the questions that were asked.</param>
/// <param name="BudgetEscalated">True when the budget ran out and a person was asked.</param>
/// <param name="Decision">The person's decision (approve, reject, expired), if asked.</param>
/// <param name="FinalMaxTokens">The budget the run ended with.</param>
public sealed record ResearchBriefOutput(IReadOnlyList<string> Answers, bool BudgetEscalated, string? Decision, long FinalMaxTokens);

/// <summary>
/// Answers research questions under a token budget. When the next call would exceed it, the call is not
/// made: the activity fails with BudgetExceeded, and the workflow escalates to a person by email
/// ("approve doubling the budget?"). Approved, it goes on with the doubled budget; rejected or unanswered,
/// it stops with the answers it has (as it does if the raised budget runs out too). No tokens are spent while it waits.
/// </summary>
public sealed class ResearchBrief : TaskOrchestrator<ResearchBriefInput, ResearchBriefOutput>
{
    private static readonly TaskOptions Retry = RetryPolicies.Options(3, TimeSpan.FromSeconds(2), backoffCoefficient: 2);

    /// <inheritdoc />
    public override async Task<ResearchBriefOutput> RunAsync(TaskOrchestrationContext context, ResearchBriefInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var answers = new List<string>();
        var budget = input.MaxTokens;
        string? decision = null;
        for (var i = 0; i < input.Questions.Count; i++)
        {
            context.SetCustomStatus($"question {i + 1} of {input.Questions.Count}");
            var request = new ModelRequest
            {
                Profile = "fast",
                Messages = [ModelMessage.System($"You research '{input.Topic}'. Answer briefly."), ModelMessage.User(input.Questions[i])],
                MaxOutputTokens = 300,
                Budget = new ModelBudget(MaxTokens: budget),
            };
            try
            {
                var answer = await context.CallModelAsync(request, Retry);
                answers.Add(answer.Text ?? string.Empty);
            }
            catch (TaskFailedException ex) when (ex.IsBudgetExceeded())
            {
                if (decision is not null)
                {
                    break; // asked once already: stop with what we have
                }

                context.SetCustomStatus("budget exhausted: awaiting approval");
                var deadline = context.CurrentUtcDateTime.AddHours(input.ApprovalTimeoutHours);
                await context.CallActivityAsync<int>(
                    ActivityNames.SendApprovalRequest,
                    new ApprovalRequest("budget", [input.Approver], $"Budget exhausted: {input.Topic}", $"{answers.Count} of {input.Questions.Count} questions answered within {budget} tokens. Approve doubling the budget to {budget * 2} tokens?", deadline),
                    Retry);
                try
                {
                    decision = (await context.WaitForExternalEvent<ApprovalDecision>("budget", deadline - context.CurrentUtcDateTime)).Decision;
                }
                catch (TaskCanceledException)
                {
                    decision = "expired";
                }

                if (decision != ApprovalDecisions.Approve)
                {
                    break;
                }

                budget *= 2;
                i--; // ask the same question again, under the raised budget
            }
        }

        context.SetCustomStatus("done");
        return new ResearchBriefOutput(answers, decision is not null, decision, budget);
    }
}
