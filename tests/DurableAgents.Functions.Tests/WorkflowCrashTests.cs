using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// A SIGKILL of the host in the middle of a workflow's model call: the restarted host finishes the workflow,
/// and the only model request made twice is the one that was interrupted (counted at the local
/// OpenAI-compatible server).
/// </summary>
public sealed class WorkflowCrashTests
{
    private static string System(RecordedRequest r) =>
        string.Join("\n", r.Body["messages"]!.AsArray().Where(m => (string?)m!["role"] == "system").Select(m => (string?)m!["content"]));

    /// <summary>Plays every agent of the three workflows; counters live in the test, across both hosts.</summary>
    private static Func<RecordedRequest, string?> Agents()
    {
        var reviews = 0;
        var plans = 0;
        var drafts = 0;
        return r =>
        {
            var system = System(r);
            if (system.StartsWith("You are the writer", StringComparison.Ordinal))
            {
                return $"Draft {Interlocked.Increment(ref drafts)}";
            }

            if (system.StartsWith("You review", StringComparison.Ordinal))
            {
                return """{"approved":true,"issues":[]}""";
            }

            if (system.StartsWith("You are the reviewer", StringComparison.Ordinal))
            {
                var n = Interlocked.Increment(ref reviews);
                return n < 3 ? $$"""{"decision":"Revise","score":{{4 + n}},"reasons":["round {{n}}: tighten"]}""" : """{"decision":"Approve","score":9,"reasons":["ready"]}""";
            }

            if (system.StartsWith("You are the manager", StringComparison.Ordinal))
            {
                return Interlocked.Increment(ref plans) == 1
                    ? """{"goalMet":false,"plan":["research"],"tasks":[{"worker":"researcher","instruction":"Find competitors"}],"finalAnswer":null}"""
                    : """{"goalMet":true,"plan":["done"],"tasks":[],"finalAnswer":"Overview done."}""";
            }

            var user = r.Body["messages"]!.AsArray().Last(m => (string?)m!["role"] == "user")!["content"]!.GetValue<string>();
            return "Answer to: " + user[..Math.Min(60, user.Length)];
        };
    }

    [TestCase("ContentPipeline", """{"topic":"durable agents"}""", 3, 5)]
    [TestCase("DraftReviewLoop", """{"brief":"a launch post","maxRounds":3}""", 4, 6)]
    [TestCase("SupervisorAgent", """{"goal":"a competitor overview","workers":["researcher","analyst"]}""", 2, 3)]
    public async Task AKilledHost_FinishesTheWorkflow_WithoutReissuingCompletedModelCalls(string workflow, string input, int killAtRequest, int modelCalls)
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        model.Responder = Agents();
        model.StallAtRequest = killAtRequest;
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-workflow-crash", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var environment = new Dictionary<string, string>
        {
            ["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}",
            ["DurableAgents__OrchestrationLease"] = "00:00:02",
            ["DurableAgents__ActivityLease"] = "00:00:02",
            ["DurableAgents__Llm__Resilience__AttemptTimeout"] = "00:05:00",
            ["DurableAgents__Llm__Resilience__TotalTimeout"] = "00:10:00",
        };
        foreach (var profile in new[] { "fast", "strong" })
        {
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Kind"] = "OpenAICompatible";
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Endpoint"] = model.OpenAiEndpoint.ToString();
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Model"] = "gpt-test";
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__ApiKey"] = "sk-test";
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var id = "crash-" + workflow.ToUpperInvariant();
        var first = await HostProcess.StartAsync(environment);
        using (var http = first.CreateClient())
        {
            using var start = await http.PostAsync($"/api/orchestrators/{workflow}/{id}", new StringContent(input, Encoding.UTF8, "application/json"), cts.Token);
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            while (model.ChatRequests.Count < killAtRequest)
            {
                await Task.Delay(20, cts.Token);
            }
        }

        await first.DisposeAsync(); // SIGKILL while request #killAtRequest is in flight
        await using var second = await HostProcess.StartAsync(environment);
        using var client = second.CreateClient();
        var status = await HostProcess.WaitUntilFinishedAsync(client, id, cts.Token);

        Assert.That(status.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"), status.ToString());
        var bodies = model.ChatRequests.Select(r => r.Body["messages"]!.ToJsonString() + r.Body["response_format"]?.ToJsonString()).ToList();
        Assert.That(bodies, Has.Count.EqualTo(modelCalls + 1), "every model call once, plus the interrupted one again: " + status.GetProperty("output"));
        var repeated = bodies.GroupBy(b => b).Where(g => g.Count() > 1).ToList();
        Assert.That(repeated, Has.Count.EqualTo(1));
        Assert.That(repeated[0].Key, Is.EqualTo(bodies[killAtRequest - 1]), "the only repeated call is the interrupted one");
        Assert.That(status.GetProperty("output").GetProperty("usage").GetProperty("modelCalls").GetInt32(), Is.EqualTo(modelCalls));

        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
