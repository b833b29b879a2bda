using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Dapper;
using Microsoft.Extensions.Logging;
using DurableAgents.Activities.Contracts.Llm;
using StackExchange.Redis;

namespace DurableAgents.Activities.Llm;

/// <summary>A call granted capacity at a deployment: counted for a minute from <paramref name="GrantedMs"/>, in flight until it is released (or <paramref name="InFlightUntilMs"/>).</summary>
/// <param name="Id">The lease id.</param>
/// <param name="Lane">'i' interactive, 'b' batch, 'p' what the provider reported used.</param>
/// <param name="Tokens">Tokens reserved, then really used.</param>
/// <param name="GrantedMs">When it was granted (Unix ms).</param>
/// <param name="InFlightUntilMs">Until when it counts as in flight (0 once released).</param>
public sealed record LimitGrant(string Id, string Lane, long Tokens, long GrantedMs, long InFlightUntilMs);

/// <summary>A call waiting for capacity: refused first at <paramref name="FirstMs"/>, counted as waiting until <paramref name="UntilMs"/>.</summary>
/// <param name="Id">The waiting call (instance and request).</param>
/// <param name="Lane">'i' or 'b'.</param>
/// <param name="FirstMs">When it was first refused (Unix ms).</param>
/// <param name="UntilMs">When it stops counting as waiting unless it asks again.</param>
public sealed record LimitWaiter(string Id, string Lane, long FirstMs, long UntilMs);

/// <summary>What a store holds for one deployment, pruned: grants of the window (and older ones still in flight), waiting calls, the last batch refusal.</summary>
/// <param name="Grants">The grants.</param>
/// <param name="Waiters">The calls waiting.</param>
/// <param name="BatchRefusedMs">When a batch call was last refused (Unix ms), or 0.</param>
public sealed record LimitState(IReadOnlyList<LimitGrant> Grants, IReadOnlyList<LimitWaiter> Waiters, long BatchRefusedMs);

/// <summary>What a decision writes back: grants and waiters to put (by id), waiters to remove, and a batch refusal.</summary>
public sealed class LimitChanges
{
    /// <summary>Grants to insert or replace.</summary>
    public List<LimitGrant> PutGrants { get; } = [];

    /// <summary>Waiters to insert or replace.</summary>
    public List<LimitWaiter> PutWaiters { get; } = [];

    /// <summary>Waiters to remove.</summary>
    public List<string> RemoveWaiters { get; } = [];

    /// <summary>A batch call refused at this time (Unix ms), if any.</summary>
    public long? BatchRefusedMs { get; set; }

    /// <summary>Whether there is anything to write.</summary>
    public bool IsEmpty => PutGrants.Count == 0 && PutWaiters.Count == 0 && RemoveWaiters.Count == 0 && BatchRefusedMs is null;
}

/// <summary>
/// Where the limits of the deployments are held, shared by every host: runs one decision atomically on a
/// deployment's state (pruned of grants that left the window and waits that expired) and stores its changes.
/// </summary>
public interface IRateLimitStore
{
    /// <summary>A short name for logs and the dashboard ("sqlite", "postgres", "redis").</summary>
    string Name { get; }

    /// <summary>Runs <paramref name="decide"/> (given the state, now in Unix ms and the changes to fill) atomically for <paramref name="deployment"/>.</summary>
    /// <param name="deployment">The deployment key.</param>
    /// <param name="decide">The decision; it may run more than once (optimistic stores), so it must have no other effect.</param>
    /// <param name="replayIfDegraded">Whether the change must reach the preferred store once it is back (releases of calls it granted).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    Task<T> UpdateAsync<T>(string deployment, Func<LimitState, long, LimitChanges, T> decide, bool replayIfDegraded, CancellationToken cancellationToken);
}

/// <summary>Limits in the activity database (the engine's SQLite file, or the task hub's PostgreSQL schema), each decision under the deployment's lock.</summary>
public sealed class RelationalRateLimitStore(ActivityDatabase database, TimeProvider time) : IRateLimitStore
{
    private string Prefix => database.Prefix;

    /// <inheritdoc />
    public string Name => database.IsPostgres ? "postgres" : "sqlite";

    /// <inheritdoc />
    public async Task<T> UpdateAsync<T>(string deployment, Func<LimitState, long, LimitChanges, T> decide, bool replayIfDegraded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decide);
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await ActivityDatabase.BeginLockedAsync(c, deployment, 11, cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var since = nowMs - (long)ModelRateLimiter.WindowLength.TotalMilliseconds;
        await c.ExecuteAsync(Cmd($"DELETE FROM {Prefix}llm_limit_grants WHERE deployment = @deployment AND granted_ms <= @since AND in_flight_until_ms <= @nowMs", new { deployment, since, nowMs }, tx, cancellationToken)).ConfigureAwait(false);
        await c.ExecuteAsync(Cmd($"DELETE FROM {Prefix}llm_limit_waiters WHERE deployment = @deployment AND until_ms <= @nowMs", new { deployment, nowMs }, tx, cancellationToken)).ConfigureAwait(false);
        var grants = (await c.QueryAsync<LimitGrant>(Cmd(
            $"SELECT id AS Id, lane AS Lane, tokens AS Tokens, granted_ms AS GrantedMs, in_flight_until_ms AS InFlightUntilMs FROM {Prefix}llm_limit_grants WHERE deployment = @deployment",
            new { deployment },
            tx,
            cancellationToken)).ConfigureAwait(false)).ToList();
        var waiters = (await c.QueryAsync<LimitWaiter>(Cmd(
            $"SELECT id AS Id, lane AS Lane, first_ms AS FirstMs, until_ms AS UntilMs FROM {Prefix}llm_limit_waiters WHERE deployment = @deployment",
            new { deployment },
            tx,
            cancellationToken)).ConfigureAwait(false)).ToList();
        var batchRefused = await c.ExecuteScalarAsync<long?>(Cmd($"SELECT refused_ms FROM {Prefix}llm_limit_batch_waiting WHERE deployment = @deployment", new { deployment }, tx, cancellationToken)).ConfigureAwait(false) ?? 0;

        var changes = new LimitChanges();
        var result = decide(new LimitState(grants, waiters, batchRefused), nowMs, changes);
        foreach (var g in changes.PutGrants)
        {
            await c.ExecuteAsync(Cmd(
                $"""
                INSERT INTO {Prefix}llm_limit_grants (id, deployment, lane, tokens, granted_ms, in_flight_until_ms) VALUES (@Id, @deployment, @Lane, @Tokens, @GrantedMs, @InFlightUntilMs)
                ON CONFLICT (id) DO UPDATE SET tokens = excluded.tokens, in_flight_until_ms = excluded.in_flight_until_ms
                """,
                new { g.Id, deployment, g.Lane, g.Tokens, g.GrantedMs, g.InFlightUntilMs },
                tx,
                cancellationToken)).ConfigureAwait(false);
        }

        foreach (var w in changes.PutWaiters)
        {
            await c.ExecuteAsync(Cmd(
                $"""
                INSERT INTO {Prefix}llm_limit_waiters (deployment, id, lane, first_ms, until_ms) VALUES (@deployment, @Id, @Lane, @FirstMs, @UntilMs)
                ON CONFLICT (deployment, id) DO UPDATE SET lane = excluded.lane, first_ms = excluded.first_ms, until_ms = excluded.until_ms
                """,
                new { deployment, w.Id, w.Lane, w.FirstMs, w.UntilMs },
                tx,
                cancellationToken)).ConfigureAwait(false);
        }

        foreach (var id in changes.RemoveWaiters)
        {
            await c.ExecuteAsync(Cmd($"DELETE FROM {Prefix}llm_limit_waiters WHERE deployment = @deployment AND id = @id", new { deployment, id }, tx, cancellationToken)).ConfigureAwait(false);
        }

        if (changes.BatchRefusedMs is { } refused)
        {
            await c.ExecuteAsync(Cmd(
                $"""
                INSERT INTO {Prefix}llm_limit_batch_waiting (deployment, refused_ms) VALUES (@deployment, @refused)
                ON CONFLICT (deployment) DO UPDATE SET refused_ms = excluded.refused_ms
                """,
                new { deployment, refused },
                tx,
                cancellationToken)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static CommandDefinition Cmd(string sql, object? args, DbTransaction? tx, CancellationToken ct) => new(sql, args, tx, cancellationToken: ct);
}

/// <summary>
/// Limits in Redis (DurableAgents:Redis:Configuration), for hosts that share Redis but not necessarily a
/// database: one hash per deployment, read whole, decided in the limiter, and written back by a script
/// that applies the changes only if nobody changed the hash meanwhile (optimistic, retried).
/// While Redis cannot be reached the limits are held in <paramref name="fallback"/> (the activity
/// database), with one warning, and releases of calls Redis granted are replayed in Redis once it is
/// back, so no lease is left counting as in flight there.
/// </summary>
public sealed partial class RedisRateLimitStore(LlmRedis redis, IRateLimitStore fallback, TimeProvider time, ILogger<RedisRateLimitStore> logger) : IRateLimitStore
{
    /// <summary>Attempts before a contended decision is given to the fallback store.</summary>
    public const int MaxAttempts = 64;

    private const string Version = "v";
    private const string BatchRefused = "bw";

    // KEYS[1] the hash; ARGV: expected version, TTL ms, number of fields to delete, the fields, then field/value pairs.
    private const string CompareAndApply = """
        local v = redis.call('HGET', KEYS[1], 'v') or '0'
        if v ~= ARGV[1] then return 0 end
        local n = tonumber(ARGV[3])
        for i = 4, 3 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
        for i = 4 + n, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
        redis.call('HINCRBY', KEYS[1], 'v', 1)
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """;

    private readonly ConcurrentQueue<Func<CancellationToken, Task>> _replay = new();
    private int _degraded;

    /// <inheritdoc />
    public string Name => "redis";

    /// <summary>Whether decisions are currently going to the fallback store.</summary>
    public bool Degraded => Volatile.Read(ref _degraded) == 1;

    /// <inheritdoc />
    public async Task<T> UpdateAsync<T>(string deployment, Func<LimitState, long, LimitChanges, T> decide, bool replayIfDegraded, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decide);
        IDatabase? db = null;
        try
        {
            db = await redis.DatabaseAsync(cancellationToken).ConfigureAwait(false);
            if (db is not null)
            {
                await ReplayAsync(cancellationToken).ConfigureAwait(false);
                var result = await TryUpdateAsync(db, deployment, decide, cancellationToken).ConfigureAwait(false);
                if (result.Done)
                {
                    if (Interlocked.Exchange(ref _degraded, 0) == 1)
                    {
                        LogRecovered(logger, deployment);
                    }

                    return result.Value!;
                }

                LogContended(logger, deployment, MaxAttempts);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            redis.ReportFailure(ex);
            db = null;
        }

        if (db is null && Interlocked.Exchange(ref _degraded, 1) == 0)
        {
            LogDegraded(logger, fallback.Name);
        }

        // Redis down, or too contended: a release still has to reach Redis later, or its grant would count as in flight there.
        if (replayIfDegraded)
        {
            _replay.Enqueue(async ct =>
            {
                var again = await redis.DatabaseAsync(ct).ConfigureAwait(false);
                if (again is null || !(await TryUpdateAsync(again, deployment, decide, ct).ConfigureAwait(false)).Done)
                {
                    throw new RedisException("Redis is not back yet.");
                }
            });
        }

        return await fallback.UpdateAsync(deployment, decide, replayIfDegraded, cancellationToken).ConfigureAwait(false);
    }

    private async Task ReplayAsync(CancellationToken cancellationToken)
    {
        while (_replay.TryPeek(out var pending))
        {
            await pending(cancellationToken).ConfigureAwait(false);
            _replay.TryDequeue(out _);
        }
    }

    private async Task<(bool Done, T? Value)> TryUpdateAsync<T>(IDatabase db, string deployment, Func<LimitState, long, LimitChanges, T> decide, CancellationToken cancellationToken)
    {
        var key = redis.Key("ratelimit:" + deployment);
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var fields = await db.HashGetAllAsync(key).ConfigureAwait(false);
            var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            var since = nowMs - (long)ModelRateLimiter.WindowLength.TotalMilliseconds;
            var version = "0";
            long batchRefused = 0;
            var grants = new List<LimitGrant>();
            var waiters = new List<LimitWaiter>();
            var prune = new List<RedisValue>();
            foreach (var f in fields)
            {
                var name = (string)f.Name!;
                var value = (string)f.Value!;
                if (name == Version)
                {
                    version = value;
                }
                else if (name == BatchRefused)
                {
                    batchRefused = long.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (name.StartsWith("g:", StringComparison.Ordinal))
                {
                    var p = value.Split('|');
                    var g = new LimitGrant(name[2..], p[0], L(p[1]), L(p[2]), L(p[3]));
                    if (g.GrantedMs <= since && g.InFlightUntilMs <= nowMs)
                    {
                        prune.Add(f.Name);
                    }
                    else
                    {
                        grants.Add(g);
                    }
                }
                else if (name.StartsWith("w:", StringComparison.Ordinal))
                {
                    var p = value.Split('|');
                    var w = new LimitWaiter(name[2..], p[0], L(p[1]), L(p[2]));
                    if (w.UntilMs <= nowMs)
                    {
                        prune.Add(f.Name);
                    }
                    else
                    {
                        waiters.Add(w);
                    }
                }
            }

            var changes = new LimitChanges();
            var result = decide(new LimitState(grants, waiters, batchRefused), nowMs, changes);
            if (changes.IsEmpty && prune.Count == 0)
            {
                return (true, result); // nothing to write: a read decides nothing others could conflict with
            }

            var args = new List<RedisValue> { version, (long)(ModelRateLimiter.LeaseLifetime + ModelRateLimiter.WindowLength).TotalMilliseconds };
            var deletes = prune.Concat(changes.RemoveWaiters.Select(id => (RedisValue)("w:" + id))).ToList();
            args.Add(deletes.Count);
            args.AddRange(deletes);
            foreach (var g in changes.PutGrants)
            {
                args.Add("g:" + g.Id);
                args.Add(string.Create(CultureInfo.InvariantCulture, $"{g.Lane}|{g.Tokens}|{g.GrantedMs}|{g.InFlightUntilMs}"));
            }

            foreach (var w in changes.PutWaiters)
            {
                args.Add("w:" + w.Id);
                args.Add(string.Create(CultureInfo.InvariantCulture, $"{w.Lane}|{w.FirstMs}|{w.UntilMs}"));
            }

            if (changes.BatchRefusedMs is { } refused)
            {
                args.Add(BatchRefused);
                args.Add(refused);
            }

            var applied = (long)await db.ScriptEvaluateAsync(CompareAndApply, [key], [.. args]).ConfigureAwait(false);
            if (applied == 1)
            {
                return (true, result);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 4 + attempt)), cancellationToken).ConfigureAwait(false);
        }

        return (false, default);
    }

    private static long L(string s) => long.Parse(s, CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 1330, Level = LogLevel.Warning, Message = "Redis is unavailable: model rate limits are held in the {Store} database until it is back (hosts that share only Redis do not share limits meanwhile)")]
    private static partial void LogDegraded(ILogger logger, string store);

    [LoggerMessage(EventId = 1331, Level = LogLevel.Information, Message = "Redis is back: model rate limits are held in Redis again (first deployment: {Deployment})")]
    private static partial void LogRecovered(ILogger logger, string deployment);

    [LoggerMessage(EventId = 1332, Level = LogLevel.Warning, Message = "The rate limit of {Deployment} was changed by other hosts {Attempts} times in a row: this decision is taken in the database")]
    private static partial void LogContended(ILogger logger, string deployment, int attempts);
}

/// <summary>One call that waited for a rate-limited deployment before it was granted.</summary>
/// <param name="Deployment">The provider entry's name.</param>
/// <param name="InstanceId">The instance.</param>
/// <param name="Workflow">Its workflow.</param>
/// <param name="Lane">"interactive" or "batch".</param>
/// <param name="Waited">From the first refusal to the grant (inline and on durable timers).</param>
/// <param name="GrantedAt">When it was granted.</param>
public sealed record RateLimitWait(string Deployment, string InstanceId, string Workflow, string Lane, TimeSpan Waited, DateTimeOffset GrantedAt);

/// <summary>Who waited for capacity, kept a day in the activity database (whichever store holds the limits): the dashboard's cost page.</summary>
public sealed class RateLimitWaits(ActivityDatabase database, TimeProvider time)
{
    /// <summary>How long waits are kept.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromDays(1);

    private string Prefix => database.Prefix;

    /// <summary>Records a call granted after waiting.</summary>
    public async Task RecordAsync(string deployment, string instanceId, string workflow, ModelPriority lane, TimeSpan waited, CancellationToken cancellationToken)
    {
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        await c.ExecuteAsync(new CommandDefinition(
            $"INSERT INTO {Prefix}llm_limit_waits (deployment, instance_id, workflow, lane, waited_ms, granted_ms) VALUES (@deployment, @instanceId, @workflow, @lane, @waited, @nowMs)",
            new { deployment, instanceId, workflow, lane = lane == ModelPriority.Batch ? "batch" : "interactive", waited = (long)waited.TotalMilliseconds, nowMs },
            cancellationToken: cancellationToken)).ConfigureAwait(false);

        // Pruned by the writers, now and then.
        if (Random.Shared.Next(100) == 0)
        {
            await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {Prefix}llm_limit_waits WHERE granted_ms < @before", new { before = nowMs - (long)Retention.TotalMilliseconds }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }
    }

    /// <summary>The calls granted after waiting since <paramref name="since"/>, longest waits first.</summary>
    public async Task<IReadOnlyList<RateLimitWait>> ListAsync(DateTimeOffset since, int limit, CancellationToken cancellationToken)
    {
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<(string Deployment, string InstanceId, string Workflow, string Lane, long WaitedMs, long GrantedMs)>(new CommandDefinition(
            $"SELECT deployment, instance_id, workflow, lane, waited_ms, granted_ms FROM {Prefix}llm_limit_waits WHERE granted_ms >= @since ORDER BY waited_ms DESC, granted_ms DESC LIMIT @limit",
            new { since = since.ToUnixTimeMilliseconds(), limit },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.Select(r => new RateLimitWait(r.Deployment, r.InstanceId, r.Workflow, r.Lane, TimeSpan.FromMilliseconds(r.WaitedMs), DateTimeOffset.FromUnixTimeMilliseconds(r.GrantedMs))).ToList();
    }
}
