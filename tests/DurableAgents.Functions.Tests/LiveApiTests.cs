using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;

namespace DurableAgents.Functions.Tests;

/// <summary>
/// The live API over real HTTP against the host process (SQLite, the offline simulator): the SSE stream with ids
/// that resumes after Last-Event-ID or ?after= with nothing lost or repeated, the AG-UI endpoint, and steer/interrupt
/// refusing bad input with problem details and without touching the instance.
/// </summary>
[NonParallelizable]
public sealed class LiveApiTests
{
    private HostProcess _host = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUp()
    {
        _host = await HostProcess.StartAsync();
        _http = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDown()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>The frames of an SSE response: (id or null, data).</summary>
    private static async Task<List<(long? Id, JsonNode Data)>> ReadFramesAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        var frames = new List<(long?, JsonNode)>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        long? id = null;
        string? data = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    frames.Add((id, JsonNode.Parse(data)!));
                }

                (id, data) = (null, null);
            }
            else if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }

        return frames;
    }

    private async Task<List<(long? Id, JsonNode Data)>> StreamAsync(string path, string? lastEventId = null)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        return await ReadFramesAsync(response, cts.Token);
    }

    [Test]
    public async Task TheStream_HasAnIdOnEveryEvent_AndResumesAfterLastEventIdOrAfter_WithNothingLostOrRepeated()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var start = await _http.PostAsync("/api/orchestrators/AgentChat/live-1", Json("""{"message":"What is a durable agent?"}"""), cts.Token))
        {
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        }

        // Read while it runs (or after: the log has it all), until RUN_FINISHED.
        var all = await StreamAsync("/api/instances/live-1/stream");
        Assert.That(all.Select(f => f.Id), Is.EqualTo(Enumerable.Range(1, all.Count).Select(i => (long?)i)), "every event has its id: 1, 2, 3 …");
        var types = all.Select(f => f.Data["type"]!.GetValue<string>()).ToList();
        Assert.That(types[0], Is.EqualTo("RUN_STARTED"));
        Assert.That(types[^1], Is.EqualTo("RUN_FINISHED"));
        Assert.That(types, Does.Contain("STEP_STARTED").And.Contain("TEXT_MESSAGE_CONTENT").And.Contain("STEP_FINISHED"));
        var text = string.Concat(all.Where(f => (string?)f.Data["type"] == "TEXT_MESSAGE_CONTENT" && (string?)all.First(s => (string?)s.Data["type"] == "TEXT_MESSAGE_START" && (string?)s.Data["messageId"] == (string?)f.Data["messageId"]).Data["role"] == "assistant").Select(f => f.Data["delta"]!.GetValue<string>()));
        var output = JsonNode.Parse(await _http.GetStringAsync("/api/instances/live-1", cts.Token))!["output"]!;
        Assert.That(text, Is.EqualTo(output["text"]!.GetValue<string>()), "the streamed tokens are the answer");

        var middle = all.Count / 2;
        var resumed = await StreamAsync("/api/instances/live-1/stream", lastEventId: middle.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(resumed.Select(f => f.Id), Is.EqualTo(all.Skip(middle).Select(f => f.Id)), "after Last-Event-ID: the rest, once each");
        Assert.That(resumed.Select(f => f.Data.ToJsonString()), Is.EqualTo(all.Skip(middle).Select(f => f.Data.ToJsonString())));
        var viaQuery = await StreamAsync($"/api/instances/live-1/stream?after={middle + 1}");
        Assert.That(viaQuery.Select(f => f.Id), Is.EqualTo(all.Skip(middle + 1).Select(f => f.Id)));
        var header = await StreamAsync($"/api/instances/live-1/stream?after=1", lastEventId: (all.Count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(header.Select(f => f.Id), Is.EqualTo(new long?[] { all.Count }), "Last-Event-ID (the browser's reconnect) wins over the URL's ?after=");
    }

    [Test]
    public async Task WithAResponseWindow_AResponseEndsOnceCaughtUp_AndTheNextGoesOnAfterItsLastId()
    {
        // As behind the Functions host, which buffers a custom handler's whole response: the stream ends in windows.
        await using var host = await HostProcess.StartAsync(new Dictionary<string, string> { ["DurableAgents__Live__ResponseWindow"] = "00:00:00.300" });
        using var http = host.CreateClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var start = await http.PostAsync("/api/orchestrators/ApprovalGate/windowed", Json("""{"subject":"Ship","summary":"Ship it?","approvers":["founder@example.com"]}"""), cts.Token))
        {
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        }

        async Task<List<(long? Id, JsonNode Data)>> GetAsync(long after)
        {
            using var response = await http.GetAsync($"/api/instances/windowed/stream?after={after}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            return await ReadFramesAsync(response, cts.Token); // returns: the response ended
        }

        var first = await GetAsync(0);
        while (!first.Any(f => (string?)f.Data["type"] == "STATE_DELTA" || (string?)f.Data["type"] == "STATE_SNAPSHOT"))
        {
            first.AddRange(await GetAsync(first.LastOrDefault().Id ?? 0)); // the gate may not have set its status yet
        }

        Assert.That(first.Select(f => f.Id), Is.EqualTo(Enumerable.Range(1, first.Count).Select(i => (long?)i)), "ids 1, 2, 3 … across responses, none twice");
        var running = await http.GetFromJsonAsync<JsonElement>("/api/instances/windowed", cts.Token);
        Assert.That(running.GetProperty("runtimeStatus").GetString(), Is.EqualTo("Running"), "the responses ended while the run goes on");
        Assert.That(await GetAsync(first.Count), Is.Empty, "caught up: an empty response that ends");

        using (var terminate = await http.PostAsync("/api/instances/windowed/terminate", Json("""{"reason":"test"}"""), cts.Token))
        {
            Assert.That((int)terminate.StatusCode, Is.LessThan(300));
        }

        await HostProcess.WaitUntilFinishedAsync(http, "windowed", cts.Token);
        var rest = await GetAsync(first.Count);
        Assert.That(rest.Select(f => f.Id), Is.All.GreaterThan(first.Count), "what came after, once");
    }

    [TestCase("abc")]
    [TestCase("-1")]
    [TestCase("1.5")]
    public async Task ABadCursor_Is400WithProblemDetails(string cursor)
    {
        using var response = await _http.GetAsync($"/api/instances/anything/stream?after={Uri.EscapeDataString(cursor)}");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("not an event id"));
    }

    [Test]
    public async Task UnknownInstances_Are404_ForStreamSteerAndInterrupt()
    {
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/api/instances/nope/stream"), (HttpMethod.Post, "/api/instances/nope/steer"), (HttpMethod.Post, "/api/instances/nope/interrupt") })
        {
            using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Post ? Json("""{"message":"hi"}""") : null };
            using var response = await _http.SendAsync(request);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), path);
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"), path);
        }
    }

    [Test]
    public async Task BadSteers_AreRefused_AndAFinishedRunIs409_WithItsHistoryUntouched()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using (var start = await _http.PostAsync("/api/orchestrators/AgentChat/live-2", Json("""{"message":"Hello"}"""), cts.Token))
        {
            Assert.That(start.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        }

        await HostProcess.WaitUntilFinishedAsync(_http, "live-2", cts.Token);
        var before = await _http.GetStringAsync("/api/instances/live-2?showHistory=true", cts.Token);
        foreach (var (body, status) in new[]
        {
            ("""{"message":""}""", HttpStatusCode.BadRequest),
            ("""{"message":42}""", HttpStatusCode.BadRequest),
            ("""["use Q3"]""", HttpStatusCode.BadRequest),
            ("{" + "\"message\":\"" + new string('x', 16_001) + "\"}", HttpStatusCode.BadRequest),
            ("""{"message":"use Q3"}""", HttpStatusCode.Conflict),
        })
        {
            using var response = await _http.PostAsync("/api/instances/live-2/steer", Json(body), cts.Token);
            Assert.That(response.StatusCode, Is.EqualTo(status), body.Length > 80 ? body[..80] : body);
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        }

        using (var interrupt = await _http.PostAsync("/api/instances/live-2/interrupt", null, cts.Token))
        {
            Assert.That(interrupt.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        }

        using (var notJson = await _http.PostAsync("/api/instances/live-2/steer", new StringContent("use Q3", Encoding.UTF8, "text/plain"), cts.Token))
        {
            Assert.That(notJson.StatusCode, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        }

        Assert.That(await _http.GetStringAsync("/api/instances/live-2?showHistory=true", cts.Token), Is.EqualTo(before), "nothing was raised");
    }

    [Test]
    public async Task TheAgUiEndpoint_StartsTheRun_StreamsItsEvents_AndASecondRunContinuesTheThread()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        async Task<List<(long? Id, JsonNode Data)>> RunAsync(string runId, string message)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/agents/AgentChat/agui")
            {
                Content = Json($$$"""{"threadId":"thread-1","runId":"{{{runId}}}","state":{},"messages":[{"id":"m-{{{runId}}}","role":"user","content":"{{{message}}}"}],"tools":[],"context":[],"forwardedProps":{}}"""),
            };
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            return await ReadFramesAsync(response, cts.Token);
        }

        var first = await RunAsync("run-1", "Remember the word teal.");
        Assert.That(first[0].Data["type"]!.GetValue<string>(), Is.EqualTo("RUN_STARTED"));
        Assert.That(first[0].Data["threadId"]!.GetValue<string>(), Is.EqualTo("thread-1:run-1"));
        Assert.That(first[^1].Data["type"]!.GetValue<string>(), Is.EqualTo("RUN_FINISHED"));

        var second = await RunAsync("run-2", "Which word?");
        Assert.That(second[^1].Data["type"]!.GetValue<string>(), Is.EqualTo("RUN_FINISHED"));
        var input = JsonNode.Parse(await _http.GetStringAsync("/api/instances/thread-1:run-2", cts.Token))!["input"]!;
        var previous = JsonNode.Parse(await _http.GetStringAsync("/api/instances/thread-1:run-1", cts.Token))!["output"]!;
        Assert.That(input["conversation"]?.GetValue<string>() ?? input["Conversation"]?.GetValue<string>(), Is.EqualTo(previous["conversation"]!.GetValue<string>()), "the second run continues the first's conversation");

        using var again = await _http.PostAsync("/api/agents/AgentChat/agui", Json("""{"threadId":"thread-1","runId":"run-2","messages":[{"id":"x","role":"user","content":"again"}]}"""), cts.Token);
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "a runId is used once");
        using var noMessage = await _http.PostAsync("/api/agents/AgentChat/agui", Json("""{"threadId":"thread-2","runId":"r","messages":[]}"""), cts.Token);
        Assert.That(noMessage.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        using var unknown = await _http.PostAsync("/api/agents/Nope/agui", Json("""{"threadId":"t","runId":"r","messages":[{"id":"x","role":"user","content":"hi"}]}"""), cts.Token);
        Assert.That(unknown.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(unknown.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
    }
}
