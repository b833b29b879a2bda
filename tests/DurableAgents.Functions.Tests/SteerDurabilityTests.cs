using System.Net;
using System.Text;
using System.Text.Json;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// A steer is a durable event: accepted (202) by a host that is then killed mid model call, it is still taken at
/// the next turn boundary by the host that takes over the store.
/// </summary>
[NonParallelizable]
public sealed class SteerDurabilityTests
{
    [Test]
    public async Task ASteerAccepted_ThenTheHostKilled_IsTheNextTurnsPrompt_OnTheRestartedHost()
    {
        await using var model = await FakeOpenAiServer.StartAsync();
        var gate = new StreamGate();
        model.ThenGated("Revenue grew with the Q2 numbers.", 2, gate) // cut off by the kill
            .ThenText("Revenue grew with the Q2 numbers.")          // turn 1 again, on the restarted host
            .ThenText("With the Q3 numbers: revenue grew 12%.");    // turn 2, with the steer
        var dir = Path.Combine(Path.GetTempPath(), "durableagents-steer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var env = HostProcess.LocalModel(model);
        env["DurableAgents__Sqlite__ConnectionString"] = $"Data Source={Path.Combine(dir, "store.db")}";
        env["DurableAgents__WorkerId"] = "steer-host";
        env["DurableAgents__Llm__Cache__Enabled"] = "false";
        env["DurableAgents__Agents__live__MaxTurns"] = "10";

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var first = await HostProcess.StartAsync(env);
        using (var http = first.CreateClient())
        {
            using var start = await http.PostAsync("/api/orchestrators/AgentChat/steer-crash", new StringContent("""{"message":"Summarise revenue.","agent":"live"}""", Encoding.UTF8, "application/json"), cts.Token);
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
            await gate.Reached.Task.WaitAsync(cts.Token);
            using var steer = await http.PostAsync("/api/instances/steer-crash/steer", new StringContent("""{"message":"Use the Q3 numbers instead."}""", Encoding.UTF8, "application/json"), cts.Token);
            Assert.That(steer.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        }

        await first.KillAsync(); // SIGKILL with the first answer half streamed and the steer only in the store
        await first.DisposeAsync();
        await using var second = await HostProcess.StartAsync(env);
        using var client = second.CreateClient();
        var status = await HostProcess.WaitUntilFinishedAsync(client, "steer-crash", cts.Token);

        Assert.That(status.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Completed"), status.ToString());
        var output = status.GetProperty("output");
        Assert.That((output.GetProperty("turns").GetInt32(), output.GetProperty("text").GetString()), Is.EqualTo((2, "With the Q3 numbers: revenue grew 12%.")));
        Assert.That(model.ChatRequests, Has.Count.EqualTo(3), "the cut-off call, turn 1 again, turn 2");
        string LastUser(int i) => model.ChatRequests[i].Body["messages"]!.AsArray().Last(m => (string?)m!["role"] == "user")!["content"]!.ToJsonString();
        Assert.That(LastUser(1), Does.Not.Contain("Q3"), "turn 1 again is turn 1: the steer waits for the boundary");
        Assert.That(LastUser(2), Does.Contain("Use the Q3 numbers instead."));
        using var history = JsonDocument.Parse(await client.GetStringAsync("/api/instances/steer-crash/usage", cts.Token));
        Assert.That(history.RootElement.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("outcome").GetString()), Is.EqualTo(new[] { "interrupted", "ok", "ok" }), "the killed host's attempt is on the books once");
        try
        {
            Directory.Delete(dir, true);
        }
        catch (IOException)
        {
        }
    }
}
