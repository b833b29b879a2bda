using DurableAgents.Activities.Live;
using System.Diagnostics;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Email;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using DurableAgents.Orchestrations;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>Structured output, budgets, the cache, streaming, secrets and the simulator, through the real SDK.</summary>
public sealed class ModelFeatureTests
{
    public sealed record Verdict(bool Approved, string Reason);

    private static ModelRequest Question(string text, ModelCacheMode cache = ModelCacheMode.Exact) => new()
    {
        Messages = [ModelMessage.System("Be brief."), ModelMessage.User(text)],
        Cache = cache,
    };

    [Test]
    public async Task StructuredOutput_InvalidJson_IsRepairedOnce_WithTheValidationError()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("Sure! approved, looks fine").ThenText("""{"approved": true, "reason": "fine"}""");
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var request = Question("Review this.", ModelCacheMode.None) with { ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Verdict>(), ResponseSchemaName = "Verdict" };

        var response = (await host.AskAsync(request, "so-1")).ReadOutputAs<ModelResponse>()!;

        Assert.That(response.ReadJsonAs<Verdict>(), Is.EqualTo(new Verdict(true, "fine")));
        Assert.That(response.Route, Does.Contain("repaired"));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
        Assert.That((string)server.ChatRequests[0].Body["response_format"]!["type"]!, Is.EqualTo("json_schema"));
        var repair = (string)server.ChatRequests[1].Body["messages"]!.AsArray().Last()!["content"]!;
        Assert.That(repair, Does.Contain("not valid JSON"));
        Assert.That((await host.Ledger.GetAttemptsAsync("so-1")), Has.Count.EqualTo(2), "the repair is a billed call too");
    }

    [Test]
    public async Task StructuredOutput_StillInvalidAfterRepair_EscalatesToTheStrongProfile()
    {
        await using var fast = await FakeOpenAiServer.StartAsync();
        await using var strong = await FakeOpenAiServer.StartAsync();
        fast.ThenText("""{"approved": "maybe"}""").ThenText("""{"approved": "still maybe"}""");
        strong.ThenText("""{"approved": false, "reason": "missing sources"}""");
        var settings = LlmTestHost.FastResilience();
        settings["DurableAgents:Llm:Profiles:fast:EscalateTo"] = "strong";
        await using var host = await LlmTestHost.StartAsync(settings, LlmTestHost.Provider("fast", 0, "cheap", fast), LlmTestHost.Provider("strong", 0, "smart", strong));
        var request = Question("Review this.", ModelCacheMode.None) with { ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Verdict>() };

        var response = (await host.AskAsync(request, "so-2")).ReadOutputAs<ModelResponse>()!;

        Assert.That(response.Profile, Is.EqualTo("strong"));
        Assert.That(response.ReadJsonAs<Verdict>(), Is.EqualTo(new Verdict(false, "missing sources")));
        Assert.That(response.Route, Does.Contain("escalated to 'strong'"));
    }

    [Test]
    public async Task StructuredOutput_InvalidWithNowhereToEscalate_FailsClearly_NonRetriable()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("""{"approved": 1}""").ThenText("""{"approved": 2}""");
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var request = Question("Review this.", ModelCacheMode.None) with { ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Verdict>() };

        var done = await host.AskAsync(request, "so-3");

        var failure = done.FailureDetails!.InnerFailure!;
        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.InvalidStructuredOutput));
        Assert.That(failure.IsNonRetriable, Is.True);
        Assert.That(failure.ErrorMessage, Does.Contain("approved"));
    }

    [Test]
    public async Task Budget_CallThatWouldExceedIt_IsRefusedBeforeAnyRequest_NonRetriable()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var request = Question("Write an essay.", ModelCacheMode.None) with { MaxOutputTokens = 500, Budget = new ModelBudget(MaxTokens: 100) };

        var done = await host.AskAsync(request, "bud-1");

        var failure = done.FailureDetails!.InnerFailure!;
        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.BudgetExceeded));
        Assert.That(failure.IsNonRetriable, Is.True);
        Assert.That(server.Requests, Is.Empty, "no request is sent");
        var attempts = await host.Ledger.GetAttemptsAsync("bud-1");
        Assert.That(attempts.Select(a => (a.Outcome, a.InputTokens + a.OutputTokens, a.Cost)), Is.EqualTo(new[] { (RelationalModelLedger.BudgetRefused, 0L, 0m) }), "the refusal is recorded, with nothing spent");
    }

    [Test]
    public async Task Budget_CostCeiling_SettlesActualSpend_AndRefusesTheCallThatWouldCrossIt()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.DefaultText = "ok";
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        // Each call: estimate ≈ (input + 100 output tokens) at 2.5/10 per million; actual 10 in + 5 out.
        var origin = new ModelCallOrigin("bud-2", 0, "bud-2:e:0");
        var request = Question("Hi", ModelCacheMode.None) with { MaxOutputTokens = 100, Budget = new ModelBudget(MaxCost: 0.0015m) };

        // Estimate per call: 11 input + 100 output tokens = 0.0010275; actual: 10 in + 5 out = 0.000075.
        // Settled at actual spend, calls fit while used + 0.0010275 <= 0.0015, i.e. 7 calls (used 0.000525 after them).
        // Had reservations stayed at the estimate, only one call would have fit.
        var made = 0;
        ApplicationFailureException? refused = null;
        while (refused is null && made < 20)
        {
            try
            {
                await host.Models.CallAsync(origin with { TaskId = made, TaskKey = $"bud-2:e:{made}" }, request);
                made++;
            }
            catch (ApplicationFailureException ex)
            {
                refused = ex;
            }
        }

        Assert.That(made, Is.EqualTo(7));
        Assert.That(refused!.ErrorType, Is.EqualTo(LlmErrorTypes.BudgetExceeded));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(7));
        Assert.That((await host.Ledger.GetInstanceTotalsAsync("bud-2")).Cost, Is.EqualTo(0.000525m));
    }

    [Test]
    public async Task SampleWorkflow_ResearchBrief_CatchesTheBudgetRefusal_AndEscalatesToAPerson()
    {
        // Each call reserves ~323 tokens (300 output) and settles at ~36 (the simulator's usage): the first fits
        // in 350, the second does not; doubled to 700, the other two fit.
        await using var host = await LlmTestHost.StartAsync(); // the offline simulator
        var input = new ResearchBriefInput("durable agents", ["Why durable?", "Why budgets?", "Why email approvals?"], MaxTokens: 350, Approver: "boss@example.com");

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(ResearchBrief), input);
        var outbox = host.Services.GetRequiredService<DevelopmentOutbox>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!outbox.Messages.Any(m => m.Message.To == "boss@example.com"))
        {
            await Task.Delay(20, cts.Token);
        }

        var mail = outbox.Messages.Single(m => m.Message.To == "boss@example.com").Message;
        Assert.That(mail.Subject, Does.Contain("Budget exhausted"));
        var waiting = await host.Client.GetInstanceAsync(id, true);
        Assert.That(waiting!.ReadCustomStatusAs<string>(), Is.EqualTo("budget exhausted: awaiting approval"));

        await host.Client.RaiseEventAsync(id, "budget", new ApprovalDecision(ApprovalDecisions.Approve, "boss@example.com", DateTimeOffset.UtcNow));
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token);

        var output = done.ReadOutputAs<ResearchBriefOutput>()!;
        Assert.That(output.BudgetEscalated, Is.True);
        Assert.That(output.Decision, Is.EqualTo("approve"));
        Assert.That(output.FinalMaxTokens, Is.EqualTo(700));
        Assert.That(output.Answers, Has.Count.EqualTo(3));
        Assert.That(output.Answers, Has.All.StartWith("[simulated]"));
    }

    [Test]
    public async Task Cache_ExactRepeat_AnswersFromTheCache_WithoutARequest_AndSaysSo()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var first = (await host.AskAsync(Question("What is Rome?"), "c-1")).ReadOutputAs<ModelResponse>()!;
        var second = (await host.AskAsync(Question("What is Rome?"), "c-2")).ReadOutputAs<ModelResponse>()!;

        Assert.That(server.ChatRequests, Has.Count.EqualTo(1));
        Assert.That(first.Cache.Hit, Is.False);
        Assert.That(second.Cache, Is.EqualTo(new ModelCacheInfo(true, "exact", first.Cache.Key)));
        Assert.That(second.Text, Is.EqualTo(first.Text));
        Assert.That((second.Usage.TotalTokens, second.Cost), Is.EqualTo((0L, 0m)));
        Assert.That((await host.Ledger.GetAttemptsAsync("c-2")).Single().Outcome, Is.EqualTo("cache-hit"));
        Assert.That((await host.Ledger.GetInstanceTotalsAsync("c-2")).CacheHits, Is.EqualTo(1));

        await host.AskAsync(Question("What is Paris?"), "c-3");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2), "a different question is a miss");
    }

    [Test]
    public async Task Cache_SemanticOptIn_MatchesASimilarPrompt_ByEmbedding()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        await host.AskAsync(Question("What is the capital of France?", ModelCacheMode.Semantic), "s-1");
        var similar = (await host.AskAsync(Question("what is the capital of france", ModelCacheMode.Semantic), "s-2")).ReadOutputAs<ModelResponse>()!;
        var exactOnly = (await host.AskAsync(Question("what is the capital of france"), "s-3")).ReadOutputAs<ModelResponse>()!;

        Assert.That(similar.Cache.Hit, Is.True);
        Assert.That(similar.Cache.Kind, Is.EqualTo("semantic"));
        Assert.That(similar.Cache.Similarity, Is.GreaterThanOrEqualTo(0.95));
        Assert.That(exactOnly.Cache.Hit, Is.False, "without the opt-in only exact matches count");
        Assert.That(server.Requests.Count(r => r.Path.StartsWith("/v1/embeddings", StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(2));
    }

    [Test]
    public async Task Cache_RequestOfferingASideEffectTool_IsNeverCached()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var send = new ModelTool("send_email", "Sends an email", System.Text.Json.JsonDocument.Parse("""{"type":"object"}""").RootElement);
        var request = Question("Email Bob.") with { Tools = [send] };

        await host.AskAsync(request, "t-1");
        var second = (await host.AskAsync(request, "t-2")).ReadOutputAs<ModelResponse>()!;

        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
        Assert.That(second.Cache.Skipped, Is.EqualTo("tools with side effects"));
    }

    [Test]
    public async Task Cache_InRedis_IsSharedBetweenHosts()
    {
        var redis = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh");
        await using var server = await FakeOpenAiServer.StartAsync();
        var hub = "llm" + Guid.NewGuid().ToString("N")[..8];
        var shared = new Dictionary<string, string?> { ["DurableAgents:Redis:Configuration"] = redis, ["DurableAgents:Postgres:TaskHub"] = hub };
        await using var a = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), shared, LlmTestHost.Provider("fast", 0, "primary", server));
        await using var b = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), shared, LlmTestHost.Provider("fast", 0, "primary", server));

        await a.AskAsync(Question("Shared question"), "r-1");
        var fromB = (await b.AskAsync(Question("Shared question"), "r-2")).ReadOutputAs<ModelResponse>()!;

        Assert.That(fromB.Cache.Hit, Is.True);
        Assert.That(server.ChatRequests, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Streaming_AModelsReasoning_GoesOnTheLiveStreamAsReasoningEvents_BeforeItsAnswer()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenReasoning("The user wants a count; five words will do.", "one two three four five");
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var log = host.Services.GetRequiredService<IAgentEventLog>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var response = (await host.AskAsync(Question("Count.", ModelCacheMode.None) with { Stream = true }, "st-r")).ReadOutputAs<ModelResponse>()!;
        var events = new List<AgentStreamItem>();
        await foreach (var item in AgentEventReader.ReadAsync(log, "st-r", 0, _ => Task.FromResult(true), TimeProvider.System, cts.Token))
        {
            events.Add(item);
        }

        var types = events.Select(e => e.Type).ToList();
        string Deltas(string type) => string.Concat(events.Where(e => e.Type == type).Select(e => System.Text.Json.Nodes.JsonNode.Parse(e.Json)!["delta"]!.GetValue<string>()));
        Assert.That(Deltas("REASONING_MESSAGE_CONTENT"), Is.EqualTo("The user wants a count; five words will do."), string.Join(",", types));
        Assert.That(Deltas("TEXT_MESSAGE_CONTENT"), Is.EqualTo("one two three four five"));
        Assert.That(types.IndexOf("REASONING_START"), Is.LessThan(types.IndexOf("REASONING_MESSAGE_START")));
        Assert.That(types.IndexOf("REASONING_END"), Is.GreaterThan(types.LastIndexOf("REASONING_MESSAGE_CONTENT")).And.LessThan(types.IndexOf("TEXT_MESSAGE_CONTENT")), "the thinking ends before the answer streams");
        Assert.That(response.Text, Is.EqualTo("one two three four five"), "the durable result is the answer, not the thinking");
    }

    [Test]
    public async Task Streaming_TokensGoOnTheLiveStream_AsAgUiEvents_AndTheDurableResultIsTheWholeMessage()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("one two three four five", 7, 5);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var log = host.Services.GetRequiredService<IAgentEventLog>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var response = (await host.AskAsync(Question("Count.", ModelCacheMode.None) with { Stream = true }, "st-1")).ReadOutputAs<ModelResponse>()!;
        var events = new List<AgentStreamItem>();
        await foreach (var item in AgentEventReader.ReadAsync(log, "st-1", 0, _ => Task.FromResult(true), TimeProvider.System, cts.Token))
        {
            events.Add(item);
        }

        Assert.That(server.ChatRequests.Single().Stream, Is.True);
        Assert.That(events.Select(e => e.Id), Is.EqualTo(Enumerable.Range(1, events.Count).Select(i => (long?)i)), "ids 1, 2, 3 … with no notice");
        var types = events.Select(e => e.Type).ToList();
        Assert.That(types[0], Is.EqualTo("RUN_STARTED"));
        Assert.That(types[^1], Is.EqualTo("RUN_FINISHED"));
        var contents = events.Where(e => e.Type == "TEXT_MESSAGE_CONTENT").Select(e => System.Text.Json.Nodes.JsonNode.Parse(e.Json)!).ToList();
        Assert.That(contents, Has.Count.EqualTo(5), "one event per streamed piece");
        Assert.That(string.Concat(contents.Select(c => c["delta"]!.GetValue<string>())), Is.EqualTo("one two three four five"));
        Assert.That(types.IndexOf("TEXT_MESSAGE_START"), Is.LessThan(types.IndexOf("TEXT_MESSAGE_CONTENT")));
        Assert.That(types.LastIndexOf("TEXT_MESSAGE_END"), Is.GreaterThan(types.LastIndexOf("TEXT_MESSAGE_CONTENT")));
        var usage = System.Text.Json.Nodes.JsonNode.Parse(events.Single(e => e.Type == "CUSTOM" && e.Json.Contains(AgUi.Usage, StringComparison.Ordinal)).Json)!["value"]!;
        Assert.That(usage["inputTokens"]!.GetValue<long>(), Is.EqualTo(7));
        Assert.That(usage["outputTokens"]!.GetValue<long>(), Is.EqualTo(5));
        Assert.That(response.Text, Is.EqualTo("one two three four five"));
        Assert.That(response.Usage, Is.EqualTo(new ModelUsage(7, 5)));
    }

    [Test]
    public async Task Secrets_ApiKeys_NeverReachLogs_Errors_OrHistory()
    {
        const string key = "sk-live-SUPERSECRET-0123456789";
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenStatus(401).ThenStatus(500).ThenStatus(500).ThenStatus(500).ThenText("fine");
        var settings = LlmTestHost.FastResilience();
        settings["DurableAgents:Llm:LogContent"] = "false";
        await using var host = await LlmTestHost.StartAsync(settings, LlmTestHost.Provider("fast", 0, "primary", server, apiKey: key));

        var unauthorized = await host.AskAsync(Question("secret prompt text", ModelCacheMode.None), "sec-1");
        var failed = await host.AskAsync(Question("secret prompt text", ModelCacheMode.None), "sec-2");
        await host.AskAsync(Question("secret prompt text", ModelCacheMode.None), "sec-3");

        Assert.That(server.ChatRequests[0].Headers["Authorization"], Is.EqualTo("Bearer " + key), "the key was really used");
        var everything = string.Join("\n", host.Logs.Entries.Select(e => e.Message))
            + unauthorized.FailureDetails + failed.FailureDetails
            + string.Join("\n", (await host.Backend.GetHistoryEventsAsync("sec-1")).Select(Engine.History.HistoryJson.Serialize))
            + string.Join("\n", (await host.Backend.GetHistoryEventsAsync("sec-2")).Select(Engine.History.HistoryJson.Serialize));
        Assert.That(everything, Does.Not.Contain("SUPERSECRET"));
        Assert.That(string.Join("\n", host.Logs.Entries.Select(e => e.Message)), Does.Not.Contain("secret prompt text"), "prompts are not logged by default");
        Assert.That(host.Logs.Entries.Any(e => e.Id.Id == 1301), "calls are logged, without content");
    }

    [Test]
    public async Task Simulator_WithNoProviderConfigured_AnswersLabelled_StructuredToolsAndStreaming()
    {
        await using var host = await LlmTestHost.StartAsync();

        var text = (await host.AskAsync(Question("Hello?"), "sim-1")).ReadOutputAs<ModelResponse>()!;
        var structured = (await host.AskAsync(Question("Judge.") with { ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Verdict>() }, "sim-2")).ReadOutputAs<ModelResponse>()!;
        var tool = new ModelTool("search", "Searches", System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{"query":{"type":"string"}}}""").RootElement);
        var toolCall = (await host.AskAsync(Question("Find it.") with { Tools = [tool] }, "sim-3")).ReadOutputAs<ModelResponse>()!;
        var streamed = (await host.AskAsync(Question("Stream it.", ModelCacheMode.None) with { Stream = true }, "sim-4")).ReadOutputAs<ModelResponse>()!;

        Assert.That((text.Simulated, text.Model), Is.EqualTo((true, "simulator")));
        Assert.That(text.Text, Does.StartWith("[simulated]"));
        Assert.That(structured.ReadJsonAs<Verdict>()!.Approved, Is.True);
        Assert.That(toolCall.ToolCalls.Single().Name, Is.EqualTo("search"));
        Assert.That(streamed.Text, Does.StartWith("[simulated]"));
        Assert.That(host.Logs.Entries.Count(e => e.Id.Id == 1304), Is.EqualTo(1), "one start-up warning names the simulated profiles");
    }

    [Test]
    public async Task Telemetry_ModelCallSpans_CarryGenAiAttributes()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("traced", 21, 8);
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == ModelClients.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        var spans = new System.Collections.Concurrent.ConcurrentQueue<Activity>();
        listener.ActivityStopped = spans.Enqueue;
        ActivitySource.AddActivityListener(listener);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        await host.AskAsync(Question("Trace me.", ModelCacheMode.None), "otel-1");

        var span = spans.Single(s => s.GetTagItem("gen_ai.usage.input_tokens") is 21 or 21L);
        Assert.That(span.GetTagItem("gen_ai.request.model"), Is.EqualTo("gpt-test"));
        Assert.That(span.GetTagItem("gen_ai.operation.name"), Is.EqualTo("chat"));
        Assert.That(Convert.ToInt64(span.GetTagItem("gen_ai.usage.output_tokens"), System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(8));
    }
}
