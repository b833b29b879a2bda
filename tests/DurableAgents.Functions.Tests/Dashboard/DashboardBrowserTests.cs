using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests.Dashboard;

/// <summary>
/// The dashboard in a real browser (Debian's chromium through Playwright) against the real host binary with
/// the offline simulator: the list, the detail timeline and agent view, an approval and a termination made
/// from the page, the cost view, a phone-width screen and keyboard access. Screenshots are saved as artifacts.
/// </summary>
[NonParallelizable]
public sealed class DashboardBrowserTests
{
    private HostProcess _host = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;
    private HttpClient _api = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _ = Browser.Executable; // ignore the fixture when chromium is missing (outside scripts/test.sh)
        // The simulator's two profiles, with limits that never bind: the cost view shows their use.
        var limited = new Dictionary<string, string>();
        foreach (var profile in new[] { "fast", "strong" })
        {
            var at = $"DurableAgents__Llm__Profiles__{profile}__Providers__0__";
            limited[at + "Name"] = "simulator";
            limited[at + "Kind"] = "Simulator";
            limited[at + "RequestsPerMinute"] = "600";
            limited[at + "TokensPerMinute"] = "2000000";
            limited[at + "MaxConcurrent"] = "8";
        }

        limited["DurableAgents__Llm__Profiles__fast__EscalateTo"] = "strong";
        _host = await HostProcess.StartAsync(limited);
        _api = _host.CreateClient();
        (_playwright, _browser) = await Browser.LaunchAsync();

        await StartWorkflowAsync("ContentPipeline", "cp-1", """{"topic":"durable agents"}""");
        await StartWorkflowAsync("ApprovalGate", "gate-approve", """{"subject":"Ship v2","summary":"Release v2?","approvers":["founder@example.com"]}""");
        await StartWorkflowAsync("ApprovalGate", "gate-terminate", """{"subject":"Old idea","summary":"Still wanted?","approvers":["founder@example.com"]}""");
        await WaitForStatusAsync("cp-1", "Completed");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        _api.Dispose();
        await _host.DisposeAsync();
    }

    private async Task StartWorkflowAsync(string name, string id, string input)
    {
        using var response = await _api.PostAsync($"/api/orchestrators/{name}/{id}", new StringContent(input, Encoding.UTF8, "application/json"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
    }

    private async Task<JsonElement> WaitForStatusAsync(string id, string status)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var instance = await _api.GetFromJsonAsync<JsonElement>($"/api/instances/{id}", cts.Token);
            if (instance.GetProperty("runtimeStatus").GetString() == status)
            {
                return instance;
            }

            await Task.Delay(50, cts.Token);
        }
    }

    /// <summary>Writes a row into the host's SQLite store, as the engine would have.</summary>
    private async Task ExecuteOnStoreAsync(string sql)
    {
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_host.StorePath};Pooling=false");
        await db.OpenAsync();
        await using var command = db.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<IPage> OpenAsync(string path, int width = 1280)
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 } });
        var response = await page.GotoAsync(new Uri(_host.BaseAddress, path).ToString());
        Assert.That(response!.Status, Is.EqualTo(200), path);
        return page;
    }

    [Test]
    public async Task TheList_ShowsTheWorkflows_WithCountsAndFilters()
    {
        var page = await OpenAsync("/dashboard");
        await Browser.ScreenshotAsync(page, "instances");

        var rows = page.Locator("table[aria-label=Instances] tbody tr");
        Assert.That(await rows.AllInnerTextsAsync(), Has.Some.Contains("cp-1").And.Some.Contains("gate-approve"));
        Assert.That(await page.Locator("a[data-status=Completed] strong").InnerTextAsync(), Is.Not.EqualTo("0"));

        await page.SelectOptionAsync("#f-status", "Completed");
        await Browser.ClickAndLoadAsync(page, "form.filters button[type=submit]");
        var filtered = await page.Locator("table[aria-label=Instances] tbody tr td:first-child").AllInnerTextsAsync();
        Assert.That(filtered, Has.Member("cp-1"));
        Assert.That(await page.Locator("table[aria-label=Instances] tbody tr td:nth-child(3)").AllInnerTextsAsync(), Is.All.EqualTo("Completed"));

        await page.FillAsync("#f-prefix", "gate-");
        await page.SelectOptionAsync("#f-status", string.Empty);
        await Browser.ClickAndLoadAsync(page, "form.filters button[type=submit]");
        Assert.That(await page.Locator("table[aria-label=Instances] tbody tr td:first-child").AllInnerTextsAsync(), Is.All.StartWith("gate-"));
    }

    [Test]
    public async Task TheDetail_ShowsTheTimeline_AndTheAgentView_CollapsedUntilOpened()
    {
        var page = await OpenAsync("/dashboard/instances/cp-1");
        await Browser.ScreenshotAsync(page, "instance-detail");

        Assert.That(await page.Locator("svg[aria-labelledby=tl-title] g.span").CountAsync(), Is.GreaterThanOrEqualTo(5));
        var timeline = await page.Locator("tr.timeline-row td:first-child").AllTextContentsAsync();
        var turns = page.Locator("details.turn");
        Assert.That(timeline.Count(t => t.StartsWith("AgentTurn", StringComparison.Ordinal)), Is.EqualTo(await turns.CountAsync()), "every agent turn on the timeline is in the agent view");
        var agents = await turns.Locator("> summary").AllTextContentsAsync();
        foreach (var agent in new[] { "researcher", "outliner", "writer", "seo-editor", "compliance-reviewer" })
        {
            Assert.That(agents, Has.Some.Contains(agent + " (turn"), agent);
        }

        var turn = turns.First;
        Assert.That(await turn.GetAttributeAsync("open"), Is.Null, "collapsed by default");
        Assert.That(await turn.Locator("> summary").InnerTextAsync(), Does.Contain("researcher").And.Contain("model simulator").And.Contain("tokens"));
        await turn.Locator("> summary").ClickAsync();
        Assert.That(await turn.GetAttributeAsync("open"), Is.Not.Null);
        Assert.That(await turn.Locator("details.tool summary").First.InnerTextAsync(), Does.Contain("Tool web_fetch"));
        Assert.That(await page.Locator("h2:has-text('Output') + pre").InnerTextAsync(), Does.Contain("\"outcome\": \"completed\""));
    }

    [Test]
    public async Task AnApproval_MadeFromThePage_CompletesTheWorkflow()
    {
        var page = await OpenAsync("/dashboard/instances/gate-approve");
        await Browser.ClickAndLoadAsync(page, "a:has-text('Approve…')");
        Assert.That(await page.Locator("h1").InnerTextAsync(), Does.StartWith("Confirm: approve"));
        Assert.That(await page.InputValueAsync("#c-approver"), Is.EqualTo("founder@example.com"));
        await Browser.ClickAndLoadAsync(page, "button:has-text('Yes, approve')");

        Assert.That(await page.Locator(".flash.ok").InnerTextAsync(), Is.EqualTo("Approved as founder@example.com."));
        var done = await WaitForStatusAsync("gate-approve", "Completed");
        Assert.That(done.GetProperty("output").GetProperty("outcome").GetString(), Is.EqualTo("approved"));
        Assert.That(done.GetProperty("output").GetProperty("decisions")[0].GetProperty("approver").GetString(), Is.EqualTo("founder@example.com"));
        await page.ReloadAsync();
        Assert.That(await page.Locator("dl.summary .badge").InnerTextAsync(), Is.EqualTo("Completed"));
    }

    [Test]
    public async Task Terminate_FromThePage_StopsTheInstance()
    {
        var page = await OpenAsync("/dashboard/instances/gate-terminate");
        await Browser.ClickAndLoadAsync(page, "a:has-text('Terminate…')");
        await page.FillAsync("#c-reason", "not wanted any more");
        await Browser.ClickAndLoadAsync(page, "button:has-text('Yes, terminate')");

        Assert.That(await page.Locator(".flash.ok").InnerTextAsync(), Is.EqualTo("Termination requested."));
        await WaitForStatusAsync("gate-terminate", "Terminated");
        await page.ReloadAsync();
        Assert.That(await page.Locator("dl.summary .badge").InnerTextAsync(), Is.EqualTo("Terminated"));
        Assert.That(await page.Locator("a:has-text('Purge…')").CountAsync(), Is.EqualTo(1), "a finished instance offers purge");
    }

    [Test]
    public async Task TheCostView_ShowsTokens_PerWorkflowAndPerDay_AndInterruptedAttempts()
    {
        // An attempt whose host died mid-call, as the ledger keeps it.
        await ExecuteOnStoreAsync(
            "INSERT INTO llm_attempts (instance_id, workflow, task_key, attempt, profile, provider, model, outcome, input_tokens, output_tokens, latency_ms, cost_micros, at_ms, host, est_tokens, est_cost_micros) " +
            $"VALUES ('cp-1', 'ContentPipeline', 'cp-1:e:99#dead', 1, 'fast', 'p', 'm', 'interrupted', 0, 0, 0, 0, {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}, 'gone-host', 500, 20000)");

        var page = await OpenAsync("/dashboard/costs");
        await Browser.ScreenshotAsync(page, "costs");

        Assert.That(long.Parse(await page.InnerTextAsync("#total-tokens"), System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0));
        var rows = await page.Locator("table[aria-label='Usage per workflow'] tbody tr").AllInnerTextsAsync();
        Assert.That(rows, Has.Some.StartsWith("ContentPipeline"));
        var heights = await page.Locator("rect.day").EvaluateAllAsync<double[]>("rects => rects.map(r => parseFloat(r.getAttribute('height')))");
        Assert.That(heights, Has.Some.GreaterThan(0), "today's bar");
        Assert.That(await page.InnerTextAsync("#interrupted"), Does.StartWith("1 (estimated ").And.Contain("not in the cost above"));
        Assert.That(rows.Single(r => r.StartsWith("ContentPipeline", StringComparison.Ordinal)).Split('\t').Last(), Is.EqualTo("1 (0.02)"));
    }

    [Test]
    public async Task TheCostView_ShowsEachRateLimitedDeployment_AndWhoWaited()
    {
        // Calls of the last minute, and a call that waited 42 s for capacity, as the model service records it.
        await StartWorkflowAsync("ContentPipeline", "cp-limits", """{"topic":"rate limits"}""");
        await WaitForStatusAsync("cp-limits", "Completed");
        await ExecuteOnStoreAsync(
            "INSERT INTO llm_limit_waits (deployment, instance_id, workflow, lane, waited_ms, granted_ms) " +
            $"VALUES ('simulator', 'cp-1', 'ContentPipeline', 'batch', 42000, {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()})");

        var page = await OpenAsync("/dashboard/costs");
        await Browser.ScreenshotAsync(page, "costs-rate-limits");

        var deployment = (await page.Locator("table[aria-label='Rate-limit utilisation per deployment'] tbody tr").AllInnerTextsAsync()).Single().Split('\t');
        Assert.That(deployment[0], Is.EqualTo("simulator"), "both profiles' entries are one deployment");
        Assert.That(deployment[2], Does.Match(@"^\d+ / 600 \(\d+ %\)$"));
        Assert.That(int.Parse(deployment[2].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThanOrEqualTo(3), "cp-limits' calls (outline, draft, review at least) are in the window");
        Assert.That(deployment[3], Does.EndWith("/ 2000000 (0 %)"));
        Assert.That(deployment[4], Is.EqualTo("0 / 8"));
        Assert.That(deployment[6], Is.EqualTo("sqlite"));
        var waited = (await page.Locator("table[aria-label='Calls that waited for capacity'] tbody tr").AllInnerTextsAsync()).Single().Split('\t');
        Assert.That(waited[..5], Is.EqualTo(new[] { "cp-1", "ContentPipeline", "batch", "simulator", "42.0 s" }));
        Assert.That(await page.Locator("table[aria-label='Calls that waited for capacity'] a[href='/dashboard/instances/cp-1']").CountAsync(), Is.EqualTo(1));
    }

    [Test]
    public async Task OnAPhoneWidthScreen_NothingOverflows_AndTheKeyboardReachesEverything()
    {
        var page = await OpenAsync("/dashboard", width: 375);
        await Browser.ScreenshotAsync(page, "instances-phone");

        var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
        Assert.That(overflow, Is.LessThanOrEqualTo(0), "no horizontal scrolling of the page (tables scroll inside their own box)");
        var unlabelled = await page.EvaluateAsync<int>("() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(e => !(e.labels && e.labels.length)).length");
        Assert.That(unlabelled, Is.Zero, "every form control has a label");
        await page.Keyboard.PressAsync("Tab");
        Assert.That(await page.EvaluateAsync<string>("() => document.activeElement.textContent"), Is.EqualTo("Skip to content"));
        await page.Keyboard.PressAsync("Enter");
        Assert.That(await page.EvaluateAsync<string>("() => document.activeElement.id"), Is.EqualTo("main"));

        var detail = await OpenAsync("/dashboard/instances/cp-1", width: 375);
        Assert.That(await detail.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth"), Is.LessThanOrEqualTo(0));
    }

    [Test]
    public async Task TextFromWorkflows_IsShownAsText_NeverAsMarkup()
    {
        const string Subject = "<b>bold</b><script>window.__xss = 1</script>";
        await StartWorkflowAsync("ApprovalGate", "gate-markup", JsonSerializer.Serialize(new { subject = Subject, summary = "<img src=x onerror=\"window.__xss = 2\">", approvers = new[] { "founder@example.com" } }));
        await WaitForStatusAsync("gate-markup", "Running");

        var detail = await OpenAsync("/dashboard/instances/gate-markup");
        Assert.That(await detail.Locator("h2:has-text('Input') + pre").InnerTextAsync(), Does.Contain(Subject));
        Assert.That(await detail.Locator("main b, main script, main img").CountAsync(), Is.Zero, "no element made from the input");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            while (!(await _api.GetStringAsync("/api/outbox", cts.Token)).Contains("window.__xss = 1", StringComparison.Ordinal))
            {
                await Task.Delay(50, cts.Token); // the approval request is sent by an activity
            }
        }

        var outbox = await OpenAsync("/dashboard/outbox");
        Assert.That(await outbox.Locator("article.mail h2").AllInnerTextsAsync(), Has.Some.EqualTo(Subject));
        Assert.That(await outbox.Locator("article.mail b, article.mail script, article.mail img").CountAsync(), Is.Zero);
        Assert.That(await outbox.EvaluateAsync<bool>("() => window.__xss === undefined") && await detail.EvaluateAsync<bool>("() => window.__xss === undefined"), Is.True, "no script ran");
    }

    [Test]
    public async Task SchedulesAndOutbox_AreListed()
    {
        var outbox = await OpenAsync("/dashboard/outbox");
        Assert.That(await outbox.Locator("article.mail h2").AllInnerTextsAsync(), Has.Some.EqualTo("Ship v2"));
        var schedules = await OpenAsync("/dashboard/schedules");
        Assert.That(await schedules.Locator("h1").InnerTextAsync(), Is.EqualTo("Schedules"));
    }
}
