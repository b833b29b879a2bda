using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using Microsoft.DurableTask;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>
/// Background responses through the real OpenAI SDK (Responses API via Microsoft.Extensions.AI) against the
/// local server: the token is recorded when the provider accepts the call, and a re-executed call of the same
/// task resumes that response instead of generating again. A run is "killed" by cancelling its call while
/// the response is held in progress (the process-kill version is in the Functions crash tests).
/// </summary>
public sealed class BackgroundResponseTests
{
    private static Dictionary<string, string?> Background(FakeOpenAiServer server) => new(LlmTestHost.Provider("fast", 0, "bg", server))
    {
        ["DurableAgents:Llm:Profiles:fast:Providers:0:BackgroundResponses"] = "true",
        ["DurableAgents:Llm:BackgroundPollInterval"] = "00:00:00.020",
    };

    private static ModelRequest Ask(bool stream = false) => new() { Messages = [ModelMessage.User("Write the intro")], Cache = ModelCacheMode.None, Stream = stream, MaxOutputTokens = 200 };

    [Test]
    public async Task ABackgroundCall_IsOneGeneration_PolledToTheEnd_WithItsTokenOnTheLedger()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.DefaultText = "The durable intro.";
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));

        var response = await host.Models.CallAsync(new ModelCallOrigin("bg-1", 1, "bg-1:e:1"), Ask());

        Assert.That(response.Text, Is.EqualTo("The durable intro."));
        Assert.That(server.Generations, Is.EqualTo(1));
        Assert.That(server.ResponseCreates.Single().Body["background"]!.GetValue<bool>(), Is.True);
        Assert.That(server.ResponsePolls, Is.Not.Empty, "it was polled until completed");
        var attempt = (await host.Ledger.GetAttemptsAsync("bg-1")).Single();
        Assert.That((attempt.Outcome, attempt.OutputTokens), Is.EqualTo(("ok", 3L)));
        Assert.That(attempt.ResponseId, Does.StartWith("1:").And.Contain(server.ResponseIds.Single()));
    }

    [Test]
    public async Task AReExecutedCall_ResumesTheAcceptedResponse_InsteadOfGeneratingAgain()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.DefaultText = "Paid for once.";
        server.HoldResponses = true;
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));
        var first = new ModelCallOrigin("bg-2", 1, "bg-2:e:1");

        // Run 1 is accepted, then dies while the response is in progress.
        await DieMidCallAsync(host, server, first, Ask());
        var afterCrash = (await host.Ledger.GetAttemptsAsync("bg-2")).Single();
        Assert.That(afterCrash.Outcome, Is.EqualTo(RelationalModelLedger.Interrupted));

        // Run 2 of the same task: no second POST, the same response is polled to its end.
        server.ReleaseResponses();
        var response = await host.Models.CallAsync(first with { Run = "second" }, Ask());

        Assert.That(response.Text, Is.EqualTo("Paid for once."));
        Assert.That(server.Generations, Is.EqualTo(1), "no generation paid twice");
        var attempts = await host.Ledger.GetAttemptsAsync("bg-2");
        Assert.That(attempts.Select(a => (a.TaskKey, a.Outcome)), Is.EqualTo(new[] { (afterCrash.TaskKey, "ok") }), "one row per generation, settled by the run that resumed it");
        Assert.That(attempts[0].OutputTokens, Is.EqualTo(3));
        Assert.That(host.Logs.Entries.Select(e => e.Message), Has.Some.Contains("resumed background response " + server.ResponseIds.Single()));
    }

    [Test]
    public async Task AStreamedCall_ResumesItsStream_WithoutRepeatingOrLosingText()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.DefaultText = "one two three four five";
        server.HoldResponses = true;
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));
        var first = new ModelCallOrigin("bg-3", 1, "bg-3:e:1");

        await DieMidCallAsync(host, server, first, Ask(stream: true));
        server.ReleaseResponses();
        var response = await host.Models.CallAsync(first with { Run = "second" }, Ask(stream: true));

        Assert.That(response.Text, Is.EqualTo("one two three four five"));
        Assert.That(server.Generations, Is.EqualTo(1));
        Assert.That(server.ResponsePolls.Single().Path, Does.Contain("stream=true"), "the second run resumed the event stream (replayed from its start)");
    }

    [Test]
    public async Task AResponseTheProviderNoLongerKnows_StartsAFreshGeneration_RecordedAsSuch()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.HoldResponse = 1;
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));
        var first = new ModelCallOrigin("bg-4", 1, "bg-4:e:1");
        await DieMidCallAsync(host, server, first, Ask());
        server.ForgetResponse(server.ResponseIds.Single()); // expired or deleted at the provider

        var response = await host.Models.CallAsync(first with { Run = "second" }, Ask());

        Assert.That(response.Text, Is.EqualTo(server.DefaultText));
        Assert.That(server.Generations, Is.EqualTo(2));
        var attempts = await host.Ledger.GetAttemptsAsync("bg-4");
        Assert.That(attempts.Select(a => a.Outcome), Is.EqualTo(new[] { RelationalModelLedger.Interrupted, "ok" }), "both generations are on the books; the lost one with its estimate");
        Assert.That(attempts[0].EstimatedTokens, Is.GreaterThan(200));
        Assert.That(host.Logs.Entries.Select(e => e.Message), Has.Some.Contains("could not be resumed (not found (expired or deleted)); starting a new generation"));
    }

    [Test]
    public async Task AResponseCancelledAtTheProvider_IsNotResumed_AFreshGenerationIsRecorded()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.HoldResponse = 1;
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));
        var first = new ModelCallOrigin("bg-5", 1, "bg-5:e:1");
        await DieMidCallAsync(host, server, first, Ask());
        using (var http = new HttpClient())
        {
            using var cancel = await http.PostAsync(new Uri(server.OpenAiEndpoint, $"responses/{server.ResponseIds.Single()}/cancel"), null);
            Assert.That(cancel.IsSuccessStatusCode, Is.True);
        }

        var response = await host.Models.CallAsync(first with { Run = "second" }, Ask());

        Assert.That(response.Text, Is.EqualTo(server.DefaultText));
        Assert.That(server.Generations, Is.EqualTo(2));
        Assert.That((await host.Ledger.GetAttemptsAsync("bg-5")).Select(a => a.Outcome), Is.EqualTo(new[] { RelationalModelLedger.Interrupted, "ok" }));
        Assert.That(host.Logs.Entries.Select(e => e.Message), Has.Some.Contains("could not be resumed (cancelled)"));
    }

    [Test]
    public async Task AProviderThatRejectsBackgroundMode_FailsTyped_NamingTheOption_AndNothingIsGenerated()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenStatus(400, errorCode: "unsupported_parameter");
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Background(server));

        var ex = await Assert.ThrowsAsync<ApplicationFailureException>(() => host.Models.CallAsync(new ModelCallOrigin("bg-6", 1, "bg-6:e:1"), Ask()));

        Assert.That(ex!.ErrorType, Is.EqualTo(LlmErrorTypes.InvalidRequest));
        Assert.That(ex.Message, Does.Contain("HTTP 400").And.Contain("BackgroundResponses=true"));
        Assert.That(server.Generations, Is.Zero);
        Assert.That((await host.Ledger.GetAttemptsAsync("bg-6")).Select(a => a.Outcome), Is.EqualTo(new[] { "HTTP 400" }), "the refused request is on the books, settled");
    }

    [Test]
    public async Task BackgroundResponses_OnTheAzureOpenAiKind_IsRefusedAtStart_NamingTheSetting()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "az", server, kind: "AzureOpenAI")) { ["DurableAgents:Llm:Profiles:fast:Providers:0:BackgroundResponses"] = "true" };

        var ex = await Assert.CatchAsync(async () => await LlmTestHost.StartAsync(settings));

        Assert.That(ex!.Message, Does.Contain("DurableAgents:Llm:Profiles:fast:Providers:0:BackgroundResponses is not available with Kind=AzureOpenAI").And.Contain("/openai/v1/"));
        Assert.That(ex.Message, Does.Not.Contain("sk-test-key"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task TheOfflineSimulator_AcceptsBackgroundCalls_AndARunWhoseResultWasLost_ResumesWithoutCountingTwice(bool stream)
    {
        var settings = new Dictionary<string, string?>
        {
            ["DurableAgents:Llm:Profiles:fast:Providers:0:Name"] = "sim",
            ["DurableAgents:Llm:Profiles:fast:Providers:0:Kind"] = "Simulator",
            ["DurableAgents:Llm:Profiles:fast:Providers:0:BackgroundResponses"] = "true",
        };
        await using var host = await LlmTestHost.StartAsync(settings);
        var first = new ModelCallOrigin("sim-bg", 1, "sim-bg:e:1");

        var answer = await host.Models.CallAsync(first, Ask(stream));
        var again = await host.Models.CallAsync(first with { Run = "after-a-crash" }, Ask(stream)); // the first result never committed

        Assert.That(answer.Text, Does.StartWith(SimulatorChatClient.Label));
        Assert.That(again.Text, Is.EqualTo(answer.Text));
        var attempts = await host.Ledger.GetAttemptsAsync("sim-bg");
        Assert.That(attempts, Has.Count.EqualTo(1), "one generation, one row");
        Assert.That(attempts[0].ResponseId, Does.StartWith("1:").And.Contain("sim_"));
        Assert.That(attempts[0].OutputTokens, Is.EqualTo(answer.Usage.OutputTokens));
        Assert.That(host.Logs.Entries.Select(e => e.Message), Has.Some.Contains("resumed background response sim_"));
    }

    /// <summary>Starts the call, waits until the provider accepted it and its token is on the ledger, then cancels it: the run is gone.</summary>
    private static async Task DieMidCallAsync(LlmTestHost host, FakeOpenAiServer server, ModelCallOrigin origin, ModelRequest request)
    {
        using var kill = new CancellationTokenSource();
        var call = host.Models.CallAsync(origin, request, kill.Token);
        var deadline = TestTimeout.Token(30);
        while ((await host.Ledger.GetAttemptsAsync(origin.InstanceId, deadline)).All(a => a.ResponseId is null))
        {
            Assert.That(call.IsCompleted, Is.False, "the call ended before it could be killed");
            await Task.Delay(10, deadline);
        }

        await kill.CancelAsync();
        Assert.That(async () => await call, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(server.Generations, Is.EqualTo(1));
    }
}
