using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace DurableAgents.Tests.Support;

/// <summary>
/// The Responses API of the fake provider: <c>POST /v1/responses</c> (foreground or <c>background: true</c>,
/// JSON or SSE), <c>GET /v1/responses/{id}</c> (poll; <c>?stream=true&amp;starting_after=N</c> resumes the
/// event stream after sequence number N), <c>POST /v1/responses/{id}/cancel</c> and <c>DELETE</c>. A
/// background response generates for <see cref="ResponseDuration"/> (or, with <see cref="HoldResponses"/>,
/// until <see cref="ReleaseResponses"/>), so a host can be killed while one is in progress.
/// </summary>
public sealed partial class FakeOpenAiServer
{
    private readonly ConcurrentDictionary<string, StoredResponse> _responses = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _responseIds;
    private int _generations;

    /// <summary>How long a background response takes to generate.</summary>
    public TimeSpan ResponseDuration { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Background responses stay in progress until <see cref="ReleaseResponses"/> (a stream stops after its first text delta).</summary>
    public bool HoldResponses { get; set; }

    /// <summary>Only the n-th background response (1-based) is held, as with <see cref="HoldResponses"/>.</summary>
    public int? HoldResponse { get; set; }

    private bool IsHeld(StoredResponse r) => (HoldResponses || HoldResponse == r.Number) && !_released.Task.IsCompleted;

    /// <summary>Generations started: one per <c>POST /v1/responses</c> that was accepted. Polls and resumes are not generations.</summary>
    public int Generations => Volatile.Read(ref _generations);

    /// <summary>The <c>POST /v1/responses</c> requests (normalized: "messages" holds instructions and input as chat messages).</summary>
    public IReadOnlyList<RecordedRequest> ResponseCreates => Requests.Where(r => r.Path == "/v1/responses").ToList();

    /// <summary>The <c>GET /v1/responses/{id}</c> requests (polls and stream resumes).</summary>
    public IReadOnlyList<RecordedRequest> ResponsePolls => Requests.Where(r => r.Path.StartsWith("/v1/responses/", StringComparison.Ordinal) && r.Body["method"]?.GetValue<string>() == "GET").ToList();

    /// <summary>Ids of the responses created, in order.</summary>
    public IReadOnlyList<string> ResponseIds => _responses.Values.OrderBy(r => r.Number).Select(r => r.Id).ToList();

    /// <summary>Lets held responses finish.</summary>
    public void ReleaseResponses() => _released.TrySetResult();

    /// <summary>Forgets a response, as the provider does when it expires (its id then answers 404).</summary>
    public void ForgetResponse(string id) => _responses.TryRemove(id, out _);

    private void MapResponses(WebApplication app)
    {
        app.MapPost("/v1/responses", CreateResponseAsync);
        app.MapGet("/v1/responses/{id}", GetResponseAsync);
        app.MapPost("/v1/responses/{id}/cancel", CancelResponseAsync);
        app.MapDelete("/v1/responses/{id}", (string id) => _responses.TryRemove(id, out _) ? Results.Ok(new { id, @object = "response.deleted", deleted = true }) : NotFound(id));
    }

    private async Task CreateResponseAsync(HttpContext ctx)
    {
        var recorded = await RecordAsync(ctx);
        var body = recorded.Body;
        var normalized = new RecordedRequest(recorded.Path, recorded.Headers, Normalize(body), recorded.At);
        var background = body["background"]?.GetValue<bool>() == true;
        var stream = body["stream"]?.GetValue<bool>() == true;
        if (_script.TryDequeue(out var reply))
        {
            await reply(ctx, normalized); // scripted statuses (429, 500, ...) apply here too
            if (ctx.Response.StatusCode != 200 || ctx.Response.HasStarted)
            {
                return;
            }
        }

        var text = Responder?.Invoke(normalized) ?? DefaultText;
        var number = Interlocked.Increment(ref _responseIds);
        var response = new StoredResponse($"resp_{number:D4}", number, text, Model, background, DateTimeOffset.UtcNow, EstimateTokens(normalized), Math.Max(1, text.Split(' ').Length));
        _responses[response.Id] = response;
        Interlocked.Increment(ref _generations);
        if (!background)
        {
            response.Finish();
        }

        if (stream)
        {
            await StreamAsync(ctx, response, startingAfter: -1);
            return;
        }

        await ctx.Response.WriteAsJsonAsync(response.ToJson(CurrentStatus(response)));
    }

    private async Task GetResponseAsync(HttpContext ctx, string id)
    {
        Requests.Enqueue(new RecordedRequest(ctx.Request.Path + ctx.Request.QueryString, ctx.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), new JsonObject { ["method"] = "GET" }, DateTimeOffset.UtcNow));
        if (!_responses.TryGetValue(id, out var response))
        {
            await NotFound(id).ExecuteAsync(ctx);
            return;
        }

        if (ctx.Request.Query["stream"] == "true")
        {
            var after = int.TryParse(ctx.Request.Query["starting_after"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : -1;
            await StreamAsync(ctx, response, after);
            return;
        }

        await ctx.Response.WriteAsJsonAsync(response.ToJson(CurrentStatus(response)));
    }

    private async Task CancelResponseAsync(HttpContext ctx, string id)
    {
        Requests.Enqueue(new RecordedRequest(ctx.Request.Path.ToString(), new Dictionary<string, string>(), new JsonObject { ["method"] = "POST" }, DateTimeOffset.UtcNow));
        if (!_responses.TryGetValue(id, out var response))
        {
            await NotFound(id).ExecuteAsync(ctx);
            return;
        }

        if (CurrentStatus(response) is "queued" or "in_progress")
        {
            response.Cancelled = true;
        }

        await ctx.Response.WriteAsJsonAsync(response.ToJson(CurrentStatus(response)));
    }

    private string CurrentStatus(StoredResponse r)
    {
        if (r.Cancelled)
        {
            return "cancelled";
        }

        if (r.Finished || (!IsHeld(r) && DateTimeOffset.UtcNow - r.CreatedAt >= ResponseDuration))
        {
            r.Finish();
            return "completed";
        }

        return "in_progress";
    }

    /// <summary>SSE events of a response after <paramref name="startingAfter"/>, pacing the text deltas over the generation.</summary>
    private async Task StreamAsync(HttpContext ctx, StoredResponse r, int startingAfter)
    {
        ctx.Response.ContentType = "text/event-stream";
        var events = r.Events();
        var deltas = events.Count(e => e["type"]!.GetValue<string>() == "response.output_text.delta");
        var sentDeltas = 0;
        foreach (var e in events)
        {
            var type = e["type"]!.GetValue<string>();
            if (type == "response.output_text.delta")
            {
                sentDeltas++;
                if (r.Background && IsHeld(r) && sentDeltas > 1)
                {
                    await _released.Task.WaitAsync(ctx.RequestAborted); // a stream of a held response stops after its first delta
                }
                else if (r.Background && !r.Finished)
                {
                    var due = r.CreatedAt + (ResponseDuration * sentDeltas / deltas);
                    if (due > DateTimeOffset.UtcNow)
                    {
                        await Task.Delay(due - DateTimeOffset.UtcNow, ctx.RequestAborted);
                    }
                }
            }

            if (type == "response.completed")
            {
                if (r.Cancelled)
                {
                    break;
                }

                r.Finish();
            }

            if (e["sequence_number"]!.GetValue<int>() <= startingAfter)
            {
                continue;
            }

            await ctx.Response.WriteAsync($"event: {type}\ndata: {e.ToJsonString()}\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
    }

    private static IResult NotFound(string id) => Results.Json(new { error = new { message = $"No response found with id '{id}'.", type = "invalid_request_error", code = "not_found", param = (string?)null } }, statusCode: 404);

    private static int EstimateTokens(RecordedRequest r) => Math.Max(1, (r.Body["messages"]?.ToJsonString().Length ?? 4) / 4);

    /// <summary>A Responses request as chat messages (instructions → system; input items → their roles), so one Responder serves both APIs.</summary>
    private static JsonObject Normalize(JsonNode body)
    {
        var messages = new JsonArray();
        if (body["instructions"]?.GetValue<string>() is { } instructions)
        {
            messages.Add(new JsonObject { ["role"] = "system", ["content"] = instructions });
        }

        if (body["input"] is JsonValue single)
        {
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = single.GetValue<string>() });
        }
        else if (body["input"] is JsonArray items)
        {
            foreach (var item in items.OfType<JsonObject>())
            {
                var content = item["content"] switch
                {
                    JsonValue v => v.GetValue<string>(),
                    JsonArray parts => string.Concat(parts.OfType<JsonObject>().Select(p => p["text"]?.GetValue<string>())),
                    _ => null,
                };
                messages.Add(new JsonObject { ["role"] = item["role"]?.GetValue<string>() ?? item["type"]?.GetValue<string>(), ["content"] = content });
            }
        }

        var normalized = body.DeepClone().AsObject();
        normalized["messages"] = messages;
        return normalized;
    }

    private sealed class StoredResponse(string id, int number, string text, string model, bool background, DateTimeOffset createdAt, int inputTokens, int outputTokens)
    {
        public string Id { get; } = id;

        public int Number { get; } = number;

        public bool Background { get; } = background;

        public DateTimeOffset CreatedAt { get; } = createdAt;

        public bool Finished { get; private set; }

        public bool Cancelled { get; set; }

        public void Finish() => Finished = true;

        public JsonObject ToJson(string status)
        {
            var done = status == "completed";
            return new JsonObject
            {
                ["id"] = Id,
                ["object"] = "response",
                ["created_at"] = CreatedAt.ToUnixTimeSeconds(),
                ["status"] = status,
                ["background"] = Background,
                ["model"] = model,
                ["output"] = done ? new JsonArray(Message("completed")) : new JsonArray(),
                ["usage"] = done ? Usage() : null,
                ["error"] = null,
                ["incomplete_details"] = null,
            };
        }

        /// <summary>The whole event sequence, numbered from 0.</summary>
        public List<JsonObject> Events()
        {
            var events = new List<JsonObject>();
            void Add(string type, Action<JsonObject> fill)
            {
                var e = new JsonObject { ["type"] = type, ["sequence_number"] = events.Count };
                fill(e);
                events.Add(e);
            }

            Add("response.created", e => e["response"] = ToJson("queued"));
            Add("response.in_progress", e => e["response"] = ToJson("in_progress"));
            Add("response.output_item.added", e => { e["output_index"] = 0; e["item"] = Message("in_progress", withText: false); });
            Add("response.content_part.added", e => { e["item_id"] = "msg_" + Id; e["output_index"] = 0; e["content_index"] = 0; e["part"] = new JsonObject { ["type"] = "output_text", ["text"] = string.Empty, ["annotations"] = new JsonArray() }; });
            var words = text.Split(' ');
            for (var i = 0; i < words.Length; i++)
            {
                var delta = i == 0 ? words[i] : " " + words[i];
                Add("response.output_text.delta", e => { e["item_id"] = "msg_" + Id; e["output_index"] = 0; e["content_index"] = 0; e["delta"] = delta; });
            }

            Add("response.output_text.done", e => { e["item_id"] = "msg_" + Id; e["output_index"] = 0; e["content_index"] = 0; e["text"] = text; });
            Add("response.output_item.done", e => { e["output_index"] = 0; e["item"] = Message("completed"); });
            Add("response.completed", e => e["response"] = ToJson("completed"));
            return events;
        }

        private JsonObject Message(string status, bool withText = true) => new()
        {
            ["type"] = "message",
            ["id"] = "msg_" + Id,
            ["status"] = status,
            ["role"] = "assistant",
            ["content"] = withText ? new JsonArray(new JsonObject { ["type"] = "output_text", ["text"] = text, ["annotations"] = new JsonArray() }) : new JsonArray(),
        };

        private JsonObject Usage() => new()
        {
            ["input_tokens"] = inputTokens,
            ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = 0 },
            ["output_tokens"] = outputTokens,
            ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
            ["total_tokens"] = inputTokens + outputTokens,
        };
    }
}
