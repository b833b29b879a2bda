using System.Data.Common;
using System.Security.Cryptography;
using Dapper;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Llm;

/// <summary>The limits of one provider deployment (from its provider entry).</summary>
/// <param name="TokensPerMinute">Tokens (input + output) per minute, or null.</param>
/// <param name="RequestsPerMinute">Requests per minute, or null.</param>
/// <param name="MaxConcurrent">Calls at once, or null.</param>
public sealed record ModelLimits(int? TokensPerMinute, int? RequestsPerMinute, int? MaxConcurrent)
{
    /// <summary>The limits of a provider entry, or null when it sets none.</summary>
    public static ModelLimits? Of(ModelProviderOptions provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        return provider.TokensPerMinute is null && provider.RequestsPerMinute is null && provider.MaxConcurrent is null
            ? null
            : new ModelLimits(provider.TokensPerMinute, provider.RequestsPerMinute, provider.MaxConcurrent);
    }
}

/// <summary>What a capacity request decided: a lease to release after the call, or how long to wait.</summary>
/// <param name="LeaseId">The lease (granted), or null.</param>
/// <param name="Reserved">Tokens reserved.</param>
/// <param name="RetryAfter">When not granted: how long until the capacity is expected to be there.</param>
public sealed record CapacityDecision(string? LeaseId, long Reserved, TimeSpan RetryAfter)
{
    /// <summary>Whether the call may go.</summary>
    public bool Granted => LeaseId is not null;
}

/// <summary>
/// Tokens and requests per minute, and calls at once, per provider deployment, shared by every host of
/// the activity database (the engine's SQLite file, or the task hub's PostgreSQL schema). A token
/// bucket per deployment refills continuously at the per-minute rate up to one minute's worth; a call
/// reserves its estimate (the same the budget uses) before it is sent and settles to its real usage
/// after, returning what it did not use at once. Each decision runs in a transaction holding the
/// deployment's lock (SQLite: the write lock; PostgreSQL: an advisory lock).
/// </summary>
public sealed class ModelRateLimiter(ActivityDatabase database, TimeProvider time, double interactiveReserve = 0.1, double batchShare = 0.2)
{
    /// <summary>How long a lease of a call in flight lasts if its host dies before releasing it.</summary>
    public static readonly TimeSpan LeaseLifetime = TimeSpan.FromMinutes(10);

    /// <summary>How soon to look again when calls in flight hold enough reserved tokens to cover a shortfall.</summary>
    public static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(1);

    private string Prefix => database.Prefix;

    /// <summary>Reserves capacity for one call of about <paramref name="tokens"/> tokens, or says how long to wait.</summary>
    public Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, CancellationToken cancellationToken) =>
        TryAcquireAsync(deployment, limits, tokens, ModelPriority.Interactive, cancellationToken);

    /// <summary>
    /// Reserves capacity in a lane. Batch calls leave the interactive reserve in the deployment's bucket (as
    /// far as interactive calls have room in their lane), so a saturating batch job never makes a person
    /// wait behind it. Interactive calls also count against their lane, (1 − batch share) of the capacity;
    /// while batch calls are waiting (one was refused within <see cref="BatchDemandWindow"/>) they keep to
    /// it, so batch work keeps its guaranteed share. Alone, interactive calls may use the whole deployment;
    /// batch calls always leave the reserve (keep it small: it stands idle when no person is waiting).
    /// </summary>
    public async Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, ModelPriority priority, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deployment);
        ArgumentNullException.ThrowIfNull(limits);
        return await LockedAsync(deployment, limits, (c, tx, nowMs, bucketTokens, bucketRequests) => AcquireLockedAsync(c, tx, nowMs, bucketTokens, bucketRequests, deployment, limits, tokens, priority, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async Task<CapacityDecision> AcquireLockedAsync(DbConnection c, DbTransaction tx, long nowMs, double bucketTokens, double bucketRequests, string deployment, ModelLimits limits, long tokens, ModelPriority priority, CancellationToken cancellationToken)
    {
        // A call larger than a whole minute's tokens waits for a full bucket, then goes (else it never could).
        var need = limits.TokensPerMinute is { } tpm ? Math.Min(tokens, tpm) : tokens;
        var lane = InteractiveLane(limits);
        var (laneTokens, laneRequests) = await RefilledAsync(c, tx, LaneKey(deployment), lane, nowMs, cancellationToken).ConfigureAwait(false);

        // Batch leaves the interactive reserve, but only as much of it as interactive calls could use now.
        double reserveTokens = 0, reserveRequests = 0;
        if (priority == ModelPriority.Batch)
        {
            reserveTokens = limits.TokensPerMinute is { } t ? Math.Min(interactiveReserve * t, laneTokens) : 0;
            reserveRequests = limits.RequestsPerMinute is { } r ? Math.Min(interactiveReserve * r, laneRequests) : 0;
        }

        var wait = TimeSpan.Zero;
        if (limits.TokensPerMinute is { } perMinute && bucketTokens < need + reserveTokens)
        {
            var shortfall = need + reserveTokens - bucketTokens;
            var refill = Ms(shortfall * 60_000d / perMinute);

            // Calls in flight hold reservations that mostly come back when they settle (estimates are
            // upper bounds): if they could cover the shortfall, look again soon rather than at the refill time.
            var reserved = await c.ExecuteScalarAsync<long>(Cmd($"SELECT COALESCE(SUM(tokens), 0) FROM {Prefix}llm_limit_leases WHERE deployment = @deployment AND expires_ms > @nowMs", new { deployment, nowMs }, tx, cancellationToken)).ConfigureAwait(false);
            wait = Max(wait, reserved >= shortfall && refill > RecheckAfter ? RecheckAfter : refill);
        }

        if (limits.RequestsPerMinute is { } rpm && bucketRequests < 1 + reserveRequests)
        {
            wait = Max(wait, Ms((1 + reserveRequests - bucketRequests) * 60_000d / rpm));
        }

        // Interactive calls keep to their lane only while batch calls are waiting: alone, they may use it all.
        if (priority == ModelPriority.Interactive && await BatchWaitingAsync(c, tx, deployment, nowMs, cancellationToken).ConfigureAwait(false))
        {
            if (lane.TokensPerMinute is { } laneTpm && laneTokens < Math.Min(need, laneTpm))
            {
                wait = Max(wait, Ms((Math.Min(need, laneTpm) - laneTokens) * 60_000d / laneTpm));
            }

            if (lane.RequestsPerMinute is { } laneRpm && laneRequests < 1)
            {
                wait = Max(wait, Ms((1 - laneRequests) * 60_000d / laneRpm));
            }
        }

        if (limits.MaxConcurrent is { } max)
        {
            var inFlight = await c.ExecuteScalarAsync<long>(Cmd($"SELECT COUNT(*) FROM {Prefix}llm_limit_leases WHERE deployment = @deployment AND expires_ms > @nowMs", new { deployment, nowMs }, tx, cancellationToken)).ConfigureAwait(false);
            if (inFlight >= max)
            {
                wait = Max(wait, TimeSpan.FromSeconds(1)); // no rate to compute from: look again soon
            }
        }

        if (wait > TimeSpan.Zero)
        {
            if (priority == ModelPriority.Batch)
            {
                await c.ExecuteAsync(Cmd(
                    $"""
                    INSERT INTO {Prefix}llm_limits (deployment, tokens, requests, updated_ms) VALUES (@key, 0, 0, @nowMs)
                    ON CONFLICT (deployment) DO UPDATE SET updated_ms = excluded.updated_ms
                    """,
                    new { key = deployment + BatchWaitingSuffix, nowMs },
                    tx,
                    cancellationToken)).ConfigureAwait(false);
            }

            return new CapacityDecision(null, 0, wait); // the refill is kept (committed)
        }

        var id = (priority == ModelPriority.Interactive ? InteractivePrefix : string.Empty) + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        await TakeAsync(c, tx, deployment, limits, need, cancellationToken).ConfigureAwait(false);
        if (priority == ModelPriority.Interactive)
        {
            await TakeAsync(c, tx, LaneKey(deployment), lane, Math.Min(need, lane.TokensPerMinute ?? need), cancellationToken).ConfigureAwait(false);
        }

        await c.ExecuteAsync(Cmd(
            $"INSERT INTO {Prefix}llm_limit_leases (id, deployment, tokens, expires_ms) VALUES (@id, @deployment, @need, @expires)",
            new { id, deployment, need, expires = nowMs + (long)LeaseLifetime.TotalMilliseconds },
            tx,
            cancellationToken)).ConfigureAwait(false);
        return new CapacityDecision(id, need, TimeSpan.Zero);
    }

    /// <summary>Ends a lease: the tokens the call did not use go back at once (a call that used more owes the difference).</summary>
    public async Task ReleaseAsync(string deployment, ModelLimits limits, CapacityDecision lease, long usedTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.LeaseId is null)
        {
            return;
        }

        await LockedAsync(deployment, limits, async (c, tx, nowMs, _, _) =>
        {
            var deleted = await c.ExecuteAsync(Cmd($"DELETE FROM {Prefix}llm_limit_leases WHERE id = @id", new { id = lease.LeaseId }, tx, cancellationToken)).ConfigureAwait(false);
            if (deleted == 1)
            {
                var back = lease.Reserved - usedTokens;
                await GiveBackAsync(c, tx, deployment, limits.TokensPerMinute, back, cancellationToken).ConfigureAwait(false);
                if (lease.LeaseId.StartsWith(InteractivePrefix, StringComparison.Ordinal))
                {
                    var lane = InteractiveLane(limits);
                    await RefilledAsync(c, tx, LaneKey(deployment), lane, nowMs, cancellationToken).ConfigureAwait(false);
                    await GiveBackAsync(c, tx, LaneKey(deployment), lane.TokensPerMinute, back, cancellationToken).ConfigureAwait(false);
                }
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Learns from the provider, which also sees other clients of the deployment: its remaining requests and
    /// tokens lower the bucket to them, and a 429's Retry-After empties it until then (refill starts after).
    /// </summary>
    public async Task ObserveAsync(string deployment, ModelLimits limits, long? remainingRequests, long? remainingTokens, TimeSpan? throttledFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (remainingRequests is null && remainingTokens is null && throttledFor is null)
        {
            return;
        }

        await LockedAsync(deployment, limits, async (c, tx, nowMs, tokens, requests) =>
        {
            var updatedMs = nowMs;
            if (throttledFor is { } t && t > TimeSpan.Zero)
            {
                (tokens, requests, updatedMs) = (0, 0, nowMs + (long)t.TotalMilliseconds);
            }
            else
            {
                tokens = remainingTokens is { } rt && limits.TokensPerMinute is not null ? Math.Min(tokens, rt) : tokens;
                requests = remainingRequests is { } rr && limits.RequestsPerMinute is not null ? Math.Min(requests, rr) : requests;
            }

            await c.ExecuteAsync(Cmd(
                $"UPDATE {Prefix}llm_limits SET tokens = @tokens, requests = @requests, updated_ms = @updatedMs WHERE deployment = @deployment",
                new { deployment, tokens, requests, updatedMs },
                tx,
                cancellationToken)).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    private const string InteractivePrefix = "i.";
    private const string BatchWaitingSuffix = "#batch-waiting";

    /// <summary>How long after a batch call was refused interactive calls keep to their lane.</summary>
    public static readonly TimeSpan BatchDemandWindow = TimeSpan.FromMinutes(1);

    private async Task<bool> BatchWaitingAsync(DbConnection c, DbTransaction tx, string deployment, long nowMs, CancellationToken cancellationToken)
    {
        var last = await c.ExecuteScalarAsync<long?>(Cmd($"SELECT updated_ms FROM {Prefix}llm_limits WHERE deployment = @key", new { key = deployment + BatchWaitingSuffix }, tx, cancellationToken)).ConfigureAwait(false);
        return last is { } ms && nowMs - ms < BatchDemandWindow.TotalMilliseconds;
    }

    private static string LaneKey(string deployment) => deployment + "#interactive";

    /// <summary>The interactive lane's limits: the deployment's, less the batch share.</summary>
    private ModelLimits InteractiveLane(ModelLimits limits) => new(
        limits.TokensPerMinute is { } t ? Math.Max(1, (int)(t * (1 - batchShare))) : null,
        limits.RequestsPerMinute is { } r ? Math.Max(1, (int)(r * (1 - batchShare))) : null,
        null);

    private Task<int> TakeAsync(DbConnection c, DbTransaction tx, string key, ModelLimits limits, long tokens, CancellationToken cancellationToken) =>
        c.ExecuteAsync(Cmd(
            $"UPDATE {Prefix}llm_limits SET tokens = tokens - @tokens, requests = requests - @one WHERE deployment = @key",
            new { key, tokens = (double)(limits.TokensPerMinute is null ? 0 : tokens), one = limits.RequestsPerMinute is null ? 0d : 1d },
            tx,
            cancellationToken));

    private async Task GiveBackAsync(DbConnection c, DbTransaction tx, string key, int? tokensPerMinute, long back, CancellationToken cancellationToken)
    {
        if (tokensPerMinute is not { } tpm)
        {
            return;
        }

        await c.ExecuteAsync(Cmd(
            $"UPDATE {Prefix}llm_limits SET tokens = CASE WHEN tokens + @back > @tpm THEN @tpm ELSE tokens + @back END WHERE deployment = @key",
            new { key, back = (double)back, tpm = (double)tpm },
            tx,
            cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="work"/> on the refilled bucket in a transaction holding the deployment's lock, and commits.</summary>
    private async Task<T> LockedAsync<T>(string deployment, ModelLimits limits, Func<DbConnection, DbTransaction, long, double, double, Task<T>> work, CancellationToken cancellationToken)
    {
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await BeginLockedAsync(c, deployment, cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var (tokens, requests) = await RefilledAsync(c, tx, deployment, limits, nowMs, cancellationToken).ConfigureAwait(false);
        var result = await work(c, tx, nowMs, tokens, requests).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>The bucket after refilling for the time since it was last touched (created full).</summary>
    private async Task<(double Tokens, double Requests)> RefilledAsync(DbConnection c, DbTransaction tx, string deployment, ModelLimits limits, long nowMs, CancellationToken cancellationToken)
    {
        var tpm = limits.TokensPerMinute ?? 0;
        var rpm = limits.RequestsPerMinute ?? 0;
        var rows = (await c.QueryAsync<(double Tokens, double Requests, long UpdatedMs)>(Cmd(
            $"SELECT tokens, requests, updated_ms FROM {Prefix}llm_limits WHERE deployment = @deployment", new { deployment }, tx, cancellationToken)).ConfigureAwait(false)).ToList();
        double tokens = tpm, requests = rpm;
        if (rows.Count == 1)
        {
            var elapsed = Math.Max(0, nowMs - rows[0].UpdatedMs);
            tokens = Math.Min(tpm, rows[0].Tokens + (elapsed * tpm / 60_000d));
            requests = Math.Min(rpm, rows[0].Requests + (elapsed * rpm / 60_000d));
        }

        await c.ExecuteAsync(Cmd(
            $"""
            INSERT INTO {Prefix}llm_limits (deployment, tokens, requests, updated_ms) VALUES (@deployment, @tokens, @requests, @nowMs)
            ON CONFLICT (deployment) DO UPDATE SET tokens = excluded.tokens, requests = excluded.requests, updated_ms = excluded.updated_ms
            """,
            new { deployment, tokens, requests, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false);
        return (tokens, requests);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    // Whole milliseconds, rounded up: waiting that long is always enough.
    private static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(Math.Ceiling(milliseconds - 1e-6));

    private static CommandDefinition Cmd(string sql, object? args, DbTransaction? tx, CancellationToken ct) => new(sql, args, tx, cancellationToken: ct);

    private static Task<DbTransaction> BeginLockedAsync(DbConnection c, string deployment, CancellationToken cancellationToken) =>
        ActivityDatabase.BeginLockedAsync(c, deployment, 11, cancellationToken);
}

/// <summary>Rate-limit metrics on the <c>DurableAgents.GenAI</c> meter (tag <c>deployment</c>: the provider entry's name).</summary>
public static class ModelRateMetrics
{
    private static readonly System.Diagnostics.Metrics.Meter Meter = new(ModelClients.ActivitySourceName);

    /// <summary>Tokens reserved before calls.</summary>
    public static readonly System.Diagnostics.Metrics.Counter<long> Reserved = Meter.CreateCounter<long>("durableagents.llm.ratelimit.reserved", "{token}", "Tokens reserved for calls before they were sent.");

    /// <summary>Tokens the calls really used.</summary>
    public static readonly System.Diagnostics.Metrics.Counter<long> Used = Meter.CreateCounter<long>("durableagents.llm.ratelimit.used", "{token}", "Tokens the rate-limited calls really used.");

    /// <summary>Calls that waited for capacity (tag <c>kind</c>: inline in the activity, or durable on a timer).</summary>
    public static readonly System.Diagnostics.Metrics.Counter<long> Waits = Meter.CreateCounter<long>("durableagents.llm.ratelimit.waits", "{call}", "Calls that waited for rate-limit capacity.");

    /// <summary>How long they waited (durable: the wait handed back).</summary>
    public static readonly System.Diagnostics.Metrics.Histogram<double> WaitTime = Meter.CreateHistogram<double>("durableagents.llm.ratelimit.wait.duration", "ms", "Time calls waited for rate-limit capacity.");

    /// <summary>429s the provider still answered.</summary>
    public static readonly System.Diagnostics.Metrics.Counter<long> Throttled = Meter.CreateCounter<long>("durableagents.llm.ratelimit.throttled", "{response}", "HTTP 429 answers received from the provider.");
}
