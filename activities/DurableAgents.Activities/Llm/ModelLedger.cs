using System.Data.Common;
using Dapper;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace DurableAgents.Activities.Llm;

/// <summary>One accounted provider attempt (or cache hit) of a CallModel activity.</summary>
public sealed record ModelAttemptRecord
{
    /// <summary>The orchestration instance.</summary>
    public required string InstanceId { get; init; }

    /// <summary>The orchestration (workflow) name.</summary>
    public required string Workflow { get; init; }

    /// <summary>The activity's idempotency key (instance:execution:task) and the run of the task it belongs to ("key#run").</summary>
    public required string TaskKey { get; init; }

    /// <summary>The attempt's position within the activity (1-based).</summary>
    public required int Attempt { get; init; }

    /// <summary>The profile.</summary>
    public required string Profile { get; init; }

    /// <summary>The provider entry.</summary>
    public required string Provider { get; init; }

    /// <summary>The model.</summary>
    public required string Model { get; init; }

    /// <summary>ok, cache-hit, or what failed (HTTP 429, TimeoutRejectedException, invalid-json...).</summary>
    public required string Outcome { get; init; }

    /// <summary>Input tokens billed.</summary>
    public long InputTokens { get; init; }

    /// <summary>Output tokens billed.</summary>
    public long OutputTokens { get; init; }

    /// <summary>Latency in milliseconds.</summary>
    public long LatencyMs { get; init; }

    /// <summary>Cost from the price table.</summary>
    public decimal Cost { get; init; }

    /// <summary>When it happened.</summary>
    public required DateTimeOffset At { get; init; }

    /// <summary>The host that sent it (the engine's host id; the machine elsewhere), so a dead host's open attempts can be marked interrupted.</summary>
    public string? Host { get; init; }

    /// <summary>The call's estimate (input estimate + max output), written ahead of the request; what an interrupted attempt is assumed to have cost.</summary>
    public long EstimatedTokens { get; init; }

    /// <summary>The estimate's cost.</summary>
    public decimal EstimatedCost { get; init; }

    /// <summary>The provider's background response id, when the call ran as a background response.</summary>
    public string? ResponseId { get; init; }
}

/// <summary>Usage totals of one instance, workflow name or day.</summary>
/// <param name="Key">The instance id, workflow name or day (yyyy-MM-dd, UTC).</param>
/// <param name="Calls">Attempts and cache hits (budget refusals are not calls).</param>
/// <param name="InputTokens">Input tokens billed.</param>
/// <param name="OutputTokens">Output tokens billed.</param>
/// <param name="Cost">Cost.</param>
/// <param name="CacheHits">Answers from the response cache.</param>
/// <param name="BudgetRefusals">Calls refused by a budget (not made).</param>
/// <param name="Interrupted">Attempts whose host died or whose task ran again before they were settled: sent, maybe billed, usage unknown.</param>
/// <param name="InterruptedCost">The estimates of the interrupted attempts (not in <paramref name="Cost"/>, which is settled usage only).</param>
/// <param name="InFlight">Attempts sent and not settled yet.</param>
public sealed record ModelUsageTotals(string Key, long Calls, long InputTokens, long OutputTokens, decimal Cost, long CacheHits, long BudgetRefusals = 0, long Interrupted = 0, decimal InterruptedCost = 0, long InFlight = 0);

/// <summary>What a budget reservation decided.</summary>
/// <param name="Allowed">False when the call would exceed the budget: it must not be made.</param>
/// <param name="UsedTokens">Tokens already reserved or spent by the instance (this reservation excluded).</param>
/// <param name="UsedCost">Cost already reserved or spent by the instance (this reservation excluded).</param>
public sealed record BudgetDecision(bool Allowed, long UsedTokens, decimal UsedCost);

/// <summary>
/// The model-call ledger: every attempt with its tokens and cost, and budget reservations per instance.
/// It lives in the engine's database (the same SQLite file, or the task hub's PostgreSQL schema).
/// </summary>
public interface IModelLedger
{
    /// <summary>
    /// Reserves an estimate for the call keyed <paramref name="key"/> unless it would take the instance past
    /// <paramref name="budget"/>. Idempotent per key: a re-executed task finds its reservation and is allowed.
    /// </summary>
    Task<BudgetDecision> ReserveAsync(string instanceId, string key, ModelBudget budget, long tokens, decimal cost, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces the reservation's estimate with what the call really used (zero when it failed before any
    /// tokens). A re-executed task (its first run settled, its result lost in a crash) adds its usage: both runs were billed.
    /// </summary>
    Task SettleAsync(string instanceId, string key, long tokens, decimal cost, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends attempt records, or settles the write-ahead rows they match (same instance, task key and
    /// attempt; an in-flight or interrupted row takes the real outcome and usage, a settled one is kept).
    /// </summary>
    Task RecordAsync(IReadOnlyList<ModelAttemptRecord> attempts, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes an attempt ahead of its request: outcome <see cref="RelationalModelLedger.InFlight"/>, with host and
    /// estimate. Committed before the request leaves, so a crash cannot make it invisible.
    /// </summary>
    Task BeginAttemptAsync(ModelAttemptRecord attempt, CancellationToken cancellationToken = default);

    /// <summary>Records the background response id the provider gave an attempt (kept on the row, for resuming).</summary>
    Task SetResponseIdAsync(string instanceId, string taskKey, int attempt, string responseId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The newest background response of a task (any run of <paramref name="taskKey"/>, its <paramref name="step"/>-th
    /// model request), with the attempt that created it; null when none was recorded.
    /// </summary>
    Task<ModelAttemptRecord?> FindResponseAsync(string instanceId, string taskKey, int step, CancellationToken cancellationToken = default);

    /// <summary>Marks the in-flight attempts of these hosts interrupted (the hosts died, or this host restarted under its id); returns how many.</summary>
    Task<int> InterruptHostsAsync(IReadOnlyCollection<string> hosts, CancellationToken cancellationToken = default);

    /// <summary>Marks in-flight attempts of earlier runs of the task interrupted (it runs again, so they are not coming back); returns how many.</summary>
    Task<int> InterruptEarlierRunsAsync(string instanceId, string taskKey, string currentRunKey, CancellationToken cancellationToken = default);

    /// <summary>Every attempt of an instance: runs in the order they began, each run's attempts by number.</summary>
    Task<IReadOnlyList<ModelAttemptRecord>> GetAttemptsAsync(string instanceId, CancellationToken cancellationToken = default);

    /// <summary>An instance's totals.</summary>
    Task<ModelUsageTotals> GetInstanceTotalsAsync(string instanceId, CancellationToken cancellationToken = default);

    /// <summary>Totals per workflow name.</summary>
    Task<IReadOnlyList<ModelUsageTotals>> GetWorkflowTotalsAsync(CancellationToken cancellationToken = default);

    /// <summary>Totals per UTC day (yyyy-MM-dd) since <paramref name="since"/>, oldest first.</summary>
    Task<IReadOnlyList<ModelUsageTotals>> GetDailyTotalsAsync(DateTimeOffset since, CancellationToken cancellationToken = default);

    /// <summary>The <paramref name="count"/> instances that cost most (then used most tokens).</summary>
    Task<IReadOnlyList<ModelUsageTotals>> GetTopInstancesAsync(int count, CancellationToken cancellationToken = default);
}

/// <summary>
/// The ledger on SQLite or PostgreSQL (Dapper). Costs are stored as integer micro-units so sums are exact.
/// A reservation runs in a transaction that holds the instance's lock (SQLite: the write lock taken by
/// BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock on the instance id), so parallel calls
/// of one fan-out cannot both squeeze under the same remaining budget.
/// </summary>
public sealed class RelationalModelLedger : IModelLedger, IDisposable
{
    /// <summary>The outcome recorded for a call a budget refused (no tokens, no cost).</summary>
    public const string BudgetRefused = "budget-refused";

    /// <summary>The outcome of an attempt written ahead of its request and not settled yet.</summary>
    public const string InFlight = "in-flight";

    /// <summary>The outcome of an attempt that was sent and never settled: its host died, or its task ran again. Its estimate stands for its cost.</summary>
    public const string Interrupted = "interrupted";

    private const decimal Micro = 1_000_000m;
    private readonly ActivityDatabase _database;
    private readonly bool _ownsDatabase;

    /// <summary>A ledger in the activities' database (shared with the other activity stores).</summary>
    public RelationalModelLedger(ActivityDatabase database)
        : this(database, ownsDatabase: false)
    {
    }

    private RelationalModelLedger(ActivityDatabase database, bool ownsDatabase)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _ownsDatabase = ownsDatabase;
    }

    /// <summary>A ledger in a SQLite database (the engine's file).</summary>
    public static RelationalModelLedger ForSqlite(string connectionString) => new(ActivityDatabase.ForSqlite(connectionString), ownsDatabase: true);

    /// <summary>A ledger in the task hub's PostgreSQL schema.</summary>
    public static RelationalModelLedger ForPostgres(NpgsqlDataSource dataSource, string taskHub) => new(ActivityDatabase.ForPostgres(dataSource, taskHub), ownsDatabase: true);

    private string Prefix => _database.Prefix;

    /// <inheritdoc />
    public async Task<BudgetDecision> ReserveAsync(string instanceId, string key, ModelBudget budget, long tokens, decimal cost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(budget);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await BeginLockedAsync(c, instanceId, cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        var existing = await c.ExecuteScalarAsync<long?>(Cmd($"SELECT 1 FROM {Prefix}llm_reservations WHERE instance_id = @instanceId AND task_key = @key", new { instanceId, key }, tx, cancellationToken)).ConfigureAwait(false);
        var used = await c.QuerySingleAsync<(long Tokens, long CostMicros)>(Cmd(
            $"SELECT CAST(COALESCE(SUM(tokens), 0) AS bigint), CAST(COALESCE(SUM(cost_micros), 0) AS bigint) FROM {Prefix}llm_reservations WHERE instance_id = @instanceId AND task_key <> @key",
            new { instanceId, key },
            tx,
            cancellationToken)).ConfigureAwait(false);
        var interrupted = await c.QuerySingleAsync<(long Tokens, long CostMicros)>(Cmd(
            $"SELECT CAST(COALESCE(SUM(est_tokens), 0) AS bigint), CAST(COALESCE(SUM(est_cost_micros), 0) AS bigint) FROM {Prefix}llm_attempts WHERE instance_id = @instanceId AND outcome = '{Interrupted}'",
            new { instanceId },
            tx,
            cancellationToken)).ConfigureAwait(false);
        used = (used.Tokens + interrupted.Tokens, used.CostMicros + interrupted.CostMicros);
        var usedCost = used.CostMicros / Micro;
        if (existing is null)
        {
            var over = (budget.MaxTokens is { } maxTokens && used.Tokens + tokens > maxTokens)
                || (budget.MaxCost is { } maxCost && usedCost + cost > maxCost);
            if (over)
            {
                return new BudgetDecision(false, used.Tokens, usedCost);
            }

            await c.ExecuteAsync(Cmd(
                $"INSERT INTO {Prefix}llm_reservations (instance_id, task_key, tokens, cost_micros, settled) VALUES (@instanceId, @key, @tokens, @costMicros, 0)",
                new { instanceId, key, tokens, costMicros = ToMicros(cost) },
                tx,
                cancellationToken)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new BudgetDecision(true, used.Tokens, usedCost);
    }

    /// <inheritdoc />
    public async Task SettleAsync(string instanceId, string key, long tokens, decimal cost, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(Cmd(
            $"""
            UPDATE {Prefix}llm_reservations
            SET tokens = CASE WHEN settled = 1 THEN tokens + @tokens ELSE @tokens END,
                cost_micros = CASE WHEN settled = 1 THEN cost_micros + @costMicros ELSE @costMicros END,
                settled = 1
            WHERE instance_id = @instanceId AND task_key = @key
            """,
            new { instanceId, key, tokens, costMicros = ToMicros(cost) },
            null,
            cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task RecordAsync(IReadOnlyList<ModelAttemptRecord> attempts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempts);
        if (attempts.Count == 0)
        {
            return;
        }

        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        foreach (var a in attempts)
        {
            await c.ExecuteAsync(Cmd(
                $"""
                INSERT INTO {Prefix}llm_attempts AS t (instance_id, workflow, task_key, attempt, profile, provider, model, outcome, input_tokens, output_tokens, latency_ms, cost_micros, at_ms, host, est_tokens, est_cost_micros, response_id)
                VALUES (@InstanceId, @Workflow, @TaskKey, @Attempt, @Profile, @Provider, @Model, @Outcome, @InputTokens, @OutputTokens, @LatencyMs, @CostMicros, @AtMs, @Host, @EstimatedTokens, @EstCostMicros, @ResponseId)
                ON CONFLICT (instance_id, task_key, attempt) DO UPDATE SET
                    model = excluded.model, outcome = excluded.outcome, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
                    latency_ms = excluded.latency_ms, cost_micros = excluded.cost_micros, response_id = COALESCE(excluded.response_id, t.response_id)
                WHERE t.outcome IN ('{InFlight}', '{Interrupted}')
                """,
                Row(a),
                tx,
                cancellationToken)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task BeginAttemptAsync(ModelAttemptRecord attempt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(attempt);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(Cmd(
            $"""
            INSERT INTO {Prefix}llm_attempts (instance_id, workflow, task_key, attempt, profile, provider, model, outcome, input_tokens, output_tokens, latency_ms, cost_micros, at_ms, host, est_tokens, est_cost_micros, response_id)
            VALUES (@InstanceId, @Workflow, @TaskKey, @Attempt, @Profile, @Provider, @Model, '{InFlight}', 0, 0, 0, 0, @AtMs, @Host, @EstimatedTokens, @EstCostMicros, @ResponseId)
            ON CONFLICT (instance_id, task_key, attempt) DO NOTHING
            """,
            Row(attempt),
            null,
            cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task SetResponseIdAsync(string instanceId, string taskKey, int attempt, string responseId, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(Cmd(
            $"UPDATE {Prefix}llm_attempts SET response_id = @responseId WHERE instance_id = @instanceId AND task_key = @taskKey AND attempt = @attempt",
            new { instanceId, taskKey, attempt, responseId },
            null,
            cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ModelAttemptRecord?> FindResponseAsync(string instanceId, string taskKey, int step, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var row = await c.QueryFirstOrDefaultAsync<AttemptRow>(Cmd(
            $"""
            SELECT {Columns} FROM {Prefix}llm_attempts
            WHERE instance_id = @instanceId AND substr(task_key, 1, length(@prefix)) = @prefix AND response_id IS NOT NULL AND response_id LIKE @step
            ORDER BY id DESC
            """,
            new { instanceId, prefix = taskKey + "#", step = $"{step}:%" },
            null,
            cancellationToken)).ConfigureAwait(false);
        return row is null ? null : ToRecord(row);
    }

    /// <inheritdoc />
    public async Task<int> InterruptHostsAsync(IReadOnlyCollection<string> hosts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        if (hosts.Count == 0)
        {
            return 0;
        }

        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var total = 0;
        foreach (var host in hosts)
        {
            total += await c.ExecuteAsync(Cmd(
                $"UPDATE {Prefix}llm_attempts SET outcome = '{Interrupted}' WHERE host = @host AND outcome = '{InFlight}'",
                new { host },
                null,
                cancellationToken)).ConfigureAwait(false);
        }

        return total;
    }

    /// <inheritdoc />
    public async Task<int> InterruptEarlierRunsAsync(string instanceId, string taskKey, string currentRunKey, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await c.ExecuteAsync(Cmd(
            $"UPDATE {Prefix}llm_attempts SET outcome = '{Interrupted}' WHERE instance_id = @instanceId AND substr(task_key, 1, length(@prefix)) = @prefix AND task_key <> @currentRunKey AND outcome = '{InFlight}'",
            new { instanceId, prefix = taskKey + "#", currentRunKey },
            null,
            cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ModelAttemptRecord>> GetAttemptsAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<AttemptRow>(Cmd(
            $"SELECT {Columns} FROM (SELECT a.*, MIN(id) OVER (PARTITION BY task_key) AS run_first FROM {Prefix}llm_attempts a WHERE instance_id = @instanceId) x ORDER BY run_first, attempt",
            new { instanceId },
            null,
            cancellationToken)).ConfigureAwait(false);
        return rows.Select(ToRecord).ToList();
    }

    private const string Columns = "instance_id AS InstanceId, workflow AS Workflow, task_key AS TaskKey, attempt AS Attempt, profile AS Profile, provider AS Provider, model AS Model, outcome AS Outcome, input_tokens AS InputTokens, output_tokens AS OutputTokens, latency_ms AS LatencyMs, cost_micros AS CostMicros, at_ms AS AtMs, host AS Host, est_tokens AS EstTokens, est_cost_micros AS EstCostMicros, response_id AS ResponseId";

    private static ModelAttemptRecord ToRecord(AttemptRow r) => new()
    {
        InstanceId = r.InstanceId,
        Workflow = r.Workflow,
        TaskKey = r.TaskKey,
        Attempt = (int)r.Attempt,
        Profile = r.Profile,
        Provider = r.Provider,
        Model = r.Model,
        Outcome = r.Outcome,
        InputTokens = r.InputTokens,
        OutputTokens = r.OutputTokens,
        LatencyMs = r.LatencyMs,
        Cost = r.CostMicros / Micro,
        At = DateTimeOffset.FromUnixTimeMilliseconds(r.AtMs),
        Host = r.Host,
        EstimatedTokens = r.EstTokens,
        EstimatedCost = r.EstCostMicros / Micro,
        ResponseId = r.ResponseId,
    };

    private static object Row(ModelAttemptRecord a) => new
    {
        a.InstanceId, a.Workflow, a.TaskKey, a.Attempt, a.Profile, a.Provider, a.Model, a.Outcome, a.InputTokens, a.OutputTokens, a.LatencyMs,
        CostMicros = ToMicros(a.Cost), AtMs = a.At.ToUnixTimeMilliseconds(), a.Host, a.EstimatedTokens, EstCostMicros = ToMicros(a.EstimatedCost), a.ResponseId,
    };

    /// <inheritdoc />
    public async Task<ModelUsageTotals> GetInstanceTotalsAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        var totals = await TotalsAsync("instance_id", "WHERE instance_id = @instanceId", new { instanceId }, cancellationToken).ConfigureAwait(false);
        return totals.SingleOrDefault() ?? new ModelUsageTotals(instanceId, 0, 0, 0, 0, 0);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ModelUsageTotals>> GetWorkflowTotalsAsync(CancellationToken cancellationToken = default) =>
        TotalsAsync("workflow", string.Empty, null, cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<ModelUsageTotals>> GetDailyTotalsAsync(DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        var day = _database.IsPostgres ? "to_char(to_timestamp(at_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')" : "strftime('%Y-%m-%d', at_ms / 1000, 'unixepoch')";
        return await TotalsAsync(day, "WHERE at_ms >= @since", new { since = since.ToUnixTimeMilliseconds() }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ModelUsageTotals>> GetTopInstancesAsync(int count, CancellationToken cancellationToken = default)
    {
        var all = await TotalsAsync("instance_id", string.Empty, null, cancellationToken).ConfigureAwait(false);
        return all.OrderByDescending(t => t.Cost).ThenByDescending(t => t.InputTokens + t.OutputTokens).ThenBy(t => t.Key, StringComparer.Ordinal).Take(count).ToList();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsDatabase)
        {
            _database.Dispose();
        }
    }

    private static long ToMicros(decimal cost) => (long)decimal.Round(cost * Micro, MidpointRounding.AwayFromZero);

    private static CommandDefinition Cmd(string sql, object? args, DbTransaction? tx, CancellationToken ct) => new(sql, args, tx, cancellationToken: ct);

    private async Task<IReadOnlyList<ModelUsageTotals>> TotalsAsync(string column, string where, object? args, CancellationToken cancellationToken)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<(string Key, long Calls, long InputTokens, long OutputTokens, long CostMicros, long CacheHits, long Refusals, long Interrupted, long InterruptedMicros, long InFlight)>(Cmd(
            $"""
            SELECT {column}, CAST(COALESCE(SUM(CASE WHEN outcome = '{BudgetRefused}' THEN 0 ELSE 1 END), 0) AS bigint),
                   CAST(COALESCE(SUM(input_tokens), 0) AS bigint), CAST(COALESCE(SUM(output_tokens), 0) AS bigint),
                   CAST(COALESCE(SUM(cost_micros), 0) AS bigint), CAST(COALESCE(SUM(CASE WHEN outcome = 'cache-hit' THEN 1 ELSE 0 END), 0) AS bigint),
                   CAST(COALESCE(SUM(CASE WHEN outcome = '{BudgetRefused}' THEN 1 ELSE 0 END), 0) AS bigint),
                   CAST(COALESCE(SUM(CASE WHEN outcome = '{Interrupted}' THEN 1 ELSE 0 END), 0) AS bigint),
                   CAST(COALESCE(SUM(CASE WHEN outcome = '{Interrupted}' THEN est_cost_micros ELSE 0 END), 0) AS bigint),
                   CAST(COALESCE(SUM(CASE WHEN outcome = '{InFlight}' THEN 1 ELSE 0 END), 0) AS bigint)
            FROM {Prefix}llm_attempts {where} GROUP BY {column} ORDER BY {column}
            """,
            args,
            null,
            cancellationToken)).ConfigureAwait(false);
        return rows.Select(r => new ModelUsageTotals(r.Key, r.Calls, r.InputTokens, r.OutputTokens, r.CostMicros / Micro, r.CacheHits, r.Refusals, r.Interrupted, r.InterruptedMicros / Micro, r.InFlight)).ToList();
    }

    private static Task<DbTransaction> BeginLockedAsync(DbConnection c, string instanceId, CancellationToken cancellationToken) =>
        ActivityDatabase.BeginLockedAsync(c, instanceId, 7, cancellationToken);

    // The ledger's tables come from the versioned activity scripts (Scripts/*/activities-x.y.z.sql).
    private Task<DbConnection> OpenAsync(CancellationToken cancellationToken) => _database.OpenAsync(cancellationToken);

    private sealed record AttemptRow(
        string InstanceId, string Workflow, string TaskKey, long Attempt, string Profile, string Provider, string Model,
        string Outcome, long InputTokens, long OutputTokens, long LatencyMs, long CostMicros, long AtMs, string? Host, long EstTokens, long EstCostMicros, string? ResponseId);
}
