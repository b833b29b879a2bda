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
/// the activity database (the engine's SQLite file, or the task hub's PostgreSQL schema), counted the way
/// a provider counts them: over the last minute. A call reserves its estimate (the same the budget uses)
/// as a grant before it is sent; at release the grant settles to the real usage, so what it did not use
/// is free at once. A grant stops counting a minute after it was made. Each decision runs in a
/// transaction holding the deployment's lock (SQLite: the write lock; PostgreSQL: an advisory lock).
/// </summary>
/// <remarks>
/// Lanes: batch calls leave room for interactive ones, <paramref name="interactiveReserve"/> of the capacity
/// or what interactive calls used in the last minute (plus a margin), whichever is more, up to their lane,
/// so a saturating batch job never makes a person wait behind it;
/// interactive calls may use everything, except that while batch calls are waiting (one was refused
/// within <see cref="BatchDemandWindow"/>) they keep to their lane, (1 − <paramref name="batchShare"/>) of
/// the capacity, so batch work keeps its share.
/// </remarks>
public sealed class ModelRateLimiter(ActivityDatabase database, TimeProvider time, double interactiveReserve = 0.1, double batchShare = 0.2)
{
    /// <summary>
    /// The window limits are counted over: a minute plus a second, so that a call granted at the edge of
    /// the minute does not reach a provider whose own window still holds the call that freed the slot
    /// (it counted that call a little later, when it arrived).
    /// </summary>
    public static readonly TimeSpan WindowLength = TimeSpan.FromSeconds(61);

    /// <summary>How long a grant counts as in flight if its host dies before releasing it.</summary>
    public static readonly TimeSpan LeaseLifetime = TimeSpan.FromMinutes(10);

    /// <summary>How soon to look again when calls in flight hold enough reserved tokens to cover a shortfall.</summary>
    public static readonly TimeSpan RecheckAfter = TimeSpan.FromSeconds(1);

    /// <summary>How long after a batch call was refused interactive calls keep to their lane.</summary>
    public static readonly TimeSpan BatchDemandWindow = TimeSpan.FromMinutes(2);

    private const string Interactive = "i";
    private const string Batch = "b";
    private const string Provider = "p";

    private string Prefix => database.Prefix;

    /// <summary>Reserves capacity for one interactive call of about <paramref name="tokens"/> tokens, or says how long to wait.</summary>
    public Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, CancellationToken cancellationToken) =>
        TryAcquireAsync(deployment, limits, tokens, ModelPriority.Interactive, cancellationToken);

    /// <summary>Reserves capacity for one call in a lane, or says how long to wait.</summary>
    public async Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, ModelPriority priority, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deployment);
        ArgumentNullException.ThrowIfNull(limits);
        return await LockedAsync(deployment, async (c, tx, nowMs, window) =>
        {
            var grants = window.Grants;
            // A call larger than a whole minute's tokens waits for an empty window, then goes (else it never could).
            var need = limits.TokensPerMinute is { } tpm ? Math.Min(tokens, tpm) : tokens;
            var batchWaiting = await BatchWaitingAsync(c, tx, deployment, nowMs, cancellationToken).ConfigureAwait(false);
            var interactive = grants.Where(g => g.Lane == Interactive).ToList();
            var lane = InteractiveLane(limits);

            // Everyone stays within the deployment's limits.
            var wait = Until(grants, nowMs, limits.TokensPerMinute, limits.RequestsPerMinute, need);

            // Batch calls leave room for the interactive work of the next minute: the reserve, or what
            // interactive calls used in the last one (with a margin), whichever is more, up to their lane.
            if (priority == ModelPriority.Batch)
            {
                var others = grants.Where(g => g.Lane != Interactive).ToList();
                int? Keep(int? cap, int? laneCap, double used) =>
                    cap is { } c0 ? c0 - (int)Math.Min(laneCap!.Value, Math.Max(interactiveReserve * c0, Math.Ceiling(used * 1.2) + (used > 0 ? 1 : 0))) : null;
                wait = Max(wait, Until(
                    others,
                    nowMs,
                    Keep(limits.TokensPerMinute, lane.TokensPerMinute, interactive.Sum(g => g.Tokens)),
                    Keep(limits.RequestsPerMinute, lane.RequestsPerMinute, interactive.Count),
                    need));
            }
            if (priority == ModelPriority.Interactive && batchWaiting)
            {
                wait = Max(wait, Until(interactive, nowMs, lane.TokensPerMinute, lane.RequestsPerMinute, Math.Min(need, lane.TokensPerMinute ?? need)));
            }

            // Calls in flight mostly settle below their estimates: if their reservations could cover a token
            // shortfall, look again soon rather than when the window frees it.
            if (wait > RecheckAfter && limits.TokensPerMinute is not null && grants.Where(g => g.InFlightUntilMs > nowMs).Sum(g => g.Tokens) >= need)
            {
                wait = Max(RecheckAfter, Until(grants, nowMs, null, limits.RequestsPerMinute, need));
            }

            if (limits.MaxConcurrent is { } max && window.InFlight >= max)
            {
                wait = Max(wait, RecheckAfter); // no rate to compute from: look again soon
            }

            if (wait > TimeSpan.Zero)
            {
                if (priority == ModelPriority.Batch)
                {
                    await c.ExecuteAsync(Cmd(
                        $"""
                        INSERT INTO {Prefix}llm_limit_batch_waiting (deployment, refused_ms) VALUES (@deployment, @nowMs)
                        ON CONFLICT (deployment) DO UPDATE SET refused_ms = excluded.refused_ms
                        """,
                        new { deployment, nowMs },
                        tx,
                        cancellationToken)).ConfigureAwait(false);
                }

                return new CapacityDecision(null, 0, wait);
            }

            var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            await InsertAsync(c, tx, id, deployment, priority == ModelPriority.Batch ? Batch : Interactive, limits.TokensPerMinute is null ? 0 : need, nowMs, nowMs + (long)LeaseLifetime.TotalMilliseconds, cancellationToken).ConfigureAwait(false);
            return new CapacityDecision(id, need, TimeSpan.Zero);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends a grant: it settles to the tokens really used (what it did not use is free at once) and is no longer in flight.</summary>
    public async Task ReleaseAsync(string deployment, ModelLimits limits, CapacityDecision lease, long usedTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.LeaseId is null)
        {
            return;
        }

        await LockedAsync(deployment, async (c, tx, nowMs, _) =>
        {
            await c.ExecuteAsync(Cmd(
                $"UPDATE {Prefix}llm_limit_grants SET tokens = @tokens, in_flight_until_ms = 0 WHERE id = @id",
                new { id = lease.LeaseId, tokens = limits.TokensPerMinute is null ? 0 : Math.Max(0, usedTokens) },
                tx,
                cancellationToken)).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Learns from the provider, which also sees other clients of the deployment. When it says fewer requests
    /// or tokens remain than the window shows, the difference is recorded as used, freeing up steadily over the
    /// minute; a 429's Retry-After fills the window until then.
    /// </summary>
    public async Task ObserveAsync(string deployment, ModelLimits limits, long? remainingRequests, long? remainingTokens, TimeSpan? throttledFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (remainingRequests is null && remainingTokens is null && throttledFor is null)
        {
            return;
        }

        await LockedAsync(deployment, async (c, tx, nowMs, window) =>
        {
            var grants = window.Grants;
            var usedRequests = grants.Count;
            var usedTokens = grants.Sum(g => g.Tokens);

            // Throttled: the whole capacity is taken until Retry-After. Otherwise what the provider says is used beyond what we see.
            var missingRequests = limits.RequestsPerMinute is { } rpm ? Math.Max(0, throttledFor is null ? rpm - usedRequests - (remainingRequests ?? rpm) : rpm) : 0;
            var missingTokens = limits.TokensPerMinute is { } tpm ? Math.Max(0, throttledFor is null ? tpm - usedTokens - (remainingTokens ?? tpm) : tpm) : 0;
            var count = (int)Math.Max(missingRequests, missingTokens > 0 ? 1 : 0);
            for (var i = 0; i < count; i++)
            {
                // Throttled: all of it until Retry-After. Otherwise spread over the minute, as the provider's counts free up.
                var freesAt = throttledFor is { } t ? nowMs + (long)t.TotalMilliseconds : nowMs + ((i + 1) * (long)WindowLength.TotalMilliseconds / Math.Max(1, count));
                var tokens = i == 0 ? missingTokens : 0;
                await InsertAsync(c, tx, "p." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), deployment, Provider, tokens, freesAt - (long)WindowLength.TotalMilliseconds, 0, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How long until the window has room for one more request and <paramref name="need"/> tokens within the caps (zero: now).</summary>
    private static TimeSpan Until(IReadOnlyList<Grant> grants, long nowMs, int? tokenCap, int? requestCap, long need)
    {
        var ordered = grants.OrderBy(g => g.GrantedMs).ToList();
        var windowMs = (long)WindowLength.TotalMilliseconds;
        long waitMs = 0;
        if (requestCap is { } rc)
        {
            var excess = ordered.Count - Math.Max(0, rc) + 1; // grants that must leave the window first
            if (excess > 0)
            {
                waitMs = Math.Max(waitMs, excess > ordered.Count ? windowMs : ordered[excess - 1].GrantedMs + windowMs - nowMs);
            }
        }

        if (tokenCap is { } tc)
        {
            var over = ordered.Sum(g => g.Tokens) + need - Math.Max(0, tc);
            foreach (var g in ordered)
            {
                if (over <= 0)
                {
                    break;
                }

                over -= g.Tokens;
                waitMs = Math.Max(waitMs, g.GrantedMs + windowMs - nowMs);
            }

            if (over > 0)
            {
                waitMs = Math.Max(waitMs, windowMs);
            }
        }

        return TimeSpan.FromMilliseconds(Math.Max(0, waitMs));
    }

    private Task<int> InsertAsync(DbConnection c, DbTransaction tx, string id, string deployment, string lane, long tokens, long grantedMs, long inFlightUntilMs, CancellationToken cancellationToken) =>
        c.ExecuteAsync(Cmd(
            $"INSERT INTO {Prefix}llm_limit_grants (id, deployment, lane, tokens, granted_ms, in_flight_until_ms) VALUES (@id, @deployment, @lane, @tokens, @grantedMs, @inFlightUntilMs)",
            new { id, deployment, lane, tokens, grantedMs, inFlightUntilMs },
            tx,
            cancellationToken));

    private async Task<bool> BatchWaitingAsync(DbConnection c, DbTransaction tx, string deployment, long nowMs, CancellationToken cancellationToken)
    {
        var last = await c.ExecuteScalarAsync<long?>(Cmd($"SELECT refused_ms FROM {Prefix}llm_limit_batch_waiting WHERE deployment = @deployment", new { deployment }, tx, cancellationToken)).ConfigureAwait(false);
        return last is { } ms && nowMs - ms < BatchDemandWindow.TotalMilliseconds;
    }

    /// <summary>The interactive lane's limits: the deployment's, less the batch share.</summary>
    private ModelLimits InteractiveLane(ModelLimits limits) => new(
        limits.TokensPerMinute is { } t ? Math.Max(1, (int)(t * (1 - batchShare))) : null,
        limits.RequestsPerMinute is { } r ? Math.Max(1, (int)(r * (1 - batchShare))) : null,
        null);

    /// <summary>Runs <paramref name="work"/> on the deployment's grants of the last minute (older ones pruned), holding its lock, and commits.</summary>
    private async Task<T> LockedAsync<T>(string deployment, Func<DbConnection, DbTransaction, long, Window, Task<T>> work, CancellationToken cancellationToken)
    {
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await ActivityDatabase.BeginLockedAsync(c, deployment, 11, cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var since = nowMs - (long)WindowLength.TotalMilliseconds;
        await c.ExecuteAsync(Cmd($"DELETE FROM {Prefix}llm_limit_grants WHERE deployment = @deployment AND granted_ms <= @since AND in_flight_until_ms <= @nowMs", new { deployment, since, nowMs }, tx, cancellationToken)).ConfigureAwait(false);
        var grants = (await c.QueryAsync<Grant>(Cmd(
            $"SELECT lane AS Lane, tokens AS Tokens, granted_ms AS GrantedMs, in_flight_until_ms AS InFlightUntilMs FROM {Prefix}llm_limit_grants WHERE deployment = @deployment AND (granted_ms > @since OR in_flight_until_ms > @nowMs)",
            new { deployment, since, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false)).ToList();

        // A grant older than the window still counts as in flight (MaxConcurrent) but no longer against the rates.
        var inFlight = grants.Count(g => g.InFlightUntilMs > nowMs && g.Lane != Provider);
        var result = await work(c, tx, nowMs, new Window(grants.Where(g => g.GrantedMs > since).ToList(), inFlight)).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static CommandDefinition Cmd(string sql, object? args, DbTransaction? tx, CancellationToken ct) => new(sql, args, tx, cancellationToken: ct);

    private sealed record Grant(string Lane, long Tokens, long GrantedMs, long InFlightUntilMs);

    /// <summary>The grants of the last minute, and how many calls are in flight.</summary>
    private sealed record Window(IReadOnlyList<Grant> Grants, int InFlight);
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
