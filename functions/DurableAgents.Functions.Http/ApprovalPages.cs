using System.Text.Encodings.Web;
using DurableAgents.Activities.Approvals;
using DurableAgents.Activities.Contracts;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Functions.Http;

/// <summary>
/// Approval links from email, for both hosts. GET shows a confirmation page and changes nothing
/// (mail scanners prefetch links); the page's POST records the decision as the instance's event.
/// Tokens are HMAC-signed, expire, and count once per instance, event, approver and deadline:
/// approve or reject, whichever comes first.
/// </summary>
public static class ApprovalPages
{
    /// <summary>GET /approve/{token}: the confirmation page.</summary>
    public static IResult Confirm(string token, ApprovalTokens tokens, HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var (problem, claims) = tokens.Verify(token);
        if (problem != ApprovalTokenProblem.None)
        {
            return Refusal(http, problem);
        }

        var verb = claims!.Decision == ApprovalDecisions.Approve ? "Approve" : "Reject";
        var e = HtmlEncoder.Default;
        return Page(
            http,
            StatusCodes.Status200OK,
            $"{verb}?",
            $"""
            <p>You are about to <strong>{e.Encode(verb.ToLowerInvariant())}</strong> the request <code>{e.Encode(claims.InstanceId)}</code>
            as <strong>{e.Encode(claims.Approver)}</strong>.</p>
            <form method="post" action="/approve/{e.Encode(token)}">
              <button type="submit">{e.Encode(verb)}</button>
            </form>
            <p class="small">This link expires at {claims.ExpiresAt:u}.</p>
            """);
    }

    /// <summary>POST /approve/{token}: records the decision, once.</summary>
    public static async Task<IResult> DecideAsync(string token, ApprovalTokens tokens, IUsedTokens used, DurableTaskClient client, TimeProvider time, HttpContext http, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(used);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(time);
        var (problem, claims) = tokens.Verify(token);
        if (problem != ApprovalTokenProblem.None)
        {
            return Refusal(http, problem);
        }

        var once = $"approval:{claims!.InstanceId}:{claims.EventName}:{claims.Approver}:{claims.ExpiresAtUnixSeconds}";
        if (!await used.TryConsumeAsync(once, claims.ExpiresAt, time.GetUtcNow(), cancellationToken).ConfigureAwait(false))
        {
            return Page(http, StatusCodes.Status409Conflict, "Already decided", "<p>A decision from this link's approver was already recorded. Nothing changed.</p>");
        }

        try
        {
            // Both hosts' clients agree on this; their errors for a missing or finished instance differ.
            var instance = await client.GetInstanceAsync(claims.InstanceId, false, cancellationToken).ConfigureAwait(false);
            if (instance is null || instance.IsCompleted)
            {
                return NoLongerWaiting(http);
            }

            await client.RaiseEventAsync(claims.InstanceId, claims.EventName, new ApprovalDecision(claims.Decision, claims.Approver, time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OrchestrationNotFoundException or OrchestrationStateException)
        {
            return NoLongerWaiting(http);
        }
        catch
        {
            // Not recorded (e.g. the store is unavailable): give the approver their link back so a retry works.
            await used.ReleaseAsync(once, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        var done = claims.Decision == ApprovalDecisions.Approve ? "approved" : "rejected";
        return Page(http, StatusCodes.Status200OK, $"Recorded: {done}", $"<p>Thank you. The request <code>{HtmlEncoder.Default.Encode(claims.InstanceId)}</code> was {done}.</p>");
    }

    private static IResult NoLongerWaiting(HttpContext http) =>
        Page(http, StatusCodes.Status410Gone, "No longer waiting", "<p>This request is no longer waiting for a decision.</p>");

    private static IResult Refusal(HttpContext http, ApprovalTokenProblem problem) => problem == ApprovalTokenProblem.Expired
        ? Page(http, StatusCodes.Status410Gone, "Link expired", "<p>This approval link has expired. Nothing changed.</p>")
        : Page(http, StatusCodes.Status403Forbidden, "Link not valid", "<p>This approval link is not valid. Nothing changed.</p>");

    private static IResult Page(HttpContext http, int status, string title, string body)
    {
        ArgumentNullException.ThrowIfNull(http);
        // The token is a capability: never cache the page or send it on as a referrer.
        var h = http.Response.Headers;
        h.CacheControl = "no-store";
        h["Referrer-Policy"] = "no-referrer";
        h.XContentTypeOptions = "nosniff";
        h.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        var encodedTitle = HtmlEncoder.Default.Encode(title);
        var html = $$"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{encodedTitle}} · DurableAgents</title>
            <style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#111;line-height:1.5}
            button{font-size:1.1rem;padding:.6rem 1.4rem;background:#0b57d0;color:#fff;border:0;border-radius:.4rem;cursor:pointer}
            button:focus{outline:3px solid #111;outline-offset:2px}.small{color:#444;font-size:.9rem}</style></head>
            <body><main><h1>{{encodedTitle}}</h1>{{body}}</main></body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", statusCode: status);
    }
}
