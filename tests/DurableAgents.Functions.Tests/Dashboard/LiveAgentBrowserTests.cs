using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DurableAgents.Tests.Support;
using Microsoft.Playwright;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests.Dashboard;

/// <summary>
/// The live agent view in a real browser (Debian's chromium) against host processes and the real OpenAI SDK talking
/// to the local OpenAI-compatible server, whose answers pause mid-stream (<see cref="StreamGate"/>): a reload in the
/// middle draws the text once and goes on; killing the host that served the stream moves it to another host of the
/// same PostgreSQL + Redis without loss or repeats; a steer typed on the page is the next turn's prompt; the interrupt
/// button stops the agent and the ledger keeps the cut-off attempt.
/// </summary>
[NonParallelizable]
public sealed class LiveAgentBrowserTests
{
    private const string Answer = "Durable agents keep working when the machine under them goes away";
    private const string FirstWords = "Durable agents keep";

    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _ = Browser.Executable; // ignore the fixture when chromium is missing (outside scripts/test.sh)
        (_playwright, _browser) = await Browser.LaunchAsync();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }

    /// <summary>Both profiles on the local OpenAI server; the agent "live" may take up to 10 turns.</summary>
    private static Dictionary<string, string> ModelSettings(FakeOpenAiServer model)
    {
        var env = HostProcess.LocalModel(model);
        env["DurableAgents__Llm__Cache__Enabled"] = "false";
        env["DurableAgents__Agents__live__MaxTurns"] = "10";
        env["DurableAgents__Agents__live__Tools__0"] = "scratchpad_write";
        return env;
    }

    private static async Task StartChatAsync(HttpClient api, string id, string message)
    {
        using var response = await api.PostAsync($"/api/orchestrators/AgentChat/{id}", new StringContent(JsonSerializer.Serialize(new { message, agent = "live" }), Encoding.UTF8, "application/json"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted), await response.Content.ReadAsStringAsync());
    }

    private async Task<IPage> OpenAsync(Uri baseAddress, string path)
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var response = await page.GotoAsync(new Uri(baseAddress, path).ToString());
        Assert.That(response!.Status, Is.EqualTo(200), path);
        return page;
    }

    private static async Task<IReadOnlyList<string>> AssistantTextsAsync(IPage page) =>
        (await page.Locator("#live-log .msg.assistant pre").AllTextContentsAsync()).Where(t => t.Length > 0).ToList();

    /// <summary>Waits until the live view shows exactly this assistant text (one message).</summary>
    private static async Task ShowsAsync(IPage page, string text) =>
        await page.WaitForFunctionAsync(
            "t => { const m = [...document.querySelectorAll('#live-log .msg.assistant pre')].map(p => p.textContent).filter(x => x !== ''); return m.length === 1 && m[0] === t; }",
            text,
            new PageWaitForFunctionOptions { Timeout = 30_000 });

    private static async Task FinishedAsync(IPage page) =>
        await page.WaitForSelectorAsync("#live[data-finished=true]", new PageWaitForSelectorOptions { State = WaitForSelectorState.Attached, Timeout = 60_000 });

    /// <summary>The ids of the instance's stream, as the API serves them.</summary>
    private static async Task<List<long>> StreamIdsAsync(HttpClient api, string id)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var body = await api.GetStringAsync($"/api/instances/{id}/stream", cts.Token);
        return body.Split('\n').Where(l => l.StartsWith("id: ", StringComparison.Ordinal)).Select(l => long.Parse(l[4..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
    }

    private static async Task<AgentResult> ResultAsync(HttpClient api, string id)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var done = await HostProcess.WaitUntilFinishedAsync(api, id, cts.Token);
        Assert.That(done.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"));
        var output = done.GetProperty("output");
        return new AgentResult(output.GetProperty("text").GetString()!, output.GetProperty("stopReason").GetString()!, output.GetProperty("turns").GetInt32());
    }

    private sealed record AgentResult(string Text, string StopReason, int Turns);

    [Test]
    public async Task AReload_MidStream_DrawsTheTextOnce_AndTheStreamGoesOn()
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        model.ThenToolCall("scratchpad_write", """{"key":"topic","value":"durable agents"}""").ThenGated(Answer, 3, gate); // turn 1 uses a tool; turn 2 pauses mid-answer
        await using var host = await HostProcess.StartAsync(ModelSettings(model));
        using var api = host.CreateClient();
        await StartChatAsync(api, "live-reload", "Why durable agents?");
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(60));

        var page = await OpenAsync(host.BaseAddress, "/dashboard/instances/live-reload");
        await ShowsAsync(page, FirstWords);
        Assert.That(await page.Locator("#live-log .live-turn h3").AllTextContentsAsync(), Is.EqualTo(new[] { "turn 1", "turn 2" }));
        var tool = page.Locator("#live-log .live-turn").Nth(0).Locator(".tool");
        Assert.That(await tool.Locator(".who").InnerTextAsync(), Is.EqualTo("tool scratchpad_write"));
        Assert.That(await tool.Locator("pre.args").InnerTextAsync(), Is.EqualTo("""{"key":"topic","value":"durable agents"}"""), "the arguments as streamed");
        Assert.That((await tool.GetAttributeAsync("class"))!.Split(' '), Does.Contain("done"), "the tool call completed, with its result");
        Assert.That(await tool.Locator("pre.result").CountAsync(), Is.EqualTo(1));
        Assert.That(await page.Locator("#live-log .msg.user pre").AllTextContentsAsync(), Is.EqualTo(new[] { "Why durable agents?" }));
        await Browser.ScreenshotAsync(page, "live-agent");

        await page.ReloadAsync();
        await ShowsAsync(page, FirstWords); // nothing lost, nothing twice
        Assert.That(await page.Locator("#live-log .tool").CountAsync(), Is.EqualTo(1));
        Assert.That(await page.Locator("#live-log .msg.user pre").AllTextContentsAsync(), Is.EqualTo(new[] { "Why durable agents?" }));

        gate.Release.SetResult();
        await FinishedAsync(page);
        Assert.That(await AssistantTextsAsync(page), Is.EqualTo(new[] { Answer }));
        var result = await ResultAsync(api, "live-reload");
        Assert.That(result.Text, Is.EqualTo(Answer), "the streamed text is the recorded answer");
        var ids = await StreamIdsAsync(api, "live-reload");
        Assert.That(await page.GetAttributeAsync("#live", "data-last-id"), Is.EqualTo(ids.Last().ToString(System.Globalization.CultureInfo.InvariantCulture)), "the page saw every event up to the last");
        Assert.That(await page.Locator("#live-log .note.usage").CountAsync(), Is.EqualTo(2), "each call's usage");
    }

    [Test]
    public async Task KillingTheHostThatServesTheStream_TheBrowserReconnectsToAnotherHost_AndNothingIsLostOrRepeated()
    {
        var cs = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES") ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");
        var redis = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh");
        await using var model = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        model.ThenGated(Answer, 3, gate);
        var env = ModelSettings(model);
        env["DurableAgents__Store"] = "Postgres";
        env["DurableAgents__Postgres__ConnectionString"] = cs;
        env["DurableAgents__Postgres__TaskHub"] = "live" + Guid.NewGuid().ToString("N")[..10];
        env["DurableAgents__Redis__Configuration"] = redis;

        // Host "web" serves the browser and runs no work; host "worker" runs the agent. Both read the stream from Redis.
        await using var web = await HostProcess.StartAsync(new Dictionary<string, string>(env) { ["DurableAgents__WorkerId"] = "web", ["DurableAgents__EnableWorker"] = "false" });
        await using var worker = await HostProcess.StartAsync(new Dictionary<string, string>(env) { ["DurableAgents__WorkerId"] = "worker" });
        await using var balancer = new LoopbackForwarder(web.BaseAddress);
        using var api = worker.CreateClient();
        await StartChatAsync(api, "live-failover", "Why durable agents?");
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(60));

        var page = await OpenAsync(balancer.BaseAddress, "/dashboard/instances/live-failover");
        await ShowsAsync(page, FirstWords);
        var connectionsBefore = balancer.Connections;

        balancer.Retarget(worker.BaseAddress);
        await web.KillAsync();
        // EventSource reconnects by itself (retry: 1000) with Last-Event-ID, now to the other host.
        await page.WaitForFunctionAsync("() => Number(document.getElementById('live').getAttribute('data-opens')) >= 2", null, new PageWaitForFunctionOptions { Timeout = 30_000 });
        Assert.That(balancer.Connections, Is.GreaterThan(connectionsBefore), "the browser opened a new connection after the kill");

        gate.Release.SetResult();
        await FinishedAsync(page);
        Assert.That(await AssistantTextsAsync(page), Is.EqualTo(new[] { Answer }), "the text went on from where it was, once");
        Assert.That((await ResultAsync(api, "live-failover")).Text, Is.EqualTo(Answer));
        var ids = await StreamIdsAsync(api, "live-failover");
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, ids.Count).Select(i => (long)i)), "ids 1, 2, 3 … with no gap");
        Assert.That(await page.GetAttributeAsync("#live", "data-last-id"), Is.EqualTo(ids.Last().ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public async Task ASteerTypedOnThePage_IsTheNextTurnsPrompt_AndIsInTheRecordedConversation()
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        model.ThenGated("Revenue grew with the Q2 numbers.", 2, gate).ThenReasoning("The person asked for Q3 instead.", "With the Q3 numbers: revenue grew 12%.");
        await using var host = await HostProcess.StartAsync(ModelSettings(model));
        using var api = host.CreateClient();
        await StartChatAsync(api, "live-steer", "Summarise revenue.");
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(60));

        var page = await OpenAsync(host.BaseAddress, "/dashboard/instances/live-steer");
        await ShowsAsync(page, "Revenue grew");
        await page.FillAsync("#steer-message", "Use the Q3 numbers instead.");
        await Browser.SubmitAndReloadAsync(page, "#steer-form button[type=submit]");
        Assert.That(await page.Locator(".flash.ok").InnerTextAsync(), Does.StartWith("Sent"));
        // The steer is committed to the instance (the stream says so) before the first answer ends.
        await page.WaitForSelectorAsync("#live-log .note.steer", new PageWaitForSelectorOptions { Timeout = 30_000 });
        Assert.That(await page.Locator("#live-log .note.steer").InnerTextAsync(), Is.EqualTo("steer received: Use the Q3 numbers instead."));
        gate.Release.SetResult();

        await FinishedAsync(page);
        var result = await ResultAsync(api, "live-steer");
        Assert.That((result.Turns, result.Text), Is.EqualTo((2, "With the Q3 numbers: revenue grew 12%.")));
        Assert.That(model.ChatRequests, Has.Count.EqualTo(2));
        var lastUser = model.ChatRequests[1].Body["messages"]!.AsArray().Last(m => (string?)m!["role"] == "user")!["content"]!.ToJsonString();
        Assert.That(lastUser, Does.Contain("Use the Q3 numbers instead."), "the second call's prompt ends with the steer");
        Assert.That(await page.Locator("#live-log .live-turn h3").AllTextContentsAsync(), Is.EqualTo(new[] { "turn 1", "turn 2" }));
        Assert.That(await page.Locator("#steer-form button").IsDisabledAsync(), Is.True, "a finished run cannot be steered from the page");
        Assert.That(await page.Locator("#live-log .live-turn").Nth(1).Locator(".msg.user pre").AllTextContentsAsync(), Is.EqualTo(new[] { "Use the Q3 numbers instead." }), "turn 2 starts with the steer");
        Assert.That(await page.Locator("#live-log .live-turn").Nth(1).Locator(".msg.reasoning pre").AllTextContentsAsync(), Is.EqualTo(new[] { "The person asked for Q3 instead." }), "the model's reasoning, as it streamed");
        await Browser.ScreenshotAsync(page, "live-agent-steered");

        await page.ReloadAsync();
        // The recorded turns (from the history, not the stream): the steer is what the person said in turn 2.
        var turns = page.Locator("details.turn");
        Assert.That(await turns.CountAsync(), Is.EqualTo(2));
        Assert.That(await turns.Nth(0).Locator(".said pre").AllTextContentsAsync(), Is.EqualTo(new[] { "Summarise revenue." }));
        Assert.That(await turns.Nth(1).Locator(".said pre").AllTextContentsAsync(), Is.EqualTo(new[] { "Use the Q3 numbers instead." }), "the recorded conversation has it");
        Assert.That(await page.Locator("tr.timeline-row td:first-child").AllTextContentsAsync(), Has.Member("event steer"), "the steer is on the timeline");
    }

    [Test]
    public async Task TheInterruptButton_StopsTheAgentWithWhatItHas_AndTheLedgerShowsTheInterruptedAttempt()
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        model.ThenGated(Answer, 3, gate);
        await using var host = await HostProcess.StartAsync(ModelSettings(model));
        using var api = host.CreateClient();
        await StartChatAsync(api, "live-interrupt", "Why durable agents?");
        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(60));

        var page = await OpenAsync(host.BaseAddress, "/dashboard/instances/live-interrupt");
        await ShowsAsync(page, FirstWords);
        await Browser.SubmitAndReloadAsync(page, "#interrupt-form button[type=submit]");
        Assert.That(await page.Locator(".flash.ok").InnerTextAsync(), Does.StartWith("Interrupted"));
        await gate.Aborted.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the model call was cut off, not left to finish

        var result = await ResultAsync(api, "live-interrupt");
        Assert.That((result.StopReason, result.Text), Is.EqualTo(("interrupted", FirstWords)));
        Assert.That(model.ChatRequests, Has.Count.EqualTo(1), "not asked again");
        var usage = await api.GetFromJsonAsync<JsonElement>("/api/instances/live-interrupt/usage");
        Assert.That(usage.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("outcome").GetString()), Is.EqualTo(new[] { "interrupted" }));

        var costs = await OpenAsync(host.BaseAddress, "/dashboard/costs");
        Assert.That(await costs.InnerTextAsync("#interrupted"), Does.StartWith("1 (estimated "));
        var row = (await costs.Locator("table[aria-label='Usage per workflow'] tbody tr").AllInnerTextsAsync()).Single(r => r.StartsWith("AgentChat", StringComparison.Ordinal));
        Assert.That(row.Split('\t').Last(), Does.StartWith("1 ("));
    }
}
