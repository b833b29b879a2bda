using DurableTask.Core.History;
using System.Collections.Concurrent;
using System.Net;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Email;
using DurableAgents.Tests.Support;
using DurableAgents.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>ApprovalGate (approve, reject, quorum, timeout and escalation, late decisions), SeoAudit over a 200-page loopback site, and WeeklyContent.</summary>
public sealed class ApprovalAndScheduledWorkflowTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private static ApprovalDecision Decide(string decision, string approver) => new(decision, approver, Now);

    [Test]
    public async Task ApprovalGate_QuorumTwoOfThree_CountsEachApproverOnce_AndRecordsWhoDecided()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(ApprovalGate), new ApprovalGateRequest("Ship v2", "Release v2?", ["a@x.io", "b@x.io", "c@x.io"], Quorum: 2, DeadlineMinutes: 60));
        await WorkflowKit.WaitForStatusAsync(host.Client, id, "\"awaiting\":\"approval\"");

        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "mallory@evil.io"));
        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "a@x.io"));
        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "A@x.io"));
        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "b@x.io"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = WorkflowKit.Output<ApprovalGateResult>(await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token));

        Assert.That(result.Outcome, Is.EqualTo("approved"));
        Assert.That(result.Decisions.Select(d => d.Approver), Is.EqualTo(new[] { "a@x.io", "b@x.io" }));
        Assert.That(result.IgnoredDecisions, Is.EqualTo(2), "a non-approver and a second vote");
        Assert.That(result.Escalated, Is.False);
        var mail = host.Services.GetRequiredService<DevelopmentOutbox>().Messages;
        Assert.That(mail.Select(m => m.Message.To).Order(StringComparer.Ordinal), Is.EqualTo(new[] { "a@x.io", "b@x.io", "c@x.io" }));
    }

    [Test]
    public async Task ApprovalGate_ARejectionThatMakesTheQuorumImpossible_Rejects()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(ApprovalGate), new ApprovalGateRequest("Ship v2", "Release v2?", ["a@x.io", "b@x.io"], Quorum: 2, DeadlineMinutes: 60));
        await WorkflowKit.WaitForStatusAsync(host.Client, id, "\"awaiting\":\"approval\"");

        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("reject", "b@x.io"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = WorkflowKit.Output<ApprovalGateResult>(await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token));

        Assert.That(result.Outcome, Is.EqualTo("rejected"));
        Assert.That(result.Decisions.Single(), Is.EqualTo(Decide("reject", "b@x.io")));
    }

    [Test]
    public async Task ApprovalGate_Timeout_RemindsThenEscalates_AndTheEscalationApproverDecides()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(
            nameof(ApprovalGate),
            new ApprovalGateRequest("Ship v2", "Release v2?", ["a@x.io"], ["boss@x.io"], DeadlineMinutes: 0.03, ReminderMinutes: 0.01, MaxReminders: 1));

        await WorkflowKit.WaitForStatusAsync(host.Client, id, "\"escalated\":true");
        await host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "boss@x.io"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var result = WorkflowKit.Output<ApprovalGateResult>(await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token));

        Assert.That(result.Outcome, Is.EqualTo("approved"));
        Assert.That(result.Escalated, Is.True);
        Assert.That(result.RemindersSent, Is.EqualTo(1));
        Assert.That(result.Decisions.Single().Approver, Is.EqualTo("boss@x.io"));
        var mail = host.Services.GetRequiredService<DevelopmentOutbox>().Messages.Reverse().Select(m => (m.Message.To, m.Message.Subject.Split(':')[0])).ToList();
        Assert.That(mail, Is.EqualTo(new[] { ("a@x.io", "Ship v2"), ("a@x.io", "Reminder"), ("boss@x.io", "Escalated") }));
    }

    [Test]
    public async Task ApprovalGate_ADecisionAfterTheDeadline_ChangesNothing()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await WorkflowKit.StartAsync(server);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(ApprovalGate), new ApprovalGateRequest("Ship v2", "Release v2?", ["a@x.io"], DeadlineMinutes: 0.02, ReminderMinutes: 60));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var expired = WorkflowKit.Output<ApprovalGateResult>(await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token));

        await Assert.ThrowsAsync<OrchestrationStateException>(() => host.Client.RaiseEventAsync(id, ApprovalGate.EventName, Decide("approve", "a@x.io")));
        var after = await host.Client.GetInstanceAsync(id, true);

        Assert.That(expired.Outcome, Is.EqualTo("expired"));
        Assert.That(expired.Decisions, Is.Empty);
        Assert.That(after!.ReadOutputAs<ApprovalGateResult>()!.Outcome, Is.EqualTo("expired"));
    }

    [Test]
    public async Task SeoAudit_Audits200Pages_WithBoundedInFlightWork_AcrossContinueAsNew()
    {
        var inFlight = 0;
        var maxInFlight = 0;
        var fetched = new ConcurrentDictionary<string, int>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var site = builder.Build();
        string? root = null;
        site.MapGet("/sitemap.xml", () => Results.Content($"""<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>{root}/sitemap-a.xml</loc></sitemap><sitemap><loc>{root}/sitemap-b.xml</loc></sitemap></sitemapindex>""", "application/xml"));
        site.MapGet("/sitemap-{part}.xml", (string part) => Results.Content(
            "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">" + string.Concat(Enumerable.Range(1, 100).Select(i => $"<url><loc>{root}/{part}/{i}</loc></url>")) + "</urlset>",
            "application/xml"));
        site.MapGet("/{part}/{n:int}", async (string part, int n) =>
        {
            var now = Interlocked.Increment(ref inFlight);
            lock (fetched)
            {
                maxInFlight = Math.Max(maxInFlight, now);
            }

            fetched.AddOrUpdate($"/{part}/{n}", 1, (_, v) => v + 1);
            await Task.Delay(10);
            Interlocked.Decrement(ref inFlight);
            return n == 13 && part == "b"
                ? Results.NotFound()
                : Results.Content($"<html><head><title>Page {part}{n}</title></head><body><h1>Page {n}</h1><p>Text.</p></body></html>", "text/html");
        });
        await site.StartAsync();
        root = site.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/');

        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.User(r).Contains("/a/1\n", StringComparison.Ordinal)
            ? """{"issues":[{"severity":"High","issue":"No meta description","fix":"Add one"},{"severity":"Low","issue":"Short text","fix":"Expand"}]}"""
            : """{"issues":[{"severity":"Medium","issue":"Title too generic","fix":"Name the product"}]}""";
        await using var host = await WorkflowKit.StartAsync(server, new Dictionary<string, string?> { ["DurableAgents:Tools:Fetch:AllowLoopback"] = "true" });

        var m = await host.RunAsync(nameof(SeoAudit), new SeoAuditRequest($"{root}/sitemap.xml", MaxInFlight: 5, PagesPerExecution: 80), "seo-1");

        var report = WorkflowKit.Output<SeoReport>(m);
        Assert.That(report.PagesListed, Is.EqualTo(200));
        Assert.That(report.PagesAudited, Is.EqualTo(199));
        Assert.That(report.Failed.Single(), Does.StartWith($"{root}/b/13: HTTP 404"));
        Assert.That(report.Executions, Is.EqualTo(3), "200 pages at 80 per execution: continued as new twice");
        Assert.That(fetched, Has.Count.EqualTo(200));
        Assert.That(fetched.Values, Is.All.EqualTo(1), "each page fetched once");
        Assert.That(maxInFlight, Is.LessThanOrEqualTo(5), "page fetches in flight never exceed MaxInFlight");
        var history = await host.Client.GetOrchestrationHistoryAsync("seo-1"); // the last execution's
        var scheduled = history.Select((e, i) => (e, i)).Where(x => x.e is DurableTask.Core.History.TaskScheduledEvent).Select(x => x.i).ToList();
        var firstDone = history.Select((e, i) => (e, i)).First(x => x.e is DurableTask.Core.History.TaskCompletedEvent).i;
        Assert.That(scheduled.Count(i => i < firstDone), Is.EqualTo(5), "the window opens with exactly MaxInFlight pages");
        Assert.That(server.MaxConcurrentChats, Is.LessThanOrEqualTo(5), "model audits in flight never exceed MaxInFlight");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(199));
        Assert.That(report.Findings[0], Is.EqualTo(new PageFinding($"{root}/a/1", Severity.High, "No meta description", "Add one")), "most severe first");
        Assert.That(report.Findings[^1].Severity, Is.EqualTo(Severity.Low));
        Assert.That(report.IssuesBySeverity, Is.EquivalentTo(new Dictionary<string, int> { ["High"] = 1, ["Medium"] = 198, ["Low"] = 1 }));
        Assert.That(report.Usage.ModelCalls, Is.EqualTo(199));
    }

    [Test]
    public async Task WeeklyContent_WritesTheTopPriorityTopics_AsksForApproval_AndPublishesTheApprovedOnceWithAnIdempotencyKey()
    {
        var posts = new ConcurrentQueue<(string Key, string Body)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var webhook = builder.Build();
        webhook.MapPost("/publish", async (HttpContext ctx) =>
        {
            using var reader = new StreamReader(ctx.Request.Body);
            posts.Enqueue((ctx.Request.Headers["Idempotency-Key"].ToString(), await reader.ReadToEndAsync()));
            return Results.Created("/posts/1", null);
        });
        await webhook.StartAsync();
        var hook = webhook.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/') + "/publish";

        await using var server = await FakeOpenAiServer.StartAsync();
        server.Responder = r => WorkflowKit.System(r).StartsWith("You review", StringComparison.Ordinal)
            ? """{"approved":true,"issues":[]}"""
            : $"Text about {WorkflowKit.User(r).Split('\'').ElementAtOrDefault(1)}";
        await using var host = await WorkflowKit.StartAsync(server, new Dictionary<string, string?> { ["DurableAgents:Publishing:WebhookUrl"] = hook });

        var request = new WeeklyContentRequest([new BacklogItem("old idea", 1), new BacklogItem("durable agents", 9), new BacklogItem("llm budgets", 7)], ["founder@x.io"], TopicsPerRun: 2, ApprovalDeadlineMinutes: 60);
        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(WeeklyContent), request, new StartOrchestrationOptions { InstanceId = "weekly-1" });
        await WorkflowKit.WaitForStatusAsync(host.Client, "weekly-1-approval-0", "\"awaiting\":\"approval\"");
        await WorkflowKit.WaitForStatusAsync(host.Client, "weekly-1-approval-1", "\"awaiting\":\"approval\"");
        await host.Client.RaiseEventAsync("weekly-1-approval-0", ApprovalGate.EventName, Decide("approve", "founder@x.io"));
        await host.Client.RaiseEventAsync("weekly-1-approval-1", ApprovalGate.EventName, Decide("reject", "founder@x.io"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var result = WorkflowKit.Output<WeeklyContentResult>(await host.Client.WaitForInstanceCompletionAsync(id, true, cts.Token));

        Assert.That(result.Topics.Select(t => (t.Topic, t.Status)), Is.EqualTo(new[] { ("durable agents", "published"), ("llm budgets", "rejected") }));
        var post = posts.Single();
        Assert.That(post.Key, Is.EqualTo(result.Topics[0].Receipt!.IdempotencyKey));
        Assert.That(post.Key, Does.StartWith("weekly-1:"));
        Assert.That(post.Body, Does.Contain("durable agents"));
        Assert.That(await WorkflowKit.ScheduledAsync(host.Client, "weekly-1"), Is.EquivalentTo(new[] { "sub:ContentPipeline", "sub:ContentPipeline", "sub:ApprovalGate", "sub:ApprovalGate", ActivityNames.PublishPost }));
        Assert.That(result.Usage.ModelCalls, Is.EqualTo(10), "two pipelines of five agent turns");
        Assert.That(result.Usage.TotalTokens, Is.EqualTo(10 * 15));
    }
}
