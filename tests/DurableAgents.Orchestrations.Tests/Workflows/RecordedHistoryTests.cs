using DurableAgents.Activities.Contracts;
using DurableAgents.Tests.Support;
using DurableAgents.Engine.Testing;
using Microsoft.DurableTask;
using NUnit.Framework;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>
/// Histories of the eight product workflows, recorded from real runs on the offline simulator and
/// checked in (Histories/*.v1.json), are replayed against the current orchestrator code on the
/// SDK's runner, one episode at a time: a code change that would break instances in flight fails
/// here. After an intentional, versioned change, record new files with
/// <c>dotnet test --filter Record_ProductWorkflowHistories</c> and keep the old ones until no
/// instance of the old version runs.
/// </summary>
public sealed class RecordedHistoryTests
{
    private static readonly Dictionary<string, Func<ITaskOrchestrator>> Workflows = new()
    {
        [nameof(ContentPipeline)] = () => new ContentPipeline(),
        [nameof(MultiPerspectiveAnalysis)] = () => new MultiPerspectiveAnalysis(),
        [nameof(DraftReviewLoop)] = () => new DraftReviewLoop(),
        [nameof(ApprovalGate)] = () => new ApprovalGate(),
        [nameof(SeoAudit)] = () => new SeoAudit(),
        [nameof(WeeklyContent)] = () => new WeeklyContent(),
        [nameof(SupervisorAgent)] = () => new SupervisorAgent(),
        [nameof(GroupChat)] = () => new GroupChat(),
    };

    private static string HistoriesIn(string root) => Path.Combine(root, "Histories");

    public static IEnumerable<string> Recorded() => Workflows.Keys;

    [TestCaseSource(nameof(Recorded))]
    public void Replay_RecordedHistory_CurrentCodeMakesTheSameDecisions(string workflow)
    {
        var path = Path.Combine(HistoriesIn(TestContext.CurrentContext.TestDirectory), $"{workflow}.v1.json");
        Assert.That(File.Exists(path), Is.True, $"no recorded history for {workflow}: run Record_ProductWorkflowHistories");
        var history = HistoryReplayer.Load(File.ReadAllText(path));
        Assert.That(history.Count(e => e.OrchestratorStarted is not null), Is.GreaterThan(1), "a recording of several episodes");
        Assert.That(history.Last(e => e.ExecutionCompleted is not null).ExecutionCompleted.OrchestrationStatus, Is.EqualTo(Microsoft.DurableTask.Protobuf.OrchestrationStatus.Completed));

        var failure = HistoryReplayer.Replay(Workflows[workflow](), history);

        Assert.That(failure, Is.Null, failure?.ToString());
    }

    [Test]
    public void Replay_RecordedHistory_AChangedWorkflowFails()
    {
        var path = Path.Combine(HistoriesIn(TestContext.CurrentContext.TestDirectory), $"{nameof(ContentPipeline)}.v1.json");
        var history = HistoryReplayer.Load(File.ReadAllText(path));

        // DraftReviewLoop in place of ContentPipeline: a different sequence of decisions.
        var failure = HistoryReplayer.Replay(new DraftReviewLoop(), history);

        Assert.That(failure, Is.Not.Null);
    }

    [Test]
    [Explicit("writes Histories/*.v1.json in the source tree")]
    [Category("Recording")]
    public async Task Record_ProductWorkflowHistories()
    {
        var (site, root) = await WorkflowKit.StartSiteAsync();
        await using var disposeSite = site;
        await using var host = await LlmTestHost.StartAsync(new Dictionary<string, string?> { ["DurableAgents:Tools:Fetch:AllowLoopback"] = "true" });

        var ids = new Dictionary<string, string>
        {
            [nameof(ContentPipeline)] = (await host.RunAsync(nameof(ContentPipeline), new ContentRequest("durable agents"))).InstanceId,
            [nameof(MultiPerspectiveAnalysis)] = (await host.RunAsync(nameof(MultiPerspectiveAnalysis), new AnalysisRequest("a paid tier"))).InstanceId,
            [nameof(DraftReviewLoop)] = (await host.RunAsync(nameof(DraftReviewLoop), new ReviewRequest("a launch post"))).InstanceId,
            [nameof(SeoAudit)] = (await host.RunAsync(nameof(SeoAudit), new SeoAuditRequest($"{root}/sitemap.xml"))).InstanceId,
            [nameof(SupervisorAgent)] = (await host.RunAsync(nameof(SupervisorAgent), new SupervisorRequest("an overview"))).InstanceId,
            [nameof(GroupChat)] = (await host.RunAsync(nameof(GroupChat), new GroupChatRequest("pricing", Selection: SpeakerSelection.Model))).InstanceId,
        };

        var gate = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(ApprovalGate), new ApprovalGateRequest("Ship v2", "Release v2?", ["a@x.io", "b@x.io"], Quorum: 1, DeadlineMinutes: 60), new StartOrchestrationOptions { InstanceId = "rec-gate" });
        await WorkflowKit.WaitForStatusAsync(host.Client, gate, "\"awaiting\":\"approval\"");
        await host.Client.RaiseEventAsync(gate, ApprovalGate.EventName, new ApprovalDecision("approve", "b@x.io", DateTimeOffset.UtcNow));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await host.Client.WaitForInstanceCompletionAsync(gate, false, cts.Token);
        ids[nameof(ApprovalGate)] = gate;

        var weekly = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(WeeklyContent), new WeeklyContentRequest([new BacklogItem("durable agents")], ["founder@x.io"], TopicsPerRun: 1), new StartOrchestrationOptions { InstanceId = "rec-weekly" });
        await WorkflowKit.WaitForStatusAsync(host.Client, "rec-weekly-approval-0", "\"awaiting\":\"approval\"");
        await host.Client.RaiseEventAsync("rec-weekly-approval-0", ApprovalGate.EventName, new ApprovalDecision("approve", "founder@x.io", DateTimeOffset.UtcNow));
        await host.Client.WaitForInstanceCompletionAsync(weekly, false, cts.Token);
        ids[nameof(WeeklyContent)] = weekly;

        var target = HistoriesIn(Path.GetFullPath(Path.Combine(TestContext.CurrentContext.TestDirectory, "../../..")));
        Directory.CreateDirectory(target);
        foreach (var (workflow, id) in ids)
        {
            var history = await host.Backend.GetHistoryEventsAsync(id);
            await File.WriteAllTextAsync(Path.Combine(target, $"{workflow}.v1.json"), HistoryReplayer.Save(history) + "\n");
        }
    }
}
