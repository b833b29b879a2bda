using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// The offline model: answers with no network and no keys so the host and the demo workflows run anywhere.
/// Deterministic (the same conversation gives the same answer), fast, and labelled: every text answer
/// starts with "[simulated]" and the model id is "simulator". It calls the first offered tool once per
/// user turn, and answers JSON that fits a requested schema. With background responses it behaves like a
/// provider's Responses API: the call is accepted with a continuation token, the answer is fetched (or its
/// stream resumed after a sequence number) with it, and a token this process did not issue (it restarted)
/// is not found, so the caller generates again.
/// </summary>
public sealed class SimulatorChatClient : IChatClient
{
    /// <summary>The model id the simulator reports.</summary>
    public const string ModelId = "simulator";

    /// <summary>The label every simulated text answer starts with.</summary>
    public const string Label = "[simulated]";

    // Background responses this process accepted, by id (lost at restart, as a provider's would be after they expire).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ChatResponse> Background = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (options?.ContinuationToken is { } token)
        {
            return Task.FromResult(Accepted(token).Final);
        }

        var answered = Generate(messages, options);
        if (options?.AllowBackgroundResponses == true)
        {
            // Accepted in the background: the answer is fetched with the token, as from a provider.
            var id = "sim_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
            Background[id] = answered;
            return Task.FromResult(new ChatResponse([]) { ModelId = ModelId, ResponseId = id, ContinuationToken = Token(id, null) });
        }

        return Task.FromResult(answered);
    }

    /// <summary>The accepted background response a token names.</summary>
    /// <exception cref="BackgroundResponseNotFoundException">This process did not accept it (it restarted since).</exception>
    private static (string Id, int? After, ChatResponse Final) Accepted(ResponseContinuationToken token)
    {
        using var json = JsonDocument.Parse(token.ToBytes());
        var id = json.RootElement.GetProperty("responseId").GetString()!;
        int? after = json.RootElement.TryGetProperty("sequenceNumber", out var n) ? n.GetInt32() : null;
        return Background.TryGetValue(id, out var final) ? (id, after, final) : throw new BackgroundResponseNotFoundException(id);
    }

    private static ResponseContinuationToken Token(string id, int? sequence) =>
        ResponseContinuationToken.FromBytes(JsonSerializer.SerializeToUtf8Bytes(sequence is { } s ? new Dictionary<string, object> { ["responseId"] = id, ["sequenceNumber"] = s } : new Dictionary<string, object> { ["responseId"] = id }));

    private static ChatResponse Generate(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var list = messages.ToList();
        var answer = Answer(list, options);
        var input = list.Sum(m => EstimateTokens(m.Text)) + 4 * list.Count;
        var output = EstimateTokens(answer.Text) + answer.Contents.OfType<FunctionCallContent>().Sum(c => 8);
        return new ChatResponse(answer)
        {
            ModelId = ModelId,
            FinishReason = answer.Contents.OfType<FunctionCallContent>().Any() ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
            Usage = new UsageDetails { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output },
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // Background streams number their updates and resume after a token's sequence number.
        string? id = null;
        var after = -1;
        ChatResponse response;
        if (options?.ContinuationToken is { } token)
        {
            var accepted = Accepted(token);
            (id, after, response) = (accepted.Id, accepted.After ?? -1, accepted.Final);
        }
        else
        {
            response = Generate(messages, options);
            if (options?.AllowBackgroundResponses == true)
            {
                id = "sim_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
                Background[id] = response;
            }
        }

        await Task.Yield();
        var sequence = 0;
        foreach (var update in Updates(response))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var number = sequence++;
            if (number <= after)
            {
                continue;
            }

            if (id is not null)
            {
                update.ResponseId = id;
                update.ContinuationToken = update.FinishReason is null ? Token(id, number) : null;
            }

            yield return update;
        }
    }

    private static IEnumerable<ChatResponseUpdate> Updates(ChatResponse response)
    {
        var message = response.Messages[0];
        foreach (var call in message.Contents.OfType<FunctionCallContent>())
        {
            yield return new ChatResponseUpdate(ChatRole.Assistant, [call]) { ModelId = ModelId };
        }

        var text = message.Text;
        var start = 0;
        while (start < text.Length)
        {
            var next = text.IndexOf(' ', start + 1);
            var end = next < 0 ? text.Length : next;
            yield return new ChatResponseUpdate(ChatRole.Assistant, text[start..end]) { ModelId = ModelId };
            start = end;
        }

        yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(response.Usage!)]) { ModelId = ModelId, FinishReason = response.FinishReason };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("simulator", null, ModelId) : null;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    /// <summary>A rough token count (about four characters a token), as the simulator's usage.</summary>
    public static int EstimateTokens(string? text) => string.IsNullOrEmpty(text) ? 0 : (text.Length + 3) / 4;

    private static ChatMessage Answer(List<ChatMessage> messages, ChatOptions? options)
    {
        var lastUser = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? string.Empty;
        var lastUserIndex = messages.FindLastIndex(m => m.Role == ChatRole.User);
        var toolResults = messages.Skip(lastUserIndex + 1).SelectMany(m => m.Contents.OfType<FunctionResultContent>()).ToList();

        if (options?.ResponseFormat is ChatResponseFormatJson { Schema: { } schema })
        {
            var node = Sample(schema, "answer", lastUser, 0);
            return new ChatMessage(ChatRole.Assistant, node?.ToJsonString() ?? "null");
        }

        var tool = options?.Tools?.OfType<AIFunctionDeclaration>().FirstOrDefault();
        if (tool is not null && toolResults.Count == 0)
        {
            var args = Sample(tool.JsonSchema, tool.Name, lastUser, 0) as JsonObject ?? [];
            var callId = "sim-" + Hash(tool.Name + "\n" + lastUser)[..12];
            var arguments = args.ToDictionary(p => p.Key, p => (object?)JsonSerializer.SerializeToElement(p.Value));
            return new ChatMessage(ChatRole.Assistant, [new FunctionCallContent(callId, tool.Name, arguments)]);
        }

        var text = toolResults.Count > 0
            ? $"{Label} Based on {string.Join(", ", toolResults.Select(r => Short(Convert.ToString(r.Result, CultureInfo.InvariantCulture), 80)))}: an answer to \"{Short(lastUser, 120)}\"."
            : $"{Label} An answer to \"{Short(lastUser, 160)}\" ({Hash(string.Join('\n', messages.Select(m => m.Text)))[..8]}).";
        return new ChatMessage(ChatRole.Assistant, text);
    }

    /// <summary>A value that fits the schema (objects, arrays, strings, numbers, booleans, enums).</summary>
    private static JsonNode? Sample(JsonElement schema, string name, string topic, int depth)
    {
        if (depth > 6 || schema.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array && values.GetArrayLength() > 0)
        {
            return JsonNode.Parse(values[0].GetRawText());
        }

        var type = schema.TryGetProperty("type", out var t)
            ? t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()).FirstOrDefault(x => x != "null") : t.GetString()
            : schema.TryGetProperty("properties", out _) ? "object" : "string";
        switch (type)
        {
            case "object":
                var obj = new JsonObject();
                if (schema.TryGetProperty("properties", out var props))
                {
                    foreach (var p in props.EnumerateObject())
                    {
                        obj[p.Name] = Sample(p.Value, p.Name, topic, depth + 1);
                    }
                }

                return obj;
            case "array":
                var item = schema.TryGetProperty("items", out var items) ? Sample(items, name, topic, depth + 1) : null;
                return new JsonArray(item);
            case "integer":
                return JsonValue.Create(1);
            case "number":
                return JsonValue.Create(1.0);
            case "boolean":
                return JsonValue.Create(true);
            default:
                return JsonValue.Create($"{Label} {name} for \"{Short(topic, 60)}\"");
        }
    }

    private static string Short(string? s, int max) => s is null ? string.Empty : s.Length <= max ? s : s[..max] + "…";

    private static string Hash(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));
}

/// <summary>
/// The offline embedding model: hashes words into a normalised 256-dimension vector, so texts that share
/// words are similar. Deterministic; for demos and tests, not for meaning.
/// </summary>
public sealed class SimulatorEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>The dimensions.</summary>
    public const int Dimensions = 256;

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var list = values.ToList();
        var result = new GeneratedEmbeddings<Embedding<float>>(list.Select(v => new Embedding<float>(Embed(v)) { ModelId = SimulatorChatClient.ModelId }))
        {
            Usage = new UsageDetails { InputTokenCount = list.Sum(SimulatorChatClient.EstimateTokens) },
        };
        return Task.FromResult(result);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    /// <inheritdoc />
    public void Dispose()
    {
    }

    private static float[] Embed(string text)
    {
        var v = new float[Dimensions];
        foreach (var word in text.ToUpperInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var w = word.Trim('.', ',', ';', ':', '!', '?', '"', '\'', '(', ')');
            if (w.Length == 0)
            {
                continue;
            }

            var h = BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(w)));
            v[(int)(h % Dimensions)] += (h & 0x100000000UL) == 0 ? 1f : -1f;
        }

        var norm = MathF.Sqrt(v.Sum(x => x * x));
        if (norm > 0)
        {
            for (var i = 0; i < v.Length; i++)
            {
                v[i] /= norm;
            }
        }

        return v;
    }
}

/// <summary>A background response the provider does not know (expired, deleted, or issued by a simulator that restarted).</summary>
public sealed class BackgroundResponseNotFoundException(string responseId) : Exception($"Background response '{responseId}' is not known to the provider.")
{
    /// <summary>The response id.</summary>
    public string ResponseId { get; } = responseId;
}
