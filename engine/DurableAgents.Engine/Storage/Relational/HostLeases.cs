using System.Data.Common;
using Dapper;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// Host liveness over the <c>hosts</c> table, the same SQL on SQLite and PostgreSQL: registration
/// (which releases what a previous run under the same id held), heartbeats (a beat counter; the
/// caller decides a host is dead when its count stops changing on the caller's clock), the release
/// of a dead host's leases, and unregistration at a graceful stop. A lease belongs to a
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
            INSERT INTO {prefix}hosts AS h (host_id, incarnation, started_at, heartbeat_at, beats) VALUES (@hostId, @incarnation, @nowMs, @nowMs, 1)
            ON CONFLICT (host_id) DO UPDATE SET incarnation = excluded.incarnation, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, beats = h.beats + 1
            """,
            new { hostId, incarnation, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false);
        var (orchestrations, activities) = await ReleaseAsync(c, tx, prefix, hostId, cancellationToken).ConfigureAwait(false);
        return new ReleasedHost(hostId, last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null, orchestrations, activities);
    }

    /// <summary>See <see cref="IOrchestrationStore.HeartbeatAsync"/>; runs inside the caller's write transaction.</summary>
    public static async Task<HeartbeatResult> HeartbeatAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Validate(hostId, incarnation);
        var nowMs = now.ToUnixTimeMilliseconds();
        var own = HostRowState.Ok;
        var updated = await c.ExecuteAsync(Cmd(
            $"UPDATE {prefix}hosts SET heartbeat_at = @nowMs, beats = beats + 1 WHERE host_id = @hostId AND incarnation = @incarnation",
            new { hostId, incarnation, nowMs },
            tx,
            cancellationToken)).ConfigureAwait(false);
        if (updated == 0)
        {
            var inserted = await c.ExecuteAsync(Cmd(
                $"INSERT INTO {prefix}hosts (host_id, incarnation, started_at, heartbeat_at, beats) VALUES (@hostId, @incarnation, @nowMs, @nowMs, 1) ON CONFLICT (host_id) DO NOTHING",
                new { hostId, incarnation, nowMs },
                tx,
                cancellationToken)).ConfigureAwait(false);
            own = inserted == 1 ? HostRowState.Revived : HostRowState.Conflict;
        }

        var others = (await ListAsync(c, tx, prefix, cancellationToken).ConfigureAwait(false)).Where(h => h.HostId != hostId).ToList();
        return new HeartbeatResult(own, others);
    }

    /// <summary>See <see cref="IOrchestrationStore.ReleaseHostAsync"/>; runs inside the caller's write transaction.</summary>
    public static async Task<ReleasedHost?> ReleaseDeadAsync(DbConnection c, DbTransaction tx, string prefix, string hostId, long observedBeats, CancellationToken cancellationToken)
    {
        var rows = (await c.QueryAsync<long>(Cmd(
            $"DELETE FROM {prefix}hosts WHERE host_id = @hostId AND beats = @observedBeats RETURNING heartbeat_at",
            new { hostId, observedBeats },
            tx,
            cancellationToken)).ConfigureAwait(false)).ToList();
        if (rows.Count == 0)
        {
            return null; // it beat since, or another host released it first
        }

        var (orchestrations, activities) = await ReleaseAsync(c, tx, prefix, hostId, cancellationToken).ConfigureAwait(false);
        return new ReleasedHost(hostId, DateTimeOffset.FromUnixTimeMilliseconds(rows[0]), orchestrations, activities);
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
    public static async Task<IReadOnlyList<HostRecord>> ListAsync(DbConnection c, DbTransaction? tx, string prefix, CancellationToken cancellationToken) =>
        (await c.QueryAsync<(string HostId, string Incarnation, long StartedAt, long HeartbeatAt, long Beats)>(Cmd(
            $"SELECT host_id, incarnation, started_at, heartbeat_at, beats FROM {prefix}hosts ORDER BY host_id", null, tx, cancellationToken)).ConfigureAwait(false))
        .Select(r => new HostRecord(r.HostId, r.Incarnation, DateTimeOffset.FromUnixTimeMilliseconds(r.StartedAt), DateTimeOffset.FromUnixTimeMilliseconds(r.HeartbeatAt), r.Beats))
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
