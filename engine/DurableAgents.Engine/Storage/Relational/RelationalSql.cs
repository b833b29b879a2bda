using System.Data.Common;
using Dapper;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// Primitives whose SQL is the same on SQLite and PostgreSQL (tables named with the store's
/// prefix: "" on SQLite, "durableagents_&lt;hub&gt;." on PostgreSQL).
/// </summary>
internal static class RelationalSql
{
    /// <summary>See <see cref="IRelationalTransaction.ReopenFailedAsync"/>.</summary>
    public static async Task<bool> ReopenFailedAsync(DbConnection c, DbTransaction tx, string prefix, string instanceId, int expectedHistoryLength, int keepHistoryLength, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var reopened = await c.ExecuteAsync(new CommandDefinition(
            $"""
            UPDATE {prefix}instances SET status = 'Running', output = NULL, failure = NULL, completed_at = NULL, last_updated_at = @now,
              history_length = @keep, lock_owner = NULL, lock_expires_at = NULL
            WHERE instance_id = @instanceId AND status = 'Failed' AND history_length = @expected
            """,
            new { instanceId, keep = keepHistoryLength, expected = expectedHistoryLength, now = now.ToUnixTimeMilliseconds() },
            tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        if (reopened != 1)
        {
            return false;
        }

        await c.ExecuteAsync(new CommandDefinition(
            $"DELETE FROM {prefix}history WHERE instance_id = @instanceId AND seq >= @keep", new { instanceId, keep = keepHistoryLength }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return true;
    }

    /// <summary>See <see cref="IRelationalTransaction.InsertActivitiesAsync"/>.</summary>
    public static Task InsertActivitiesAsync(DbConnection c, DbTransaction tx, string prefix, IReadOnlyList<ActivityTaskRequest> activities, DateTimeOffset now, CancellationToken cancellationToken) =>
        activities.Count == 0
            ? Task.CompletedTask
            : c.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {prefix}activities (instance_id, execution_id, task_id, name, input, visible_at) VALUES (@InstanceId, @ExecutionId, @TaskId, @Name, @Input, @now)",
                activities.Select(a => new { a.InstanceId, a.ExecutionId, a.TaskId, a.Name, a.Input, now = now.ToUnixTimeMilliseconds() }),
                tx,
                cancellationToken: cancellationToken));

    /// <summary>See <see cref="IRelationalTransaction.DescendantIdsAsync"/>.</summary>
    public static async Task<IReadOnlyList<string>> DescendantIdsAsync(DbConnection c, DbTransaction tx, string prefix, string instanceId, CancellationToken cancellationToken) =>
        (await c.QueryAsync<string>(new CommandDefinition(
            $"""
            WITH RECURSIVE tree(id) AS (
                SELECT instance_id FROM {prefix}instances WHERE parent_instance_id = @instanceId
                UNION SELECT i.instance_id FROM {prefix}instances i JOIN tree t ON i.parent_instance_id = t.id)
            SELECT id FROM tree
            """,
            new { instanceId },
            tx,
            cancellationToken: cancellationToken)).ConfigureAwait(false)).ToList();
}
