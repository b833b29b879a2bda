using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.Extensions.Caching.Memory;
using StackExchange.Redis;

namespace DurableAgents.Activities.Llm;

/// <summary>
/// Stored model answers. Exact entries are keyed by a SHA-256 of the request; semantic entries keep the
/// prompt embedding beside the key, per scope (profile + system prompt + tools + schema), and match by
/// cosine similarity. A cache failure is a miss, never an error.
/// </summary>
public interface IModelResponseCache
{
    /// <summary>The answer stored under <paramref name="key"/>, if any.</summary>
    Task<ModelResponse?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>The most similar stored answer of <paramref name="scope"/> at or above <paramref name="threshold"/>.</summary>
    Task<(string Key, ModelResponse Response, double Similarity)?> FindSimilarAsync(string scope, float[] embedding, double threshold, CancellationToken cancellationToken = default);

    /// <summary>Stores an answer; with an embedding, also for semantic matches within <paramref name="scope"/>.</summary>
    Task SetAsync(string key, ModelResponse response, string scope, float[]? embedding, CancellationToken cancellationToken = default);
}

/// <summary>Cosine similarity of normalised or raw vectors.</summary>
internal static class Vectors
{
    public static double Cosine(float[] a, float[] b) =>
        a.Length != b.Length || a.Length == 0 ? 0 : TensorPrimitives.CosineSimilarity(a, b);
}

/// <summary>The in-process cache (one host), used when Redis is not configured.</summary>
public sealed class MemoryModelResponseCache(ModelCacheOptions options) : IModelResponseCache, IDisposable
{
    private readonly MemoryCache _exact = new(new MemoryCacheOptions { SizeLimit = 10_000 });
    private readonly ConcurrentDictionary<string, ConcurrentQueue<(string Key, float[] Vector)>> _semantic = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task<ModelResponse?> GetAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(_exact.TryGetValue(key, out ModelResponse? r) ? r : null);

    /// <inheritdoc />
    public Task<(string Key, ModelResponse Response, double Similarity)?> FindSimilarAsync(string scope, float[] embedding, double threshold, CancellationToken cancellationToken = default)
    {
        (string Key, ModelResponse Response, double Similarity)? best = null;
        if (_semantic.TryGetValue(scope, out var entries))
        {
            foreach (var (key, vector) in entries)
            {
                var similarity = Vectors.Cosine(embedding, vector);
                if (similarity >= threshold && (best is null || similarity > best.Value.Similarity) && _exact.TryGetValue(key, out ModelResponse? r) && r is not null)
                {
                    best = (key, r, similarity);
                }
            }
        }

        return Task.FromResult(best);
    }

    /// <inheritdoc />
    public Task SetAsync(string key, ModelResponse response, string scope, float[]? embedding, CancellationToken cancellationToken = default)
    {
        _exact.Set(key, response, new MemoryCacheEntryOptions { AbsoluteExpirationRelativeToNow = options.TimeToLive, Size = 1 });
        if (embedding is not null)
        {
            var entries = _semantic.GetOrAdd(scope, _ => new ConcurrentQueue<(string, float[])>());
            entries.Enqueue((key, embedding));
            while (entries.Count > options.SemanticEntries && entries.TryDequeue(out _))
            {
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose() => _exact.Dispose();
}

/// <summary>The shared cache in Redis (all hosts), with the configured time to live.</summary>
public sealed class RedisModelResponseCache(LlmRedis redis, ModelCacheOptions options) : IModelResponseCache
{
    /// <inheritdoc />
    public async Task<ModelResponse?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (db is null)
        {
            return null;
        }

        try
        {
            var value = await db.StringGetAsync(redis.Key("llmcache:" + key)).ConfigureAwait(false);
            return value.IsNullOrEmpty ? null : JsonSerializer.Deserialize<ModelResponse>(value.ToString(), LlmJson.Options);
        }
        catch (Exception ex) when (ex is RedisException or JsonException)
        {
            redis.ReportFailure(ex);
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<(string Key, ModelResponse Response, double Similarity)?> FindSimilarAsync(string scope, float[] embedding, double threshold, CancellationToken cancellationToken = default)
    {
        var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (db is null)
        {
            return null;
        }

        try
        {
            var entries = await db.ListRangeAsync(redis.Key("llmcache-sem:" + scope)).ConfigureAwait(false);
            (string Key, double Similarity)? best = null;
            foreach (var entry in entries)
            {
                var text = entry.ToString();
                var bar = text.IndexOf('|', StringComparison.Ordinal);
                if (bar <= 0)
                {
                    continue;
                }

                var vector = MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(text[(bar + 1)..])).ToArray();
                var similarity = Vectors.Cosine(embedding, vector);
                if (similarity >= threshold && (best is null || similarity > best.Value.Similarity))
                {
                    best = (text[..bar], similarity);
                }
            }

            if (best is { } b && await GetAsync(b.Key, cancellationToken).ConfigureAwait(false) is { } response)
            {
                return (b.Key, response, b.Similarity);
            }

            return null;
        }
        catch (Exception ex) when (ex is RedisException or FormatException)
        {
            redis.ReportFailure(ex);
            return null;
        }
    }

    /// <inheritdoc />
    public async Task SetAsync(string key, ModelResponse response, string scope, float[]? embedding, CancellationToken cancellationToken = default)
    {
        var db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
        if (db is null)
        {
            return;
        }

        try
        {
            await db.StringSetAsync(redis.Key("llmcache:" + key), JsonSerializer.Serialize(response, LlmJson.Options), options.TimeToLive).ConfigureAwait(false);
            if (embedding is not null)
            {
                var list = redis.Key("llmcache-sem:" + scope);
                var entry = key + "|" + Convert.ToBase64String(MemoryMarshal.AsBytes(embedding.AsSpan()));
                await db.ListLeftPushAsync(list, entry).ConfigureAwait(false);
                await db.ListTrimAsync(list, 0, options.SemanticEntries - 1).ConfigureAwait(false);
                await db.KeyExpireAsync(list, options.TimeToLive).ConfigureAwait(false);
            }
        }
        catch (RedisException ex)
        {
            redis.ReportFailure(ex);
        }
    }
}
