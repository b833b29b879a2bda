using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Agents;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>A backlog topic.</summary>
public sealed record BacklogItem(string Topic, int Priority = 5);

/// <summary>Input of <see cref="WeeklyContent"/>.</summary>
/// <param name="Backlog">Candidate topics; the highest priorities are picked (ties: backlog order).</param>
/// <param name="Approvers">Who approves each draft.</param>
/// <param name="TopicsPerRun">Topics per run.</param>
/// <param name="MaxTokensPerTopic">Each topic's ContentPipeline budget.</param>
/// <param name="ApprovalDeadlineMinutes">How long approvers have.</param>
/// <param name="EscalationApprovers">Who is asked when the approvers do not answer in time.</param>
public sealed record WeeklyContentRequest(
    IReadOnlyList<BacklogItem> Backlog,
    IReadOnlyList<string> Approvers,
    int TopicsPerRun = 3,
    long MaxTokensPerTopic = 60_000,
    double ApprovalDeadlineMinutes = 48 * 60,
    IReadOnlyList<string>? EscalationApprovers = null);

/// <summary>What happened to one topic.</summary>
/// <param name="Topic">The topic.</param>
/// <param name="Status">published, skipped (no webhook), rejected, expired, not-compliant, or failed.</param>
/// <param name="Approval">The approval gate's result, if it got that far.</param>
/// <param name="Receipt">The publish receipt, if published.</param>
/// <param name="Error">What failed, if anything.</param>
public sealed record TopicOutcome(string Topic, string Status, ApprovalGateResult? Approval, PublishReceipt? Receipt, string? Error);

/// <summary>Output of <see cref="WeeklyContent"/>.</summary>
public sealed record WeeklyContentResult(IReadOnlyList<TopicOutcome> Topics, WorkflowUsage Usage);

/// <summary>
/// Scheduled content job: picks topics from a backlog, runs <see cref="ContentPipeline"/> per topic as
/// sub-orchestrations (concurrently), sends each compliant draft through <see cref="ApprovalGate"/>, and
/// publishes the approved ones (PublishPost: a webhook call with an idempotency key, so a retried publish
/// posts once).
/// </summary>
public sealed class WeeklyContent : TaskOrchestrator<WeeklyContentRequest, WeeklyContentResult>
{
    /// <inheritdoc />
    public override async Task<WeeklyContentResult> RunAsync(TaskOrchestrationContext context, WeeklyContentRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var topics = input.Backlog.Select((item, index) => (item, index))
            .OrderByDescending(x => x.item.Priority).ThenBy(x => x.index)
            .Take(Math.Max(0, input.TopicsPerRun)).Select(x => x.item.Topic).ToList();
        context.SetCustomStatus(new { stage = "writing", topics });

        async Task<(TopicOutcome Outcome, WorkflowUsage Usage)> Produce(string topic, int i)
        {
            ContentResult content;
            try
            {
                content = await context.CallSubOrchestratorAsync<ContentResult>(
                    nameof(ContentPipeline),
                    new ContentRequest(topic, MaxTokens: input.MaxTokensPerTopic),
                    new SubOrchestrationOptions { InstanceId = $"{context.InstanceId}-content-{i}" });
            }
            catch (TaskFailedException ex)
            {
                return (new TopicOutcome(topic, "failed", null, null, ex.FailureDetails.ErrorMessage), new WorkflowUsage());
            }

            if (content.Outcome != "completed")
            {
                return (new TopicOutcome(topic, "failed", null, null, content.Outcome), content.Usage);
            }

            if (content.Compliance is { Approved: false } verdict)
            {
                return (new TopicOutcome(topic, "not-compliant", null, null, string.Join("; ", verdict.Issues)), content.Usage);
            }

            var approval = await context.CallSubOrchestratorAsync<ApprovalGateResult>(
                nameof(ApprovalGate),
                new ApprovalGateRequest($"Publish: {topic}", Excerpt(content.Article), input.Approvers, input.EscalationApprovers, DeadlineMinutes: input.ApprovalDeadlineMinutes, ReminderMinutes: input.ApprovalDeadlineMinutes / 2),
                new SubOrchestrationOptions { InstanceId = $"{context.InstanceId}-approval-{i}" });
            if (approval.Outcome != "approved")
            {
                return (new TopicOutcome(topic, approval.Outcome, approval, null, null), content.Usage);
            }

            var receipt = await context.CallActivityAsync<PublishReceipt>(ActivityNames.PublishPost, new PublishRequest(topic, topic, content.Article), Retries.Default);
            return (new TopicOutcome(topic, receipt.Status, approval, receipt, null), content.Usage);
        }

        var results = await Task.WhenAll(topics.Select(Produce));
        context.SetCustomStatus(new { stage = "done", published = results.Count(r => r.Outcome.Status == "published") });
        return new WeeklyContentResult(results.Select(r => r.Outcome).ToList(), results.Aggregate(new WorkflowUsage(), (u, r) => u.Add(r.Usage)));
    }

    private static string Excerpt(string article) => article.Length <= 1500 ? article : article[..1500] + "…";
}
