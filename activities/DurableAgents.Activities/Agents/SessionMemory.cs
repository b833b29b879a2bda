using System.Collections.Concurrent;
using DurableAgents.Activities.Llm;
using StackExchange.Redis;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// Short-term memory: an agent session's working state (key → text), living <see cref="MemoryOptions.SessionTimeToLive"/>
/// after its last write. In Redis when DurableAgents:Redis:Configuration is set, in-process otherwise.
/// </summary>
public interface ISessionMemory
{
    /// <summary>The value of <paramref name="key"/> in <paramref name="session"/>, or null.</summary>
    Task<string?> GetAsync(string session, string key, CancellationToken cancellationToken = default);

    /// <summary>Every key and value of <paramref name="session"/>.</summary>
    Task<IReadOnlyDictionary<string, string>> GetAllAsync(string session, CancellationToken cancellationToken = default);

    /// <summary>Sets <paramref name="key"/> and renews the session's time to live.</summary>
    Task SetAsync(string session, string key, string value, CancellationToken cancellationToken = default);
}

/// <summary>Session memory in this process (lost on restart; for a single host or development).</summary>
public sealed class InProcessSessionMemory(MemoryOptions options, TimeProvider time) : ISessionMemory
{
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task<string?> GetAsync(string session, string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(Live(session) is { } s && s.Values.TryGetValue(key, out var v) ? v : null);

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<string, string>> GetAllAsync(string session, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyDictionary<string, string>>(Live(session) is { } s ? new Dictionary<string, string>(s.Values) : new Dictionary<string, string>());

    /// <inheritdoc />
    public Task SetAsync(string session, string key, string value, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        foreach (var expired in _sessions.Where(p => p.Value.ExpiresAt <= now).Select(p => p.Key).ToList())
        {
            _sessions.TryRemove(expired, out _);
        }

        var s = _sessions.GetOrAdd(session, _ => new Session());
        s.Values[key] = value;
        s.ExpiresAt = now + options.SessionTimeToLive;
        return Task.CompletedTask;
    }

    private Session? Live(string session) =>
        _sessions.TryGetValue(session, out var s) && s.ExpiresAt > time.GetUtcNow() ? s : null;

    private sealed class Session
    {
        public ConcurrentDictionary<string, string> Values { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset ExpiresAt { get; set; }
    }
}

/// <summary>Session memory in Redis: one hash per session with the session's time to live (shared by every host).</summary>
public sealed class RedisSessionMemory(LlmRedis redis, MemoryOptions options) : ISessionMemory
{
    /// <inheritdoc />
    public async Task<string?> GetAsync(string session, string key, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var value = await db.HashGetAsync(redis.Key("session:" + session), key).ConfigureAwait(false);
        return value.IsNull ? null : value.ToString();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, string>> GetAllAsync(string session, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var entries = await db.HashGetAllAsync(redis.Key("session:" + session)).ConfigureAwait(false);
        return entries.ToDictionary(e => e.Name.ToString(), e => e.Value.ToString(), StringComparer.Ordinal);
    }

    /// <inheritdoc />
    public async Task SetAsync(string session, string key, string value, CancellationToken cancellationToken = default)
    {
        var db = await DatabaseAsync(cancellationToken).ConfigureAwait(false);
        var k = redis.Key("session:" + session);
        var batch = db.CreateTransaction();
        _ = batch.HashSetAsync(k, key, value);
        _ = batch.KeyExpireAsync(k, options.SessionTimeToLive);
        await batch.ExecuteAsync().ConfigureAwait(false);
    }

    private async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken) =>
        await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false)
        ?? throw new InvalidOperationException("Redis is unavailable for session memory; the tool call will be retried.");
}
