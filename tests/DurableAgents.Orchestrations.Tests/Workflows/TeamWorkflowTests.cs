using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Tests.Support;
using DurableAgents.Engine;
using NUnit.Framework;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>SupervisorAgent and GroupChat, with the local OpenAI-compatible server playing the manager and the agents.</summary>
public sealed class TeamWorkflowTests
{
    [Test]
    public async Task Supervisor_DispatchesWorkers_RePlansAfterAFailure_AndStopsWhenTheGoalIsMet()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var plans = 0;
        server.Responder = r =>
        {
            var system = WorkflowKit.System(r);
            if (!system.StartsWith("You are the manager", StringComparison.Ordinal))
            {
                return $"{(system.StartsWith("You research", StringComparison.Ordinal) ? "researcher" : "analyst")} result";
            }

            return Interlocked.Increment(ref plans) switch
            {
                1 => """{"goalMet":false,"plan":["research","analyse"],"tasks":[{"worker":"researcher","instruction":"Find competitors"},{"worker":"ghost","instruction":"Price them"}],"finalAnswer":null}""",
                2 => """{"goalMet":false,"plan":["research","analyse instead"],"tasks":[{"worker":"analyst","instruction":"Price them"}],"finalAnswer":null}""",
                _ => """{"goalMet":true,"plan":["done"],"tasks":[],"finalAnswer":"Three competitors, all pricier."}""",
            };
        };
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(SupervisorAgent), new SupervisorRequest("A competitor overview", [AgentNames.Researcher, AgentNames.Analyst, "ghost"]), "sup-1");

        var result = WorkflowKit.Output<SupervisorResult>(m);
        Assert.That(result.Outcome, Is.EqualTo("goal-met"));
        Assert.That(result.FinalAnswer, Is.EqualTo("Three competitors, all pricier."));
        Assert.That(result.Steps, Is.EqualTo(3));
        Assert.That(result.Ledger.Select(e => (e.TaskId, e.Worker, e.Status)), Is.EqualTo(new[] { ("t1", "researcher", "done"), ("t2", "ghost", "failed"), ("t3", "analyst", "done") }));
        Assert.That(result.Ledger[1].Result, Does.Contain("No agent 'ghost'"));
        Assert.That(await WorkflowKit.ScheduledAsync(host.Client, "sup-1"), Is.EqualTo(new[] { "CallModel", "sub:WorkerTask", "sub:WorkerTask", "CallModel", "sub:WorkerTask", "CallModel" }));
        var secondPlan = server.ChatRequests.Where(r => WorkflowKit.System(r).StartsWith("You are the manager", StringComparison.Ordinal)).ElementAt(1);
        Assert.That(WorkflowKit.User(secondPlan), Does.Contain("[t2, step 1] ghost: Price them → failed"), "the manager re-plans from the ledger");
        var schema = server.ChatRequests[0].Body["response_format"]!["json_schema"]!["schema"]!;
        Assert.That(schema["properties"]!["tasks"]!["items"]!["properties"]!["worker"]!["enum"]!.AsArray().Select(x => (string?)x), Is.EqualTo(new[] { "researcher", "analyst", "ghost" }));
        Assert.That(result.Usage.ModelCalls, Is.EqualTo(5), "three manager calls and two worker turns");
        Assert.That(result.Usage.TotalTokens, Is.EqualTo(5 * 15));
    }

    [Test]
    public async Task Supervisor_StopsWhenTheBudgetIsExhausted()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<SupervisorResult>(await host.RunAsync(nameof(SupervisorAgent), new SupervisorRequest("anything", MaxTokens: 10)));

        Assert.That(result.Outcome, Is.EqualTo("budget"));
        Assert.That(result.Steps, Is.Zero);
        Assert.That(server.ChatRequests, Is.Empty);
    }

    [Test]
    public async Task Supervisor_StopsAtMaxSteps()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.System(r).StartsWith("You are the manager", StringComparison.Ordinal)
            ? """{"goalMet":false,"plan":["keep going"],"tasks":[{"worker":"analyst","instruction":"Look again"}],"finalAnswer":null}"""
            : "still looking";
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<SupervisorResult>(await host.RunAsync(nameof(SupervisorAgent), new SupervisorRequest("an endless goal", MaxSteps: 2)));

        Assert.That(result.Outcome, Is.EqualTo("max-steps"));
        Assert.That(result.Ledger, Has.Count.EqualTo(2));
    }

    [Test]
    public async Task GroupChat_RoundRobin_TakesTurnsOnASharedThread_UntilSomeoneAgrees()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var skeptic = 0;
        server.Responder = r => WorkflowKit.System(r) switch
        {
            var s when s.Contains("strategist", StringComparison.Ordinal) => "Price Pro at $20.",
            var s when s.Contains("skeptic", StringComparison.Ordinal) => Interlocked.Increment(ref skeptic) == 1 ? "Evidence?" : "Fine. AGREED.",
            _ => "Customers compare us to $25 tools.",
        };
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<GroupChatResult>(await host.RunAsync(nameof(GroupChat), new GroupChatRequest("Pro pricing")));

        Assert.That(result.Termination, Is.EqualTo("terminated"));
        Assert.That(result.Transcript.Select(l => l.Speaker), Is.EqualTo(new[] { "strategist", "skeptic", "marketer", "strategist", "skeptic" }));
        Assert.That(WorkflowKit.User(server.ChatRequests[2]), Does.Contain("strategist: Price Pro at $20.\nskeptic: Evidence?"), "everyone sees the shared thread");
        Assert.That(result.Usage.ModelCalls, Is.EqualTo(5));
    }

    [Test]
    public async Task GroupChat_ModelSelection_LetsTheChatManagerPickTheNextSpeaker()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.System(r) switch
        {
            var s when s.StartsWith("You are the chat manager", StringComparison.Ordinal) => """{"speaker":"marketer"}""",
            _ => "A thought.",
        };
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<GroupChatResult>(await host.RunAsync(nameof(GroupChat), new GroupChatRequest("Pro pricing", Selection: SpeakerSelection.Model, MaxMessages: 3)));

        Assert.That(result.Termination, Is.EqualTo("max-messages"));
        Assert.That(result.Transcript.Select(l => l.Speaker), Is.EqualTo(new[] { "strategist", "marketer", "marketer" }));
        var manager = server.ChatRequests.First(r => WorkflowKit.Schema(r) == "next_speaker");
        Assert.That(manager.Body["response_format"]!["json_schema"]!["schema"]!["properties"]!["speaker"]!["enum"]!.AsArray().Select(x => (string?)x), Is.EqualTo(new[] { "strategist", "skeptic", "marketer" }));
    }

    [Test]
    public async Task GroupChat_MoreThanThreeParticipants_IsRefusedUnlessAllowed()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(GroupChat), new GroupChatRequest("x", ["strategist", "skeptic", "marketer", "writer"]));

        Assert.That(m.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(m.FailureDetails!.ErrorMessage, Does.Contain("2 to 3 participants (got 4)"));
        Assert.That(server.ChatRequests, Is.Empty);
    }
}
