using DurableAgents.Activities.Contracts;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="ApprovalGate"/>.</summary>
/// <param name="Subject">The email subject.</param>
/// <param name="Summary">What is being decided.</param>
/// <param name="Approvers">Who is asked (email addresses).</param>
/// <param name="EscalationApprovers">Who is asked too when the deadline passes without a decision (once).</param>
/// <param name="Quorum">Approvals needed (n of m); rejections that make the quorum impossible reject.</param>
/// <param name="DeadlineMinutes">How long each round (first, then escalated) waits.</param>
/// <param name="ReminderMinutes">How often undecided approvers are reminded within a round.</param>
/// <param name="MaxReminders">Reminders per round at most.</param>
public sealed record ApprovalGateRequest(
    string Subject,
    string Summary,
    IReadOnlyList<string> Approvers,
    IReadOnlyList<string>? EscalationApprovers = null,
    int Quorum = 1,
    double DeadlineMinutes = 48 * 60,
    double ReminderMinutes = 24 * 60,
    int MaxReminders = 1);

/// <summary>Output of <see cref="ApprovalGate"/>.</summary>
/// <param name="Outcome">approved, rejected, or expired.</param>
/// <param name="Decisions">Who decided what, and when (as recorded by the signed approval link).</param>
/// <param name="Escalated">True when the deadline passed and the escalation approvers were asked.</param>
/// <param name="RemindersSent">Reminder emails sent.</param>
/// <param name="IgnoredDecisions">Decisions not counted (not an approver, or a second decision by the same person).</param>
/// <param name="ClosedAt">When the gate closed.</param>
public sealed record ApprovalGateResult(string Outcome, IReadOnlyList<ApprovalDecision> Decisions, bool Escalated, int RemindersSent, int IgnoredDecisions, DateTime ClosedAt);

/// <summary>
/// Human approval, usable as a sub-orchestration: emails signed approve/reject links (the
/// SendApprovalRequest activity), waits for "approval" events with a deadline, reminds undecided approvers
/// on durable timers, escalates once to a second set of approvers when the deadline passes, and records who
/// decided what and when. An n-of-m quorum is supported. Decisions arriving after the gate closed change
/// nothing (and the links expire with the deadline).
/// </summary>
public sealed class ApprovalGate : TaskOrchestrator<ApprovalGateRequest, ApprovalGateResult>
{
    /// <summary>The event the approval links raise.</summary>
    public const string EventName = "approval";

    /// <summary>
    /// Decisions that are ignored (not a listed approver, a second decision) before the gate gives up
    /// with outcome <c>aborted</c>: each one is an event in the history, so the loop must be bounded.
    /// </summary>
    public const int MaxIgnoredDecisions = 200;

    /// <inheritdoc />
    public override async Task<ApprovalGateResult> RunAsync(TaskOrchestrationContext context, ApprovalGateRequest input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Approvers.Count == 0 || input.Quorum < 1 || input.Quorum > input.Approvers.Count + (input.EscalationApprovers?.Count ?? 0))
        {
            throw new ArgumentException($"An approval gate needs approvers and a quorum between 1 and the number of approvers (got {input.Approvers.Count} approvers, quorum {input.Quorum}).", nameof(input));
        }

        var approvers = new HashSet<string>(input.Approvers, StringComparer.OrdinalIgnoreCase);
        var decisions = new List<ApprovalDecision>();
        var ignored = 0;
        var reminders = 0;
        var escalated = false;
        var roundLength = TimeSpan.FromMinutes(input.DeadlineMinutes);
        var deadline = context.CurrentUtcDateTime + roundLength;
        await SendAsync(context, input.Approvers, input.Subject, input.Summary, deadline);
        var nextReminder = context.CurrentUtcDateTime + TimeSpan.FromMinutes(input.ReminderMinutes);
        var remindersThisRound = 0;

        // Bounded: decisions by the approvers, reminders and one escalation end it; ignored
        // decisions are capped, so history cannot grow without end.
        while (ignored < MaxIgnoredDecisions)
        {
            context.SetCustomStatus(new { awaiting = EventName, approvals = decisions.Count(d => d.IsApproved), quorum = input.Quorum, deadline, escalated });
            var wakeAt = remindersThisRound < input.MaxReminders && nextReminder < deadline ? nextReminder : deadline;
            ApprovalDecision? decision = null;
            try
            {
                decision = await context.WaitForExternalEvent<ApprovalDecision>(EventName, wakeAt - context.CurrentUtcDateTime);
            }
            catch (TaskCanceledException)
            {
            }

            if (decision is not null)
            {
                if (!approvers.Contains(decision.Approver) || decisions.Any(d => string.Equals(d.Approver, decision.Approver, StringComparison.OrdinalIgnoreCase)))
                {
                    ignored++;
                    continue;
                }

                decisions.Add(decision);
                var approvals = decisions.Count(d => d.IsApproved);
                var rejections = decisions.Count - approvals;
                if (approvals >= input.Quorum)
                {
                    return Close("approved");
                }

                if (approvers.Count - rejections < input.Quorum)
                {
                    return Close("rejected");
                }

                continue;
            }

            if (context.CurrentUtcDateTime < deadline)
            {
                // A reminder to those who have not decided.
                var undecided = approvers.Where(a => !decisions.Any(d => string.Equals(d.Approver, a, StringComparison.OrdinalIgnoreCase))).ToList();
                await SendAsync(context, undecided, "Reminder: " + input.Subject, input.Summary, deadline);
                reminders++;
                remindersThisRound++;
                nextReminder = context.CurrentUtcDateTime + TimeSpan.FromMinutes(input.ReminderMinutes);
                continue;
            }

            if (!escalated && input.EscalationApprovers is { Count: > 0 } escalation)
            {
                escalated = true;
                approvers.UnionWith(escalation);
                deadline = context.CurrentUtcDateTime + roundLength;
                await SendAsync(context, escalation, "Escalated: " + input.Subject, $"{input.Summary}\n\n(No decision from {string.Join(", ", input.Approvers)} in time.)", deadline);
                nextReminder = context.CurrentUtcDateTime + TimeSpan.FromMinutes(input.ReminderMinutes);
                remindersThisRound = 0;
                continue;
            }

            return Close("expired");
        }

        return Close("aborted");

        ApprovalGateResult Close(string outcome)
        {
            context.SetCustomStatus(new { closed = outcome });
            return new ApprovalGateResult(outcome, decisions, escalated, reminders, ignored, context.CurrentUtcDateTime);
        }
    }

    private static Task<int> SendAsync(TaskOrchestrationContext context, IReadOnlyList<string> to, string subject, string summary, DateTime deadline) =>
        context.CallActivityAsync<int>(ActivityNames.SendApprovalRequest, new ApprovalRequest(EventName, to, subject, summary, deadline), Retries.Default);
}
