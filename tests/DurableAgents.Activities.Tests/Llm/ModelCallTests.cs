using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>
/// CallModel end to end: an orchestration calls the activity, which drives the real OpenAI / Azure OpenAI
/// SDK over HTTP against a local OpenAI-compatible server scripted per test.
/// </summary>
public sealed class ModelCallTests
{
    private static ModelRequest Hello(string text = "Say hello.", string profile = "fast") => new()
    {
        Profile = profile,
        Messages = [ModelMessage.System("Be brief."), ModelMessage.User(text)],
        Cache = ModelCacheMode.None,
    };

    private static TaskFailureDetails ActivityFailure(OrchestrationMetadata done)
    {
        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        return done.FailureDetails!.InnerFailure ?? done.FailureDetails;
    }

    [Test]
    public async Task CallModel_OpenAiCompatibleEndpoint_AnswersThroughTheRealSdk_AndAccountsTokensAndCost()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("Hello there.", promptTokens: 1000, completionTokens: 200);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var done = await host.AskAsync(Hello(), "acct-1");
        var response = done.ReadOutputAs<ModelResponse>()!;

        Assert.That(response.Text, Is.EqualTo("Hello there."));
        Assert.That(response.Provider, Is.EqualTo("primary"));
        Assert.That(response.Model, Is.EqualTo("gpt-test"));
        Assert.That(response.Simulated, Is.False);
        Assert.That(response.Usage, Is.EqualTo(new ModelUsage(1000, 200)));
        var expectedCost = (1000 * 2.5m + 200 * 10m) / 1_000_000m;
        Assert.That(response.Cost, Is.EqualTo(expectedCost));

        var request = server.ChatRequests.Single();
        Assert.That(request.Path, Is.EqualTo("/v1/chat/completions"));
        Assert.That(request.Headers["Authorization"], Is.EqualTo("Bearer sk-test-key"));
        Assert.That(request.Body["messages"]!.AsArray().Select(m => (string)m!["role"]!), Is.EqualTo(new[] { "system", "user" }));

        var attempts = await host.Ledger.GetAttemptsAsync("acct-1");
        Assert.That(attempts, Has.Count.EqualTo(1));
        Assert.That(attempts[0].Workflow, Is.EqualTo(nameof(Ask)));
        Assert.That((attempts[0].Outcome, attempts[0].InputTokens, attempts[0].OutputTokens, attempts[0].Cost), Is.EqualTo(("ok", 1000L, 200L, expectedCost)));

        await host.AskAsync(Hello("again"), "acct-2");
        var totals = await host.Ledger.GetInstanceTotalsAsync("acct-1");
        Assert.That((totals.Calls, totals.InputTokens, totals.OutputTokens, totals.Cost), Is.EqualTo((1L, 1000L, 200L, expectedCost)));
        var perWorkflow = (await host.Ledger.GetWorkflowTotalsAsync()).Single(t => t.Key == nameof(Ask));
        Assert.That((perWorkflow.Calls, perWorkflow.InputTokens, perWorkflow.OutputTokens), Is.EqualTo((2L, 1010L, 205L)));
    }

    [Test]
    public async Task CallModel_RateLimitedWithRetryAfter_WaitsAsTold_RetriesAndAccountsEveryAttempt()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenStatus(429, retryAfterSeconds: 1).ThenText("finally", 10, 5);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var done = await host.AskAsync(Hello(), "rl-1");

        Assert.That(done.ReadOutputAs<ModelResponse>()!.Text, Is.EqualTo("finally"));
        var requests = server.ChatRequests;
        Assert.That(requests, Has.Count.EqualTo(2));
        // The back-off is 10 ms; only the Retry-After header explains a gap of a second.
        Assert.That(requests[1].At - requests[0].At, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(950)));

        var attempts = await host.Ledger.GetAttemptsAsync("rl-1");
        Assert.That(attempts.Select(a => (a.Outcome, a.InputTokens, a.OutputTokens)), Is.EqualTo(new[] { ("HTTP 429", 0L, 0L), ("ok", 10L, 5L) }));
        Assert.That(done.ReadOutputAs<ModelResponse>()!.Attempts, Is.EqualTo(2));
    }

    [TestCase(401, null, LlmErrorTypes.Authentication)]
    [TestCase(400, null, LlmErrorTypes.InvalidRequest)]
    [TestCase(400, "content_filter", LlmErrorTypes.ContentFiltered)]
    public async Task CallModel_PermanentError_IsNotRetried_AndFailsNonRetriableWithItsType(int status, string? code, string errorType)
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenStatus(status, errorCode: code);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var failure = ActivityFailure(await host.AskAsync(Hello(), "perm-" + status + code));

        Assert.That(server.ChatRequests, Has.Count.EqualTo(1), "a permanent error is not retried");
        Assert.That(failure.ErrorType, Is.EqualTo(errorType));
        Assert.That(failure.IsNonRetriable, Is.True);
    }

    [Test]
    public async Task CallModel_ServerErrorsExhaustRetries_ReportsTransientAndRetriable()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenStatus(500).ThenStatus(503).ThenStatus(500);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var failure = ActivityFailure(await host.AskAsync(Hello(), "tr-1"));

        Assert.That(server.ChatRequests, Has.Count.EqualTo(3), "first attempt + 2 retries");
        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.Transient));
        Assert.That(failure.IsNonRetriable, Is.False);
        Assert.That((await host.Ledger.GetAttemptsAsync("tr-1")).Select(a => a.Outcome), Is.EqualTo(new[] { "HTTP 500", "HTTP 503", "HTTP 500" }));
    }

    [Test]
    public async Task CallModel_PrimaryKeepsFailing_SecondaryProviderAnswers()
    {
        await using var primary = await FakeOpenAiServer.StartAsync();
        await using var secondary = await FakeOpenAiServer.StartAsync();
        primary.ThenStatus(500).ThenStatus(500).ThenStatus(500);
        secondary.ThenText("from the secondary");
        await using var host = await LlmTestHost.StartAsync(
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "primary", primary),
            LlmTestHost.Provider("fast", 1, "secondary", secondary));

        var response = (await host.AskAsync(Hello(), "fb-1")).ReadOutputAs<ModelResponse>()!;

        Assert.That(response.Text, Is.EqualTo("from the secondary"));
        Assert.That(response.Provider, Is.EqualTo("secondary"));
        Assert.That(response.Route, Does.Contain("fallback to 'secondary'"));
        Assert.That(primary.ChatRequests, Has.Count.EqualTo(3));
        var attempts = await host.Ledger.GetAttemptsAsync("fb-1");
        Assert.That(attempts.Select(a => (a.Provider, a.Outcome)), Is.EqualTo(new[] { ("primary", "HTTP 500"), ("primary", "HTTP 500"), ("primary", "HTTP 500"), ("secondary", "ok") }));
        Assert.That(host.Logs.Entries.Any(e => e.Id.Id == 1302), "the fallback is logged as a warning");
    }

    [Test]
    public async Task CallModel_ContentFiltered_DoesNotFallBack()
    {
        await using var primary = await FakeOpenAiServer.StartAsync();
        await using var secondary = await FakeOpenAiServer.StartAsync();
        primary.ThenContentFilter();
        await using var host = await LlmTestHost.StartAsync(
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "primary", primary),
            LlmTestHost.Provider("fast", 1, "secondary", secondary));

        var failure = ActivityFailure(await host.AskAsync(Hello(), "cf-1"));

        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.ContentFiltered));
        Assert.That(secondary.Requests, Is.Empty, "the same content would be refused elsewhere too");
    }

    [Test]
    public async Task CallModel_CircuitOpensAfterFailures_SkipsTheProvider_ThenRecoversAfterTheBreak()
    {
        await using var primary = await FakeOpenAiServer.StartAsync();
        await using var secondary = await FakeOpenAiServer.StartAsync();
        primary.ThenStatus(500).ThenStatus(500);
        primary.DefaultText = "primary is back";
        secondary.DefaultText = "secondary";
        var settings = new Dictionary<string, string?>
        {
            ["DurableAgents:Llm:Resilience:MaxRetryAttempts"] = "0",
            ["DurableAgents:Llm:Resilience:CircuitMinimumThroughput"] = "2",
            ["DurableAgents:Llm:Resilience:CircuitFailureRatio"] = "0.5",
            ["DurableAgents:Llm:Resilience:CircuitSamplingDuration"] = "00:00:30",
            ["DurableAgents:Llm:Resilience:CircuitBreakDuration"] = "00:00:01",
        };
        await using var host = await LlmTestHost.StartAsync(settings, LlmTestHost.Provider("fast", 0, "primary", primary), LlmTestHost.Provider("fast", 1, "secondary", secondary));

        Assert.That((await host.AskAsync(Hello("1"), "cb-1")).ReadOutputAs<ModelResponse>()!.Provider, Is.EqualTo("secondary"));
        Assert.That((await host.AskAsync(Hello("2"), "cb-2")).ReadOutputAs<ModelResponse>()!.Provider, Is.EqualTo("secondary"));
        Assert.That(primary.ChatRequests, Has.Count.EqualTo(2));

        // Open: the primary is not even asked.
        var third = (await host.AskAsync(Hello("3"), "cb-3")).ReadOutputAs<ModelResponse>()!;
        Assert.That(third.Provider, Is.EqualTo("secondary"));
        Assert.That(primary.ChatRequests, Has.Count.EqualTo(2), "an open circuit sends nothing");
        Assert.That((await host.Ledger.GetAttemptsAsync("cb-3"))[0].Outcome, Is.EqualTo(LlmErrorTypes.Transient));

        // After the break a probe goes through, succeeds, and the circuit closes.
        await Task.Delay(TimeSpan.FromMilliseconds(1300));
        Assert.That((await host.AskAsync(Hello("4"), "cb-4")).ReadOutputAs<ModelResponse>()!.Text, Is.EqualTo("primary is back"));
        Assert.That((await host.AskAsync(Hello("5"), "cb-5")).ReadOutputAs<ModelResponse>()!.Provider, Is.EqualTo("primary"));
    }

    [Test]
    public async Task CallModel_AzureOpenAiProvider_UsesTheAzureSdk_DeploymentRouteAndApiKeyHeader()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("from azure");
        await using var host = await LlmTestHost.StartAsync(
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "azure", server, kind: "AzureOpenAI", model: "my-deployment", apiKey: "azure-key-123"));

        var done = await host.AskAsync(Hello(), "az-1");
        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        var response = done.ReadOutputAs<ModelResponse>()!;

        Assert.That(response.Text, Is.EqualTo("from azure"));
        var request = server.ChatRequests.Single();
        Assert.That(request.Path, Does.StartWith("/openai/deployments/my-deployment/chat/completions?api-version="));
        Assert.That(request.Headers["api-key"], Is.EqualTo("azure-key-123"));
    }

    [Test]
    public async Task CallModel_ToolCalling_ReturnsTheCall_AndSendsTheToolResultBack()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenToolCall("lookup_order", "{\"orderId\":\"A-17\"}").ThenText("Order A-17 ships tomorrow.");
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var tool = new ModelTool("lookup_order", "Finds an order", JsonDocument.Parse("""{"type":"object","properties":{"orderId":{"type":"string"}},"required":["orderId"]}""").RootElement, HasSideEffects: false);
        var ask = new ModelRequest { Messages = [ModelMessage.User("Where is order A-17?")], Tools = [tool] };

        var first = (await host.AskAsync(ask, "tool-1")).ReadOutputAs<ModelResponse>()!;

        Assert.That(first.ToolCalls.Single().Name, Is.EqualTo("lookup_order"));
        Assert.That(JsonDocument.Parse(first.ToolCalls[0].ArgumentsJson).RootElement.GetProperty("orderId").GetString(), Is.EqualTo("A-17"));
        Assert.That((string)server.ChatRequests[0].Body["tools"]![0]!["function"]!["name"]!, Is.EqualTo("lookup_order"));

        var followUp = ask with
        {
            Messages = [.. ask.Messages, new ModelMessage(ChatRoles.Assistant, null, first.ToolCalls), ModelMessage.ToolResult(first.ToolCalls[0].Id, "ships tomorrow")],
        };
        var second = (await host.AskAsync(followUp, "tool-2")).ReadOutputAs<ModelResponse>()!;

        Assert.That(second.Text, Is.EqualTo("Order A-17 ships tomorrow."));
        var toolMessage = server.ChatRequests[1].Body["messages"]!.AsArray().Single(m => (string)m!["role"]! == "tool")!;
        Assert.That(((string)toolMessage["tool_call_id"]!, (string)toolMessage["content"]!), Is.EqualTo(("call_1", "ships tomorrow")));
    }

    [Test]
    public async Task CallModel_MalformedResponseBody_FailsAsTransient()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenMalformedBody();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        var failure = ActivityFailure(await host.AskAsync(Hello(), "mal-1"));

        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.Transient));
        Assert.That(failure.IsNonRetriable, Is.False);
    }

    [Test]
    public async Task CallModel_SlowerThanTheAttemptTimeout_TimesOutAndRetries()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenSlow(TimeSpan.FromSeconds(10), "too late").ThenText("in time");
        var settings = LlmTestHost.FastResilience();
        settings["DurableAgents:Llm:Resilience:AttemptTimeout"] = "00:00:00.500";
        await using var host = await LlmTestHost.StartAsync(settings, LlmTestHost.Provider("fast", 0, "primary", server));

        var response = (await host.AskAsync(Hello(), "slow-1")).ReadOutputAs<ModelResponse>()!;

        Assert.That(response.Text, Is.EqualTo("in time"));
        Assert.That((await host.Ledger.GetAttemptsAsync("slow-1")).Select(a => a.Outcome).First(), Is.EqualTo("TaskCanceledException").Or.EqualTo("OperationCanceledException"));
    }

    [Test]
    public async Task CallModel_UnknownProfile_FailsNonRetriable_NamingTheConfiguredOnes()
    {
        await using var host = await LlmTestHost.StartAsync();

        var failure = ActivityFailure(await host.AskAsync(Hello(profile: "nope"), "np-1"));

        Assert.That(failure.ErrorType, Is.EqualTo(LlmErrorTypes.UnknownProfile));
        Assert.That(failure.ErrorMessage, Does.Contain("'nope'").And.Contain("fast"));
    }

    [Test]
    public async Task AReExecutedTask_IsRecordedAsARunOfItsOwn_AndBothRunsCount()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("first run", 10, 5).ThenText("second run", 10, 5);
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var request = new ModelRequest { Messages = [ModelMessage.User("hello")], Cache = ModelCacheMode.None, Budget = new ModelBudget(MaxTokens: 100_000) };

        // Two executions of one task (same idempotency key): each activity execution makes its own origin.
        await host.Models.CallAsync(new ModelCallOrigin("rerun-1", 1, "rerun-1:e:1"), request);
        await host.Models.CallAsync(new ModelCallOrigin("rerun-1", 1, "rerun-1:e:1"), request);

        var attempts = await host.Ledger.GetAttemptsAsync("rerun-1");
        Assert.That(attempts, Has.Count.EqualTo(2), "the second run's attempt is not dropped as a duplicate of the first's");
        Assert.That(attempts.Select(a => a.TaskKey.Split('#')[0]), Is.All.EqualTo("rerun-1:e:1"));
        Assert.That(attempts[0].TaskKey, Is.Not.EqualTo(attempts[1].TaskKey));
        Assert.That((await host.Ledger.GetInstanceTotalsAsync("rerun-1")).InputTokens, Is.EqualTo(20));
        var next = await host.Ledger.ReserveAsync("rerun-1", "rerun-1:e:2", new ModelBudget(MaxTokens: 100_000), 1, 0);
        Assert.That(next.UsedTokens, Is.EqualTo(30), "the budget counts both runs");
    }

    [Test]
    public async Task EveryHttpAttempt_IsOnTheLedger_BeforeTheProviderReceivesIt()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var seenByServer = new List<IReadOnlyList<(string Outcome, long Estimate)>>();
        async Task Look() => seenByServer.Add((await host.Ledger.GetAttemptsAsync("wa-1")).Select(a => (a.Outcome, a.EstimatedTokens)).ToList());
        server.Then(async (ctx, _) =>
        {
            await Look();
            ctx.Response.StatusCode = 429;
            ctx.Response.Headers.RetryAfter = "0";
        }).Then(async (ctx, req) =>
        {
            await Look();
            await ctx.Response.WriteAsJsonAsync(new { id = "c", @object = "chat.completion", created = 0, model = "gpt-test", choices = new[] { new { index = 0, message = new { role = "assistant", content = "ok" }, finish_reason = "stop" } }, usage = new { prompt_tokens = 9, completion_tokens = 2, total_tokens = 11 } });
        });

        var done = await host.Models.CallAsync(new ModelCallOrigin("wa-1", 1, "wa-1:e:1"), new ModelRequest { Messages = [ModelMessage.User("hello")], Cache = ModelCacheMode.None, MaxOutputTokens = 100 });

        Assert.That(done.Text, Is.EqualTo("ok"));
        Assert.That(seenByServer[0].Select(a => a.Outcome), Is.EqualTo(new[] { "in-flight" }), "the first request was on the books when it arrived");
        Assert.That(seenByServer[1].Select(a => a.Outcome), Is.EqualTo(new[] { "in-flight", "in-flight" }), "so was the retry (attempts settle when the call ends)");
        Assert.That(seenByServer[0][0].Estimate, Is.GreaterThan(100), "input estimate + max output");
        var settled = await host.Ledger.GetAttemptsAsync("wa-1");
        Assert.That(settled.Select(a => (a.Attempt, a.Outcome, a.InputTokens)), Is.EqualTo(new[] { (1, "HTTP 429", 0L), (2, "ok", 9L) }));
        Assert.That(settled.Count, Is.EqualTo(server.ChatRequests.Count));
    }

    [Test]
    public async Task AttemptWrittenAheadFails_TheRequestIsNotSent()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));

        // A ledger that cannot be written stops the request: nothing leaves without its row.
        using var scope = ModelAttemptScope.Begin((_, _) => throw new InvalidOperationException("ledger unavailable"));
        using var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(ModelClients.HttpClientName(new ModelProviderOptions { Name = "primary", Kind = ModelProviderKind.OpenAICompatible, Model = "gpt-test" }));
        Assert.That(async () => await http.PostAsync(new Uri(server.OpenAiEndpoint, "chat/completions"), new StringContent("{}")), Throws.InstanceOf<InvalidOperationException>());
        Assert.That(server.ChatRequests, Is.Empty, "nothing left without its ledger row");
    }
}
