using System.Data.Common;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Dapper;
using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Storage.Relational;
using Npgsql;
using NpgsqlTypes;

namespace DurableAgents.Engine.Postgres;

/// <summary>
/// The production store: one PostgreSQL database shared by any number of hosts. Work is claimed
/// with <c>FOR UPDATE SKIP LOCKED</c> and a lease expiry; an episode commits in one transaction
/// sent as one batch (one round trip) and fenced like the SQLite store; commits that create work
/// send a <c>NOTIFY</c> so idle hosts wake at once. Each task hub is its own schema, so several
/// apps can share a database.
/// </summary>
public sealed partial class PostgresOrchestrationStore : IOrchestrationStore, IDisposable, IAsyncDisposable
{
    private const int MaxMessagesPerEpisode = 1000;
    private const string ControlEvents = "('ExecutionResumed','ExecutionTerminated')";

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _schema;
    private readonly string _where;
    private readonly bool _ownsDataSource;
    private volatile bool _created;

    /// <summary>Creates a store that owns its data source (tests, tools); hosts use <c>b.UsePostgres()</c>.</summary>
    /// <param name="connectionString">An Npgsql connection string (DurableAgents:Postgres:ConnectionString).</param>
    /// <param name="taskHub">Partitions the tables: 1–40 of a–z, 0–9 and _. The default value is "default".</param>
    public PostgresOrchestrationStore(string connectionString, string taskHub = "default")
        : this(PostgresDurableAgentsBuilderExtensions.CreateDataSource(new PostgresStoreOptions { ConnectionString = connectionString ?? string.Empty }), taskHub, ownsDataSource: true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
    }

    /// <summary>Creates a store on the process's data source (not disposed with the store).</summary>
    /// <param name="dataSource">The data source (one per process, from DI).</param>
    /// <param name="taskHub">Partitions the tables: 1–40 of a–z, 0–9 and _. The default value is "default".</param>
    public PostgresOrchestrationStore(NpgsqlDataSource dataSource, string taskHub = "default")
        : this(dataSource, taskHub, ownsDataSource: false)
    {
    }

    private PostgresOrchestrationStore(NpgsqlDataSource dataSource, string taskHub, bool ownsDataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        if (!TaskHubPattern().IsMatch(taskHub))
        {
            if (ownsDataSource)
            {
                dataSource.Dispose();
            }

            throw new ArgumentException($"The task hub name '{taskHub}' must be 1-40 characters of a-z, 0-9 and _ (DurableAgents:Postgres:TaskHub).", nameof(taskHub));
        }

        var parsed = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        _where = $"PostgreSQL at {parsed.Host ?? "(no host)"}:{parsed.Port}, database '{parsed.Database ?? parsed.Username}'";
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
        _schema = "durableagents_" + taskHub;
        NotificationChannel = _schema;
    }

    /// <summary>The notification payload prefix for "this instance's status changed" (followed by the instance id).</summary>
    public const string InstanceChangedPrefix = "i:";

    /// <summary>The LISTEN/NOTIFY channel on which commits that create work are announced ("o" orchestration, "a" activity).</summary>
    public string NotificationChannel { get; }

    /// <summary>The connection factory, for the notification listener.</summary>
    internal NpgsqlDataSource DataSource => _dataSource;

    /// <summary>Describes the server for error messages (host, port, database; never credentials).</summary>
    internal string Where => _where;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsDataSource)
        {
            _dataSource.Dispose();
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _ownsDataSource ? _dataSource.DisposeAsync() : ValueTask.CompletedTask;

    /// <summary>Schema scripts embedded in this assembly, in version order.</summary>
    public static IReadOnlyList<(string Version, string Sql)> SchemaScripts()
    {
        var assembly = typeof(PostgresOrchestrationStore).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("schema-", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Version: n["schema-".Length..^".sql".Length], Name: n))
            .OrderBy(x => Version.Parse(x.Version))
            .Select(x => (x.Version, ReadResource(assembly, x.Name)))
            .ToList();
    }

    /// <inheritdoc />
    public async Task EnsureCreatedAsync(CancellationToken cancellationToken = default)
    {
        if (_created)
        {
            return;
        }

        NpgsqlConnection c;
        try
        {
            c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new InvalidOperationException($"Cannot connect to {_where} (DurableAgents:Postgres:ConnectionString): {ex.Message}", ex);
        }

        await using var connection = c.ConfigureAwait(false);
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);

        // Hosts starting together take turns: the first applies the scripts, the rest see them applied.
        await c.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)", new { key = StableHash(_schema) }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition(
            $"CREATE SCHEMA IF NOT EXISTS {_schema}; CREATE TABLE IF NOT EXISTS {_schema}.schema_versions (version text PRIMARY KEY, applied_at bigint NOT NULL);",
            transaction: tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        var applied = (await c.QueryAsync<string>(new CommandDefinition($"SELECT version FROM {_schema}.schema_versions", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false)).ToHashSet();
        foreach (var (version, sql) in SchemaScripts())
        {
            if (applied.Contains(version))
            {
                continue;
            }

            if (applied.Count > 0)
            {
                var count = await c.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT COUNT(*) FROM {_schema}.instances", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
                StoreSchema.CheckUpgrade(applied, version, count, $"{_where}, schema {_schema}");
            }

            await c.ExecuteAsync(new CommandDefinition(sql.Replace("{schema}", _schema, StringComparison.Ordinal), transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            await c.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {_schema}.schema_versions (version, applied_at) VALUES (@version, @now)",
                new { version, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        _created = true;
    }

    /// <inheritdoc />
    public async Task CreateInstanceAsync(NewInstance instance, IReadOnlyCollection<OrchestrationRuntimeStatus> dedupeStatuses, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(dedupeStatuses);

        // Fast path, one round trip plus commit: the id is new. The start message is inserted only
        // if the instance row with this (fresh) execution id is the one just inserted.
        var created = await InTransactionAsync(async (c, tx) =>
        {
            var batch = new NpgsqlBatch(c, tx);
            await using var disposeBatch = batch.ConfigureAwait(false);
            var insert = Command(
                $"""
                INSERT INTO {_schema}.instances (instance_id, execution_id, name, version, status, input, created_at, last_updated_at, parent_instance_id, history_length, tags)
                VALUES ($1, $2, $3, $4, 'Pending', $5, $6, $6, NULL, 0, $7)
                ON CONFLICT (instance_id) DO NOTHING
                """,
                instance.InstanceId,
                instance.ExecutionId,
                instance.Name,
                Text(instance.Version),
                Text(instance.Input),
                now.ToUnixTimeMilliseconds(),
                Text(StoreRows.SerializeTags(instance.Tags)));
            batch.BatchCommands.Add(insert);
            batch.BatchCommands.Add(Command(
                $"""
                INSERT INTO {_schema}.inbox (instance_id, execution_id, event_type, visible_at, data)
                SELECT $1, $2, 'ExecutionStarted', $3, $4
                WHERE EXISTS (SELECT 1 FROM {_schema}.instances WHERE instance_id = $1 AND execution_id = $2)
                """,
                instance.InstanceId,
                instance.ExecutionId,
                instance.StartAt.ToUnixTimeMilliseconds(),
                HistoryJson.Serialize(instance.ToStartedEvent(now))));
            batch.BatchCommands.Add(Command("SELECT pg_notify($1, 'o')", NotificationChannel));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return insert.RecordsAffected == 1;
        }, cancellationToken).ConfigureAwait(false);
        if (created)
        {
            return;
        }

        // The id exists: dedupe, or replace a finished instance, under a row lock.
        await InTransactionAsync(async (c, tx) =>
        {
            await RelationalRules.CreateInstanceAsync(new PostgresTransaction(this, c, tx), instance, dedupeStatuses, now, cancellationToken).ConfigureAwait(false);
            await NotifyAsync(c, tx, "o", cancellationToken).ConfigureAwait(false);
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<OrchestrationWorkItem>> TryLockOrchestrationsAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default)
    {
        var expires = now + leaseDuration;
        var nowMs = now.ToUnixTimeMilliseconds();
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);

        // One round trip leases up to maxCount instances, each with its own token. Candidates come
        // from the oldest visible messages; instances another host holds are skipped, not waited on.
        var rows = (await c.QueryAsync<StoreRows.InstanceRow>(new CommandDefinition(
            $"""
            WITH candidate AS (
                SELECT i.instance_id FROM {_schema}.instances i
                WHERE i.instance_id IN (
                        SELECT m.instance_id FROM {_schema}.inbox m WHERE m.visible_at <= @now
                        ORDER BY m.visible_at, m.id LIMIT @scan)
                  AND (i.lock_expires_at IS NULL OR i.lock_expires_at <= @now)
                  AND (i.status <> 'Suspended' OR EXISTS (
                        SELECT 1 FROM {_schema}.inbox m2 WHERE m2.instance_id = i.instance_id AND m2.visible_at <= @now AND m2.event_type IN {ControlEvents})){NameCondition(names, "i.name", "@names")}
                LIMIT @maxCount
                FOR UPDATE OF i SKIP LOCKED)
            UPDATE {_schema}.instances i SET lock_owner = @owner || '/' || md5(random()::text || clock_timestamp()::text), lock_expires_at = @expires
            FROM candidate WHERE i.instance_id = candidate.instance_id
            RETURNING i.*
            """,
            new { now = nowMs, owner, maxCount, scan = maxCount * 20, expires = expires.ToUnixTimeMilliseconds(), names = NameArray(names) },
            cancellationToken: cancellationToken)).ConfigureAwait(false)).ToList();
        if (rows.Count == 0)
        {
            return [];
        }

        var suspended = rows.Where(r => StoreRows.ParseStatus(r.status) == OrchestrationRuntimeStatus.Suspended).Select(r => r.instance_id).ToArray();
        var messages = (await c.QueryAsync<StoreRows.MessageRow>(new CommandDefinition(
            $"""
            SELECT id, instance_id, execution_id, visible_at, data FROM (
                SELECT m.*, row_number() OVER (PARTITION BY m.instance_id ORDER BY m.visible_at, m.id) AS n
                FROM {_schema}.inbox m
                WHERE m.instance_id = ANY(@ids) AND m.visible_at <= @now
                  AND (m.event_type IN {ControlEvents} OR NOT (m.instance_id = ANY(@suspended)))) numbered
            WHERE n <= {MaxMessagesPerEpisode}
            ORDER BY instance_id, visible_at, id
            """,
            new { ids = rows.Select(r => r.instance_id).ToArray(), now = nowMs, suspended },
            cancellationToken: cancellationToken)).ConfigureAwait(false)).ToLookup(m => m.instance_id);
        return rows.Select(r => r.ToWorkItem(messages[r.instance_id].Select(m => m.ToMessage()).ToList(), r.lock_owner!, expires)).ToList();
    }

    /// <summary>The SQL condition for a name filter on <paramref name="column"/> (an array parameter), or nothing.</summary>
    private static string NameCondition(NameFilter? names, string column, string parameter) =>
        names is null ? string.Empty : $" AND {(names.Exclude ? "NOT " : string.Empty)}(lower({column}) = ANY({parameter}))";

    private static string[] NameArray(NameFilter? names) => names?.Names.ToArray() ?? [];

    /// <inheritdoc />
    public async Task<IReadOnlyList<P.HistoryEvent>> GetHistoryAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<string>(new CommandDefinition(
            $"SELECT data FROM {_schema}.history WHERE instance_id = @instanceId ORDER BY seq", new { instanceId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.Select(HistoryJson.Deserialize).ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActivityWorkItem>> CommitOrchestrationAsync(OrchestrationWorkItem workItem, OrchestrationCommit commit, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        ArgumentNullException.ThrowIfNull(commit);
        var nowMs = now.ToUnixTimeMilliseconds();
        try
        {
            return await InTransactionAsync(async (c, tx) =>
            {
                // One round trip: the fence and every write travel as one batch; the fence's row
                // count decides whether the transaction commits.
                var batch = new NpgsqlBatch(c, tx);
                await using var disposeBatch = batch.ConfigureAwait(false);
                var u = commit.Instance;
                var can = commit.ContinueAsNew;
                var fence = u is null
                    ? Command(
                        $"UPDATE {_schema}.instances SET lock_owner = NULL, lock_expires_at = NULL WHERE instance_id = $1 AND lock_owner = $2 AND lock_expires_at > $3 AND history_length = $4",
                        workItem.InstanceId, workItem.LockOwner, nowMs, workItem.HistoryLength)
                    : Command(
                        $"""
                        UPDATE {_schema}.instances SET lock_owner = NULL, lock_expires_at = NULL,
                          status = $5, output = $6, custom_status = $7, failure = $8, last_updated_at = $3,
                          completed_at = CASE WHEN $9 THEN $3 ELSE NULL END,
                          history_length = $10,
                          execution_id = COALESCE($11, execution_id),
                          input = CASE WHEN $11 IS NULL THEN input ELSE $12 END
                        WHERE instance_id = $1 AND lock_owner = $2 AND lock_expires_at > $3 AND history_length = $4
                        """,
                        workItem.InstanceId,
                        workItem.LockOwner,
                        nowMs,
                        workItem.HistoryLength,
                        u.Status.ToString(),
                        Text(u.Output),
                        Text(u.CustomStatus),
                        Text(StoreRows.SerializeFailure(u.Failure)),
                        u.Status.IsTerminal(),
                        can is null ? workItem.HistoryLength + commit.NewEvents.Count : 0,
                        Text(can?.NewExecutionId),
                        Text(can?.Input));
                batch.BatchCommands.Add(fence);
                if (u is not null && u.Status != workItem.Status)
                {
                    // Clients waiting on this instance on other hosts (WaitForInstanceCompletionAsync) wake at once.
                    batch.BatchCommands.Add(Command("SELECT pg_notify($1, $2)", NotificationChannel, InstanceChangedPrefix + workItem.InstanceId));
                }

                if (can is not null)
                {
                    batch.BatchCommands.Add(Command($"DELETE FROM {_schema}.history WHERE instance_id = $1", workItem.InstanceId));
                }
                else if (commit.NewEvents.Count > 0)
                {
                    batch.BatchCommands.Add(Command(
                        $"INSERT INTO {_schema}.history (instance_id, seq, event_type, timestamp, data) SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::bigint[], $5::text[])",
                        workItem.InstanceId,
                        commit.NewEvents.Select((_, i) => workItem.HistoryLength + i).ToArray(),
                        commit.NewEvents.Select(e => e.TypeName()).ToArray(),
                        commit.NewEvents.Select(e => e.Timestamp.ToDateTimeOffset().ToUnixTimeMilliseconds()).ToArray(),
                        commit.NewEvents.Select(HistoryJson.Serialize).ToArray()));
                }

                if (commit.ConsumedMessageIds.Count > 0)
                {
                    batch.BatchCommands.Add(Command($"DELETE FROM {_schema}.inbox WHERE id = ANY($1::bigint[])", commit.ConsumedMessageIds.ToArray()));
                }

                var claimCount = Math.Min(commit.ClaimActivities?.Count ?? 0, commit.NewActivities.Count);
                var claimTokens = Enumerable.Range(0, claimCount).Select(_ => $"{commit.ClaimActivities!.Owner}/{Guid.NewGuid():N}").ToArray();
                var claimExpires = now + (commit.ClaimActivities?.Lease ?? TimeSpan.Zero);
                NpgsqlBatchCommand? claimInsert = null;
                if (claimCount > 0)
                {
                    // Leased to the committing worker, which runs them at once: no queue round trip.
                    var a = commit.NewActivities.Take(claimCount).ToList();
                    claimInsert = Command(
                        $"""
                        INSERT INTO {_schema}.activities (instance_id, execution_id, task_id, name, input, lock_owner, visible_at, lock_expires_at, dequeue_count)
                        SELECT *, $7, $8, 1 FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::text[])
                        RETURNING id, lock_owner
                        """,
                        a.Select(x => x.InstanceId).ToArray(),
                        a.Select(x => x.ExecutionId).ToArray(),
                        a.Select(x => x.TaskId).ToArray(),
                        a.Select(x => x.Name).ToArray(),
                        a.Select(x => x.Input).ToArray(),
                        claimTokens,
                        nowMs,
                        claimExpires.ToUnixTimeMilliseconds());
                }

                if (commit.NewActivities.Count > claimCount)
                {
                    var a = commit.NewActivities.Skip(claimCount).ToList();
                    batch.BatchCommands.Add(Command(
                        $"INSERT INTO {_schema}.activities (instance_id, execution_id, task_id, name, input, visible_at) SELECT *, $6 FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::text[])",
                        a.Select(x => x.InstanceId).ToArray(),
                        a.Select(x => x.ExecutionId).ToArray(),
                        a.Select(x => x.TaskId).ToArray(),
                        a.Select(x => x.Name).ToArray(),
                        a.Select(x => x.Input).ToArray(),
                        nowMs));
                    batch.BatchCommands.Add(Command("SELECT pg_notify($1, 'a')", NotificationChannel));
                }

                var claimed = new List<ActivityWorkItem>(claimCount);
                if (claimInsert is null)
                {
                    await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // The claim's RETURNING rows come last, after the non-query commands.
                    batch.BatchCommands.Add(claimInsert);
                    var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        do
                        {
                            // Only the claim's RETURNING rows; other statements (pg_notify) return rows too.
                            if (reader.FieldCount != 2 || reader.GetName(0) != "id" || reader.GetName(1) != "lock_owner")
                            {
                                continue;
                            }

                            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                            {
                                var token = reader.GetString(1);
                                var index = Array.IndexOf(claimTokens, token);
                                claimed.Add(new ActivityWorkItem { Id = reader.GetInt64(0), Task = commit.NewActivities[index], DequeueCount = 1, LockOwner = token, LockExpiresAt = claimExpires });
                            }
                        }
                        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
                    }
                }

                if (fence.RecordsAffected != 1)
                {
                    throw new LeaseLostException($"The lease on '{workItem.InstanceId}' is no longer held by {workItem.LockOwner}.");
                }

                var messages = commit.NewMessages.ToList();
                messages.AddRange(await RelationalRules.CreateChildrenAsync(new PostgresTransaction(this, c, tx), workItem, commit.NewInstances, now, cancellationToken).ConfigureAwait(false));

                if (messages.Count > 0 || commit.NewInstances.Count > 0)
                {
                    await InsertMessagesAsync(c, tx, messages, notify: true, cancellationToken).ConfigureAwait(false);
                }

                return (IReadOnlyList<ActivityWorkItem>)claimed;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // Another worker appended the same history positions first: our lease was gone.
            throw new LeaseLostException($"History of '{workItem.InstanceId}' was extended by another worker: {ex.MessageText}");
        }
    }

    /// <inheritdoc />
    public async Task AbandonOrchestrationAsync(OrchestrationWorkItem workItem, TimeSpan retryAfter, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        await InTransactionAsync(async (c, tx) =>
        {
            var released = await c.ExecuteAsync(new CommandDefinition(
                $"UPDATE {_schema}.instances SET lock_owner = NULL, lock_expires_at = NULL WHERE instance_id = @id AND lock_owner = @token",
                new { id = workItem.InstanceId, token = workItem.LockOwner }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (released == 1 && workItem.Messages.Count > 0)
            {
                await c.ExecuteAsync(new CommandDefinition(
                    $"UPDATE {_schema}.inbox SET visible_at = @at WHERE id = ANY(@ids)",
                    new { at = (now + retryAfter).ToUnixTimeMilliseconds(), ids = workItem.Messages.Select(m => m.Id).ToArray() }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActivityWorkItem>> TryLockActivitiesAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default)
    {
        var expires = now + leaseDuration;
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<ActivityLeaseRow>(new CommandDefinition(
            $"""
            UPDATE {_schema}.activities a
            SET lock_owner = @owner || '/' || md5(random()::text || clock_timestamp()::text), lock_expires_at = @expires, dequeue_count = a.dequeue_count + 1
            FROM (SELECT id FROM {_schema}.activities
                  WHERE visible_at <= @now AND (lock_expires_at IS NULL OR lock_expires_at <= @now){NameCondition(names, "name", "@names")}
                  ORDER BY visible_at, id LIMIT @maxCount FOR UPDATE SKIP LOCKED) candidate
            WHERE a.id = candidate.id
            RETURNING a.id, a.instance_id, a.execution_id, a.task_id, a.name, a.input, a.dequeue_count, a.lock_owner
            """,
            new { now = now.ToUnixTimeMilliseconds(), owner, maxCount, expires = expires.ToUnixTimeMilliseconds(), names = NameArray(names) },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.Select(r => new StoreRows.ActivityRow(r.id, r.instance_id, r.execution_id, r.task_id, r.name, r.input, r.dequeue_count).ToWorkItem(r.lock_owner, expires, countIncludesThisLease: true)).ToList();
    }

    /// <inheritdoc />
    public async Task<bool> RenewActivityLeaseAsync(ActivityWorkItem workItem, TimeSpan leaseDuration, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        var expires = now + leaseDuration;
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var renewed = await c.ExecuteAsync(new CommandDefinition(
            $"UPDATE {_schema}.activities SET lock_expires_at = @expires WHERE id = @id AND lock_owner = @token",
            new { expires = expires.ToUnixTimeMilliseconds(), id = workItem.Id, token = workItem.LockOwner },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (renewed == 1)
        {
            workItem.LockExpiresAt = expires;
        }

        return renewed == 1;
    }

    /// <inheritdoc />
    public async Task<ActivityResults> CompleteActivitiesAndLeaseAsync(IReadOnlyList<ActivityCompletion> completions, string owner, TimeSpan leaseDuration, int maxLeases, DateTimeOffset now, NameFilter? names = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(completions);
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var nowMs = now.ToUnixTimeMilliseconds();

        // One round trip, one implicit transaction: the group's results, then (optionally) the
        // leases of the instances they went to, then those instances' visible messages.
        var batch = new NpgsqlBatch(c);
        await using var disposeBatch = batch.ConfigureAwait(false);

        // Each task is deleted only if its lease token still matches (a lease that expired without a
        // takeover still counts), and only deleted tasks deliver their result.
        batch.BatchCommands.Add(Command(
            $"""
            WITH input AS (
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                    AS t(id, owner, instance_id, execution_id, event_type, data)),
            done AS (
                DELETE FROM {_schema}.activities a USING input
                WHERE a.id = input.id AND a.lock_owner = input.owner
                RETURNING a.id),
            delivered AS (
                INSERT INTO {_schema}.inbox (instance_id, execution_id, event_type, visible_at, data)
                SELECT input.instance_id, input.execution_id, input.event_type, $7, input.data FROM input
                WHERE input.id IN (SELECT id FROM done)
                  AND EXISTS (SELECT 1 FROM {_schema}.instances i WHERE i.instance_id = input.instance_id))
            SELECT id FROM done
            """,
            completions.Select(x => x.WorkItem.Id).ToArray(),
            completions.Select(x => x.WorkItem.LockOwner).ToArray(),
            completions.Select(x => x.WorkItem.Task.InstanceId).ToArray(),
            completions.Select(x => x.WorkItem.Task.ExecutionId).ToArray(),
            completions.Select(x => x.Result.TypeName()).ToArray(),
            completions.Select(x => HistoryJson.Serialize(x.Result)).ToArray(),
            nowMs));
        var prefix = $"{owner}/{Guid.NewGuid():N}/";
        var expires = now + leaseDuration;
        if (maxLeases > 0)
        {
            var ids = completions.Select(x => x.WorkItem.Task.InstanceId).Distinct(StringComparer.Ordinal).ToArray();
            batch.BatchCommands.Add(Command(
                $"""
                WITH candidate AS (
                    SELECT i.instance_id FROM {_schema}.instances i
                    WHERE i.instance_id = ANY($1) AND i.status = 'Running'
                      AND (i.lock_expires_at IS NULL OR i.lock_expires_at <= $3)
                      AND EXISTS (SELECT 1 FROM {_schema}.inbox m WHERE m.instance_id = i.instance_id AND m.visible_at <= $3){NameCondition(names, "i.name", "$6")}
                    ORDER BY i.instance_id LIMIT $4
                    FOR UPDATE OF i SKIP LOCKED)
                UPDATE {_schema}.instances i SET lock_owner = $2 || md5(i.instance_id), lock_expires_at = $5
                FROM candidate WHERE i.instance_id = candidate.instance_id
                RETURNING i.*
                """,
                ids,
                prefix,
                nowMs,
                maxLeases,
                expires.ToUnixTimeMilliseconds(),
                NameArray(names)));
            batch.BatchCommands.Add(Command(
                $"""
                SELECT id, instance_id, execution_id, visible_at, data FROM (
                    SELECT m.*, row_number() OVER (PARTITION BY m.instance_id ORDER BY m.visible_at, m.id) AS n
                    FROM {_schema}.inbox m JOIN {_schema}.instances i ON i.instance_id = m.instance_id
                    WHERE m.instance_id = ANY($1) AND starts_with(i.lock_owner, $2) AND m.visible_at <= $3) numbered
                WHERE n <= {MaxMessagesPerEpisode}
                ORDER BY instance_id, visible_at, id
                """,
                ids,
                prefix,
                nowMs));
        }

        batch.BatchCommands.Add(Command("SELECT pg_notify($1, 'o')", NotificationChannel));
        var done = new HashSet<long>();
        var rows = new List<StoreRows.InstanceRow>();
        var messages = new List<StoreRows.MessageRow>();
        var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                done.Add(reader.GetInt64(0));
            }

            if (maxLeases > 0)
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                var instanceParser = reader.GetRowParser<StoreRows.InstanceRow>();
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    rows.Add(instanceParser(reader));
                }

                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                var messageParser = reader.GetRowParser<StoreRows.MessageRow>();
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    messages.Add(messageParser(reader));
                }
            }
        }

        var byInstance = messages.ToLookup(m => m.instance_id);
        var leased = rows.Select(r => r.ToWorkItem(byInstance[r.instance_id].Select(m => m.ToMessage()).ToList(), r.lock_owner!, expires)).ToList();
        return new ActivityResults(completions.Select(x => done.Contains(x.WorkItem.Id)).ToList(), leased);
    }

    /// <inheritdoc />
    public async Task AbandonActivityAsync(ActivityWorkItem workItem, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition(
            $"UPDATE {_schema}.activities SET lock_owner = NULL, lock_expires_at = NULL WHERE id = @id AND lock_owner = @token; SELECT pg_notify(@channel, 'a')",
            new { id = workItem.Id, token = workItem.LockOwner, channel = NotificationChannel },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<InstanceRecord?> GetInstanceAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var row = await c.QueryFirstOrDefaultAsync<StoreRows.InstanceRow>(new CommandDefinition(
            $"SELECT * FROM {_schema}.instances WHERE instance_id = @instanceId", new { instanceId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return row?.ToRecord(includePayloads);
    }

    /// <inheritdoc />
    public async Task<InstancePage> QueryInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, values) = InstanceQuerySql.Build(query, $"{_schema}.instances", nativeArrays: true);
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<StoreRows.InstanceRow>(new CommandDefinition(sql, new DynamicParameters(values), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return InstanceQuerySql.ToPage(rows.ToList(), query);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<OrchestrationRuntimeStatus, long>> CountInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, values) = InstanceQuerySql.BuildCount(query, $"{_schema}.instances");
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<(string Status, long Count)>(new CommandDefinition(sql, new DynamicParameters(values), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return InstanceQuerySql.ToCounts(rows);
    }

    /// <inheritdoc />
    public async Task SendClientMessageAsync(string instanceId, P.HistoryEvent message, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        await InTransactionAsync(async (c, tx) =>
        {
            await RelationalRules.SendClientMessageAsync(new PostgresTransaction(this, c, tx), instanceId, message, now, cancellationToken).ConfigureAwait(false);
            await NotifyAsync(c, tx, "o", cancellationToken).ConfigureAwait(false);
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<int> PurgeInstanceAsync(string instanceId, bool recursive, CancellationToken cancellationToken = default) =>
        InTransactionAsync((c, tx) => RelationalRules.PurgeAsync(new PostgresTransaction(this, c, tx), instanceId, recursive, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public Task RewindInstanceAsync(RewindRequest request, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        InTransactionAsync(async (c, tx) =>
        {
            await RelationalRules.RewindAsync(new PostgresTransaction(this, c, tx), request, now, cancellationToken).ConfigureAwait(false);
            await NotifyAsync(c, tx, "o", cancellationToken).ConfigureAwait(false);
            await NotifyAsync(c, tx, "a", cancellationToken).ConfigureAwait(false);
            return 0;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<int> PurgeInstancesAsync(PurgeFilter filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var terminal = (filter.Statuses is { Count: > 0 } ? filter.Statuses : [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated])
            .Where(s => s.IsTerminal()).Select(s => s.ToString()).ToArray();
        return InTransactionAsync(async (c, tx) =>
        {
            var ids = (await c.QueryAsync<string>(new CommandDefinition(
                $"SELECT instance_id FROM {_schema}.instances WHERE status = ANY(@terminal) AND created_at >= @from AND created_at < @to FOR UPDATE",
                new { terminal, from = filter.CreatedFrom?.ToUnixTimeMilliseconds() ?? long.MinValue, to = filter.CreatedTo?.ToUnixTimeMilliseconds() ?? long.MaxValue },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false)).ToArray();
            await c.ExecuteAsync(new CommandDefinition(
                $"""
                DELETE FROM {_schema}.history WHERE instance_id = ANY(@ids);
                DELETE FROM {_schema}.inbox WHERE instance_id = ANY(@ids);
                DELETE FROM {_schema}.activities WHERE instance_id = ANY(@ids);
                DELETE FROM {_schema}.instances WHERE instance_id = ANY(@ids);
                """,
                new { ids },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            return ids.Length;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<ReleasedHost> RegisterHostAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        InTransactionAsync(
            async (c, tx) => await NotifiedAsync(c, tx, await HostLeases.RegisterAsync(c, tx, _schema + ".", hostId, incarnation, now, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false),
            cancellationToken);

    /// <inheritdoc />
    public Task<HeartbeatResult> HeartbeatAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        InTransactionAsync((c, tx) => HostLeases.HeartbeatAsync(c, tx, _schema + ".", hostId, incarnation, now, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public Task<ReleasedHost?> ReleaseHostAsync(string hostId, long observedBeats, CancellationToken cancellationToken = default) =>
        InTransactionAsync(
            async (c, tx) => await HostLeases.ReleaseDeadAsync(c, tx, _schema + ".", hostId, observedBeats, cancellationToken).ConfigureAwait(false) is { } released
                ? await NotifiedAsync(c, tx, released, cancellationToken).ConfigureAwait(false)
                : null,
            cancellationToken);

    /// <inheritdoc />
    public Task<ReleasedHost> UnregisterHostAsync(string hostId, string incarnation, CancellationToken cancellationToken = default) =>
        InTransactionAsync(
            async (c, tx) => await NotifiedAsync(c, tx, await HostLeases.UnregisterAsync(c, tx, _schema + ".", hostId, incarnation, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false),
            cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<HostRecord>> GetHostsAsync(CancellationToken cancellationToken = default)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await HostLeases.ListAsync(c, null, _schema + ".", cancellationToken).ConfigureAwait(false);
    }

    // Released leases are work for every host: wake their dispatchers (delivered at commit).
    private async Task<ReleasedHost> NotifiedAsync(NpgsqlConnection c, NpgsqlTransaction tx, ReleasedHost released, CancellationToken cancellationToken)
    {
        if (released.Orchestrations > 0)
        {
            await NotifyAsync(c, tx, "o", cancellationToken).ConfigureAwait(false);
        }

        if (released.Activities > 0)
        {
            await NotifyAsync(c, tx, "a", cancellationToken).ConfigureAwait(false);
        }

        return released;
    }

    /// <inheritdoc />
    public async Task<bool> TryConsumeTokenAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenId);
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var consumed = await c.QueryFirstOrDefaultAsync<string>(new CommandDefinition(
            $"""
            WITH pruned AS (DELETE FROM {_schema}.consumed_tokens WHERE expires_at < @now)
            INSERT INTO {_schema}.consumed_tokens (token_id, expires_at) VALUES (@tokenId, @expires)
            ON CONFLICT (token_id) DO NOTHING
            RETURNING token_id
            """,
            new { tokenId, expires = expiresAt.ToUnixTimeMilliseconds(), now = now.ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return consumed is not null;
    }

    /// <inheritdoc />
    public async Task ReleaseTokenAsync(string tokenId, CancellationToken cancellationToken = default)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {_schema}.consumed_tokens WHERE token_id = @tokenId", new { tokenId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    private async Task<T> InTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        var result = await work(c, tx).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private async Task<OrchestrationRuntimeStatus?> StatusOfAsync(NpgsqlConnection c, DbTransaction tx, string instanceId, bool forUpdate, CancellationToken cancellationToken)
    {
        var s = await c.QueryFirstOrDefaultAsync<string>(new CommandDefinition(
            $"SELECT status FROM {_schema}.instances WHERE instance_id = @instanceId {(forUpdate ? "FOR UPDATE" : string.Empty)}",
            new { instanceId },
            tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return s is null ? null : StoreRows.ParseStatus(s);
    }

    private async Task InsertInstanceAsync(NpgsqlConnection c, NpgsqlTransaction tx, NewInstance instance, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        await c.ExecuteAsync(new CommandDefinition(
            $"""
            INSERT INTO {_schema}.instances (instance_id, execution_id, name, version, status, input, created_at, last_updated_at, parent_instance_id, history_length, tags)
            VALUES (@InstanceId, @ExecutionId, @Name, @Version, 'Pending', @Input, @now, @now, @parent, 0, @tags)
            """,
            new { instance.InstanceId, instance.ExecutionId, instance.Name, instance.Version, instance.Input, now = nowMs, parent = instance.Parent?.OrchestrationInstance.InstanceId, tags = StoreRows.SerializeTags(instance.Tags) },
            tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await InsertMessagesAsync(c, tx, [new OrchestrationMessage(0, instance.InstanceId, instance.ExecutionId, instance.ToStartedEvent(now), instance.StartAt)], notify: false, cancellationToken).ConfigureAwait(false);
    }

    private async Task InsertMessagesAsync(NpgsqlConnection c, NpgsqlTransaction tx, IReadOnlyList<OrchestrationMessage> messages, bool notify, CancellationToken cancellationToken)
    {
        var batch = new NpgsqlBatch(c, tx);
        await using var disposeBatch = batch.ConfigureAwait(false);
        AddMessages(batch, messages, notify);
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private void AddMessages(NpgsqlBatch batch, IReadOnlyList<OrchestrationMessage> messages, bool notify)
    {
        if (messages.Count > 0)
        {
            // Messages to instances that do not exist (purged, never created) are dropped here.
            batch.BatchCommands.Add(Command(
                $"""
                INSERT INTO {_schema}.inbox (instance_id, execution_id, event_type, visible_at, data)
                SELECT t.instance_id, t.execution_id, t.event_type, t.visible_at, t.data
                FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) AS t(instance_id, execution_id, event_type, visible_at, data)
                WHERE EXISTS (SELECT 1 FROM {_schema}.instances i WHERE i.instance_id = t.instance_id)
                """,
                messages.Select(m => m.InstanceId).ToArray(),
                messages.Select(m => m.ExecutionId).ToArray(),
                messages.Select(m => m.Event.TypeName()).ToArray(),
                messages.Select(m => m.VisibleAt.ToUnixTimeMilliseconds()).ToArray(),
                messages.Select(m => HistoryJson.Serialize(m.Event)).ToArray()));
        }

        if (notify)
        {
            batch.BatchCommands.Add(Command("SELECT pg_notify($1, 'o')", NotificationChannel));
        }
    }

    private Task<int> NotifyAsync(NpgsqlConnection c, NpgsqlTransaction tx, string kind, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition("SELECT pg_notify(@channel, @kind)", new { channel = NotificationChannel, kind }, tx, cancellationToken: cancellationToken));

    private Task<int> DeleteInstanceRowsAsync(NpgsqlConnection c, DbTransaction tx, string instanceId, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            $"""
            DELETE FROM {_schema}.history WHERE instance_id = @instanceId;
            DELETE FROM {_schema}.inbox WHERE instance_id = @instanceId;
            DELETE FROM {_schema}.activities WHERE instance_id = @instanceId;
            DELETE FROM {_schema}.instances WHERE instance_id = @instanceId;
            """,
            new { instanceId },
            tx,
            cancellationToken: cancellationToken));

    private static NpgsqlBatchCommand Command(string sql, params object?[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var v in values)
        {
            command.Parameters.Add(v switch
            {
                null => new NpgsqlParameter { Value = DBNull.Value },
                TextValue t => new NpgsqlParameter { Value = (object?)t.Value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text },
                _ => new NpgsqlParameter { Value = v },
            });
        }

        return command;
    }

    private static TextValue Text(string? value) => new(value);

    private static long StableHash(string s)
    {
        // FNV-1a: the advisory lock key must be the same in every process (string.GetHashCode is randomized).
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return unchecked((long)hash);
    }

    private static string ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"Missing schema resource {name}.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    [GeneratedRegex("^[a-z0-9_]{1,40}$")]
    private static partial Regex TaskHubPattern();

#pragma warning disable IDE1006, CA1812 // column-named row materialized by Dapper
    private sealed record ActivityLeaseRow(long id, string instance_id, string execution_id, long task_id, string name, string? input, long dequeue_count, string lock_owner);
#pragma warning restore IDE1006, CA1812

    /// <summary>A possibly-null text parameter (a bare null has no type for PostgreSQL to infer).</summary>
    private sealed record TextValue(string? Value);

    /// <summary>The relational primitives over one PostgreSQL transaction (rows read for a rule are locked FOR UPDATE).</summary>
    private sealed class PostgresTransaction(PostgresOrchestrationStore store, NpgsqlConnection c, NpgsqlTransaction tx) : IRelationalTransaction
    {
        public Task<OrchestrationRuntimeStatus?> StatusOfAsync(string instanceId, CancellationToken cancellationToken) =>
            store.StatusOfAsync(c, tx, instanceId, forUpdate: true, cancellationToken);

        public Task DeleteInstanceAsync(string instanceId, CancellationToken cancellationToken) =>
            store.DeleteInstanceRowsAsync(c, tx, instanceId, cancellationToken);

        public Task InsertInstanceAsync(NewInstance instance, DateTimeOffset now, CancellationToken cancellationToken) =>
            store.InsertInstanceAsync(c, tx, instance, now, cancellationToken);

        public Task InsertMessagesAsync(IReadOnlyList<OrchestrationMessage> messages, CancellationToken cancellationToken) =>
            store.InsertMessagesAsync(c, tx, messages, notify: false, cancellationToken);

        public Task<bool> ReopenFailedAsync(string instanceId, int expectedHistoryLength, int keepHistoryLength, DateTimeOffset now, CancellationToken cancellationToken) =>
            RelationalSql.ReopenFailedAsync(c, tx, store._schema + ".", instanceId, expectedHistoryLength, keepHistoryLength, now, cancellationToken);

        public Task InsertActivitiesAsync(IReadOnlyList<ActivityTaskRequest> activities, DateTimeOffset now, CancellationToken cancellationToken) =>
            RelationalSql.InsertActivitiesAsync(c, tx, store._schema + ".", activities, now, cancellationToken);

        public Task<IReadOnlyList<string>> DescendantIdsAsync(string instanceId, CancellationToken cancellationToken) =>
            RelationalSql.DescendantIdsAsync(c, tx, store._schema + ".", instanceId, cancellationToken);
    }
}
