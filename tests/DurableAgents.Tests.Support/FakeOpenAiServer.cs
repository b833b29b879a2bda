using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Tests.Support;

/// <summary>A request the fake provider received.</summary>
public sealed record RecordedRequest(string Path, IReadOnlyDictionary<string, string> Headers, JsonNode Body, DateTimeOffset At)
{
    public bool Stream => Body["stream"]?.GetValue<bool>() == true;
}

/// <summary>
/// An OpenAI-compatible HTTP server on a loopback port, for driving the real OpenAI and Azure OpenAI SDKs:
/// /v1/chat/completions (JSON and SSE streaming, tool calls), /v1/embeddings, and the Azure deployment
/// routes, and /v1/responses with background mode (FakeOpenAiServer.Responses.cs). Each chat request takes the next scripted reply (429 with Retry-After, 500, slow, malformed JSON,
/// content filter, ...); with none scripted it answers a plain text.
/// </summary>
public sealed partial class FakeOpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Func<HttpContext, RecordedRequest, Task>> _script = new();

    private FakeOpenAiServer(WebApplication app) => _app = app;

    /// <summary>The base URL for OpenAI-compatible clients (…/v1).</summary>
    public Uri OpenAiEndpoint => new(BaseAddress, "v1/");

    /// <summary>The server root (Azure OpenAI clients take this as their endpoint).</summary>
    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>Everything received, in order.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Chat requests received.</summary>
    public IReadOnlyList<RecordedRequest> ChatRequests => Requests.Where(r => r.Path.Split('?')[0].EndsWith("/chat/completions", StringComparison.Ordinal)).ToList();

    /// <summary>The default answer's text.</summary>
    public string DefaultText { get; set; } = "Hello from the fake provider.";

    /// <summary>The model name answers report.</summary>
    public string Model { get; set; } = "gpt-test";

    public static async Task<FakeOpenAiServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new FakeOpenAiServer(app);
        app.MapPost("/v1/chat/completions", server.HandleAsync);
        app.MapPost("/openai/deployments/{deployment}/chat/completions", server.HandleAsync);
        app.MapPost("/v1/embeddings", server.HandleEmbeddingsAsync);
        app.MapPost("/openai/deployments/{deployment}/embeddings", server.HandleEmbeddingsAsync);
        server.MapResponses(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server.BaseAddress = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    /// <summary>Adds a scripted reply for the next request.</summary>
    public FakeOpenAiServer Then(Func<HttpContext, RecordedRequest, Task> reply)
    {
        _script.Enqueue(reply);
        return this;
    }

    public FakeOpenAiServer ThenStatus(int status, int? retryAfterSeconds = null, string? errorCode = null) => Then(async (ctx, _) =>
    {
        ctx.Response.StatusCode = status;
        if (retryAfterSeconds is { } s)
        {
            ctx.Response.Headers.RetryAfter = s.ToString(CultureInfo.InvariantCulture);
        }

        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(JsonSerializer.Serialize(new { error = new { message = $"scripted {status}", type = "test", code = errorCode } }));
    });

    public FakeOpenAiServer ThenText(string text, int promptTokens = 10, int completionTokens = 5) =>
        Then((ctx, req) => AnswerAsync(ctx, req, text, null, promptTokens, completionTokens));

    /// <summary>A text answer computed from the request (e.g. naming an id the prompt listed).</summary>
    public FakeOpenAiServer ThenReply(Func<RecordedRequest, string> text) =>
        Then((ctx, req) => AnswerAsync(ctx, req, text(req), null, 10, 5));

    public FakeOpenAiServer ThenToolCall(string name, string argumentsJson) =>
        Then((ctx, req) => AnswerAsync(ctx, req, null, [(name, argumentsJson)], 12, 7));

    /// <summary>One answer asking for several tool calls (ids call_1, call_2, …).</summary>
    public FakeOpenAiServer ThenToolCalls(params (string Name, string ArgumentsJson)[] calls) =>
        Then((ctx, req) => AnswerAsync(ctx, req, null, calls, 12, 7));

    public FakeOpenAiServer ThenSlow(TimeSpan delay, string text) => Then(async (ctx, req) =>
    {
        await Task.Delay(delay, ctx.RequestAborted);
        await AnswerAsync(ctx, req, text, null, 10, 5);
    });

    /// <summary>
    /// A streamed text answer that stops after its first <paramref name="wordsBefore"/> words until <see cref="StreamGate.Release"/>:
    /// a model mid-generation, for tests that reload, interrupt or kill a host while tokens arrive.
    /// </summary>
    public FakeOpenAiServer ThenGated(string text, int wordsBefore, StreamGate gate) => Then(async (ctx, req) =>
    {
        ArgumentNullException.ThrowIfNull(gate);
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ctx.Response.ContentType = "text/event-stream";
        Task Send(object chunk) => SendChunkAsync(ctx, chunk);

        var words = text.Split(' ');
        try
        {
            for (var i = 0; i < words.Length; i++)
            {
                if (i == wordsBefore)
                {
                    gate.Reached.TrySetResult();
                    await gate.Release.Task.WaitAsync(ctx.RequestAborted);
                }

                var piece = i == 0 ? words[i] : " " + words[i];
                await Send(new { id = "chatcmpl-g", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { role = i == 0 ? "assistant" : null, content = piece }, finish_reason = (string?)null } } });
            }

            await Send(new { id = "chatcmpl-g", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { }, finish_reason = "stop" } } });
            await Send(new { id = "chatcmpl-g", @object = "chat.completion.chunk", created, model = Model, choices = Array.Empty<object>(), usage = new { prompt_tokens = 10, completion_tokens = words.Length, total_tokens = 10 + words.Length } });
            await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            gate.Aborted.TrySetResult(); // the client went away mid-answer
        }
    });

    /// <summary>
    /// A streamed answer that thinks first, as OpenAI-compatible reasoning servers (DeepSeek, vLLM, Ollama) stream it:
    /// <c>reasoning_content</c> deltas, then the <c>content</c> deltas.
    /// </summary>
    public FakeOpenAiServer ThenReasoning(string reasoning, string text) => Then(async (ctx, req) =>
    {
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ctx.Response.ContentType = "text/event-stream";
        Task Send(object chunk) => SendChunkAsync(ctx, chunk);

        var thoughts = reasoning.Split(' ');
        for (var i = 0; i < thoughts.Length; i++)
        {
            await Send(new { id = "chatcmpl-r", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { role = i == 0 ? "assistant" : null, reasoning_content = (i == 0 ? string.Empty : " ") + thoughts[i] }, finish_reason = (string?)null } } });
        }

        var words = text.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            await Send(new { id = "chatcmpl-r", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { role = (string?)null, content = (i == 0 ? string.Empty : " ") + words[i] }, finish_reason = (string?)null } } });
        }

        await Send(new { id = "chatcmpl-r", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { }, finish_reason = "stop" } } });
        await Send(new { id = "chatcmpl-r", @object = "chat.completion.chunk", created, model = Model, choices = Array.Empty<object>(), usage = new { prompt_tokens = 10, completion_tokens = thoughts.Length + words.Length, total_tokens = 10 + thoughts.Length + words.Length } });
        await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
    });

    /// <summary>One SSE chunk of a streamed answer, flushed at once.</summary>
    private static async Task SendChunkAsync(HttpContext ctx, object chunk)
    {
        await ctx.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>A 200 whose body is not JSON.</summary>
    public FakeOpenAiServer ThenMalformedBody() => Then(async (ctx, _) =>
    {
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync("{\"id\": \"chatcmpl-broken\", \"choices\": [ {");
    });

    /// <summary>Azure OpenAI's content-filter refusal: 400 with code content_filter.</summary>
    public FakeOpenAiServer ThenContentFilter() => ThenStatus(400, errorCode: "content_filter");

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    /// <summary>Answers requests the script does not cover: text computed from the request (null: <see cref="DefaultText"/>).</summary>
    public Func<RecordedRequest, string?>? Responder { get; set; }

    /// <summary>Chat requests allowed per sliding minute; beyond, 429 with Retry-After (as a deployment's quota).</summary>
    public int? QuotaRequestsPerMinute { get; set; }

    /// <summary>
    /// Tokens (prompt + completion, as reported in the answers' usage) allowed per sliding minute; a request
    /// that arrives when the minute's answers have used them all gets 429 with Retry-After.
    /// </summary>
    public int? QuotaTokensPerMinute { get; set; }

    /// <summary>Unscripted answers report this many completion tokens, and a prompt count estimated from the messages (4 characters a token), instead of 10 and 5.</summary>
    public int? CompletionTokens { get; set; }

    /// <summary>Tokens the unscripted answers reported, in all.</summary>
    public long TokensAnswered => Interlocked.Read(ref _tokensAnswered);

    private readonly Queue<(DateTimeOffset At, int Tokens)> _tokenWindow = new();
    private long _tokensAnswered;

    /// <summary>A fixed <c>x-ratelimit-remaining-requests</c> header on every chat answer (as a provider reports its quota).</summary>
    public int? ReportRemainingRequests { get; set; }

    /// <summary>Chat requests refused by the quota.</summary>
    public int QuotaRefusals => Volatile.Read(ref _quotaRefusals);

    private readonly Queue<DateTimeOffset> _quotaWindow = new();
    private int _quotaRefusals;

    /// <summary>Takes one request from the sliding-minute quota; the seconds until a slot frees when there is none.</summary>
    private int? OverQuota()
    {
        if (QuotaRequestsPerMinute is null && QuotaTokensPerMinute is null)
        {
            return null;
        }

        lock (_quotaWindow)
        {
            var now = DateTimeOffset.UtcNow;
            while (_quotaWindow.Count > 0 && now - _quotaWindow.Peek() >= TimeSpan.FromMinutes(1))
            {
                _quotaWindow.Dequeue();
            }

            while (_tokenWindow.Count > 0 && now - _tokenWindow.Peek().At >= TimeSpan.FromMinutes(1))
            {
                _tokenWindow.Dequeue();
            }

            if (QuotaRequestsPerMinute is { } rpm && _quotaWindow.Count >= rpm)
            {
                Interlocked.Increment(ref _quotaRefusals);
                return Math.Max(1, (int)Math.Ceiling((_quotaWindow.Peek() + TimeSpan.FromMinutes(1) - now).TotalSeconds));
            }

            if (QuotaTokensPerMinute is { } tpm && _tokenWindow.Sum(t => t.Tokens) >= tpm)
            {
                Interlocked.Increment(ref _quotaRefusals);
                return Math.Max(1, (int)Math.Ceiling((_tokenWindow.Peek().At + TimeSpan.FromMinutes(1) - now).TotalSeconds));
            }

            _quotaWindow.Enqueue(now);
            return null;
        }
    }

    /// <summary>Counts an answer's tokens against the minute's token quota.</summary>
    private void CountTokens(int tokens)
    {
        Interlocked.Add(ref _tokensAnswered, tokens);
        lock (_quotaWindow)
        {
            _tokenWindow.Enqueue((DateTimeOffset.UtcNow, tokens));
        }
    }

    /// <summary>How long every unscripted chat answer takes (a model's generation time).</summary>
    public TimeSpan ChatDelay { get; set; }

    /// <summary>The 1-based chat request that stalls (never answered while the test runs): to crash a host mid-call.</summary>
    public int? StallAtRequest { get; set; }

    /// <summary>The most chat requests that were being answered at once.</summary>
    public int MaxConcurrentChats => _maxConcurrent;

    private int _concurrent;
    private int _maxConcurrent;
    private int _chatCount;

    private async Task HandleAsync(HttpContext ctx)
    {
        var now = Interlocked.Increment(ref _concurrent);
        int seen;
        while ((seen = _maxConcurrent) < now && Interlocked.CompareExchange(ref _maxConcurrent, now, seen) != seen)
        {
        }

        var answering = 1; // 0 once this call no longer counts as being answered
        try
        {
            var request = await RecordAsync(ctx);
            if (OverQuota() is { } retryAfter)
            {
                ctx.Response.StatusCode = 429;
                ctx.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
                await ctx.Response.WriteAsync("""{"error":{"message":"Rate limit reached (fake quota).","type":"rate_limit_error","code":"rate_limit_exceeded"}}""");
                return;
            }

            if (ReportRemainingRequests is { } remaining)
            {
                ctx.Response.Headers["x-ratelimit-remaining-requests"] = remaining.ToString(CultureInfo.InvariantCulture);
            }

            if (Interlocked.Increment(ref _chatCount) == StallAtRequest)
            {
                await Task.Delay(TimeSpan.FromMinutes(5), ctx.RequestAborted);
            }

            if (_script.TryDequeue(out var reply))
            {
                await reply(ctx, request);
            }
            else
            {
                if (ChatDelay > TimeSpan.Zero)
                {
                    await Task.Delay(ChatDelay, ctx.RequestAborted);
                }

                var (prompt, completion) = CompletionTokens is { } c
                    ? (Math.Max(1, (request.Body["messages"]?.AsArray().Sum(m => m?["content"]?.ToJsonString().Length ?? 0) ?? 0) / 4), c)
                    : (10, 5);
                CountTokens(prompt + completion);

                // Generated: it stops counting before the answer goes out, since the client may read it and send
                // its next request before this handler's finally runs.
                if (Interlocked.Exchange(ref answering, 0) == 1)
                {
                    Interlocked.Decrement(ref _concurrent);
                }

                await AnswerAsync(ctx, request, Responder?.Invoke(request) ?? DefaultText, null, prompt, completion);
            }
        }
        finally
        {
            if (Interlocked.Exchange(ref answering, 0) == 1)
            {
                Interlocked.Decrement(ref _concurrent);
            }
        }
    }

    private async Task HandleEmbeddingsAsync(HttpContext ctx)
    {
        var request = await RecordAsync(ctx);
        var inputs = request.Body["input"] is JsonArray arr ? arr.Select(x => x!.GetValue<string>()).ToList() : [request.Body["input"]!.GetValue<string>()];
        var base64 = request.Body["encoding_format"]?.GetValue<string>() == "base64";
        var data = inputs.Select((text, i) =>
        {
            var vector = WordVector(text);
            object embedding = base64 ? Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan())) : vector;
            return new { @object = "embedding", index = i, embedding };
        }).ToList();
        await ctx.Response.WriteAsJsonAsync(new { @object = "list", data, model = "embed-test", usage = new { prompt_tokens = inputs.Count * 3, total_tokens = inputs.Count * 3 } });
    }

    /// <summary>A vector of letter counts: texts with the same words are identical, similar texts are close.</summary>
    private static float[] WordVector(string text)
    {
        var v = new float[26];
        foreach (var c in text.ToUpperInvariant().Where(c => c is >= 'A' and <= 'Z'))
        {
            v[c - 'A']++;
        }

        return v;
    }

    private async Task<RecordedRequest> RecordAsync(HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
        var body = JsonNode.Parse(await reader.ReadToEndAsync()) ?? new JsonObject();
        var headers = ctx.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var recorded = new RecordedRequest(ctx.Request.Path + ctx.Request.QueryString, headers, body, DateTimeOffset.UtcNow);
        Requests.Enqueue(recorded);
        return recorded;
    }

    private async Task AnswerAsync(HttpContext ctx, RecordedRequest request, string? text, (string Name, string Args)[]? tool, int promptTokens, int completionTokens)
    {
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        object? toolCalls = tool is { } t ? t.Select((c, i) => new { id = $"call_{i + 1}", type = "function", function = new { name = c.Name, arguments = c.Args } }).ToArray() : null;
        var finish = tool is null ? "stop" : "tool_calls";
        var usage = new { prompt_tokens = promptTokens, completion_tokens = completionTokens, total_tokens = promptTokens + completionTokens };
        if (!request.Stream)
        {
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(JsonSerializer.Serialize(new
            {
                id = "chatcmpl-1",
                @object = "chat.completion",
                created,
                model = Model,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = text, tool_calls = toolCalls }, finish_reason = finish } },
                usage,
            }));
            return;
        }

        ctx.Response.ContentType = "text/event-stream";
        async Task Send(object chunk)
        {
            await ctx.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk) + "\n\n");
            await ctx.Response.Body.FlushAsync();
        }

        var words = string.IsNullOrEmpty(text) ? [] : text.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            var piece = i == 0 ? words[i] : " " + words[i];
            await Send(new { id = "chatcmpl-1", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { role = i == 0 ? "assistant" : null, content = piece }, finish_reason = (string?)null } } });
        }

        if (tool is { } calls)
        {
            // As OpenAI streams them: one delta per call with its index, id, name and the arguments.
            for (var i = 0; i < calls.Length; i++)
            {
                var call = new { index = i, id = $"call_{i + 1}", type = "function", function = new { name = calls[i].Name, arguments = calls[i].Args } };
                await Send(new { id = "chatcmpl-1", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { role = "assistant", tool_calls = new[] { call } }, finish_reason = (string?)null } } });
            }
        }

        await Send(new { id = "chatcmpl-1", @object = "chat.completion.chunk", created, model = Model, choices = new[] { new { index = 0, delta = new { }, finish_reason = finish } } });
        await Send(new { id = "chatcmpl-1", @object = "chat.completion.chunk", created, model = Model, choices = Array.Empty<object>(), usage });
        await ctx.Response.WriteAsync("data: [DONE]\n\n");
    }
}

/// <summary>Where a <see cref="FakeOpenAiServer.ThenGated"/> answer pauses.</summary>
public sealed class StreamGate
{
    /// <summary>Completes when the answer reached the pause (its first words are out).</summary>
    public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Complete it to let the rest of the answer go.</summary>
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the client closed the request mid-answer (a cancelled call).</summary>
    public TaskCompletionSource Aborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
