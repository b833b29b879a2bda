using System.Text.Json.Nodes;
using DurableAgents.Activities.Agents;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Tests.Live;
using DurableAgents.Activities.Live;
using DurableAgents.Activities.Llm;
using DurableAgents.Orchestrations;
using DurableAgents.Tests.Support;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Agents;

/// <summary>
/// Steering and interrupting the durable agent loop, through the real OpenAI SDK against the local server:
/// a steer is a user message before the next model call; an interrupt cuts off the streaming call (the ledger
/// has it as interrupted, and it is not made again) and stops the run, or goes on with its message.
/// </summary>
public sealed class SteerInterruptTests
{
    private static Task<LlmTestHost> StartAsync(FakeOpenAiServer server) =>
        LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server), new Dictionary<string, string?> { ["DurableAgents:Llm:Cache:Enabled"] = "false", ["DurableAgents:Agents:live:MaxTurns"] = "10" });

    private static async Task<string> StartChatAsync(LlmTestHost host, string id, string message)
    {
        await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AgentChat), new AgentChatInput(message, Agent: "live"), new StartOrchestrationOptions { InstanceId = id });
        return id;
    }

    private static async Task<OrchestrationMetadata> FinishAsync(LlmTestHost host, string id)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token);
    }

    private static IEnumerable<string> UserMessages(RecordedRequest request) =>
        request.Body["messages"]!.AsArray().Where(m => (string?)m!["role"] == "user").Select(m => m!["content"]!.ToJsonString());

    [Test]
    public async Task ASteer_DuringTheLastTurn_IsTheNextTurnsUserMessage_AndIsInTheRecordedConversation()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        server.ThenGated("Revenue grew with the Q2 numbers.", 2, gate).ThenText("With the Q3 numbers: revenue grew 12%.");
        await using var host = await StartAsync(server);
        var id = await StartChatAsync(host, "steer-1", "Summarise revenue.");

        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await host.Client.RaiseEventAsync(id, AgentEvents.Steer, new SteerMessage("Use the Q3 numbers instead."));
        // The steer is in the store before the turn ends: wait for the EventRaised to commit, then let the answer go.
        await WaitForHistoryAsync(host, id, "EventRaised");
        gate.Release.SetResult();

        var done = await FinishAsync(host, id);
        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.Answered));
        Assert.That(result.Turns, Is.EqualTo(2), "the steer got a turn of its own");
        Assert.That(result.Text, Is.EqualTo("With the Q3 numbers: revenue grew 12%."));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
        Assert.That(UserMessages(server.ChatRequests[0]), Has.None.Contains("Q3"), "the first call was made before the steer");
        Assert.That(UserMessages(server.ChatRequests[1]).Last(), Does.Contain("Use the Q3 numbers instead."), "the next call's prompt has it as the last user message");

        var conversation = await host.Services.GetRequiredService<ConversationStore>().LoadAsync(result.Conversation!, CancellationToken.None);
        Assert.That(conversation.Select(m => (m.Role, m.Text)), Does.Contain((ChatRoles.User, (string?)"Use the Q3 numbers instead.")), "recorded in the conversation");
        var live = await AgentEventLogTests.ReadToEndAsync(host.Services.GetRequiredService<IAgentEventLog>(), id, 0, CancellationToken.None);
        Assert.That(live.Select(e => e.Json), Has.Some.Contains(AgUi.Steered), "the steer is on the live stream");
        Assert.That(live.Count(e => e.Type == "STEP_STARTED"), Is.EqualTo(2));
    }

    [Test]
    public async Task AnInterrupt_CutsOffTheStreamingCall_StopsTheRunWithWhatItHad_AndTheLedgerHasTheInterruptedAttempt()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        server.ThenGated("The first three words and then a great deal more.", 3, gate);
        await using var host = await StartAsync(server);
        var id = await StartChatAsync(host, "int-1", "Write a long essay.");
        var log = host.Services.GetRequiredService<IAgentEventLog>();

        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await WaitForLiveAsync(log, id, "TEXT_MESSAGE_CONTENT", 3);
        await host.Client.RaiseEventAsync(id, AgentEvents.Interrupt, new InterruptRequest());
        await host.Services.GetRequiredService<ModelInterrupts>().SignalAsync(id, CancellationToken.None);

        var done = await FinishAsync(host, id);
        await gate.Aborted.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the HTTP request was cancelled, not finished
        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.Interrupted));
        Assert.That(result.Text, Is.EqualTo("The first three"), "what had streamed");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(1), "the cut-off call is not made again");

        var attempts = await host.Ledger.GetAttemptsAsync(id);
        Assert.That(attempts.Select(a => a.Outcome), Is.EqualTo(new[] { RelationalModelLedger.Interrupted }), "one attempt, interrupted");
        var live = await AgentEventLogTests.ReadToEndAsync(log, id, 0, CancellationToken.None);
        var types = live.Select(e => e.Type).ToList();
        Assert.That(types.LastIndexOf("TEXT_MESSAGE_END"), Is.GreaterThan(types.LastIndexOf("TEXT_MESSAGE_CONTENT")), "the cut-off message is ended");
        Assert.That(live.Select(e => e.Json), Has.Some.Contains(AgUi.CallInterrupted));
        var finished = JsonNode.Parse(live[^1].Json)!;
        Assert.That(finished["type"]!.GetValue<string>(), Is.EqualTo("RUN_FINISHED"));
        Assert.That(finished["outcome"]!["type"]!.GetValue<string>(), Is.EqualTo("cancelled"));
    }

    [Test]
    public async Task AnInterruptWithAMessage_CutsOffTheCall_AndTheRunGoesOnWithTheMessage()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        server.ThenGated("Drafting with the Q2 numbers and more words.", 2, gate).ThenText("Redone with Q3.");
        await using var host = await StartAsync(server);
        var id = await StartChatAsync(host, "int-2", "Draft the report.");

        await gate.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await WaitForLiveAsync(host.Services.GetRequiredService<IAgentEventLog>(), id, "TEXT_MESSAGE_CONTENT", 2);
        await host.Client.RaiseEventAsync(id, AgentEvents.Interrupt, new InterruptRequest("Stop: use Q3."));
        await host.Services.GetRequiredService<ModelInterrupts>().SignalAsync(id, CancellationToken.None);

        var result = (await FinishAsync(host, id)).ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.Answered));
        Assert.That(result.Text, Is.EqualTo("Redone with Q3."));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
        var second = server.ChatRequests[1].Body["messages"]!.AsArray();
        Assert.That((string?)second[^1]!["role"], Is.EqualTo("user"));
        Assert.That(second[^1]!["content"]!.ToJsonString(), Does.Contain("Stop: use Q3."));
        Assert.That(second.Any(m => (string?)m!["role"] == "assistant" && m["content"]!.ToJsonString().Contains("Drafting with", StringComparison.Ordinal)), Is.True, "the cut-off answer is in the conversation");
        var outcomes = (await host.Ledger.GetAttemptsAsync(id)).Select(a => a.Outcome).ToList();
        Assert.That(outcomes, Is.EquivalentTo(new[] { RelationalModelLedger.Interrupted, "ok" }));
    }

    [Test]
    public async Task AnInterrupt_EndsTheDurableWaitForModelCapacity_AndTheRunStopsWithoutAModelCall()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("The only call this minute.");
        // One request a minute: the second chat's turn is refused and waits on a durable timer (about a minute).
        await using var host = await LlmTestHost.StartAsync(
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "primary", server),
            new Dictionary<string, string?> { ["DurableAgents:Llm:Cache:Enabled"] = "false", ["DurableAgents:Agents:live:MaxTurns"] = "10", ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "1" });
        await FinishAsync(host, await StartChatAsync(host, "cap-1", "First."));
        var id = await StartChatAsync(host, "cap-2", "Second.");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while ((await host.Client.GetInstanceAsync(id, cts.Token))?.SerializedCustomStatus?.Contains("waitingForModelCapacity", StringComparison.Ordinal) != true)
        {
            await Task.Delay(20, cts.Token);
        }

        await host.Client.RaiseEventAsync(id, AgentEvents.Interrupt, new InterruptRequest(), cts.Token);
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token); // well before the minute is over

        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That((result.StopReason, result.Turns, result.Text), Is.EqualTo((AgentStopReasons.Interrupted, 0, string.Empty)));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(1), "the waiting turn never called the model");
    }

    [Test]
    public async Task SteersOfAFinishedRun_AreNotTaken_AndAnAgentWithoutPeopleRunsAsBefore()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenText("Done.");
        await using var host = await StartAsync(server);
        var done = await host.ChatAsync(new AgentChatInput("Hi.", Agent: "live"), "plain-1");
        Assert.That(done.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That((result.StopReason, result.Turns, result.Text), Is.EqualTo((AgentStopReasons.Answered, 1, "Done.")));
        Assert.That(server.ChatRequests.Single().Stream, Is.True, "agent turns stream");
    }

    private static async Task WaitForHistoryAsync(LlmTestHost host, string id, string eventType)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var signal = host.Services.GetRequiredService<DurableAgents.Engine.Hosting.WorkSignal>();
        while (true)
        {
            var changed = signal.NextInstanceChange(id);
            var history = await host.Backend.GetHistoryEventsAsync(id, cts.Token);
            if (history.Any(e => e.EventTypeCase.ToString() == eventType))
            {
                return;
            }

            await changed.WaitAsync(cts.Token);
        }
    }

    private static async Task WaitForLiveAsync(IAgentEventLog log, string id, string type, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = 0;
        await foreach (var item in AgentEventReader.ReadAsync(log, id, 0, _ => Task.FromResult(false), TimeProvider.System, cts.Token))
        {
            if (item.Type == type && ++seen == count)
            {
                return;
            }
        }
    }
}
