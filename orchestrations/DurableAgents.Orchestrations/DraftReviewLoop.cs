using System.Text.Json.Serialization;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="DraftReviewLoop"/>.</summary>
/// <param name="Brief">What to write.</param>
/// <param name="MaxRounds">Draft/review rounds at most.</param>
/// <param name="MaxTokens">The instance's token budget.</param>
public sealed record ReviewRequest(string Brief, int MaxRounds = 4, long MaxTokens = 40_000);

/// <summary>A reviewer's decision.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ReviewDecision>))]
public enum ReviewDecision
{
    /// <summary>Good to go.</summary>
    Approve,

    /// <summary>Needs another round.</summary>
    Revise,
}

/// <summary>The reviewer's structured verdict.</summary>
/// <param name="Decision">Approve or revise.</param>
/// <param name="Score">Quality 0-10.</param>
/// <param name="Reasons">What to change (for revise) or why it is good.</param>
public sealed record ReviewVerdict(ReviewDecision Decision, int Score, IReadOnlyList<string> Reasons);

/// <summary>One round: the draft, its diff from the previous one, and the verdict.</summary>
public sealed record ReviewRound(int Round, string Draft, string Diff, ReviewVerdict Verdict);

/// <summary>Output of <see cref="DraftReviewLoop"/>.</summary>
/// <param name="FinalDraft">The approved draft, or the best-scored one.</param>
/// <param name="Outcome">approved, max-rounds, no-improvement, or budget.</param>
/// <param name="Rounds">Every round.</param>
/// <param name="Usage">Tokens and cost.</param>
public sealed record ReviewResult(string FinalDraft, string Outcome, IReadOnlyList<ReviewRound> Rounds, WorkflowUsage Usage);

/// <summary>
/// Maker-checker: a writer drafts, a reviewer returns a structured verdict (approve, or revise with reasons);
/// the writer revises with the reasons, until approved, the maximum rounds, or a round that scores no better
/// than the one before. Each round's diff and verdict are kept.
/// </summary>
public sealed class DraftReviewLoop : TaskOrchestrator<ReviewRequest, ReviewResult>
{
    /// <inheritdoc />
    public override async Task<ReviewResult> RunAsync(TaskOrchestrationContext context, ReviewRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var budget = new ModelBudget(MaxTokens: input.MaxTokens);
        var usage = new WorkflowUsage();
        var rounds = new List<ReviewRound>();
        string? draft = null;
        for (var round = 1; round <= Math.Max(1, input.MaxRounds); round++)
        {
            context.SetCustomStatus(new { round, stage = "draft" });
            var instruction = draft is null
                ? $"Write: {input.Brief}"
                : $"Revise your draft for: {input.Brief}\nReviewer's reasons:\n- {string.Join("\n- ", rounds[^1].Verdict.Reasons)}\n\nYour draft:\n{draft}";
            try
            {
                var written = await context.CallModelAsync(
                    new ModelRequest { Profile = "strong", Messages = [ModelMessage.System("You are the writer. Answer with the full draft only."), ModelMessage.User(instruction)], Budget = budget },
                    Retries.Default);
                usage = usage.Add(written);
                var diff = TextDiff.Lines(draft, written.Text);
                draft = written.Text ?? string.Empty;

                context.SetCustomStatus(new { round, stage = "review" });
                var (verdict, reviewed) = await context.CallModelAsync<ReviewVerdict>(
                    new ModelRequest
                    {
                        Messages =
                        [
                            ModelMessage.System("You are the reviewer. Score 0-10. Approve only when the draft fully meets the brief; otherwise give concrete reasons to revise."),
                            ModelMessage.User($"Brief: {input.Brief}\n\nDraft:\n{draft}"),
                        ],
                        Budget = budget,
                    },
                    Retries.Default);
                usage = usage.Add(reviewed);
                rounds.Add(new ReviewRound(round, draft, diff, verdict));
            }
            catch (TaskFailedException ex) when (ex.IsBudgetExceeded())
            {
                return new ReviewResult(Best(rounds, draft), "budget", rounds, usage);
            }

            if (rounds[^1].Verdict.Decision == ReviewDecision.Approve)
            {
                return new ReviewResult(draft, "approved", rounds, usage);
            }

            if (rounds.Count >= 2 && rounds[^1].Verdict.Score <= rounds[^2].Verdict.Score)
            {
                return new ReviewResult(Best(rounds, draft), "no-improvement", rounds, usage);
            }
        }

        return new ReviewResult(Best(rounds, draft), "max-rounds", rounds, usage);
    }

    private static string Best(List<ReviewRound> rounds, string? fallback) =>
        rounds.Count == 0 ? fallback ?? string.Empty : rounds.OrderByDescending(r => r.Verdict.Score).ThenBy(r => r.Round).First().Draft;
}
