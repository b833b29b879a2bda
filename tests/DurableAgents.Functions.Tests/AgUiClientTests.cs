using System.Net.Http.Json;
using System.Text.Json;
using DurableAgents.Tests.Shared;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// The AG-UI endpoint driven by the protocol's own TypeScript client (<c>@ag-ui/client</c> 1.0.0 from npm, its
/// HttpAgent with event verification) on Node: two runs of one thread against the host process with the simulator.
/// </summary>
[NonParallelizable]
public sealed class AgUiClientTests
{
    [Test]
    public async Task TheAgUiClient_RunsTwoTurnsOfAThread_AndSeesAValidStream_WithoutEchoesOrMergedMessages()
    {
        var modules = NodeScript.Modules("DURABLEAGENTS_TEST_AGUI_CLIENT", "@ag-ui/client");
        await using var host = await HostProcess.StartAsync();
        using var http = host.CreateClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var doc = await NodeScript.RunAsync("agui-client.js", modules, TimeSpan.FromSeconds(120), new Uri(host.BaseAddress, "/api/agents/AgentChat/agui").ToString(), "node-thread");
        var root = doc.RootElement;
        foreach (var run in new[] { "first", "second" })
        {
            var r = root.GetProperty(run);
            Assert.That(r.GetProperty("failed").ValueKind, Is.EqualTo(JsonValueKind.Null), run);
            Assert.That(r.GetProperty("outcome").GetString(), Is.EqualTo("success"), run);
            var events = r.GetProperty("events").EnumerateArray().Select(e => e.GetString()).ToList();
            Assert.That(events.First(), Is.EqualTo("RUN_STARTED"), run);
            Assert.That(events.Last(), Is.EqualTo("RUN_FINISHED"), run);
            Assert.That(events, Is.SupersetOf(new[] { "STEP_STARTED", "STEP_FINISHED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END", "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT" }), run);
        }

        var messages = root.GetProperty("messages").EnumerateArray().Select(m => (Role: m.GetProperty("role").GetString(), Content: m.TryGetProperty("content", out var c) ? c.GetString() : null)).ToList();
        Assert.That(messages.Where(m => m.Role == "user").Select(m => m.Content), Is.EqualTo(new[] { "Hello from the AG-UI client.", "And a second question." }), "the client's own messages, each once: the run does not echo them back under other ids");
        Assert.That(messages.Last().Role, Is.EqualTo("assistant"));
        Assert.That(messages.Last().Content, Does.Contain("And a second question."));
        Assert.That(messages.Count(m => m.Role == "assistant" && m.Content is not null), Is.EqualTo(2), "one answer per run");

        // The second run continued the first's conversation (the thread), as instance {threadId}:{runId}.
        var second = await http.GetFromJsonAsync<JsonElement>("/api/instances/node-thread:run-2", cts.Token);
        Assert.That(second.GetProperty("input").GetProperty("conversation").GetString(), Is.Not.Null.And.Not.Empty);
    }
}
