using System.Data.Common;
using Dapper;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// Host liveness over the <c>hosts</c> table, the same SQL on SQLite and PostgreSQL: registration
/// (which releases what a previous run under the same id held), heartbeats (which release the leases
/// of hosts whose heartbeat is too old), and unregistration at a graceful stop. A lease belongs to a
/// host when its owner starts with "<c>{host id}/</c>"; releasing it clears owner and expiry, so the
/// work is visible at once and the old holder's commit is fenced off by the changed token.
/// </summary>
internal static class HostLeases
{
    /// <summary>See <see cref="IOrchestrationStore.RegisterHostAsync"/>; runs inside the caller's write transaction.</summary>
    public static async Task<ReleasedHost> RegisterAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Validate(hostId, incarnation);
        var last = await c.QueryFirstOrDefaultAsync<long?>(Cmd($"SELECT heartbeat_at FROM {prefix}hosts WHERE host_id = @hostId", new { hostId }, tx, cancellationToken)).ConfigureAwait(false);
        var nowMs = now.ToUnixTimeMilliseconds();
        await c.ExecuteAsync(Cmd(
            $"""
            INSERT INTO {prefix}hosts (host_id, incarnation, started_at, heartbeat_at) VALUES (@hostId, @incarnation, @nowMs, @nowMs)
            ON CONFLICT (host_id) DO UPDATE SET incarnation = excluded.incarnation, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
            """,
            new { hostId, incarnation, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false);
        var (orchestrations, activities) = await ReleaseAsync(c, tx, prefix, hostId, cancellationToken).ConfigureAwait(false);
        return new ReleasedHost(hostId, last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null, orchestrations, activities);
    }

    /// <summary>See <see cref="IOrchestrationStore.HeartbeatAsync"/>; runs inside the caller's write transaction.</summary>
    /// <param name="lockDead">Appended to the query of dead hosts (PostgreSQL: <c>FOR UPDATE SKIP LOCKED</c>, so two hosts do not sweep the same one).</param>
    public static async Task<HeartbeatResult> HeartbeatAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, string incarnation, DateTimeOffset now, TimeSpan deadAfter, string lockDead, CancellationToken cancellationToken)
    {
        Validate(hostId, incarnation);
        var nowMs = now.ToUnixTimeMilliseconds();
        var own = HostRowState.Ok;
        var updated = await c.ExecuteAsync(Cmd(
            $"UPDATE {prefix}hosts SET heartbeat_at = @nowMs WHERE host_id = @hostId AND incarnation = @incarnation",
            new { hostId, incarnation, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false);
        if (updated == 0)
        {
            var inserted = await c.ExecuteAsync(Cmd(
                $"INSERT INTO {prefix}hosts (host_id, incarnation, started_at, heartbeat_at) VALUES (@hostId, @incarnation, @nowMs, @nowMs) ON CONFLICT (host_id) DO NOTHING",
                new { hostId, incarnation, nowMs },
                tx,
                cancellationToken)).ConfigureAwait(false);
            own = inserted == 1 ? HostRowState.Revived : HostRowState.Conflict;
        }

        var cutoff = (now - deadAfter).ToUnixTimeMilliseconds();
        var dead = (await c.QueryAsync<(string HostId, long HeartbeatAt)>(Cmd(
            $"SELECT host_id, heartbeat_at FROM {prefix}hosts WHERE heartbeat_at < @cutoff AND host_id <> @hostId ORDER BY host_id {lockDead}",
            new { cutoff, hostId },
            tx,
            cancellationToken)).ConfigureAwait(false)).ToList();
        var released = new List<ReleasedHost>(dead.Count);
        foreach (var (deadId, heartbeatAt) in dead)
        {
            await c.ExecuteAsync(Cmd($"DELETE FROM {prefix}hosts WHERE host_id = @deadId AND heartbeat_at = @heartbeatAt", new { deadId, heartbeatAt }, tx, cancellationToken)).ConfigureAwait(false);
            var (orchestrations, activities) = await ReleaseAsync(c, tx, prefix, deadId, cancellationToken).ConfigureAwait(false);
            released.Add(new ReleasedHost(deadId, DateTimeOffset.FromUnixTimeMilliseconds(heartbeatAt), orchestrations, activities));
        }

        return new HeartbeatResult(own, released);
    }

    /// <summary>See <see cref="IOrchestrationStore.UnregisterHostAsync"/>; runs inside the caller's write transaction.</summary>
    public static async Task<ReleasedHost> UnregisterAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, string incarnation, CancellationToken cancellationToken)
    {
        Validate(hostId, incarnation);
        var rows = (await c.QueryAsync<(string Incarnation, long HeartbeatAt)>(Cmd(
            $"SELECT incarnation, heartbeat_at FROM {prefix}hosts WHERE host_id = @hostId", new { hostId }, tx, cancellationToken)).ConfigureAwait(false)).ToList();
        if (rows.Count > 0 && rows[0].Incarnation != incarnation)
        {
            return new ReleasedHost(hostId, DateTimeOffset.FromUnixTimeMilliseconds(rows[0].HeartbeatAt), 0, 0); // another process took the id over: its leases are not ours
        }

        await c.ExecuteAsync(Cmd($"DELETE FROM {prefix}hosts WHERE host_id = @hostId", new { hostId }, tx, cancellationToken)).ConfigureAwait(false);
        var (orchestrations, activities) = await ReleaseAsync(c, tx, prefix, hostId, cancellationToken).ConfigureAwait(false);
        return new ReleasedHost(hostId, rows.Count > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(rows[0].HeartbeatAt) : null, orchestrations, activities);
    }

    /// <summary>See <see cref="IOrchestrationStore.GetHostsAsync"/>.</summary>
    public static async Task<IReadOnlyList<HostRecord>> ListAsync(DbConnection c, string prefix, CancellationToken cancellationToken) =>
        (await c.QueryAsync<(string HostId, string Incarnation, long StartedAt, long HeartbeatAt)>(Cmd(
            $"SELECT host_id, incarnation, started_at, heartbeat_at FROM {prefix}hosts ORDER BY host_id", null, null, cancellationToken)).ConfigureAwait(false))
        .Select(r => new HostRecord(r.HostId, r.Incarnation, DateTimeOffset.FromUnixTimeMilliseconds(r.StartedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.HeartbeatAt)))
        .ToList();

    private static async Task<(int Orchestrations, int Activities)> ReleaseAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, CancellationToken cancellationToken)
    {
        var owner = hostId + "/";
        var orchestrations = await c.ExecuteAsync(Cmd(
            $"UPDATE {prefix}instances SET lock_owner = NULL, lock_expires_at = NULL WHERE lock_owner IS NOT NULL AND substr(lock_owner, 1, length(@owner)) = @owner",
            new { owner },
            tx,
            cancellationToken)).ConfigureAwait(false);
        var activities = await c.ExecuteAsync(Cmd(
            $"UPDATE {prefix}activities SET lock_owner = NULL, lock_expires_at = NULL WHERE lock_owner IS NOT NULL AND substr(lock_owner, 1, length(@owner)) = @owner",
            new { owner },
            tx,
            cancellationToken)).ConfigureAwait(false);
        return (orchestrations, activities);
    }

    private static void Validate(string hostId, string incarnation)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(hostId);
        ArgumentException.ThrowIfNullOrWhiteSpace(incarnation);
        if (hostId.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"A host id must not contain '/' (lease owners are '<host id>/...'): '{hostId}'.", nameof(hostId));
        }
    }

    private static CommandDefinition Cmd(string sql, object? args, DbTransaction? tx, CancellationToken ct) => new(sql, args, tx, cancellationToken: ct);
}
