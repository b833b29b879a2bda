using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DurableAgents.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// The agent loop survives a SIGKILL of the host mid-turn: the restarted host resumes at the interrupted turn,
/// and no completed LLM turn or tool call is made again (counted at the local OpenAI-compatible server and at
/// the web server the agent's web_fetch tool reads).
/// </summary>
public sealed class AgentCrashTests
{
    [Test]
    public async Task AKilledHost_ResumesTheAgentAtTheInterruptedTurn_WithoutRepeatingCompletedWork()
    {
        var pageHits = new ConcurrentDictionary<string, int>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var site = builder.Build();
        site.MapGet("/page/{n:int}", (int n) =>
        {
            pageHits.AddOrUpdate($"/page/{n}", 1, (_, v) => v + 1);
            return Results.Content($"<html><body><p>Notes {n}</p></body></html>", "text/html");
        });
        await site.StartAsync();
        var siteBase = site.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/');

        await using var model = await FakeOpenAiServer.StartAsync();
        for (var turn = 1; turn <= 6; turn++)
        {
            model.ThenToolCall("web_fetch", $$"""{"url":"{{siteBase}}/page/{{turn}}"}""");
        }

        model.ThenSlow(TimeSpan.FromMinutes(2), "never delivered: the host is killed while waiting"); // turn 7, first host
        model.ThenToolCall("web_fetch", $$"""{"url":"{{siteBase}}/page/7"}""");                       // turn 7 again, second host
        model.ThenText("Research complete.");                                                           // turn 8

        var dir = Path.Combine(Path.GetTempPath(), "durableagents-agent-crash", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var environment = new Dictionary<string, string>
        {
            ["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}",
            ["DurableAgents__OrchestrationLease"] = "00:00:02",
            ["DurableAgents__ActivityLease"] = "00:00:02",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Name"] = "primary",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Kind"] = "OpenAICompatible",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Endpoint"] = model.OpenAiEndpoint.ToString(),
            ["DurableAgents__Llm__Profiles__fast__Providers__0__Model"] = "gpt-test",
            ["DurableAgents__Llm__Profiles__fast__Providers__0__ApiKey"] = "sk-test",
            ["DurableAgents__Llm__Resilience__AttemptTimeout"] = "00:05:00",
            ["DurableAgents__Llm__Resilience__TotalTimeout"] = "00:10:00",
            ["DurableAgents__Agents__researcher__Tools__0"] = "web_fetch",
            ["DurableAgents__Agents__researcher__MaxTurns"] = "20",
            ["DurableAgents__Tools__Fetch__AllowLoopback"] = "true",
        };

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var first = await HostProcess.StartAsync(environment);
        using (var http = first.CreateClient())
        {
            using var start = await http.PostAsync(
                "/api/orchestrators/AgentChat/crash-agent",
                new StringContent("""{"message":"Read the notes, one page a turn.","agent":"researcher"}""", Encoding.UTF8, "application/json"),
                cts.Token);
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            while (model.ChatRequests.Count < 7)
            {
                await Task.Delay(20, cts.Token);
            }
        }

        await first.DisposeAsync(); // SIGKILL while turn 7's model call is in flight
        Assert.That(pageHits.Keys, Is.EquivalentTo(Enumerable.Range(1, 6).Select(i => $"/page/{i}")));

        await using var second = await HostProcess.StartAsync(environment);
        using var client = second.CreateClient();
        var status = await HostProcess.WaitUntilFinishedAsync(client, "crash-agent", cts.Token);

        Assert.That(status.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"), status.ToString());
        var output = status.GetProperty("output");
        Assert.That(output.GetProperty("turns").GetInt32(), Is.EqualTo(8));
        Assert.That(output.GetProperty("text").GetString(), Is.EqualTo("Research complete."));
        Assert.That(output.GetProperty("toolCalls").GetArrayLength(), Is.EqualTo(7));

        var requests = model.ChatRequests;
        Assert.That(requests, Has.Count.EqualTo(9), "turns 1-6 once, turn 7 twice (interrupted, then resumed), turn 8 once");
        Assert.That(requests[7].Body["messages"]!.ToJsonString(), Is.EqualTo(requests[6].Body["messages"]!.ToJsonString()), "the resumed turn 7 sees the same conversation");
        Assert.That(pageHits, Has.Count.EqualTo(7));
        Assert.That(pageHits.Values, Is.All.EqualTo(1), "every tool call ran exactly once");

        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
