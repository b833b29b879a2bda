using Dapper;

namespace DurableAgents.Activities.Approvals;

/// <summary>
/// Marks single-use tokens (approval links) as used, across all hosts. The custom-handler host
/// keeps them in the engine's store; hosts without it (the isolated Functions app) use
/// <see cref="ActivityDatabaseUsedTokens"/>.
/// </summary>
public interface IUsedTokens
{
    /// <summary>True the first time for a token id, false on every later call. Rows are kept until <paramref name="expiresAt"/>.</summary>
    Task<bool> TryConsumeAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Undoes <see cref="TryConsumeAsync"/> when the action the token stood for could not be carried out.</summary>
    Task ReleaseAsync(string tokenId, CancellationToken cancellationToken);
}

/// <summary>Used tokens in the activity database (SQLite or PostgreSQL, table <c>used_tokens</c>, script 1.2.0).</summary>
public sealed class ActivityDatabaseUsedTokens(ActivityDatabase database) : IUsedTokens
{
    /// <inheritdoc />
    public async Task<bool> TryConsumeAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenId);
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var table = $"{database.Prefix}used_tokens";
        await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {table} WHERE expires_ms < @now", new { now = now.ToUnixTimeMilliseconds() }, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var inserted = await c.ExecuteAsync(new CommandDefinition(
            database.IsPostgres
                ? $"INSERT INTO {table} (token_id, expires_ms) VALUES (@tokenId, @expires) ON CONFLICT (token_id) DO NOTHING"
                : $"INSERT OR IGNORE INTO {table} (token_id, expires_ms) VALUES (@tokenId, @expires)",
            new { tokenId, expires = expiresAt.ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return inserted == 1;
    }

    /// <inheritdoc />
    public async Task ReleaseAsync(string tokenId, CancellationToken cancellationToken)
    {
        var c = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {database.Prefix}used_tokens WHERE token_id = @tokenId", new { tokenId }, cancellationToken: cancellationToken)).ConfigureAwait(false);
    }
}
