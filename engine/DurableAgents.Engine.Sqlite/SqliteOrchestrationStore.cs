using System.Data.Common;
using System.Reflection;
using System.Text;
using Dapper;
using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Storage.Relational;
using Microsoft.Data.Sqlite;

namespace DurableAgents.Engine.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in WAL mode, so <c>dotnet run</c> needs no server. Several
/// processes may share the file (leases fence them); inside a process writes are serialized by a
/// gate, because SQLite has one writer at a time and queueing in-process is cheaper than busy retries.
/// </summary>
public sealed class SqliteOrchestrationStore : IOrchestrationStore, IDisposable
{
    private const int MaxMessagesPerEpisode = 1000;
    private static readonly string[] ControlEvents = ["ExecutionResumed", "ExecutionTerminated"];

    private readonly string _connectionString;
    private readonly bool _synchronousFull;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private volatile bool _created;

    /// <summary>Creates a store on a database file (created if missing).</summary>
    /// <param name="connectionString">A SQLite connection string, e.g. <c>Data Source=durableagents.db</c>.</param>
    /// <param name="synchronousFull">
    /// true for <c>PRAGMA synchronous=FULL</c> (survives power loss, slower). The default, NORMAL in WAL
    /// mode, survives process crashes (SIGKILL) but may lose the last commits on power loss.
    /// </param>
    public SqliteOrchestrationStore(string connectionString, bool synchronousFull = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new SqliteConnectionStringBuilder(connectionString) { Pooling = true };
        if (string.IsNullOrWhiteSpace(builder.DataSource))
        {
            throw new ArgumentException("The SQLite connection string has no Data Source (DurableAgents:Sqlite:ConnectionString).", nameof(connectionString));
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(builder.DataSource));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        _connectionString = builder.ToString();
        _synchronousFull = synchronousFull;
    }

    /// <inheritdoc />
    public void Dispose() => _writeGate.Dispose();

    /// <inheritdoc />
    public async Task EnsureCreatedAsync(CancellationToken cancellationToken = default)
    {
        if (_created)
        {
            return;
        }

        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition("PRAGMA journal_mode=WAL;", cancellationToken: cancellationToken)).ConfigureAwait(false);
        await WriteAsync(c, async tx =>
        {
            await c.ExecuteAsync(new CommandDefinition(
                "CREATE TABLE IF NOT EXISTS schema_versions (version TEXT NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var applied = (await c.QueryAsync<string>(new CommandDefinition("SELECT version FROM schema_versions", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false)).ToHashSet();
            foreach (var (version, sql) in SchemaScripts())
            {
                if (applied.Contains(version))
                {
                    continue;
                }

                if (applied.Count > 0)
                {
                    var count = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM instances", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
                    StoreSchema.CheckUpgrade(applied, version, count, $"SQLite file '{new SqliteConnectionStringBuilder(_connectionString).DataSource}'");
                }

                await c.ExecuteAsync(new CommandDefinition(sql, transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
                await c.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO schema_versions (version, applied_at) VALUES (@version, @now)",
                    new { version, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }
        }, cancellationToken).ConfigureAwait(false);
        _created = true;
    }

    /// <summary>Schema scripts embedded in this assembly, in version order.</summary>
    public static IReadOnlyList<(string Version, string Sql)> SchemaScripts()
    {
        var assembly = typeof(SqliteOrchestrationStore).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("schema-", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Version: n["schema-".Length..^".sql".Length], Name: n))
            .OrderBy(x => Version.Parse(x.Version))
            .Select(x => (x.Version, ReadResource(assembly, x.Name)))
            .ToList();
    }

    /// <inheritdoc />
    public async Task CreateInstanceAsync(NewInstance instance, IReadOnlyCollection<OrchestrationRuntimeStatus> dedupeStatuses, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(dedupeStatuses);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, tx => RelationalRules.CreateInstanceAsync(new SqliteTransaction(c, tx), instance, dedupeStatuses, now, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<OrchestrationWorkItem>> TryLockOrchestrationsAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            var items = new List<OrchestrationWorkItem>();
            while (items.Count < maxCount && await LockOneOrchestrationAsync(c, tx, owner, leaseDuration, now, names, cancellationToken).ConfigureAwait(false) is { } item)
            {
                items.Add(item);
            }

            return (IReadOnlyList<OrchestrationWorkItem>)items;
        }, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<OrchestrationWorkItem?> LockOneOrchestrationAsync(SqliteConnection c, DbTransaction tx, string owner, TimeSpan leaseDuration, DateTimeOffset now, NameFilter? names, CancellationToken cancellationToken)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var id = await c.QueryFirstOrDefaultAsync<string>(new CommandDefinition(
            $"""
            SELECT i.instance_id FROM inbox m JOIN instances i ON i.instance_id = m.instance_id
            WHERE m.visible_at <= @now
              AND (i.lock_expires_at IS NULL OR i.lock_expires_at <= @now)
              AND (i.status <> 'Suspended' OR m.event_type IN @control){NameCondition(names, "i.name")}
            ORDER BY m.visible_at, m.id LIMIT 1
            """,
            new { now = nowMs, control = ControlEvents, names = names?.Names ?? [] }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (id is null)
        {
            return null;
        }

        return await TryLeaseAsync(c, tx, id, owner, leaseDuration, now, runningOnly: false, names: null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The SQL condition for a name filter on <paramref name="column"/> (parameter @names), or nothing.</summary>
    private static string NameCondition(NameFilter? names, string column) =>
        names is null ? string.Empty : $" AND lower({column}) {(names.Exclude ? "NOT IN" : "IN")} @names";

    /// <summary>
    /// Leases one instance if nobody holds it (and, with <paramref name="runningOnly"/>, if it is
    /// Running), returning it with its visible messages; null otherwise.
    /// </summary>
    private static async Task<OrchestrationWorkItem?> TryLeaseAsync(SqliteConnection c, DbTransaction tx, string id, string owner, TimeSpan leaseDuration, DateTimeOffset now, bool runningOnly, NameFilter? names, CancellationToken cancellationToken)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var token = $"{owner}/{Guid.NewGuid():N}";
        var expires = now + leaseDuration;
        var leased = await c.ExecuteAsync(new CommandDefinition(
            $"UPDATE instances SET lock_owner = @token, lock_expires_at = @expires WHERE instance_id = @id AND (lock_expires_at IS NULL OR lock_expires_at <= @now){(runningOnly ? " AND status = 'Running'" : string.Empty)}{NameCondition(names, "name")}",
            new { token, expires = expires.ToUnixTimeMilliseconds(), id, now = nowMs, names = names?.Names ?? [] }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (leased != 1)
        {
            return null;
        }

        var row = await c.QuerySingleAsync<StoreRows.InstanceRow>(new CommandDefinition(
            "SELECT * FROM instances WHERE instance_id = @id", new { id }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var status = StoreRows.ParseStatus(row.status);
        var messages = await c.QueryAsync<StoreRows.MessageRow>(new CommandDefinition(
            status == OrchestrationRuntimeStatus.Suspended
                ? "SELECT id, instance_id, execution_id, visible_at, data FROM inbox WHERE instance_id = @id AND visible_at <= @now AND event_type IN @control ORDER BY visible_at, id LIMIT @max"
                : "SELECT id, instance_id, execution_id, visible_at, data FROM inbox WHERE instance_id = @id AND visible_at <= @now ORDER BY visible_at, id LIMIT @max",
            new { id, now = nowMs, control = ControlEvents, max = MaxMessagesPerEpisode }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return row.ToWorkItem(messages.Select(m => m.ToMessage()).ToList(), token, expires);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<P.HistoryEvent>> GetHistoryAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<string>(new CommandDefinition(
            "SELECT data FROM history WHERE instance_id = @instanceId ORDER BY seq", new { instanceId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.Select(HistoryJson.Deserialize).ToList();
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActivityWorkItem>> CommitOrchestrationAsync(OrchestrationWorkItem workItem, OrchestrationCommit commit, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        ArgumentNullException.ThrowIfNull(commit);
        var nowMs = now.ToUnixTimeMilliseconds();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            // The fence: our lease token, not expired, and the history we based the episode on.
            var u = commit.Instance;
            var can = commit.ContinueAsNew;
            var fenced = await c.ExecuteAsync(new CommandDefinition(
                u is null
                    ? """
                      UPDATE instances SET lock_owner = NULL, lock_expires_at = NULL
                      WHERE instance_id = @id AND lock_owner = @token AND lock_expires_at > @now AND history_length = @len
                      """
                    : """
                      UPDATE instances SET lock_owner = NULL, lock_expires_at = NULL,
                        status = @status, output = @output, custom_status = @customStatus, failure = @failure,
                        last_updated_at = @now,
                        completed_at = CASE WHEN @terminal THEN @now ELSE NULL END,
                        history_length = @newLen,
                        execution_id = COALESCE(@newExecutionId, execution_id),
                        input = CASE WHEN @newExecutionId IS NULL THEN input ELSE @newInput END
                      WHERE instance_id = @id AND lock_owner = @token AND lock_expires_at > @now AND history_length = @len
                      """,
                new
                {
                    id = workItem.InstanceId,
                    token = workItem.LockOwner,
                    now = nowMs,
                    len = workItem.HistoryLength,
                    status = u?.Status.ToString(),
                    output = u?.Output,
                    customStatus = u?.CustomStatus,
                    failure = StoreRows.SerializeFailure(u?.Failure),
                    terminal = u?.Status.IsTerminal() ?? false,
                    newLen = can is null ? workItem.HistoryLength + commit.NewEvents.Count : 0,
                    newExecutionId = can?.NewExecutionId,
                    newInput = can?.Input,
                },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (fenced != 1)
            {
                throw new LeaseLostException($"The lease on '{workItem.InstanceId}' is no longer held by {workItem.LockOwner}.");
            }

            if (can is not null)
            {
                // ContinueAsNew starts the next execution with an empty history.
                await c.ExecuteAsync(new CommandDefinition("DELETE FROM history WHERE instance_id = @id", new { id = workItem.InstanceId }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }
            else if (commit.NewEvents.Count > 0)
            {
                await c.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO history (instance_id, seq, event_type, timestamp, data) VALUES (@id, @seq, @type, @ts, @data)",
                    commit.NewEvents.Select((e, i) => new
                    {
                        id = workItem.InstanceId,
                        seq = workItem.HistoryLength + i,
                        type = e.TypeName(),
                        ts = e.Timestamp.ToDateTimeOffset().ToUnixTimeMilliseconds(),
                        data = HistoryJson.Serialize(e),
                    }),
                    tx,
                    cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            if (commit.ConsumedMessageIds.Count > 0)
            {
                await c.ExecuteAsync(new CommandDefinition("DELETE FROM inbox WHERE id IN @ids", new { ids = commit.ConsumedMessageIds }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            var claimCount = Math.Min(commit.ClaimActivities?.Count ?? 0, commit.NewActivities.Count);
            var claimed = new List<ActivityWorkItem>(claimCount);
            if (claimCount > 0)
            {
                var claim = commit.ClaimActivities!;
                var expires = now + claim.Lease;
                foreach (var a in commit.NewActivities.Take(claimCount))
                {
                    var token = $"{claim.Owner}/{Guid.NewGuid():N}";
                    var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(
                        """
                        INSERT INTO activities (instance_id, execution_id, task_id, name, input, visible_at, lock_owner, lock_expires_at, dequeue_count)
                        VALUES (@InstanceId, @ExecutionId, @TaskId, @Name, @Input, @now, @token, @expires, 1) RETURNING id
                        """,
                        new { a.InstanceId, a.ExecutionId, a.TaskId, a.Name, a.Input, now = nowMs, token, expires = expires.ToUnixTimeMilliseconds() },
                        tx,
                        cancellationToken: cancellationToken)).ConfigureAwait(false);
                    claimed.Add(new ActivityWorkItem { Id = id, Task = a, DequeueCount = 1, LockOwner = token, LockExpiresAt = expires });
                }
            }

            if (commit.NewActivities.Count > claimCount)
            {
                await c.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO activities (instance_id, execution_id, task_id, name, input, visible_at) VALUES (@InstanceId, @ExecutionId, @TaskId, @Name, @Input, @now)",
                    commit.NewActivities.Skip(claimCount).Select(a => new { a.InstanceId, a.ExecutionId, a.TaskId, a.Name, a.Input, now = nowMs }),
                    tx,
                    cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            var collisions = await RelationalRules.CreateChildrenAsync(new SqliteTransaction(c, tx), workItem, commit.NewInstances, now, cancellationToken).ConfigureAwait(false);
            foreach (var m in collisions)
            {
                await InsertMessageAsync(c, tx, m, cancellationToken).ConfigureAwait(false);
            }

            foreach (var m in commit.NewMessages)
            {
                await InsertMessageAsync(c, tx, m, cancellationToken).ConfigureAwait(false);
            }

            return (IReadOnlyList<ActivityWorkItem>)claimed;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task AbandonOrchestrationAsync(OrchestrationWorkItem workItem, TimeSpan retryAfter, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, async tx =>
        {
            var released = await c.ExecuteAsync(new CommandDefinition(
                "UPDATE instances SET lock_owner = NULL, lock_expires_at = NULL WHERE instance_id = @id AND lock_owner = @token",
                new { id = workItem.InstanceId, token = workItem.LockOwner }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (released == 1 && workItem.Messages.Count > 0)
            {
                await c.ExecuteAsync(new CommandDefinition(
                    "UPDATE inbox SET visible_at = @at WHERE id IN @ids",
                    new { at = (now + retryAfter).ToUnixTimeMilliseconds(), ids = workItem.Messages.Select(m => m.Id) }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ActivityWorkItem>> TryLockActivitiesAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            var rows = await c.QueryAsync<StoreRows.ActivityRow>(new CommandDefinition(
                $"""
                SELECT id, instance_id, execution_id, task_id, name, input, dequeue_count FROM activities
                WHERE visible_at <= @now AND (lock_expires_at IS NULL OR lock_expires_at <= @now){NameCondition(names, "name")}
                ORDER BY visible_at, id LIMIT @maxCount
                """,
                new { now = nowMs, maxCount, names = names?.Names ?? [] }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var items = new List<ActivityWorkItem>();
            var expires = now + leaseDuration;
            foreach (var row in rows)
            {
                var token = $"{owner}/{Guid.NewGuid():N}";
                await c.ExecuteAsync(new CommandDefinition(
                    "UPDATE activities SET lock_owner = @token, lock_expires_at = @expires, dequeue_count = dequeue_count + 1 WHERE id = @id",
                    new { token, expires = expires.ToUnixTimeMilliseconds(), row.id }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
                items.Add(row.ToWorkItem(token, expires, countIncludesThisLease: false));
            }

            return (IReadOnlyList<ActivityWorkItem>)items;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> RenewActivityLeaseAsync(ActivityWorkItem workItem, TimeSpan leaseDuration, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        var expires = now + leaseDuration;
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var renewed = await WriteAsync(c, tx => c.ExecuteAsync(new CommandDefinition(
            "UPDATE activities SET lock_expires_at = @expires WHERE id = @id AND lock_owner = @token",
            new { expires = expires.ToUnixTimeMilliseconds(), id = workItem.Id, token = workItem.LockOwner }, tx, cancellationToken: cancellationToken)), cancellationToken).ConfigureAwait(false);
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
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            var applied = new List<bool>(completions.Count);
            foreach (var (workItem, result) in completions)
            {
                // Fenced on the lease token only: if our lease expired but nobody took the task over,
                // this is still the one execution, and its result is kept.
                var deleted = await c.ExecuteAsync(new CommandDefinition(
                    "DELETE FROM activities WHERE id = @id AND lock_owner = @token",
                    new { id = workItem.Id, token = workItem.LockOwner }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
                if (deleted == 1)
                {
                    await InsertMessageAsync(c, tx, new OrchestrationMessage(0, workItem.Task.InstanceId, workItem.Task.ExecutionId, result, now), cancellationToken).ConfigureAwait(false);
                }

                applied.Add(deleted == 1);
            }

            var leased = new List<OrchestrationWorkItem>();
            foreach (var id in completions.Where((_, i) => applied[i]).Select(x => x.WorkItem.Task.InstanceId).Distinct(StringComparer.Ordinal))
            {
                if (leased.Count >= maxLeases)
                {
                    break;
                }

                if (await TryLeaseAsync(c, tx, id, owner, leaseDuration, now, runningOnly: true, names, cancellationToken).ConfigureAwait(false) is { } item)
                {
                    leased.Add(item);
                }
            }

            return new ActivityResults(applied, leased);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task AbandonActivityAsync(ActivityWorkItem workItem, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workItem);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, tx => c.ExecuteAsync(new CommandDefinition(
            "UPDATE activities SET lock_owner = NULL, lock_expires_at = NULL WHERE id = @id AND lock_owner = @token",
            new { id = workItem.Id, token = workItem.LockOwner }, tx, cancellationToken: cancellationToken)), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<InstanceRecord?> GetInstanceAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var row = await c.QueryFirstOrDefaultAsync<StoreRows.InstanceRow>(new CommandDefinition(
            "SELECT * FROM instances WHERE instance_id = @instanceId", new { instanceId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return row?.ToRecord(includePayloads);
    }

    /// <inheritdoc />
    public async Task<InstancePage> QueryInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, values) = InstanceQuerySql.Build(query, "instances", nativeArrays: false);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<StoreRows.InstanceRow>(new CommandDefinition(sql, new DynamicParameters(values), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return InstanceQuerySql.ToPage(rows.ToList(), query);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<OrchestrationRuntimeStatus, long>> CountInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default)
    {
        var (sql, values) = InstanceQuerySql.BuildCount(query, "instances");
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<(string Status, long Count)>(new CommandDefinition(sql, new DynamicParameters(values), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return InstanceQuerySql.ToCounts(rows);
    }

    /// <inheritdoc />
    public async Task SendClientMessageAsync(string instanceId, P.HistoryEvent message, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, tx => RelationalRules.SendClientMessageAsync(new SqliteTransaction(c, tx), instanceId, message, now, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<int> PurgeInstanceAsync(string instanceId, bool recursive, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, tx => RelationalRules.PurgeAsync(new SqliteTransaction(c, tx), instanceId, recursive, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task RewindInstanceAsync(RewindRequest request, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, tx => RelationalRules.RewindAsync(new SqliteTransaction(c, tx), request, now, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<int> PurgeInstancesAsync(PurgeFilter filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var terminal = (filter.Statuses is { Count: > 0 } ? filter.Statuses : [OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated])
            .Where(s => s.IsTerminal()).Select(s => s.ToString()).ToArray();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            var ids = (await c.QueryAsync<string>(new CommandDefinition(
                "SELECT instance_id FROM instances WHERE status IN @terminal AND created_at >= @from AND created_at < @to",
                new { terminal, from = filter.CreatedFrom?.ToUnixTimeMilliseconds() ?? long.MinValue, to = filter.CreatedTo?.ToUnixTimeMilliseconds() ?? long.MaxValue },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false)).ToList();
            foreach (var id in ids)
            {
                await DeleteInstanceRowsAsync(c, tx, id, cancellationToken).ConfigureAwait(false);
            }

            return ids.Count;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ReleasedHost> RegisterHostAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, tx => HostLeases.RegisterAsync(c, tx, string.Empty, hostId, incarnation, now, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<HeartbeatResult> HeartbeatAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, tx => HostLeases.HeartbeatAsync(c, tx, string.Empty, hostId, incarnation, now, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ReleasedHost?> ReleaseHostAsync(string hostId, long observedBeats, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, tx => HostLeases.ReleaseDeadAsync(c, tx, string.Empty, hostId, observedBeats, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<ReleasedHost> UnregisterHostAsync(string hostId, string incarnation, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, tx => HostLeases.UnregisterAsync(c, tx, string.Empty, hostId, incarnation, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<HostRecord>> GetHostsAsync(CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await HostLeases.ListAsync(c, null, string.Empty, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> TryConsumeTokenAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenId);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await WriteAsync(c, async tx =>
        {
            await c.ExecuteAsync(new CommandDefinition("DELETE FROM consumed_tokens WHERE expires_at < @now", new { now = now.ToUnixTimeMilliseconds() }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var inserted = await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO consumed_tokens (token_id, expires_at) VALUES (@tokenId, @expires) ON CONFLICT (token_id) DO NOTHING",
                new { tokenId, expires = expiresAt.ToUnixTimeMilliseconds() }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            return inserted == 1;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task ReleaseTokenAsync(string tokenId, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await WriteAsync(c, tx => c.ExecuteAsync(new CommandDefinition("DELETE FROM consumed_tokens WHERE token_id = @tokenId", new { tokenId }, tx, cancellationToken: cancellationToken)), cancellationToken).ConfigureAwait(false);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            await c.OpenAsync(cancellationToken).ConfigureAwait(false);
            await c.ExecuteAsync(new CommandDefinition(
                _synchronousFull ? "PRAGMA busy_timeout=10000; PRAGMA synchronous=FULL;" : "PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL;",
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task WriteAsync(SqliteConnection c, Func<DbTransaction, Task> work, CancellationToken cancellationToken) =>
        await WriteAsync<object?>(c, async tx =>
        {
            await work(tx).ConfigureAwait(false);
            return null;
        }, cancellationToken).ConfigureAwait(false);

    private async Task<T> WriteAsync<T>(SqliteConnection c, Func<DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // BEGIN IMMEDIATE: take the write lock up front, so a read-then-write never deadlocks
            // against another process upgrading at the same time.
            var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            await using var transaction = tx.ConfigureAwait(false);
            var result = await work(tx).ConfigureAwait(false);
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    private static async Task<OrchestrationRuntimeStatus?> StatusOfAsync(SqliteConnection c, DbTransaction tx, string instanceId, CancellationToken cancellationToken)
    {
        var s = await c.QueryFirstOrDefaultAsync<string>(new CommandDefinition(
            "SELECT status FROM instances WHERE instance_id = @instanceId", new { instanceId }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return s is null ? null : StoreRows.ParseStatus(s);
    }

    private static async Task InsertInstanceAsync(SqliteConnection c, DbTransaction tx, NewInstance instance, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        await c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO instances (instance_id, execution_id, name, version, status, input, created_at, last_updated_at, parent_instance_id, history_length, tags)
            VALUES (@InstanceId, @ExecutionId, @Name, @Version, 'Pending', @Input, @now, @now, @parent, 0, @tags)
            """,
            new { instance.InstanceId, instance.ExecutionId, instance.Name, instance.Version, instance.Input, now = nowMs, parent = instance.Parent?.OrchestrationInstance.InstanceId, tags = StoreRows.SerializeTags(instance.Tags) },
            tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        await InsertMessageAsync(c, tx, new OrchestrationMessage(0, instance.InstanceId, instance.ExecutionId, instance.ToStartedEvent(now), instance.StartAt), cancellationToken).ConfigureAwait(false);
    }

    private static Task<int> InsertMessageAsync(SqliteConnection c, DbTransaction tx, OrchestrationMessage m, CancellationToken cancellationToken) =>
        // Messages to instances that do not exist (purged, never created) are dropped here.
        c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO inbox (instance_id, execution_id, event_type, visible_at, data)
            SELECT @instanceId, @executionId, @type, @visibleAt, @data
            WHERE EXISTS (SELECT 1 FROM instances WHERE instance_id = @instanceId)
            """,
            new
            {
                instanceId = m.InstanceId,
                executionId = m.ExecutionId,
                type = m.Event.TypeName(),
                visibleAt = m.VisibleAt.ToUnixTimeMilliseconds(),
                data = HistoryJson.Serialize(m.Event),
            },
            tx,
            cancellationToken: cancellationToken));

    private static Task<int> DeleteInstanceRowsAsync(SqliteConnection c, DbTransaction tx, string instanceId, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            """
            DELETE FROM history WHERE instance_id = @instanceId;
            DELETE FROM inbox WHERE instance_id = @instanceId;
            DELETE FROM activities WHERE instance_id = @instanceId;
            DELETE FROM instances WHERE instance_id = @instanceId;
            """,
            new { instanceId },
            tx,
            cancellationToken: cancellationToken));

    private static string ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"Missing schema resource {name}.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }



    /// <summary>The relational primitives over one SQLite write transaction.</summary>
    private sealed class SqliteTransaction(SqliteConnection c, DbTransaction tx) : IRelationalTransaction
    {
        public Task<OrchestrationRuntimeStatus?> StatusOfAsync(string instanceId, CancellationToken cancellationToken) =>
            SqliteOrchestrationStore.StatusOfAsync(c, tx, instanceId, cancellationToken);

        public Task DeleteInstanceAsync(string instanceId, CancellationToken cancellationToken) =>
            DeleteInstanceRowsAsync(c, tx, instanceId, cancellationToken);

        public Task InsertInstanceAsync(NewInstance instance, DateTimeOffset now, CancellationToken cancellationToken) =>
            SqliteOrchestrationStore.InsertInstanceAsync(c, tx, instance, now, cancellationToken);

        public async Task InsertMessagesAsync(IReadOnlyList<OrchestrationMessage> messages, CancellationToken cancellationToken)
        {
            foreach (var m in messages)
            {
                await InsertMessageAsync(c, tx, m, cancellationToken).ConfigureAwait(false);
            }
        }

        public Task<bool> ReopenFailedAsync(string instanceId, int expectedHistoryLength, int keepHistoryLength, DateTimeOffset now, CancellationToken cancellationToken) =>
            RelationalSql.ReopenFailedAsync(c, tx, string.Empty, instanceId, expectedHistoryLength, keepHistoryLength, now, cancellationToken);

        public Task InsertActivitiesAsync(IReadOnlyList<ActivityTaskRequest> activities, DateTimeOffset now, CancellationToken cancellationToken) =>
            RelationalSql.InsertActivitiesAsync(c, tx, string.Empty, activities, now, cancellationToken);

        public Task<IReadOnlyList<string>> DescendantIdsAsync(string instanceId, CancellationToken cancellationToken) =>
            RelationalSql.DescendantIdsAsync(c, tx, string.Empty, instanceId, cancellationToken);
    }
}
