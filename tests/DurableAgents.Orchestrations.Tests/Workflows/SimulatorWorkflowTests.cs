using DurableAgents.Activities.Contracts;
using DurableAgents.Tests.Support;
using NUnit.Framework;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>All eight workflows run end to end on the offline simulator (no model configured), as the demo does.</summary>
public sealed class SimulatorWorkflowTests
{
    [Test]
    public async Task EveryWorkflow_RunsToTheEnd_OnTheSimulator()
    {
        var (site, root) = await WorkflowKit.StartSiteAsync();
        await using var disposeSite = site;
        await using var host = await LlmTestHost.StartAsync(new Dictionary<string, string?> { ["DurableAgents:Tools:Fetch:AllowLoopback"] = "true" });

        var content = WorkflowKit.Output<ContentResult>(await host.RunAsync(nameof(ContentPipeline), new ContentRequest("durable agents")));
        var analysis = WorkflowKit.Output<AnalysisResult>(await host.RunAsync(nameof(MultiPerspectiveAnalysis), new AnalysisRequest("a paid tier")));
        var review = WorkflowKit.Output<ReviewResult>(await host.RunAsync(nameof(DraftReviewLoop), new ReviewRequest("a launch post")));
        var seo = WorkflowKit.Output<SeoReport>(await host.RunAsync(nameof(SeoAudit), new SeoAuditRequest($"{root}/sitemap.xml")));
        var supervisor = WorkflowKit.Output<SupervisorResult>(await host.RunAsync(nameof(SupervisorAgent), new SupervisorRequest("an overview")));
        var chat = WorkflowKit.Output<GroupChatResult>(await host.RunAsync(nameof(GroupChat), new GroupChatRequest("pricing", Selection: SpeakerSelection.Model)));

        var weekly = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(WeeklyContent), new WeeklyContentRequest([new BacklogItem("durable agents")], ["founder@x.io"], TopicsPerRun: 1), new StartOrchestrationOptions { InstanceId = "sim-weekly" });
        await WorkflowKit.WaitForStatusAsync(host.Client, "sim-weekly-approval-0", "\"awaiting\":\"approval\"");
        await host.Client.RaiseEventAsync("sim-weekly-approval-0", ApprovalGate.EventName, new ApprovalDecision("approve", "founder@x.io", DateTimeOffset.UtcNow));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var published = WorkflowKit.Output<WeeklyContentResult>(await host.Client.WaitForInstanceCompletionAsync(weekly, true, cts.Token));

        Assert.That(content.Outcome, Is.EqualTo("completed"));
        Assert.That(content.Article, Does.StartWith("[simulated]"));
        Assert.That(analysis.Views, Has.Count.EqualTo(4));
        Assert.That(analysis.Aggregate, Is.Not.Null);
        Assert.That(review.Outcome, Is.EqualTo("approved"));
        Assert.That(seo.PagesAudited, Is.EqualTo(2));
        Assert.That(seo.Findings, Is.Not.Empty);
        Assert.That(supervisor.Outcome, Is.EqualTo("goal-met"));
        Assert.That(supervisor.Ledger.Single().Status, Is.EqualTo("done"));
        Assert.That(chat.Transcript, Has.Count.EqualTo(6));
        Assert.That(published.Topics.Single().Status, Is.EqualTo("skipped"), "approved; no webhook configured, so publishing is skipped");
        Assert.That(new[] { content.Usage, analysis.Usage, review.Usage, seo.Usage, supervisor.Usage, chat.Usage, published.Usage }.Select(u => u.TotalTokens), Is.All.GreaterThan(0));
    }
}
