using System.Security.Cryptography;
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
/// <param name="Waited">When granted to a call that had waited (inline or on durable timers): how long since it was first refused.</param>
public sealed record CapacityDecision(string? LeaseId, long Reserved, TimeSpan RetryAfter, TimeSpan Waited = default)
{
    /// <summary>Whether the call may go.</summary>
    public bool Granted => LeaseId is not null;
}

/// <summary>A deployment's use of its limits over the last minute, and who is waiting for it.</summary>
/// <param name="Requests">Requests counted in the window (including what the provider reported used).</param>
/// <param name="Tokens">Tokens counted in the window.</param>
/// <param name="InFlight">Calls in flight.</param>
/// <param name="WaitingInteractive">Interactive calls waiting.</param>
/// <param name="WaitingBatch">Batch calls waiting.</param>
/// <param name="Store">Where the limit is held ("sqlite", "postgres", "redis").</param>
public sealed record RateLimitSnapshot(int Requests, long Tokens, int InFlight, int WaitingInteractive, int WaitingBatch, string Store);

/// <summary>
/// Tokens and requests per minute, and calls at once, per provider deployment, shared by every host of
/// the store (<see cref="IRateLimitStore"/>: Redis when configured, else the engine's SQLite file or the
/// task hub's PostgreSQL schema), counted the way a provider counts them: over the last minute. A call
/// reserves its estimate (the same the budget uses) as a grant before it is sent; at release the grant
/// settles to the real usage, so what it did not use is free at once. A grant stops counting a minute
/// after it was made. Each decision is atomic in the store.
/// </summary>
/// <remarks>
/// Lanes: batch calls leave room for interactive ones, <c>interactiveReserve</c> of the capacity
/// or what interactive calls used in the last minute (plus a margin), whichever is more, up to their lane,
/// so a saturating batch job never makes a person wait behind it; and while an interactive call is
/// waiting, batch calls keep to their guaranteed share, so the next capacity that frees up goes to it.
/// Interactive calls may use everything, except that while batch calls are waiting (one was refused
/// within <see cref="BatchDemandWindow"/>) they keep to their lane, (1 − <c>batchShare</c>) of
/// the capacity, so batch work keeps its share.
/// </remarks>
public sealed class ModelRateLimiter(IRateLimitStore store, double interactiveReserve = 0.1, double batchShare = 0.2, TimeSpan? batchPaceWindow = null)
{
    /// <summary>Limits in the activity database.</summary>
    public ModelRateLimiter(ActivityDatabase database, TimeProvider time, double interactiveReserve = 0.1, double batchShare = 0.2, TimeSpan? batchPaceWindow = null)
        : this(new RelationalRateLimitStore(database, time), interactiveReserve, batchShare, batchPaceWindow)
    {
    }

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

    /// <summary>How long past the wait it was handed a refused call still counts as waiting (the durable timer, the replay, the new activity).</summary>
    public static readonly TimeSpan WaiterGrace = TimeSpan.FromSeconds(5);

    /// <summary>The longest a batch call is told to wait for its turn behind other batch calls (it is asked again then).</summary>
    public static readonly TimeSpan MaxQueueHint = TimeSpan.FromMinutes(2);

    /// <summary>The part of the expected time to its turn a waiting batch call is told (less than all: a call that comes back early just waits again).</summary>
    public const double QueueHintShare = 0.8;

    /// <summary>The default <c>batchPaceWindow</c>: batch calls take at most their minute's requests in proportion within any 5 seconds.</summary>
    public static readonly TimeSpan DefaultBatchPaceWindow = TimeSpan.FromSeconds(5);

    private readonly TimeSpan _pace = batchPaceWindow ?? DefaultBatchPaceWindow;

    private const string Interactive = "i";
    private const string Batch = "b";
    private const string Provider = "p";

    /// <summary>Reserves capacity for one interactive call of about <paramref name="tokens"/> tokens, or says how long to wait.</summary>
    public Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, CancellationToken cancellationToken) =>
        TryAcquireAsync(deployment, limits, tokens, ModelPriority.Interactive, null, cancellationToken);

    /// <summary>Reserves capacity for one call in a lane, or says how long to wait.</summary>
    public Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, ModelPriority priority, CancellationToken cancellationToken) =>
        TryAcquireAsync(deployment, limits, tokens, priority, null, cancellationToken);

    /// <summary>
    /// Reserves capacity for one call in a lane, or says how long to wait. A call that asks again under the
    /// same <paramref name="waiter"/> id (the instance and request) keeps its place: while it waits in the
    /// interactive lane, batch calls keep to their share; when it is granted, <see cref="CapacityDecision.Waited"/>
    /// says since when it waited.
    /// </summary>
    public Task<CapacityDecision> TryAcquireAsync(string deployment, ModelLimits limits, long tokens, ModelPriority priority, string? waiter, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deployment);
        ArgumentNullException.ThrowIfNull(limits);
        return store.UpdateAsync(deployment, (state, nowMs, changes) => Decide(state, nowMs, changes, limits, tokens, priority, waiter), replayIfDegraded: false, cancellationToken);
    }

    private CapacityDecision Decide(LimitState state, long nowMs, LimitChanges changes, ModelLimits limits, long tokens, ModelPriority priority, string? waiter)
    {
        var grants = InWindow(state, nowMs);
        var batch = grants.Where(g => g.Lane == Batch).ToList();
        var inFlight = InFlight(state, nowMs);

        // A call larger than a whole minute's tokens waits for an empty window, then goes (else it never could).
        var need = limits.TokensPerMinute is { } tpm ? Math.Min(tokens, tpm) : tokens;
        var batchWaiting = state.BatchRefusedMs > 0 && nowMs - state.BatchRefusedMs < BatchDemandWindow.TotalMilliseconds;
        var me = waiter is null ? null : state.Waiters.FirstOrDefault(w => w.Id == waiter);
        var peopleWaiting = state.Waiters.Where(w => w.Lane == Interactive && w.Id != waiter).ToList();
        var interactive = grants.Where(g => g.Lane == Interactive).ToList();
        var lane = InteractiveLane(limits);

        // Everyone stays within the deployment's limits.
        var wait = Until(grants, nowMs, limits.TokensPerMinute, limits.RequestsPerMinute, need);

        if (priority == ModelPriority.Batch)
        {
            // Batch calls leave room for the interactive work of the next minute: the reserve, or what
            // interactive calls used in the last one (with a margin), whichever is more, up to their lane.
            var others = grants.Where(g => g.Lane != Interactive).ToList();
            int? Keep(int? cap, int? laneCap, double used) =>
                cap is { } c0 ? c0 - (int)Math.Min(laneCap!.Value, Math.Max(interactiveReserve * c0, Math.Ceiling(used * 1.2) + (used > 0 ? 1 : 0))) : null;
            var keepTokens = Keep(limits.TokensPerMinute, lane.TokensPerMinute, interactive.Sum(g => g.Tokens));
            var keepRequests = Keep(limits.RequestsPerMinute, lane.RequestsPerMinute, interactive.Count);
            wait = Max(wait, Until(others, nowMs, keepTokens, keepRequests, need));

            // Batch is paced: within any pace window it takes at most its minute's requests in proportion, so
            // the window fills evenly and capacity frees up evenly, instead of a burst taking a minute's quota
            // at once and leaving a person nothing until it ages out. (Requests only: a call's token estimate,
            // its output limit included, is often several times what it uses, and would pace far too hard.)
            if (_pace > TimeSpan.Zero && keepRequests is { } allowance)
            {
                var paceMs = (long)_pace.TotalMilliseconds;
                var paced = Math.Max(1, (int)Math.Ceiling(allowance * _pace.TotalMilliseconds / WindowLength.TotalMilliseconds));
                var recent = batch.Where(g => g.GrantedMs > nowMs - paceMs).ToList();
                wait = Max(wait, Until(recent, nowMs, null, paced, need, paceMs));
            }

            // While a person waits, batch keeps to its guaranteed share, so what frees up next goes to them.
            if (peopleWaiting.Count > 0)
            {
                var share = Until(
                    batch,
                    nowMs,
                    limits.TokensPerMinute is { } t ? (int)(t * batchShare) : null,
                    limits.RequestsPerMinute is { } r ? (int)(r * batchShare) : null,
                    need);
                if (limits.MaxConcurrent is { } most && state.Grants.Count(g => g.InFlightUntilMs > nowMs && g.Lane == Batch) >= Math.Max(1, (int)(most * batchShare)))
                {
                    share = Max(share, RecheckAfter);
                }

                if (share > TimeSpan.Zero)
                {
                    // Look again when they are expected to have been served, not when batch's own grants age out.
                    var served = TimeSpan.FromMilliseconds(peopleWaiting.Max(w => w.UntilMs) - nowMs) - WaiterGrace;
                    wait = Max(wait, Min(share, Max(RecheckAfter, served)));
                }
            }
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

        if (limits.MaxConcurrent is { } max && inFlight >= max)
        {
            wait = Max(wait, RecheckAfter); // no rate to compute from: look again soon
        }

        var laneName = priority == ModelPriority.Batch ? Batch : Interactive;
        if (wait > TimeSpan.Zero)
        {
            if (priority == ModelPriority.Batch)
            {
                changes.BatchRefusedMs = nowMs;

                // A batch call behind many others comes back when its turn is near, at the rate batch calls
                // were granted over the last minute, rather than every few seconds: hundreds of waiting
                // workflows asking again and again would keep the hosts busy replaying them, and a person's
                // workflow would queue behind those replays. Those ahead come back sooner, so the order is
                // about first come, first served; the hint is cut short so the capacity never stands idle.
                var since0 = me?.FirstMs ?? nowMs;
                var ahead = state.Waiters.Count(w => w.Lane == Batch && w.Id != waiter && (w.FirstMs < since0 || (w.FirstMs == since0 && me is not null && string.CompareOrdinal(w.Id, waiter) < 0)));
                if (waiter is not null && ahead > 0 && batch.Count > 0)
                {
                    var turn = TimeSpan.FromMilliseconds(QueueHintShare * ahead * WindowLength.TotalMilliseconds / batch.Count);
                    wait = Max(wait, Min(turn, MaxQueueHint));
                }
            }

            if (waiter is not null)
            {
                changes.PutWaiters.Add(new LimitWaiter(waiter, laneName, me?.FirstMs ?? nowMs, nowMs + (long)(wait + WaiterGrace).TotalMilliseconds));
            }

            return new CapacityDecision(null, 0, wait);
        }

        if (me is not null)
        {
            changes.RemoveWaiters.Add(me.Id);
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        var reserved = limits.TokensPerMinute is null ? 0 : need;
        changes.PutGrants.Add(new LimitGrant(id, laneName, reserved, nowMs, nowMs + (long)LeaseLifetime.TotalMilliseconds));
        return new CapacityDecision(id, need, TimeSpan.Zero, me is null ? TimeSpan.Zero : TimeSpan.FromMilliseconds(nowMs - me.FirstMs));
    }

    /// <summary>
    /// Ends a grant: it settles to the tokens really used (what it did not use is free at once) and is no
    /// longer in flight. <paramref name="extraRequests"/> are the requests the call sent beyond its first
    /// (HTTP retries, a repair of an invalid structured answer): the provider counts them, so they count
    /// as requests of the window from now.
    /// </summary>
    public async Task ReleaseAsync(string deployment, ModelLimits limits, CapacityDecision lease, long usedTokens, CancellationToken cancellationToken, int extraRequests = 0)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.LeaseId is not { } id)
        {
            return;
        }

        var tokens = limits.TokensPerMinute is null ? 0 : Math.Max(0, usedTokens);
        await store.UpdateAsync(
            deployment,
            (state, nowMs, changes) =>
            {
                if (state.Grants.FirstOrDefault(g => g.Id == id) is { } grant)
                {
                    changes.PutGrants.Add(grant with { Tokens = tokens, InFlightUntilMs = 0 });
                    for (var i = 0; i < extraRequests; i++)
                    {
                        changes.PutGrants.Add(new LimitGrant($"{id}.{i + 1}", grant.Lane, 0, nowMs, 0));
                    }
                }

                return true;
            },
            replayIfDegraded: true,
            cancellationToken).ConfigureAwait(false);
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

        await store.UpdateAsync(
            deployment,
            (state, nowMs, changes) =>
            {
                var grants = InWindow(state, nowMs);
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
                    changes.PutGrants.Add(new LimitGrant("p." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), Provider, tokens, freesAt - (long)WindowLength.TotalMilliseconds, 0));
                }

                return true;
            },
            replayIfDegraded: false,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The deployment's use of the last minute and who is waiting, for the dashboard.</summary>
    public Task<RateLimitSnapshot> SnapshotAsync(string deployment, CancellationToken cancellationToken) =>
        store.UpdateAsync(
            deployment,
            (state, nowMs, _) =>
            {
                var grants = InWindow(state, nowMs);
                return new RateLimitSnapshot(
                    grants.Count,
                    grants.Sum(g => g.Tokens),
                    InFlight(state, nowMs),
                    state.Waiters.Count(w => w.Lane == Interactive),
                    state.Waiters.Count(w => w.Lane == Batch),
                    store.Name);
            },
            replayIfDegraded: false,
            cancellationToken);

    /// <summary>The grants that count against the rates: those of the last <see cref="WindowLength"/>.</summary>
    private static List<LimitGrant> InWindow(LimitState state, long nowMs)
    {
        var since = nowMs - (long)WindowLength.TotalMilliseconds;
        return state.Grants.Where(g => g.GrantedMs > since).ToList();
    }

    /// <summary>Calls in flight (MaxConcurrent): a grant older than the window still counts until it is released or expires.</summary>
    private static int InFlight(LimitState state, long nowMs) => state.Grants.Count(g => g.InFlightUntilMs > nowMs && g.Lane != Provider);

    /// <summary>How long until the window has room for one more request and <paramref name="need"/> tokens within the caps (zero: now).</summary>
    private static TimeSpan Until(IReadOnlyList<LimitGrant> grants, long nowMs, int? tokenCap, int? requestCap, long need, long? windowLengthMs = null)
    {
        var ordered = grants.OrderBy(g => g.GrantedMs).ToList();
        var windowMs = windowLengthMs ?? (long)WindowLength.TotalMilliseconds;
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

    /// <summary>The interactive lane's limits: the deployment's, less the batch share.</summary>
    private ModelLimits InteractiveLane(ModelLimits limits) => new(
        limits.TokensPerMinute is { } t ? Math.Max(1, (int)(t * (1 - batchShare))) : null,
        limits.RequestsPerMinute is { } r ? Math.Max(1, (int)(r * (1 - batchShare))) : null,
        null);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
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
