using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using DurableTask.Core.History;
using DurableAgents.Tests.Support;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using NUnit.Framework;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Orchestrations.Tests.Workflows;

/// <summary>Shared helpers: a host whose "fast" and "strong" profiles are the local OpenAI-compatible server.</summary>
internal static class WorkflowKit
{
    public static Task<LlmTestHost> StartAsync(FakeOpenAiServer server, Dictionary<string, string?>? settings = null, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null) =>
        LlmTestHost.StartAsync(
            services,
            LlmTestHost.FastResilience(),
            LlmTestHost.Provider("fast", 0, "primary", server),
            LlmTestHost.Provider("strong", 0, "primary-strong", server),
            settings ?? []);

    public static string System(RecordedRequest r) =>
        string.Join("\n", r.Body["messages"]!.AsArray().Where(m => (string?)m!["role"] == "system").Select(m => (string?)m!["content"]));

    public static string User(RecordedRequest r) =>
        string.Join("\n", r.Body["messages"]!.AsArray().Where(m => (string?)m!["role"] == "user").Select(m => (string?)m!["content"]));

    public static string? Schema(RecordedRequest r) => (string?)r.Body["response_format"]?["json_schema"]?["name"];

    public static T Output<T>(OrchestrationMetadata m)
    {
        Assert.That(m.RuntimeStatus, Is.EqualTo(OrchestrationRuntimeStatus.Completed), m.FailureDetails?.ErrorType + ": " + m.FailureDetails?.ErrorMessage + " / " + m.FailureDetails?.InnerFailure?.ErrorMessage);
        return m.ReadOutputAs<T>()!;
    }

    /// <summary>The activities and sub-orchestrations an instance scheduled, in order.</summary>
    public static async Task<IReadOnlyList<string>> ScheduledAsync(DurableTaskClient client, string instanceId)
    {
        var history = await client.GetOrchestrationHistoryAsync(instanceId);
        return history.Select(e => e switch
        {
            TaskScheduledEvent t => t.Name,
            SubOrchestrationInstanceCreatedEvent s => "sub:" + s.Name,
            _ => null,
        }).OfType<string>().ToList();
    }

    /// <summary>A two-page site with a sitemap on a loopback port, for SeoAudit runs; dispose it when done.</summary>
    public static async Task<(WebApplication Site, string Root)> StartSiteAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var site = builder.Build();
        string? root = null;
        site.MapGet("/sitemap.xml", () => Results.Content($"<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"><url><loc>{root}/a</loc></url><url><loc>{root}/b</loc></url></urlset>", "application/xml"));
        site.MapGet("/{page}", (string page) => Results.Content($"<html><head><title>{page}</title></head><body>About {page}.</body></html>", "text/html"));
        await site.StartAsync();
        root = site.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/');
        return (site, root);
    }

    /// <summary>Waits until <paramref name="instanceId"/> exists and its custom status contains <paramref name="text"/>.</summary>
    public static async Task WaitForStatusAsync(DurableTaskClient client, string instanceId, string text, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var m = await client.GetInstanceAsync(instanceId, true, cts.Token);
            if (m?.SerializedCustomStatus?.Contains(text, StringComparison.Ordinal) == true)
            {
                return;
            }

            await Task.Delay(25, cts.Token);
        }
    }
}
