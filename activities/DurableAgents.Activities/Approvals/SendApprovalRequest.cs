using System.Text.Encodings.Web;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Email;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Approvals;

/// <summary>
/// Emails each approver an approve and a reject link. A link opens a confirmation page (so mail
/// scanners that prefetch links decide nothing); its button raises the decision as the request's
/// event on the calling instance. Returns how many emails were sent.
/// </summary>
public sealed class SendApprovalRequest(ApprovalTokens tokens, IEmailSender email) : TaskActivity<ApprovalRequest, int>
{
    /// <inheritdoc />
    public override async Task<int> RunAsync(TaskActivityContext context, ApprovalRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        if (input.Approvers.Count == 0)
        {
            throw new ApplicationFailureException("An approval request needs at least one approver.", "DurableAgents.NoApprovers", nonRetryable: true);
        }

        var expires = new DateTimeOffset(DateTime.SpecifyKind(input.ExpiresAt, DateTimeKind.Utc));
        foreach (var approver in input.Approvers)
        {
            var approve = tokens.LinkFor(tokens.Create(context.InstanceId, input.EventName, ApprovalDecisions.Approve, approver, expires));
            var reject = tokens.LinkFor(tokens.Create(context.InstanceId, input.EventName, ApprovalDecisions.Reject, approver, expires));
            var html = HtmlEncoder.Default;
            await email.SendAsync(
                new EmailMessage(
                    approver,
                    input.Subject,
                    $"{input.Summary}\n\nApprove: {approve}\nReject: {reject}\n\nThe links expire at {expires:u}.",
                    $"<p>{html.Encode(input.Summary)}</p><p><a href=\"{html.Encode(approve.ToString())}\">Approve</a> &middot; <a href=\"{html.Encode(reject.ToString())}\">Reject</a></p><p>The links expire at {expires:u}.</p>"),
                cancellationToken).ConfigureAwait(false);
        }

        return input.Approvers.Count;
    }
}
