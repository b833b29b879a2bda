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
using DurableAgents.Activities.Live;
using DurableAgents.Functions.Dashboard.Pages;
using static DurableAgents.Functions.Dashboard.Format;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;

namespace DurableAgents.Functions.Dashboard;

/// <summary>
/// The dashboard at /dashboard: server-rendered pages (no JavaScript build; a few lines of plain JS for the
/// live token stream) over the same client, ledger and outbox the API uses, behind the API's access rule.
/// </summary>
internal static class DashboardEndpoints
{
    /// <summary>The stylesheet and script at /dashboard/assets/, static files embedded in the app (revalidated by ETag).</summary>
    public static void UseDashboardAssets(this IApplicationBuilder app) =>
        app.UseStaticFiles(new StaticFileOptions
        {
            RequestPath = "/dashboard/assets",
            FileProvider = new EmbeddedFileProvider(typeof(DashboardEndpoints).Assembly, "DurableAgents.Functions.Dashboard.Assets"),
            OnPrepareResponse = c => c.Context.Response.Headers.CacheControl = "no-cache",
        });

    public static void MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapGet("/dashboard/login", SignInPage).ExcludeFromDescription();
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
        var (filter, query) = InstanceFilter.Parse(status, name, prefix, createdFrom, createdTo, pageSize, refresh, page, problems);
        var counts = await client.CountInstancesAsync(query, cancellationToken).ConfigureAwait(false);
        var result = await client.QueryInstancesAsync(query, cancellationToken).ConfigureAwait(false);
        var next = result.ContinuationToken is { } token ? http.Request.Path + QueryWith(http, "page", token) : null;
        var model = new InstancesModel(filter, problems, counts, result.Instances, next);
        return DashboardPages.Render<InstancesPage>(http, "Instances", "Instances", model, problems.Count > 0 ? StatusCodes.Status400BadRequest : StatusCodes.Status200OK, filter.RefreshSeconds);
    }

    private static string QueryWith(HttpContext http, string key, string value)
    {
        var pairs = http.Request.Query.Where(q => q.Key != key).Select(q => $"{U(q.Key)}={U(q.Value.ToString())}").Append($"{U(key)}={U(value)}");
        return "?" + string.Join("&", pairs);
    }

    // ---- Instance detail -------------------------------------------------------------------------

    private static async Task<IResult> DetailAsync(string instanceId, HttpContext http, DurableAgentsClient client, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        var record = await client.GetInstanceRecordAsync(instanceId, true, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return NoInstance(http, instanceId);
        }

        var m = client.ToMetadata(record);
        var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
        var model = new InstanceModel(instanceId, m, record.ParentInstanceId, InstanceView.From(history, InstanceModel.IsRunning(m)), history, FormToken.For(antiforgery, http));
        return DashboardPages.Render<Pages.InstancePage>(http, instanceId, "Instances", model, refreshSeconds: model.Running && http.Request.Query.ContainsKey("refresh") ? 5 : null);
    }

    private static IResult NoInstance(HttpContext http, string instanceId) =>
        DashboardPages.Notice(http, "Not found", "Instances", new Notice("No instance", instanceId, "/dashboard", "All instances"), StatusCodes.Status404NotFound);

    // ---- Actions ---------------------------------------------------------------------------------

    private static async Task<IResult> ConfirmAsync(string instanceId, string? action, HttpContext http, DurableTaskClient client, IAntiforgery antiforgery, CancellationToken cancellationToken)
    {
        if (!InstanceActions.TryParse(action, out var act) || act is InstanceAction.Steer or InstanceAction.Interrupt)
        {
            return DashboardPages.Notice(http, "Unknown action", "Instances", new Notice($"'{action}' is not an action.", LinkHref: Format.InstanceHref(instanceId), LinkText: "Back"), StatusCodes.Status400BadRequest);
        }

        var m = await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false);
        if (m is null)
        {
            return NoInstance(http, instanceId);
        }

        IReadOnlyList<string> approvers = [];
        if (act is InstanceAction.Approve or InstanceAction.Reject)
        {
            var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
            approvers = InstanceView.From(history, running: true).Approval?.Approvers ?? [];
        }

        return DashboardPages.Render<ConfirmPage>(http, $"Confirm: {act.Name()} {instanceId}", "Instances", new ConfirmModel(instanceId, act, approvers, FormToken.For(antiforgery, http)));
    }

    private static async Task<IResult> ActAsync(
        string instanceId, string action, HttpContext http, DurableTaskClient client, ModelInterrupts interrupts, TimeProvider time, CancellationToken cancellationToken)
    {
        var form = await http.Request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        var back = Format.InstanceHref(instanceId);
        if (!InstanceActions.TryParse(action, out var act))
        {
            return Failed(http, back, $"'{action}' is not an action.");
        }

        try
        {
            var reason = form["reason"].ToString();
            switch (act)
            {
                case InstanceAction.Terminate:
                    await client.TerminateInstanceAsync(instanceId, new TerminateInstanceOptions(reason, Recursive: true), cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Termination requested.");
                case InstanceAction.Suspend:
                    await client.SuspendInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Suspend requested.");
                case InstanceAction.Resume:
                    await client.ResumeInstanceAsync(instanceId, reason, cancellationToken).ConfigureAwait(false);
                    return Done(http, back, "Resume requested.");
                case InstanceAction.Purge:
                    var purged = await client.PurgeInstanceAsync(instanceId, new PurgeInstanceOptions(Recursive: true), cancellationToken).ConfigureAwait(false);
                    return purged.PurgedInstanceCount > 0 ? Done(http, "/dashboard", $"Purged {instanceId}.") : Failed(http, back, $"No instance {instanceId} to purge.");
                case InstanceAction.Restart:
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
                case InstanceAction.Raise:
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
                case InstanceAction.Steer or InstanceAction.Interrupt:
                    return await SteerAsync(instanceId, act, form["message"].ToString(), http, client, interrupts, cancellationToken).ConfigureAwait(false);
                case InstanceAction.Approve or InstanceAction.Reject:
                    var history = await client.GetOrchestrationHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
                    var approval = InstanceView.From(history, running: true).Approval;
                    var approver = form["approver"].ToString();
                    if (approval is null || !approval.Approvers.Contains(approver, StringComparer.OrdinalIgnoreCase))
                    {
                        return Failed(http, back, "This instance has no pending approval for that approver.");
                    }

                    var decision = act == InstanceAction.Approve ? ApprovalDecisions.Approve : ApprovalDecisions.Reject;
                    await client.RaiseEventAsync(instanceId, approval.EventName, new ApprovalDecision(decision, approver, time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
                    return Done(http, back, $"{(act == InstanceAction.Approve ? "Approved" : "Rejected")} as {approver}.");
                default:
                    return Failed(http, back, $"'{action}' is not an action.");
            }
        }
        catch (Exception ex) when (ex is OrchestrationStateException or OrchestrationNotFoundException or InvalidPayloadException or PayloadTooLargeException or ArgumentException)
        {
            return Failed(http, back, ex.Message);
        }
    }

    /// <summary>Steer or interrupt from the live view: the API's rules, the result as a flash message.</summary>
    private static async Task<IResult> SteerAsync(
        string instanceId, InstanceAction act, string message, HttpContext http, DurableTaskClient client, ModelInterrupts interrupts, CancellationToken cancellationToken)
    {
        var back = Format.InstanceHref(instanceId);
        var steer = act == InstanceAction.Steer;
        if (AgentSteering.Check(message, required: steer) is { } refusal)
        {
            return Failed(http, back, refusal);
        }

        var instance = await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false);
        if (instance is null || instance.IsCompleted)
        {
            return Failed(http, back, instance is null ? $"No instance {instanceId}." : $"The run has finished ({instance.RuntimeStatus}); there is nothing to {act.Name()}.");
        }

        if (steer)
        {
            await AgentSteering.SteerAsync(client, instanceId, message, cancellationToken).ConfigureAwait(false);
            return Done(http, back, "Sent: the agent reads it before its next model call.");
        }

        await AgentSteering.InterruptAsync(client, interrupts, instanceId, message, cancellationToken).ConfigureAwait(false);
        return Done(http, back, string.IsNullOrWhiteSpace(message) ? "Interrupted: the agent stops with what it has." : "Interrupted: the agent goes on with your message.");
    }

    private static IResult Done(HttpContext http, string url, string message) => Redirect(http, url, "ok", message);

    private static IResult Failed(HttpContext http, string url, string message) => Redirect(http, url, "error", message);

    /// <summary>Post/redirect/get; the result travels in a one-minute cookie, so no page shows text taken from its URL.</summary>
    private static IResult Redirect(HttpContext http, string url, string kind, string message)
    {
        http.Response.Cookies.Append(DashboardPages.FlashCookie, kind + "|" + message, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = "/dashboard", MaxAge = TimeSpan.FromMinutes(1) });
        return Results.Redirect(url);
    }

    // ---- Costs -----------------------------------------------------------------------------------

    private static async Task<IResult> CostsAsync(HttpContext http, IModelLedger ledger, TimeProvider time, IServiceProvider services, CancellationToken cancellationToken)
    {
        var workflows = await ledger.GetWorkflowTotalsAsync(cancellationToken).ConfigureAwait(false);
        var since = time.GetUtcNow().UtcDateTime.Date.AddDays(-29);
        var daily = await ledger.GetDailyTotalsAsync(new DateTimeOffset(since, TimeSpan.Zero), cancellationToken).ConfigureAwait(false);
        var top = await ledger.GetTopInstancesAsync(10, cancellationToken).ConfigureAwait(false);
        var (limits, waited) = await RateLimitsAsync(services, time, cancellationToken).ConfigureAwait(false);
        return DashboardPages.Render<CostsPage>(http, "Costs", "Costs", new CostsModel(workflows, daily, since, top, limits, waited));
    }

    /// <summary>Each rate-limited deployment's use of the last minute, and who waited (a day).</summary>
    private static async Task<(IReadOnlyList<RateLimitRow> Limits, IReadOnlyList<RateLimitWait>? Waited)> RateLimitsAsync(IServiceProvider services, TimeProvider time, CancellationToken cancellationToken)
    {
        if (services.GetService<ModelRateLimiter>() is not { } limiter || services.GetService<IOptions<LlmOptions>>() is not { } options)
        {
            return ([], null);
        }

        var rows = new List<RateLimitRow>();
        foreach (var group in ModelService.EffectiveProfiles(options.Value).Values.SelectMany(p => p.Providers).Where(p => ModelLimits.Of(p) is not null).GroupBy(p => p.DeploymentKey))
        {
            var provider = group.First();
            var now = await limiter.SnapshotAsync(group.Key, cancellationToken).ConfigureAwait(false);
            rows.Add(new RateLimitRow(string.Join(", ", group.Select(p => p.EffectiveName).Distinct(StringComparer.OrdinalIgnoreCase)), provider.Model, ModelLimits.Of(provider)!, now));
        }

        var waited = rows.Count > 0 && services.GetService<RateLimitWaits>() is { } waits
            ? await waits.ListAsync(time.GetUtcNow() - RateLimitWaits.Retention, 20, cancellationToken).ConfigureAwait(false)
            : null;
        return (rows, waited);
    }

    // ---- Schedules and outbox --------------------------------------------------------------------

    private static async Task<IResult> SchedulesAsync(HttpContext http, DurableTaskClient client, TimeProvider time, CancellationToken cancellationToken)
    {
        var schedules = await ScheduleRules.ListAsync(client, time, cancellationToken).ConfigureAwait(false);
        return DashboardPages.Render<SchedulesPage>(http, "Schedules", "Schedules", new SchedulesModel(schedules));
    }

    private static IResult ConfirmSchedule(string id, string? action, HttpContext http, IAntiforgery antiforgery)
    {
        if (action is not ("pause" or "resume"))
        {
            return DashboardPages.Notice(http, "Unknown action", "Schedules", new Notice("Schedules can be paused or resumed.", LinkHref: "/dashboard/schedules", LinkText: "Back"), StatusCodes.Status400BadRequest);
        }

        return DashboardPages.Render<ConfirmSchedulePage>(http, $"Confirm: {action} {id}", "Schedules", new ConfirmScheduleModel(id, action, FormToken.For(antiforgery, http)));
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

    private static IResult Outbox(HttpContext http, IEmailSender sender, DevelopmentOutbox outbox) =>
        DashboardPages.Render<OutboxPage>(http, "Outbox", "Outbox", new OutboxModel(sender is not DevelopmentOutbox, outbox.Messages));

    // ---- Login -----------------------------------------------------------------------------------

    private static IResult SignInPage(HttpContext http, IAntiforgery antiforgery, string? returnUrl = null) =>
        DashboardPages.Render<LoginPage>(http, "Sign in", string.Empty, new LoginModel(returnUrl, null, FormToken.For(antiforgery, http)));

    private static IResult LoginFailed(HttpContext http, IAntiforgery antiforgery, string error, int status) =>
        DashboardPages.Render<LoginPage>(http, "Sign in", string.Empty, new LoginModel(null, error, FormToken.For(antiforgery, http)), status);

    private static async Task<IResult> LoginAsync(HttpContext http, IAntiforgery antiforgery, ApiKeyFilter keys, CancellationToken cancellationToken)
    {
        if (!await antiforgery.IsRequestValidAsync(http).ConfigureAwait(false))
        {
            return LoginFailed(http, antiforgery, "The form expired.", StatusCodes.Status400BadRequest);
        }

        var form = await http.Request.ReadFormAsync(cancellationToken).ConfigureAwait(false);
        var key = form["key"].ToString();
        var returnUrl = form["returnUrl"].ToString();
        if (!keys.HasKeys || !keys.Matches(key))
        {
            return LoginFailed(http, antiforgery, "That is not a valid API key.", StatusCodes.Status401Unauthorized);
        }

        http.Response.Cookies.Append(DashboardAuthFilter.CookieName, ApiKeyFilter.SessionToken(key), new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = "/dashboard", MaxAge = TimeSpan.FromHours(12) });
        var safe = returnUrl.StartsWith("/dashboard", StringComparison.Ordinal) && !returnUrl.StartsWith("//", StringComparison.Ordinal) ? returnUrl : "/dashboard";
        return Results.Redirect(safe);
    }
}
