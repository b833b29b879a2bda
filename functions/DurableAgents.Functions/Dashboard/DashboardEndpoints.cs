using System.Globalization;
using System.Text;
using System.Text.Json;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Email;
using DurableAgents.Activities.Llm;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Storage;
using DurableAgents.Functions.Apis;
using DurableAgents.Functions.Hosting;
using DurableAgents.Functions.Http;
using Microsoft.AspNetCore.Antiforgery;
using static DurableAgents.Functions.Dashboard.Html;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;

namespace DurableAgents.Functions.Dashboard;

/// <summary>
/// The dashboard at /dashboard: server-rendered pages (no JavaScript build; a few lines of plain JS for the
/// live token stream) over the same client, ledger and outbox the API uses, behind the API's access rule.
/// </summary>
internal static class DashboardEndpoints
{
    private static readonly string[] Actions = ["terminate", "suspend", "resume", "purge", "restart", "raise", "approve", "reject"];

    public static void MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapGet("/dashboard/assets/dashboard.css", () => Results.Text(Assets.Css, "text/css")).ExcludeFromDescription();
        app.MapGet("/dashboard/assets/dashboard.js", () => Results.Text(Assets.Js, "text/javascript")).ExcludeFromDescription();
        app.MapGet("/dashboard/login", LoginPage).ExcludeFromDescription();
        app.MapPost("/dashboard/login", LoginAsync).ExcludeFromDescription();

        var d = app.MapGroup("/dashboard").AddEndpointFilter<DashboardAuthFilter>().ExcludeFromDescription();
        d.MapGet("/", InstancesAsync);
        d.MapGet("/instances/{instanceId}", DetailAsync);
        d.MapGet("/instances/{instanceId}/stream", LiveApi.StreamAsync);
        d.MapGet("/instances/{instanceId}/confirm", ConfirmAsync);
        d.MapPost("/instances/{instanceId}/actions/{action}", ActAsync);
        d.MapGet("/costs", CostsAsync);
        d.MapGet("/schedules", SchedulesAsync);
        d.MapGet("/schedules/{id}/confirm", ConfirmSchedule);
        d.MapPost("/schedules/{id}/actions/{action}", ScheduleActAsync);
        d.MapGet("/outbox", Outbox);
    }

    // ---- Instances -------------------------------------------------------------------------------

    private static async Task<IResult> InstancesAsync(
        HttpContext http, DurableAgentsClient client, CancellationToken cancellationToken,
        string? status = null, string? name = null, string? createdFrom = null, string? createdTo = null, string? prefix = null, string? pageSize = null, string? page = null, string? refresh = null)
    {
        // Numbers arrive as text: an empty form field must mean "default", not a binding failure.
        var problems = new List<string>();
        var size = 25;
        if (!string.IsNullOrEmpty(pageSize) && (!int.TryParse(pageSize, CultureInfo.InvariantCulture, out size) || size is < 1 or > 200))
        {
            problems.Add("Page size must be a number between 1 and 200.");
            size = 25;
        }

        int? refreshSeconds = null;
        if (!string.IsNullOrEmpty(refresh))
        {
            if (int.TryParse(refresh, CultureInfo.InvariantCulture, out var r) && r is >= 2 and <= 3600)
            {
                refreshSeconds = r;
            }
            else
            {
                problems.Add("Refresh must be a number of seconds between 2 and 3600.");
            }
        }

        List<OrchestrationRuntimeStatus>? statuses = null;
        if (!string.IsNullOrEmpty(status))
        {
            if (Enum.TryParse<OrchestrationRuntimeStatus>(status, true, out var s) && Enum.IsDefined(s))
            {
                statuses = [s];
            }
            else
            {
                problems.Add($"'{status}' is not a status.");
            }
        }

        var from = ParseTime(createdFrom, "created from", problems);
        var to = ParseTime(createdTo, "created to", problems);
        var query = new InstanceQuery
        {
            Statuses = problems.Count == 0 ? statuses : null,
            Name = string.IsNullOrWhiteSpace(name) ? null : name.Trim(),
            CreatedFrom = from,
            CreatedTo = to,
            InstanceIdPrefix = string.IsNullOrWhiteSpace(prefix) ? null : prefix.Trim(),
            PageSize = size,
            ContinuationToken = string.IsNullOrEmpty(page) ? null : page,
        };
        var counts = await client.CountInstancesAsync(query, cancellationToken).ConfigureAwait(false);
        var result = await client.QueryInstancesAsync(query, cancellationToken).ConfigureAwait(false);

        var sb = new StringBuilder();
        foreach (var p in problems)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<p class=\"flash error\" role=\"alert\">{E(p)}</p>");
        }

        string Filter(string? st) => "/dashboard?" + string.Join("&", new[] { ("status", st), ("name", name), ("createdFrom", createdFrom), ("createdTo", createdTo), ("prefix", prefix) }
            .Where(x => !string.IsNullOrEmpty(x.Item2)).Select(x => $"{x.Item1}={U(x.Item2)}"));
        sb.Append("<h2 id=\"counts\">Counts</h2><ul class=\"counts\" aria-labelledby=\"counts\">");
        sb.Append(CultureInfo.InvariantCulture, $"<li><a href=\"{E(Filter(null))}\">All <strong>{counts.Values.Sum()}</strong></a></li>");
        foreach (var s in Statuses.Shown)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<li><a href=\"{E(Filter(s.ToString()))}\" data-status=\"{s}\">{s} <strong>{counts.GetValueOrDefault(s)}</strong></a></li>");
        }

        sb.Append("</ul><form class=\"filters\" method=\"get\" action=\"/dashboard\" aria-label=\"Filter instances\">");
        sb.Append("<div><label for=\"f-status\">Status</label><select id=\"f-status\" name=\"status\"><option value=\"\">Any</option>");
        foreach (var s in Statuses.Shown.Select(x => x.ToString()))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<option{(string.Equals(s, status, StringComparison.OrdinalIgnoreCase) ? " selected" : string.Empty)}>{s}</option>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"</select></div><div><label for=\"f-name\">Workflow</label><input id=\"f-name\" name=\"name\" value=\"{E(name)}\"></div>");
        sb.Append(CultureInfo.InvariantCulture, $"<div><label for=\"f-prefix\">Id starts with</label><input id=\"f-prefix\" name=\"prefix\" value=\"{E(prefix)}\"></div>");
        sb.Append(CultureInfo.InvariantCulture, $"<div><label for=\"f-from\">Created from (UTC)</label><input id=\"f-from\" name=\"createdFrom\" type=\"datetime-local\" value=\"{E(createdFrom)}\"></div>");
        sb.Append(CultureInfo.InvariantCulture, $"<div><label for=\"f-to\">Created before (UTC)</label><input id=\"f-to\" name=\"createdTo\" type=\"datetime-local\" value=\"{E(createdTo)}\"></div>");
        sb.Append(CultureInfo.InvariantCulture, $"<div><label for=\"f-size\">Per page</label><input id=\"f-size\" name=\"pageSize\" type=\"number\" min=\"1\" max=\"200\" value=\"{size}\"></div>");
        sb.Append(CultureInfo.InvariantCulture, $"<div><label for=\"f-refresh\">Auto-refresh</label><select id=\"f-refresh\" name=\"refresh\"><option value=\"\">Off</option>");
        foreach (var seconds in new[] { 5, 15, 60 })
        {
            sb.Append(CultureInfo.InvariantCulture, $"<option value=\"{seconds}\"{(refreshSeconds == seconds ? " selected" : string.Empty)}>Every {seconds} s</option>");
        }

        sb.Append("</select></div><button type=\"submit\">Apply</button></form>");
        sb.Append("<div class=\"scroll\"><table aria-label=\"Instances\"><thead><tr><th scope=\"col\">Instance</th><th scope=\"col\">Workflow</th><th scope=\"col\">Status</th><th scope=\"col\">Created</th><th scope=\"col\">Updated</th><th scope=\"col\">Custom status</th></tr></thead><tbody>");
        foreach (var i in result.Instances)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard/instances/{U(i.InstanceId)}\">{E(i.InstanceId)}</a></td><td>{E(i.Name)}</td><td>{Badge(i.Status.ToString())}</td><td>{T(i.CreatedAt)}</td><td>{T(i.LastUpdatedAt)}</td><td class=\"muted\">{E(Short(i.CustomStatus, 80))}</td></tr>");
        }

        if (result.Instances.Count == 0)
        {
            sb.Append("<tr><td colspan=\"6\" class=\"muted\">No instances match.</td></tr>");
        }

        sb.Append("</tbody></table></div>");
        if (result.ContinuationToken is { } next)
        {
            var nextUrl = http.Request.Path + QueryWith(http, "page", next);
            sb.Append(CultureInfo.InvariantCulture, $"<p><a href=\"{E(nextUrl)}\" rel=\"next\">Next page →</a></p>");
        }

        return Page(http, "Instances", sb.ToString(), "Instances", refreshSeconds, problems.Count > 0 ? StatusCodes.Status400BadRequest : StatusCodes.Status200OK);
    }

    private static DateTimeOffset? ParseTime(string? value, string label, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (DateTime.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t))
        {
            return new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc));
        }

        problems.Add($"'{value}' is not a date and time ({label}).");
        return null;
    }

    private static string QueryWith(HttpContext http, string key, string value)
    {
        var pairs = http.Request.Query.Where(q => q.Key != key).Select(q => $"{U(q.Key)}={U(q.Value.ToString())}").Append($"{U(key)}={U(value)}");
        return "?" + string.Join("&", pairs);
    }

    // ---- Instance detail -------------------------------------------------------------------------

    private static async Task<IResult> DetailAsync(string instanceId, HttpContext http, DurableAgentsClient client, CancellationToken cancellationToken)
    {
        var record = await client.GetInstanceRecordAsync(instanceId, true, cancellationToken).ConfigureAwait(false);
        var m = record is null ? null : client.ToMetadata(record);
        if (m is null)
        {
            return Page(http, "Not found", $"<p>No instance <code>{E(instanceId)}</code>. <a href=\"/dashboard\">All instances</a></p>", "Instances", status: StatusCodes.Status404NotFound);
        }

        var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
        var running = m.RuntimeStatus is OrchestrationRuntimeStatus.Running or OrchestrationRuntimeStatus.Pending or OrchestrationRuntimeStatus.Suspended;
        var view = InstanceView.From(history, running);
        var sb = new StringBuilder();
        sb.Append("<dl class=\"summary\">");
        sb.Append(CultureInfo.InvariantCulture, $"<dt>Workflow</dt><dd>{E(m.Name)}</dd><dt>Status</dt><dd>{Badge(m.RuntimeStatus.ToString())}</dd>");
        sb.Append(CultureInfo.InvariantCulture, $"<dt>Created</dt><dd>{T(m.CreatedAt)}</dd><dt>Updated</dt><dd>{T(m.LastUpdatedAt)}</dd>");
        if (record!.ParentInstanceId is { } parent)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<dt>Parent</dt><dd><a href=\"/dashboard/instances/{U(parent)}\">{E(parent)}</a></dd>");
        }

        if (view.Children.Count > 0)
        {
            sb.Append("<dt>Children</dt><dd>").AppendJoin(", ", view.Children.Select(c => $"<a href=\"/dashboard/instances/{U(c)}\">{E(c)}</a>")).Append("</dd>");
        }

        if (m.FailureDetails is { } failure)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<dt>Failure</dt><dd>{E(failure.ErrorType)}: {E(failure.ErrorMessage)}</dd>");
        }

        sb.Append("</dl>");

        // Actions: each goes through a confirmation page.
        sb.Append("<h2 id=\"actions\">Actions</h2><div class=\"actions\" role=\"group\" aria-labelledby=\"actions\">");
        void Action(string action, string label, bool danger = false) =>
            sb.Append(CultureInfo.InvariantCulture, $"<a class=\"button{(danger ? " danger" : string.Empty)}\" href=\"/dashboard/instances/{U(instanceId)}/confirm?action={action}\">{label}</a>");
        if (view.Approval is not null)
        {
            Action("approve", "Approve…");
            Action("reject", "Reject…", danger: true);
        }

        if (running)
        {
            Action("raise", "Raise event…");
            Action(m.RuntimeStatus == OrchestrationRuntimeStatus.Suspended ? "resume" : "suspend", m.RuntimeStatus == OrchestrationRuntimeStatus.Suspended ? "Resume…" : "Suspend…");
            Action("terminate", "Terminate…", danger: true);
        }
        else
        {
            Action("purge", "Purge…", danger: true);
        }

        Action("restart", "Restart with the same input…");
        sb.Append("</div>");

        if (running && view.Turns.Count > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<h2 id=\"live-h\">Live tokens</h2><section id=\"live\" aria-labelledby=\"live-h\" aria-live=\"polite\" data-stream=\"/dashboard/instances/{U(instanceId)}/stream\"><pre id=\"live-text\"></pre><p class=\"muted\">Tokens of streaming model calls appear here while they arrive.</p></section>");
        }

        sb.Append("<h2>Timeline</h2>").Append(Timeline(view.Spans, m.CreatedAt));
        AgentSection(sb, view);

        sb.Append(CultureInfo.InvariantCulture, $"<h2>Custom status</h2><pre>{E(PrettyJson(m.SerializedCustomStatus))}</pre>");
        sb.Append(CultureInfo.InvariantCulture, $"<h2>Input</h2><pre>{E(PrettyJson(m.SerializedInput))}</pre>");
        sb.Append(CultureInfo.InvariantCulture, $"<h2>Output</h2><pre>{E(PrettyJson(m.SerializedOutput))}</pre>");
        sb.Append(CultureInfo.InvariantCulture, $"<details><summary>History ({history.Count} events)</summary><ol>");
        foreach (var e in history)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<li>{T(e.Timestamp)} <strong>{E(e.EventType)}</strong>{(e.EventId >= 0 ? " #" + e.EventId : string.Empty)}</li>");
        }

        sb.Append("</ol></details>");
        return Page(http, instanceId, sb.ToString(), "Instances", running && http.Request.Query.ContainsKey("refresh") ? 5 : null);
    }

    private static void AgentSection(StringBuilder sb, InstanceView view)
    {
        if (view.Turns.Count == 0)
        {
            return;
        }

        var tokens = view.Turns.Sum(t => t.InputTokens + t.OutputTokens);
        sb.Append(CultureInfo.InvariantCulture, $"<h2>Agent view</h2><p>{view.Turns.Count} LLM turns, {tokens} tokens, cost {InstanceView.Cost(view.Turns.Sum(t => t.Cost))}, {view.Turns.Sum(t => t.ToolCalls.Count)} tool calls.</p>");
        var n = 0;
        foreach (var t in view.Turns)
        {
            n++;
            sb.Append(CultureInfo.InvariantCulture, $"<details class=\"turn\"><summary>Turn {n}: {E(t.Agent)} · model {E(t.Model)} · {t.InputTokens} in / {t.OutputTokens} out tokens · cost {InstanceView.Cost(t.Cost)}{(t.CacheHit ? " · cache hit" : string.Empty)}{(t.ToolCalls.Count > 0 ? $" · {t.ToolCalls.Count} tool calls" : string.Empty)}{(t.Duration is { } d ? " · " + D(d) : string.Empty)}</summary>");
            if (t.Error is not null)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<p class=\"flash error\">{E(t.Error)}</p>");
            }

            if (!string.IsNullOrEmpty(t.Text))
            {
                sb.Append(CultureInfo.InvariantCulture, $"<pre>{E(t.Text)}</pre>");
            }

            foreach (var c in t.ToolCalls)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<details class=\"tool\"><summary>Tool {E(c.Tool)} · {E(c.Status)}{(c.Duration is { } cd ? " · " + D(cd) : string.Empty)}</summary><h3>Arguments</h3><pre>{E(PrettyJson(c.Arguments))}</pre><h3>Result</h3><pre>{E(PrettyJson(c.Result))}</pre></details>");
            }

            sb.Append("</details>");
        }
    }

    /// <summary>A Gantt-style SVG of the spans, and the same as a table.</summary>
    private static string Timeline(List<Span> spans, DateTimeOffset created)
    {
        if (spans.Count == 0)
        {
            return "<p class=\"muted\">Nothing scheduled yet.</p>";
        }

        var start = spans.Min(s => s.Start);
        var end = spans.Max(s => s.End ?? s.Start);
        var total = Math.Max((end - start).TotalMilliseconds, 1);
        const int LabelWidth = 250, Width = 900, Row = 24;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<div class=\"scroll\"><svg role=\"img\" aria-labelledby=\"tl-title\" viewBox=\"0 0 {Width} {(spans.Count * Row) + 10}\" width=\"100%\" style=\"min-width:600px\"><title id=\"tl-title\">Timeline of {spans.Count} steps over {D(end - start)}</title>");
        for (var i = 0; i < spans.Count; i++)
        {
            var s = spans[i];
            var y = (i * Row) + 5;
            var x = LabelWidth + ((s.Start - start).TotalMilliseconds / total * (Width - LabelWidth - 10));
            var w = Math.Max(((s.End ?? end) - s.Start).TotalMilliseconds / total * (Width - LabelWidth - 10), 3);
            var color = s.Outcome.StartsWith("failed", StringComparison.Ordinal) ? "#a3161b" : s.Kind switch { "timer" => "#7a4b00", "sub-orchestration" => "#5b2a86", "event" => "#0a6b2f", _ => "#0b57d0" };
            var label = s.Name + (s.Attempt > 1 ? $" (retry {s.Attempt - 1})" : string.Empty);
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"span\" data-kind=\"{E(s.Kind)}\"><text x=\"4\" y=\"{y + 15}\">{E(Short(label, 34))}</text><rect x=\"{x:0.#}\" y=\"{y + 3}\" width=\"{w:0.#}\" height=\"{Row - 8}\" fill=\"{color}\" rx=\"2\"><title>{E(label)}: {E(s.Outcome)}, {(s.End is { } e ? D(e - s.Start) : "still running")}</title></rect></g>");
        }

        sb.Append("</svg></div><details><summary>Timeline as a table</summary><div class=\"scroll\"><table><thead><tr><th scope=\"col\">Step</th><th scope=\"col\">Kind</th><th scope=\"col\">Started</th><th scope=\"col\" class=\"num\">Duration</th><th scope=\"col\">Outcome</th></tr></thead><tbody>");
        foreach (var s in spans)
        {
            var name = s.Link is { } link ? $"<a href=\"/dashboard/instances/{U(link)}\">{E(s.Name)}</a>" : E(s.Name);
            sb.Append(CultureInfo.InvariantCulture, $"<tr class=\"timeline-row\"><td>{name}{(s.Attempt > 1 ? $" (retry {s.Attempt - 1})" : string.Empty)}</td><td>{E(s.Kind)}</td><td>+{D(s.Start - created)}</td><td class=\"num\">{(s.End is { } e ? D(e - s.Start) : "—")}</td><td>{E(s.Outcome)}</td></tr>");
        }

        sb.Append("</tbody></table></div></details>");
        return sb.ToString();
    }

    // ---- Actions ---------------------------------------------------------------------------------

    private static async Task<IResult> ConfirmAsync(string instanceId, string? action, HttpContext http, DurableTaskClient client, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        if (action is null || !Actions.Contains(action))
        {
            return Page(http, "Unknown action", $"<p>'{E(action)}' is not an action. <a href=\"/dashboard/instances/{U(instanceId)}\">Back</a></p>", "Instances", status: StatusCodes.Status400BadRequest);
        }

        var m = await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false);
        if (m is null)
        {
            return Page(http, "Not found", $"<p>No instance <code>{E(instanceId)}</code>.</p>", "Instances", status: StatusCodes.Status404NotFound);
        }

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<form class=\"stack\" method=\"post\" action=\"/dashboard/instances/{U(instanceId)}/actions/{action}\">{Antiforgery(antiforgery, http)}");
        switch (action)
        {
            case "raise":
                sb.Append("<div><label for=\"c-event\">Event name</label><input id=\"c-event\" name=\"eventName\" required></div><div><label for=\"c-payload\">Payload (JSON)</label><textarea id=\"c-payload\" name=\"payload\" rows=\"4\">null</textarea></div>");
                break;
            case "approve" or "reject":
                var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
                var approval = InstanceView.From(history, running: true).Approval;
                sb.Append("<div><label for=\"c-approver\">Deciding as</label><select id=\"c-approver\" name=\"approver\">");
                foreach (var a in approval?.Approvers ?? [])
                {
                    sb.Append(CultureInfo.InvariantCulture, $"<option>{E(a)}</option>");
                }

                sb.Append("</select></div>");
                break;
            case "terminate" or "suspend" or "resume":
                sb.Append("<div><label for=\"c-reason\">Reason</label><input id=\"c-reason\" name=\"reason\" value=\"from the dashboard\"></div>");
                break;
        }

        var question = action switch
        {
            "terminate" => "Terminate this instance? It stops at once; work in flight is abandoned.",
            "purge" => "Purge this instance? Its history and state are deleted for good.",
            "restart" => "Start a new instance of this workflow with the same input?",
            "approve" => "Approve?",
            "reject" => "Reject?",
            "raise" => "Raise this event?",
            _ => $"{char.ToUpperInvariant(action[0])}{action[1..]} this instance?",
        };
        sb.Append(CultureInfo.InvariantCulture, $"<p>{E(question)}</p><div class=\"actions\"><button type=\"submit\" class=\"{(action is "terminate" or "purge" or "reject" ? "danger" : string.Empty)}\">Yes, {E(action)}</button><a href=\"/dashboard/instances/{U(instanceId)}\">Cancel</a></div></form>");
        return Page(http, $"Confirm: {action} {instanceId}", sb.ToString(), "Instances");
    }

    private static async Task<IResult> ActAsync(string instanceId, string action, HttpContext http, DurableTaskClient client, TimeProvider time, CancellationToken cancellationToken)
    {
        var form = await http.Request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        var back = $"/dashboard/instances/{U(instanceId)}";
        try
        {
            var reason = form["reason"].ToString();
            switch (action)
            {
                case "terminate":
                    await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions(reason, Recursive: true), cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Termination requested.");
                case "suspend":
                    await client.SuspendInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Suspend requested.");
                case "resume":
                    await client.ResumeInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Resume requested.");
                case "purge":
                    var purged = await client.PurgeInstanceAsync(instanceId, new PurgeInstanceOptions(Recursive: true), cancellationToken).ConfigureAwait(false);
                    return purged.PurgedInstanceCount > 0 ? Done(http, "/dashboard", $"Purged {instanceId}.") : Failed(http, back, $"No instance {instanceId} to purge.");
                case "restart":
                    var m = await client.GetInstanceAsync(instanceId, true, cancellationToken).ConfigureAwait(false);
                    if (m is null)
                    {
                        return Failed(http, "/dashboard", $"No instance {instanceId}.");
                    }

                    object? input = null;
                    if (m.SerializedInput is { } raw)
                    {
                        using var doc = JsonDocument.Parse(raw);
                        input = doc.RootElement.Clone();
                    }

                    var id = await client.ScheduleNewOrchestrationInstanceAsync(m.Name, input, cancellation: cancellationToken).ConfigureAwait(false);
                    return Done(http, $"/dashboard/instances/{U(id)}", $"Restarted as {id}.");
                case "raise":
                    var name = form["eventName"].ToString().Trim();
                    if (name.Length == 0)
                    {
                        return Failed(http, back, "An event needs a name.");
                    }

                    JsonElement payload;
                    try
                    {
                        using var doc = JsonDocument.Parse(form["payload"].ToString() is { Length: > 0 } p ? p : "null");
                        payload = doc.RootElement.Clone();
                    }
                    catch (JsonException ex)
                    {
                        return Failed(http, back, $"The payload is not JSON: {ex.Message}");
                    }

                    await client.RaiseEventAsync(instanceId, name, payload, cancellationToken).ConfigureAwait(false);
                    return Done(http, back, $"Event '{name}' raised.");
                case "approve" or "reject":
                    var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
                    var approval = InstanceView.From(history, running: true).Approval;
                    var approver = form["approver"].ToString();
                    if (approval is null || !approval.Approvers.Contains(approver, StringComparer.OrdinalIgnoreCase))
                    {
                        return Failed(http, back, "This instance has no pending approval for that approver.");
                    }

                    var decision = action == "approve" ? ApprovalDecisions.Approve : ApprovalDecisions.Reject;
                    await client.RaiseEventAsync(instanceId, approval.EventName, new ApprovalDecision(decision, approver, time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
                    return Done(http, back, $"{(action == "approve" ? "Approved" : "Rejected")} as {approver}.");
                default:
                    return Failed(http, back, $"'{action}' is not an action.");
            }
        }
        catch (Exception ex) when (ex is OrchestrationStateException or OrchestrationNotFoundException or InvalidPayloadException or PayloadTooLargeException or ArgumentException)
        {
            return Failed(http, back, ex.Message);
        }
    }

    private static IResult Done(HttpContext http, string url, string message) => Redirect(http, url, "ok", message);

    private static IResult Failed(HttpContext http, string url, string message) => Redirect(http, url, "error", message);

    /// <summary>Post/redirect/get; the result travels in a one-minute cookie, so no page shows text taken from its URL.</summary>
    private static IResult Redirect(HttpContext http, string url, string kind, string message)
    {
        http.Response.Cookies.Append(Html.FlashCookie, kind + "|" + message, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = "/dashboard", MaxAge = TimeSpan.FromMinutes(1) });
        return Results.Redirect(url);
    }

    // ---- Costs -----------------------------------------------------------------------------------

    private static async Task<IResult> CostsAsync(HttpContext http, IModelLedger ledger, TimeProvider time, IServiceProvider services, CancellationToken cancellationToken)
    {
        var workflows = await ledger.GetWorkflowTotalsAsync(cancellationToken).ConfigureAwait(false);
        var since = time.GetUtcNow().UtcDateTime.Date.AddDays(-29);
        var daily = await ledger.GetDailyTotalsAsync(new DateTimeOffset(since, TimeSpan.Zero), cancellationToken).ConfigureAwait(false);
        var top = await ledger.GetTopInstancesAsync(10, cancellationToken).ConfigureAwait(false);
        var sb = new StringBuilder();
        var totalTokens = workflows.Sum(w => w.InputTokens + w.OutputTokens);
        var totalCost = workflows.Sum(w => w.Cost);
        var savedCost = workflows.Sum(EstimatedSavings);
        sb.Append(CultureInfo.InvariantCulture, $"<dl class=\"summary\"><dt>Tokens</dt><dd id=\"total-tokens\">{totalTokens}</dd><dt>Cost</dt><dd>{InstanceView.Cost(totalCost)}</dd><dt>Cache hits</dt><dd>{workflows.Sum(w => w.CacheHits)} (saved about {InstanceView.Cost(savedCost)})</dd><dt>Budget refusals</dt><dd>{workflows.Sum(w => w.BudgetRefusals)}</dd><dt>Interrupted attempts</dt><dd id=\"interrupted\">{workflows.Sum(w => w.Interrupted)} (estimated {InstanceView.Cost(workflows.Sum(w => w.InterruptedCost))}, not in the cost above)</dd></dl>");

        sb.Append("<h2 id=\"per-day\">Tokens per day (last 30 days, UTC)</h2>").Append(DailyChart(daily, since));
        sb.Append("<h2>Per workflow</h2><div class=\"scroll\"><table aria-label=\"Usage per workflow\"><thead><tr><th scope=\"col\">Workflow</th><th scope=\"col\" class=\"num\">Calls</th><th scope=\"col\" class=\"num\">Input tokens</th><th scope=\"col\" class=\"num\">Output tokens</th><th scope=\"col\" class=\"num\">Cost</th><th scope=\"col\" class=\"num\">Cache hits</th><th scope=\"col\" class=\"num\">Saved by cache (est.)</th><th scope=\"col\" class=\"num\">Budget refusals</th><th scope=\"col\" class=\"num\">Interrupted (est. cost)</th></tr></thead><tbody>");
        foreach (var w in workflows.OrderByDescending(w => w.Cost).ThenByDescending(w => w.InputTokens + w.OutputTokens))
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard?name={U(w.Key)}\">{E(w.Key)}</a></td><td class=\"num\">{w.Calls}</td><td class=\"num\">{w.InputTokens}</td><td class=\"num\">{w.OutputTokens}</td><td class=\"num\">{InstanceView.Cost(w.Cost)}</td><td class=\"num\">{w.CacheHits}</td><td class=\"num\">{InstanceView.Cost(EstimatedSavings(w))}</td><td class=\"num\">{w.BudgetRefusals}</td><td class=\"num\">{w.Interrupted} ({InstanceView.Cost(w.InterruptedCost)})</td></tr>");
        }

        sb.Append("</tbody></table></div><h2>Top spenders</h2><div class=\"scroll\"><table aria-label=\"Top spending instances\"><thead><tr><th scope=\"col\">Instance</th><th scope=\"col\" class=\"num\">Calls</th><th scope=\"col\" class=\"num\">Tokens</th><th scope=\"col\" class=\"num\">Cost</th></tr></thead><tbody>");
        foreach (var t in top)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard/instances/{U(t.Key)}\">{E(t.Key)}</a></td><td class=\"num\">{t.Calls}</td><td class=\"num\">{t.InputTokens + t.OutputTokens}</td><td class=\"num\">{InstanceView.Cost(t.Cost)}</td></tr>");
        }

        sb.Append("</tbody></table></div><p class=\"muted\">Savings are estimated: cache hits × the workflow's average cost per paid call. Interrupted attempts were sent and never settled (their host died, or their task ran again): the provider may have billed them; their estimates count against budgets.</p>");
        await AppendRateLimitsAsync(sb, services, time, cancellationToken).ConfigureAwait(false);
        return Page(http, "Costs", sb.ToString(), "Costs");
    }

    /// <summary>Each rate-limited deployment's use of the last minute, who is waiting, and who waited (a day).</summary>
    private static async Task AppendRateLimitsAsync(StringBuilder sb, IServiceProvider services, TimeProvider time, CancellationToken cancellationToken)
    {
        if (services.GetService<ModelRateLimiter>() is not { } limiter || services.GetService<IOptions<LlmOptions>>() is not { } options)
        {
            return;
        }

        var deployments = ModelService.EffectiveProfiles(options.Value).Values
            .SelectMany(p => p.Providers)
            .Where(p => ModelLimits.Of(p) is not null)
            .GroupBy(p => p.DeploymentKey)
            .ToList();
        if (deployments.Count == 0)
        {
            return;
        }

        static string Of(long used, int? cap) => cap is { } c ? string.Create(CultureInfo.InvariantCulture, $"{used} / {c} ({(c == 0 ? 0 : 100.0 * used / c):0} %)") : used.ToString(CultureInfo.InvariantCulture);
        sb.Append("<h2 id=\"rate-limits\">Rate limits (last minute)</h2><div class=\"scroll\"><table aria-label=\"Rate-limit utilisation per deployment\"><thead><tr><th scope=\"col\">Deployment</th><th scope=\"col\">Model</th><th scope=\"col\" class=\"num\">Requests / RPM</th><th scope=\"col\" class=\"num\">Tokens / TPM</th><th scope=\"col\" class=\"num\">In flight</th><th scope=\"col\" class=\"num\">Waiting (interactive, batch)</th><th scope=\"col\">Held in</th></tr></thead><tbody>");
        foreach (var group in deployments)
        {
            var provider = group.First();
            var limits = ModelLimits.Of(provider)!;
            var now = await limiter.SnapshotAsync(group.Key, cancellationToken).ConfigureAwait(false);
            var names = string.Join(", ", group.Select(p => p.EffectiveName).Distinct(StringComparer.OrdinalIgnoreCase));
            sb.Append(CultureInfo.InvariantCulture, $"<tr data-deployment=\"{E(names)}\"><td>{E(names)}</td><td>{E(provider.Model)}</td><td class=\"num\">{Of(now.Requests, limits.RequestsPerMinute)}</td><td class=\"num\">{Of(now.Tokens, limits.TokensPerMinute)}</td><td class=\"num\">{(limits.MaxConcurrent is { } max ? $"{now.InFlight} / {max}" : now.InFlight)}</td><td class=\"num\">{now.WaitingInteractive}, {now.WaitingBatch}</td><td>{E(now.Store)}</td></tr>");
        }

        sb.Append("</tbody></table></div>");
        if (services.GetService<RateLimitWaits>() is { } waits)
        {
            var waited = await waits.ListAsync(time.GetUtcNow() - RateLimitWaits.Retention, 20, cancellationToken).ConfigureAwait(false);
            sb.Append("<h2 id=\"who-waited\">Who waited (last 24 hours, longest first)</h2>");
            if (waited.Count == 0)
            {
                sb.Append("<p class=\"muted\">No call waited for capacity.</p>");
                return;
            }

            sb.Append("<div class=\"scroll\"><table aria-label=\"Calls that waited for capacity\"><thead><tr><th scope=\"col\">Instance</th><th scope=\"col\">Workflow</th><th scope=\"col\">Lane</th><th scope=\"col\">Deployment</th><th scope=\"col\" class=\"num\">Waited</th><th scope=\"col\">Granted</th></tr></thead><tbody>");
            foreach (var w in waited)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard/instances/{U(w.InstanceId)}\">{E(w.InstanceId)}</a></td><td>{E(w.Workflow)}</td><td>{E(w.Lane)}</td><td>{E(w.Deployment)}</td><td class=\"num\">{Html.D(w.Waited)}</td><td>{Html.T(w.GrantedAt)}</td></tr>");
            }

            sb.Append("</tbody></table></div><p class=\"muted\">A wait runs from a call's first refusal to its grant, across durable timers. Interactive calls go first; batch calls keep a guaranteed share.</p>");
        }
    }

    private static decimal EstimatedSavings(ModelUsageTotals w)
    {
        var paid = w.Calls - w.CacheHits;
        return paid <= 0 ? 0 : w.CacheHits * (w.Cost / paid);
    }

    private static string DailyChart(IReadOnlyList<ModelUsageTotals> daily, DateTime since)
    {
        var days = Enumerable.Range(0, 30).Select(i => since.AddDays(i).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)).ToList();
        var byDay = daily.ToDictionary(d => d.Key, d => d);
        var max = Math.Max(1, daily.Select(d => d.InputTokens + d.OutputTokens).DefaultIfEmpty(0).Max());
        const int W = 900, H = 220, Left = 50, Bottom = 30;
        var bar = (W - Left - 10) / (double)days.Count;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<div class=\"scroll\"><svg role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 {W} {H}\" width=\"100%\" style=\"min-width:480px\"><title id=\"chart-title\">Tokens per day; the most on one day: {max}</title>");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{H - Bottom}\" x2=\"{W - 10}\" y2=\"{H - Bottom}\" stroke=\"#4a5360\"/><text x=\"4\" y=\"14\">{max}</text><text x=\"4\" y=\"{H - Bottom}\">0</text>");
        for (var i = 0; i < days.Count; i++)
        {
            var tokens = byDay.TryGetValue(days[i], out var t) ? t.InputTokens + t.OutputTokens : 0;
            var h = tokens * (H - Bottom - 20) / (double)max;
            var x = Left + (i * bar) + 2;
            sb.Append(CultureInfo.InvariantCulture, $"<rect class=\"day\" x=\"{x:0.#}\" y=\"{H - Bottom - h:0.#}\" width=\"{bar - 4:0.#}\" height=\"{h:0.#}\" fill=\"#0b57d0\"><title>{days[i]}: {tokens} tokens</title></rect>");
            if (i % 5 == 0)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:0.#}\" y=\"{H - 10}\">{days[i][5..]}</text>");
            }
        }

        sb.Append("</svg></div><details><summary>Per day as a table</summary><table><thead><tr><th scope=\"col\">Day</th><th scope=\"col\" class=\"num\">Calls</th><th scope=\"col\" class=\"num\">Tokens</th><th scope=\"col\" class=\"num\">Cost</th></tr></thead><tbody>");
        foreach (var d in daily)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(d.Key)}</td><td class=\"num\">{d.Calls}</td><td class=\"num\">{d.InputTokens + d.OutputTokens}</td><td class=\"num\">{InstanceView.Cost(d.Cost)}</td></tr>");
        }

        sb.Append("</tbody></table></details>");
        return sb.ToString();
    }

    // ---- Schedules and outbox --------------------------------------------------------------------

    private static async Task<IResult> SchedulesAsync(HttpContext http, DurableTaskClient client, TimeProvider time, CancellationToken cancellationToken)
    {
        var schedules = await ScheduleRules.ListAsync(client, time, cancellationToken).ConfigureAwait(false);
        var sb = new StringBuilder("<div class=\"scroll\"><table aria-label=\"Schedules\"><thead><tr><th scope=\"col\">Schedule</th><th scope=\"col\">Workflow</th><th scope=\"col\">Cron</th><th scope=\"col\">Next occurrences</th><th scope=\"col\">State</th><th scope=\"col\">Action</th></tr></thead><tbody>");
        foreach (var s in schedules)
        {
            var action = s.Paused ? "resume" : "pause";
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard/instances/{U("schedule:" + s.Definition.Id)}\">{E(s.Definition.Id)}</a></td><td>{E(s.Definition.Orchestrator)}</td><td><code>{E(s.Definition.Cron)}</code> {E(s.Definition.TimeZone)}</td><td>{string.Join("<br>", s.NextOccurrences.Select(o => T(new DateTimeOffset(o, TimeSpan.Zero))))}</td><td>{(s.Paused ? Badge("Suspended") : Badge("Running"))}</td><td><a href=\"/dashboard/schedules/{U(s.Definition.Id)}/confirm?action={action}\">{(s.Paused ? "Resume…" : "Pause…")}</a></td></tr>");
        }

        if (schedules.Count == 0)
        {
            sb.Append("<tr><td colspan=\"6\" class=\"muted\">No schedules. Define them under DurableAgents:Schedules or POST /api/schedules.</td></tr>");
        }

        sb.Append("</tbody></table></div>");
        return Page(http, "Schedules", sb.ToString(), "Schedules");
    }

    private static IResult ConfirmSchedule(string id, string? action, HttpContext http, IAntiforgery antiforgery)
    {
        if (action is not ("pause" or "resume"))
        {
            return Page(http, "Unknown action", "<p>Schedules can be paused or resumed.</p>", "Schedules", status: StatusCodes.Status400BadRequest);
        }

        var body = $"<form method=\"post\" action=\"/dashboard/schedules/{U(id)}/actions/{action}\">{Antiforgery(antiforgery, http)}<p>{E(action == "pause" ? "Pause" : "Resume")} the schedule {E(id)}?</p><div class=\"actions\"><button type=\"submit\">Yes, {E(action)}</button><a href=\"/dashboard/schedules\">Cancel</a></div></form>";
        return Page(http, $"Confirm: {action} {id}", body, "Schedules");
    }

    private static async Task<IResult> ScheduleActAsync(string id, string action, HttpContext http, DurableTaskClient client, CancellationToken cancellationToken)
    {
        try
        {
            var instance = "schedule:" + id;
            if (action == "pause")
            {
                await client.SuspendInstanceAsync(instance, "paused from the dashboard", cancellationToken).ConfigureAwait(false);
            }
            else if (action == "resume")
            {
                await client.ResumeInstanceAsync(instance, "resumed from the dashboard", cancellationToken).ConfigureAwait(false);
            }
            else
            {
                return Failed(http, "/dashboard/schedules", $"'{action}' is not a schedule action.");
            }

            return Done(http, "/dashboard/schedules", $"Schedule {id}: {action} requested.");
        }
        catch (Exception ex) when (ex is OrchestrationStateException or OrchestrationNotFoundException or ArgumentException)
        {
            return Failed(http, "/dashboard/schedules", ex.Message);
        }
    }

    private static IResult Outbox(HttpContext http, IEmailSender sender, DevelopmentOutbox outbox)
    {
        var sb = new StringBuilder();
        if (sender is not DevelopmentOutbox)
        {
            sb.Append("<p>Email goes out by SMTP (DurableAgents:Smtp), so the development outbox is empty.</p>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<p>{outbox.Messages.Count} messages, newest first.</p>");
        foreach (var entry in outbox.Messages)
        {
            var links = System.Text.RegularExpressions.Regex.Matches(entry.Message.TextBody, @"https?://\S+").Select(x => x.Value).ToList();
            sb.Append(CultureInfo.InvariantCulture, $"<article class=\"mail\"><h2>{E(entry.Message.Subject)}</h2><p class=\"muted\">To {E(entry.Message.To)} · {T(entry.QueuedAt)}</p><pre>{E(entry.Message.TextBody)}</pre>");
            if (links.Count > 0)
            {
                sb.Append("<ul>").AppendJoin(string.Empty, links.Select(l => $"<li><a href=\"{E(l)}\">{E(Short(l, 60))}</a></li>")).Append("</ul>");
            }

            sb.Append("</article>");
        }

        return Page(http, "Outbox", sb.ToString(), "Outbox");
    }

    // ---- Login -----------------------------------------------------------------------------------

    private static IResult LoginPage(HttpContext http, IAntiforgery antiforgery, string? returnUrl = null)
    {
        var body = $"<form class=\"stack\" method=\"post\" action=\"/dashboard/login\">{Antiforgery(antiforgery, http)}<input type=\"hidden\" name=\"returnUrl\" value=\"{E(returnUrl)}\"><div><label for=\"key\">API key</label><input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required></div><p><button type=\"submit\">Sign in</button></p></form><p class=\"muted\">Any key of DurableAgents:Api:Keys. It is kept in an HttpOnly cookie for this site.</p>";
        return Page(http, "Sign in", body, string.Empty);
    }

    private static async Task<IResult> LoginAsync(HttpContext http, IAntiforgery antiforgery, ApiKeyFilter keys, CancellationToken cancellationToken)
    {
        if (!await antiforgery.IsRequestValidAsync(http).ConfigureAwait(false))
        {
            return Page(http, "Sign in", "<p class=\"flash error\" role=\"alert\">The form expired. <a href=\"/dashboard/login\">Try again</a>.</p>", string.Empty, status: StatusCodes.Status400BadRequest);
        }

        var form = await http.Request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        var key = form["key"].ToString();
        var returnUrl = form["returnUrl"].ToString();
        if (!keys.HasKeys || !keys.Matches(key))
        {
            return Page(http, "Sign in", "<p class=\"flash error\" role=\"alert\">That is not a valid API key. <a href=\"/dashboard/login\">Try again</a>.</p>", string.Empty, status: StatusCodes.Status401Unauthorized);
        }

        http.Response.Cookies.Append(DashboardAuthFilter.CookieName, ApiKeyFilter.SessionToken(key), new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = "/dashboard", MaxAge = TimeSpan.FromHours(12) });
        var safe = returnUrl.StartsWith("/dashboard", StringComparison.Ordinal) && !returnUrl.StartsWith("//", StringComparison.Ordinal) ? returnUrl : "/dashboard";
        return Results.Redirect(safe);
    }
}
