using DurableTask.Core.History;
using DurableAgents.Activities.Contracts;
using DurableAgents.Tests.Support;
using DurableAgents.Engine;
using NUnit.Framework;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>ContentPipeline, MultiPerspectiveAnalysis and DraftReviewLoop, with the local OpenAI-compatible server playing the agents.</summary>
public sealed class ContentWorkflowTests
{
    private static string? PipelineAgent(RecordedRequest r)
    {
        var system = WorkflowKit.System(r);
        return system switch
        {
            _ when system.StartsWith("You research", StringComparison.Ordinal) => "NOTES: durable agents resume after crashes.",
            _ when system.StartsWith("You turn research", StringComparison.Ordinal) => "OUTLINE: 1. Why 2. How",
            _ when system.StartsWith("You write", StringComparison.Ordinal) => "DRAFT: Agents that never lose work.",
            _ when system.StartsWith("You optimise", StringComparison.Ordinal) => "SEO: Durable AI agents that never lose work.",
            _ when system.StartsWith("You review", StringComparison.Ordinal) => """{"approved":true,"issues":[]}""",
            _ => null,
        };
    }

    [Test]
    public async Task ContentPipeline_RunsEachStageAsItsOwnAgent_InOrder_UnderOneBudget()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = PipelineAgent;
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(ContentPipeline), new ContentRequest("durable agents"), "cp-1");

        var result = WorkflowKit.Output<ContentResult>(m);
        Assert.That(result.Outcome, Is.EqualTo("completed"));
        Assert.That(result.Stages.Select(s => (s.Stage, s.Agent)), Is.EqualTo(new[] { ("research", "researcher"), ("outline", "outliner"), ("draft", "writer"), ("seo", "seo-editor") }));
        Assert.That(result.Article, Is.EqualTo("SEO: Durable AI agents that never lose work."));
        Assert.That(result.Compliance, Is.EqualTo(new ComplianceVerdict(true, [])).Using<ComplianceVerdict>((a, b) => a.Approved == b.Approved && a.Issues.SequenceEqual(b.Issues)));
        Assert.That(await WorkflowKit.ScheduledAsync(host.Client, "cp-1"), Is.EqualTo(Enumerable.Repeat(ActivityNames.AgentTurn, 5)));
        Assert.That(server.ChatRequests.Select(r => (string?)r.Body["model"]), Is.EqualTo(new[] { "gpt-test", "gpt-test", "gpt-test", "gpt-test", "gpt-test" }));
        Assert.That(WorkflowKit.User(server.ChatRequests[1]), Does.Contain("NOTES: durable agents"), "each stage gets the previous stage's output");
        Assert.That(server.ChatRequests[0].Body["tools"]!.AsArray().Select(t => (string?)t!["function"]!["name"]), Is.EquivalentTo(new[] { "web_fetch", "memory_search" }), "the researcher's allow-list");
        Assert.That(server.ChatRequests.Skip(1).Select(r => r.Body["tools"]), Is.All.Null, "the other stages have no tools");
        Assert.That(result.Usage, Is.EqualTo(new WorkflowUsage(50, 25, result.Usage.Cost, 5)));
        Assert.That(result.Usage.Cost, Is.GreaterThan(0m));
        var totals = await host.Ledger.GetInstanceTotalsAsync("cp-1");
        Assert.That(totals.InputTokens + totals.OutputTokens, Is.EqualTo(result.Usage.TotalTokens), "the output's usage matches the ledger");
        var final = await host.Client.GetInstanceAsync("cp-1", true);
        Assert.That(final!.SerializedCustomStatus, Does.Contain("\"stage\":\"done\""));
    }

    [Test]
    public async Task ContentPipeline_StopsWithTheStagesDone_WhenTheBudgetRunsOut()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = PipelineAgent;
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<ContentResult>(await host.RunAsync(nameof(ContentPipeline), new ContentRequest("durable agents", MaxTokens: 1)));

        Assert.That(result.Outcome, Is.EqualTo("budget exhausted at research"));
        Assert.That(result.Stages, Is.Empty);
        Assert.That(server.ChatRequests, Is.Empty, "no call is made that the budget cannot pay for");
    }

    [Test]
    public async Task MultiPerspectiveAnalysis_ReportsAFailedAnalyst_AndAggregatesTheRest()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.System(r) switch
        {
            var s when s.Contains("merge analysts", StringComparison.Ordinal) => """{"summary":"mostly positive","stance":"Positive","agreements":["growth"],"disagreements":[]}""",
            var s when s.Contains("sentiment analyst", StringComparison.Ordinal) => "I refuse to answer in JSON.",
            var s when s.Contains("analyst", StringComparison.Ordinal) => """{"summary":"solid","stance":"Positive","confidence":70,"keyPoints":["growth"]}""",
            _ => null,
        };
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(MultiPerspectiveAnalysis), new AnalysisRequest("a paid tier"), "mpa-1");

        var result = WorkflowKit.Output<AnalysisResult>(m);
        Assert.That(result.Views.Select(v => v.Perspective), Is.EqualTo(new[] { "fundamental", "technical", "risk" }));
        Assert.That(result.Failures.Single().Perspective, Is.EqualTo("sentiment"));
        Assert.That(result.Failures.Single().ErrorType, Is.EqualTo("DurableAgents.Llm.InvalidStructuredOutput"));
        Assert.That(result.Aggregate!.Summary, Is.EqualTo("mostly positive"));
        var aggregator = server.ChatRequests.Single(r => WorkflowKit.System(r).Contains("merge analysts", StringComparison.Ordinal));
        Assert.That(WorkflowKit.User(aggregator), Does.Contain("Missing perspectives (failed): sentiment"));
        Assert.That(await WorkflowKit.ScheduledAsync(host.Client, "mpa-1"), Is.EqualTo(Enumerable.Repeat(ActivityNames.CallModel, 5)), "four analysts fanned out, then the aggregator");
        Assert.That(result.Usage.ModelCalls, Is.EqualTo(4), "three analysts and the aggregator answered");
        var history = await host.Client.GetOrchestrationHistoryAsync("mpa-1");
        var scheduled = history.Select((e, i) => (e, i)).Where(x => x.e is DurableTask.Core.History.TaskScheduledEvent).Select(x => x.i).ToList();
        var firstDone = history.Select((e, i) => (e, i)).First(x => x.e is DurableTask.Core.History.TaskCompletedEvent or DurableTask.Core.History.TaskFailedEvent).i;
        Assert.That(scheduled[3], Is.LessThan(firstDone), "all four analysts were scheduled before any answered: a fan-out");
    }

    [Test]
    public async Task MultiPerspectiveAnalysis_WithoutPartialResults_FailsNamingTheAnalyst()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.System(r).Contains("risk analyst", StringComparison.Ordinal)
            ? "not json"
            : """{"summary":"solid","stance":"Neutral","confidence":50,"keyPoints":[]}""";
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(MultiPerspectiveAnalysis), new AnalysisRequest("a paid tier", AllowPartial: false));

        Assert.That(m.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Failed));
        Assert.That(m.FailureDetails!.ErrorMessage, Does.Contain("1 of 4 analysts failed").And.Contain("risk: DurableAgents.Llm.InvalidStructuredOutput"));
    }

    private static Func<RecordedRequest, string?> ReviewScript(params (string Decision, int Score, string Reason)[] verdicts)
    {
        var drafts = 0;
        var reviews = 0;
        return r =>
        {
            var system = WorkflowKit.System(r);
            if (system.StartsWith("You are the writer", StringComparison.Ordinal))
            {
                return $"Title\nDraft v{Interlocked.Increment(ref drafts)}";
            }

            var (decision, score, reason) = verdicts[Interlocked.Increment(ref reviews) - 1];
            return $$"""{"decision":"{{decision}}","score":{{score}},"reasons":["{{reason}}"]}""";
        };
    }

    [Test]
    public async Task DraftReviewLoop_RevisesWithTheReviewersReasons_UntilApproved()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = ReviewScript(("Revise", 5, "add numbers"), ("Revise", 7, "shorter intro"), ("Approve", 9, "ready"));
        await using var host = await WorkflowKit.StartAsync(server);

        var m = await host.RunAsync(nameof(DraftReviewLoop), new ReviewRequest("a launch post"), "drl-1");

        var result = WorkflowKit.Output<ReviewResult>(m);
        Assert.That(result.Outcome, Is.EqualTo("approved"));
        Assert.That(result.FinalDraft, Is.EqualTo("Title\nDraft v3"));
        Assert.That(result.Rounds.Select(r => (r.Round, r.Verdict.Decision, r.Verdict.Score)), Is.EqualTo(new[] { (1, ReviewDecision.Revise, 5), (2, ReviewDecision.Revise, 7), (3, ReviewDecision.Approve, 9) }));
        Assert.That(result.Rounds[1].Diff, Is.EqualTo("- Draft v1\n+ Draft v2\n"), "each round keeps its diff from the previous draft");
        var secondDraftRequest = server.ChatRequests.Where(r => WorkflowKit.System(r).StartsWith("You are the writer", StringComparison.Ordinal)).ElementAt(1);
        Assert.That(WorkflowKit.User(secondDraftRequest), Does.Contain("- add numbers").And.Contain("Draft v1"));
        Assert.That(await WorkflowKit.ScheduledAsync(host.Client, "drl-1"), Is.EqualTo(Enumerable.Repeat(ActivityNames.CallModel, 6)));
        Assert.That(result.Usage.ModelCalls, Is.EqualTo(6));
    }

    [Test]
    public async Task DraftReviewLoop_StopsWhenARoundDoesNotImprove_KeepingTheBestDraft()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = ReviewScript(("Revise", 6, "more detail"), ("Revise", 5, "worse now"));
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<ReviewResult>(await host.RunAsync(nameof(DraftReviewLoop), new ReviewRequest("a launch post")));

        Assert.That(result.Outcome, Is.EqualTo("no-improvement"));
        Assert.That(result.Rounds, Has.Count.EqualTo(2));
        Assert.That(result.FinalDraft, Is.EqualTo("Title\nDraft v1"), "the better-scored draft");
    }

    [Test]
    public async Task DraftReviewLoop_StopsAtMaxRounds()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = ReviewScript(("Revise", 3, "a"), ("Revise", 4, "b"));
        await using var host = await WorkflowKit.StartAsync(server);

        var result = WorkflowKit.Output<ReviewResult>(await host.RunAsync(nameof(DraftReviewLoop), new ReviewRequest("a launch post", MaxRounds: 2)));

        Assert.That(result.Outcome, Is.EqualTo("max-rounds"));
        Assert.That(result.FinalDraft, Is.EqualTo("Title\nDraft v2"));
    }
}
