using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// A SIGKILL of the host in the middle of a workflow's model call: the host restarted under the same
/// WorkerId releases what its previous run held at start (the leases are the default 30/60 s, so only
/// that release lets it finish in time) and finishes the workflow; the only model request made twice is
/// the one that was interrupted (counted at the local OpenAI-compatible server), and the ledger has
/// exactly the server's requests, the interrupted one as 'interrupted' with its estimate.
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

    private static (string Dir, Dictionary<string, string> Environment) Environment(FakeOpenAiServer model, bool background)
    {
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-workflow-crash", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var environment = new Dictionary<string, string>
        {
            ["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}",
            ["DurableAgents__WorkerId"] = "crash-host",
            ["DurableAgents__Llm__Resilience__AttemptTimeout"] = "00:05:00",
            ["DurableAgents__Llm__Resilience__TotalTimeout"] = "00:10:00",
        };
        foreach (var profile in new[] { "fast", "strong" })
        {
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Kind"] = "OpenAICompatible";
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Endpoint"] = model.OpenAiEndpoint.ToString();
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__Model"] = "gpt-test";
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__ApiKey"] = "sk-test";
            environment[$"DurableAgents__Llm__Profiles__{profile}__Providers__0__BackgroundResponses"] = background ? "true" : "false";
        }

        environment["DurableAgents__Llm__BackgroundPollInterval"] = "00:00:00.050";
        // Agent turns not streamed: these tests follow the polled background path (BackgroundResponseTests cover streamed resumes).
        environment["DurableAgents__Llm__StreamAgentTurns"] = "false";
        return (dir, environment);

    }

    [TestCase("ContentPipeline", """{"topic":"durable agents"}""", 3, 5)]
    [TestCase("DraftReviewLoop", """{"brief":"a launch post","maxRounds":3}""", 4, 6)]
    public async Task WithBackgroundResponses_AKilledHost_ResumesTheAcceptedGeneration_AndPaysForNoneTwice(string workflow, string input, int killAtGeneration, int modelCalls)
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        model.Responder = Agents();
        model.HoldResponse = killAtGeneration;
        var (dir, environment) = Environment(model, background: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var id = "bg-crash-" + workflow.ToUpperInvariant();
        var first = await HostProcess.StartAsync(environment);
        using (var http = first.CreateClient())
        {
            using var start = await http.PostAsync($"/api/orchestrators/{workflow}/{id}", new StringContent(input, Encoding.UTF8, "application/json"), cts.Token);
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

            // Accepted and its token on the ledger (polling starts only after the token is recorded).
            while (model.ResponseIds.Count < killAtGeneration || !model.ResponsePolls.Any(p => p.Path.Contains(model.ResponseIds[killAtGeneration - 1], StringComparison.Ordinal)))
            {
                await Task.Delay(20, cts.Token);
            }
        }

        await first.DisposeAsync(); // SIGKILL while generation #killAtGeneration is in progress at the provider
        model.ReleaseResponses();
        await using var second = await HostProcess.StartAsync(environment);
        using var client = second.CreateClient();
        var status = await HostProcess.WaitUntilFinishedAsync(client, id, cts.Token);

        Assert.That(status.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"), status.ToString());
        Assert.That(model.Generations, Is.EqualTo(modelCalls), "generations started = generations needed: the killed one was resumed, not paid again");
        Assert.That(model.ChatRequests, Is.Empty);
        using var usage = JsonDocument.Parse(await client.GetStringAsync("/api/usage", cts.Token));
        var perWorkflow = usage.RootElement.EnumerateArray().ToList();
        Assert.That(perWorkflow.Sum(w => w.GetProperty("calls").GetInt64()), Is.EqualTo(model.Generations), usage.RootElement.ToString());
        Assert.That(perWorkflow.Sum(w => w.GetProperty("interrupted").GetInt64()), Is.Zero, "the resumed generation was settled with its real usage");
        Assert.That(second.Output, Does.Contain("resumed background response " + model.ResponseIds[killAtGeneration - 1]));
        TryDelete(dir);
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [TestCase("ContentPipeline", """{"topic":"durable agents"}""", 3, 5)]
    [TestCase("DraftReviewLoop", """{"brief":"a launch post","maxRounds":3}""", 4, 6)]
    [TestCase("SupervisorAgent", """{"goal":"a competitor overview","workers":["researcher","analyst"]}""", 2, 3)]
    public async Task AKilledHost_FinishesTheWorkflow_WithoutReissuingCompletedModelCalls(string workflow, string input, int killAtRequest, int modelCalls)
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        model.Responder = Agents();
        model.StallAtRequest = killAtRequest;
        var (dir, environment) = Environment(model, background: false);
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

        // The ledger (all instances: the supervisor's workers are sub-orchestrations): one attempt per
        // request the server received, the interrupted one on the books with its estimate and host.
        using var usage = JsonDocument.Parse(await client.GetStringAsync("/api/usage", cts.Token));
        var perWorkflow = usage.RootElement.EnumerateArray().ToList();
        Assert.That(perWorkflow.Sum(w => w.GetProperty("calls").GetInt64()), Is.EqualTo(model.ChatRequests.Count), usage.RootElement.ToString());
        Assert.That(perWorkflow.Sum(w => w.GetProperty("interrupted").GetInt64()), Is.EqualTo(1), usage.RootElement.ToString());
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "store.db")};Pooling=false"))
        {
            await db.OpenAsync(cts.Token);
            await using var query = db.CreateCommand();
            query.CommandText = "SELECT outcome, est_tokens, host FROM llm_attempts ORDER BY id";
            var rows = new List<(string Outcome, long Estimate, string Host)>();
            await using (var reader = await query.ExecuteReaderAsync(cts.Token))
            {
                while (await reader.ReadAsync(cts.Token))
                {
                    rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetString(2)));
                }
            }

            Assert.That(rows.Select(r => r.Outcome), Is.EquivalentTo(Enumerable.Repeat("ok", modelCalls).Append("interrupted")));
            Assert.That(rows.Single(r => r.Outcome == "interrupted").Estimate, Is.GreaterThan(0));
            Assert.That(rows.Select(r => r.Host).Distinct(), Is.EqualTo(new[] { "crash-host" }));
        }

        TryDelete(dir);
    }
}
