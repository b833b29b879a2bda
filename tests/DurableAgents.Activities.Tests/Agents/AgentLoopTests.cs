using DurableTask.Core.History;
using System.Text.Json;
using DurableAgents.Activities.Agents;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Tests.Support;
using DurableAgents.Engine.Client;
using DurableAgents.Orchestrations;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Activities.Tests.Agents;

/// <summary>The durable agent loop in-process: stopping rules, human input, and history that grows linearly.</summary>
public sealed class AgentLoopTests
{
    private static Dictionary<string, string?> Agents() => new()
    {
        ["DurableAgents:Agents:looper:Tools:0"] = "echo",
        ["DurableAgents:Agents:looper:MaxTurns"] = "60",
        ["DurableAgents:Agents:asker:Tools:0"] = "request_human_input",
    };

    private static Task<LlmTestHost> StartAsync(FakeOpenAiServer server, EchoTool? echo = null) =>
        LlmTestHost.StartAsync(s => s.AddSingleton<IAgentTool>(echo ?? new EchoTool()), LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server), Agents());

    [Test]
    public async Task MemorySearch_ReadsOnlyTheScopeTheWorkflowGranted_WithIdsAndVersionsInTheResult()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenToolCall("memory_search", """{"query":"where does the founder live","scope":"user:2"}""")
            .ThenToolCall("memory_search", """{"query":"where does the founder live"}""")
            .ThenText("Lisbon.");
        await using var host = await LlmTestHost.StartAsync(
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "primary", server),
            new Dictionary<string, string?> { ["DurableAgents:Agents:rememberer:Tools:0"] = "memory_search", ["DurableAgents:Memory:EmbeddingDimensions"] = "26" });
        var store = host.Services.GetRequiredService<FactStore>();
        var models = host.Models;
        async Task<float[]> Embed(string text) => (await models.EmbedAsync(new Contracts.Llm.EmbeddingRequest([text]))).Vectors[0];
        var mine = await store.AddAsync("user:1", "The founder lives in Lisbon", 7, await Embed("The founder lives in Lisbon"), null);
        await store.AddAsync("user:2", "Another founder lives in Berlin", 7, await Embed("Another founder lives in Berlin"), null);

        var result = (await host.ChatAsync(new AgentChatInput("Where do I live?", Agent: "rememberer", MemoryScope: "user:1"), "mem-chat")).ReadOutputAs<AgentRunResult>()!;

        Assert.That(result.ToolCalls.Select(c => c.Status), Is.EqualTo(new[] { ToolStatuses.InvalidArguments, ToolStatuses.Ok }), "the model cannot choose the scope");
        var found = server.ChatRequests[2].Body["messages"]!.AsArray().Last(m => (string?)m!["role"] == "tool")!["content"]!.GetValue<string>();
        Assert.That(found, Does.Contain(mine.Id).And.Contain("\"version\":1").And.Contain("Lisbon"));
        Assert.That(found, Does.Not.Contain("Berlin"), "another scope's facts are never returned");
        var history = await host.Client.GetOrchestrationHistoryAsync("mem-chat");
        Assert.That(history.OfType<DurableTask.Core.History.TaskCompletedEvent>().Any(e => e.Result?.Contains(mine.Id, StringComparison.Ordinal) == true), Is.True, "what was read is recorded in history");
    }

    [Test]
    public async Task TheBudget_StopsTheRun_BeforeACallIsMade()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await StartAsync(server);

        var m = await host.ChatAsync(new AgentChatInput("Research everything.", Agent: "looper", MaxTokens: 50));

        var result = m.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.Budget));
        Assert.That(result.Turns, Is.Zero);
        Assert.That(server.ChatRequests, Is.Empty);
    }

    [Test]
    public async Task MaxTurns_StopsTheRun_WithoutRunningTheLastTurnsTools()
    {
        var echo = new EchoTool();
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenToolCall("echo", """{"text":"a","times":1}""").ThenToolCall("echo", """{"text":"b","times":1}""");
        await using var host = await StartAsync(server, echo);

        var result = (await host.ChatAsync(new AgentChatInput("Loop.", Agent: "looper", MaxTurns: 2))).ReadOutputAs<AgentRunResult>()!;

        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.MaxTurns));
        Assert.That(result.Turns, Is.EqualTo(2));
        Assert.That(echo.Calls.Select(c => c.Text), Is.EqualTo(new[] { "a" }));
        Assert.That(result.Usage.TotalTokens, Is.EqualTo(2 * (12 + 7)));
    }

    /// <summary>Polls until the run's custom status says it waits for a person's answer.</summary>
    private static async Task<OrchestrationMetadata> WaitForHumanInputAsync(LlmTestHost host, string id, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(50, cancellationToken);
            if (await host.Client.GetInstanceAsync(id, true, cancellationToken) is { } m && m.SerializedCustomStatus?.Contains("human-input", StringComparison.Ordinal) == true)
            {
                return m;
            }
        }
    }

    [Test]
    public async Task RequestHumanInput_WaitsForTheEvent_AndGivesTheAnswerToTheModel()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenToolCall("request_human_input", """{"question":"Which plan should we launch first?"}""").ThenText("Launching Pro first.");
        await using var host = await StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AgentChat), new AgentChatInput("Plan the launch.", Agent: "asker"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var waiting = await WaitForHumanInputAsync(host, id, cts.Token);

        Assert.That(waiting.SerializedCustomStatus, Does.Contain("Which plan should we launch first?"));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(1), "no model call while waiting for the person");
        await host.Client.RaiseEventAsync(id, AgentEvents.HumanInput, "The Pro plan.", cts.Token);
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token);

        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.Text, Is.EqualTo("Launching Pro first."));
        Assert.That(result.ToolCalls.Single().Status, Is.EqualTo(ToolStatuses.AwaitingHuman));
        var tool = server.ChatRequests[1].Body["messages"]!.AsArray().Single(x => (string?)x!["role"] == "tool")!;
        Assert.That((string?)tool["content"], Is.EqualTo("The Pro plan."));
    }

    [Test]
    public async Task AnInterrupt_EndsAWaitForHumanInput_AndTheRunStopsWithTheQuestionUnanswered()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ThenToolCall("request_human_input", """{"question":"Which plan should we launch first?"}""").ThenText("never asked for");
        await using var host = await StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(AgentChat), new AgentChatInput("Plan the launch.", Agent: "asker"));

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await WaitForHumanInputAsync(host, id, cts.Token);

        await host.Client.RaiseEventAsync(id, AgentEvents.Interrupt, new InterruptRequest(), cts.Token);
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token); // not after the hours-long human-input timeout

        var result = done.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.StopReason, Is.EqualTo(AgentStopReasons.Interrupted));
        Assert.That(result.ToolCalls.Single().Status, Is.EqualTo(AgentStopReasons.Interrupted));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(1), "no model call after the interrupt");
        Assert.That(done.SerializedCustomStatus, Does.Not.Contain("Which plan"), "no longer shown as waiting for the person");
    }

    /// <summary>
    /// A 50-turn conversation's history is about twice a 25-turn one's (linear), not four times (quadratic):
    /// turns carry the conversation's content address, not the transcript, and each message is stored once.
    /// </summary>
    [Test]
    public async Task History_GrowsLinearlyWithTurns()
    {
        var (history25, largest25, stored25) = await RunAsync(25);
        var (history50, largest50, stored50) = await RunAsync(50);
        TestContext.Out.WriteLine($"history bytes: 25 turns {history25}, 50 turns {history50}; largest event {largest25} / {largest50}; stored messages {stored25} / {stored50}");

        Assert.That((double)history50 / history25, Is.LessThan(2.3), "history grows linearly");
        Assert.That((double)stored50 / stored25, Is.LessThan(2.3), "the message store grows linearly");
        Assert.That(largest50, Is.LessThan(largest25 * 1.2), "no turn or tool event carries the growing transcript");
    }

    private static async Task<(long History, long Largest, long Stored)> RunAsync(int turns)
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        for (var i = 1; i < turns; i++)
        {
            server.ThenToolCall("echo", $$"""{"text":"step {{i:D3}} of the research notes, with some detail to carry","times":1}""");
        }

        server.ThenText("All steps done.");
        await using var host = await StartAsync(server);
        var m = await host.ChatAsync(new AgentChatInput("Work through the steps.", Agent: "looper"));
        var result = m.ReadOutputAs<AgentRunResult>()!;
        Assert.That(result.Turns, Is.EqualTo(turns));
        Assert.That(server.ChatRequests[^1].Body["messages"]!.AsArray(), Has.Count.EqualTo(2 + (2 * (turns - 1))), "the model saw the whole conversation");

        var history = await host.Client.GetOrchestrationHistoryAsync(m.InstanceId);
        var sizes = history.Select(e => (Event: e, Bytes: (long)JsonSerializer.SerializeToUtf8Bytes(e, e.GetType()).Length)).ToList();
        var stored = await host.Services.GetRequiredService<ConversationStore>().StoredBytesAsync();

        // The run's output lists every tool call once (it grows with turns, once); every other event is per turn.
        var largestPerTurn = sizes.Where(s => !s.Event.GetType().Name.Contains("ExecutionCompleted", StringComparison.Ordinal)).Max(s => s.Bytes);
        return (sizes.Sum(s => s.Bytes), largestPerTurn, stored);
    }
}
