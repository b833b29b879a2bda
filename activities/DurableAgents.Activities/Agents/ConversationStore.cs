using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// Agent conversations, content-addressed: each message is stored once, as a node naming its parent, and
/// its key is the SHA-256 of (parent key, message). A conversation is referenced by its head key, so an
/// agent turn's input and output carry a key, not the transcript: history grows with the new messages of
/// each turn, not with the whole conversation. Writing the same message after the same parent again (a
/// retried turn) finds the existing node.
/// </summary>
public sealed class ConversationStore(ActivityDatabase database)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Appends <paramref name="messages"/> after <paramref name="head"/> (null: a new conversation); returns the new head.</summary>
    public async Task<string?> AppendAsync(string? head, IReadOnlyList<ModelMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
        {
            return head;
        }

        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var position = head is null
            ? 0
            : await c.ExecuteScalarAsync<long?>(new CommandDefinition($"SELECT position FROM {database.Prefix}agent_messages WHERE hash = @head", new { head }, cancellationToken: cancellationToken)).ConfigureAwait(false)
              ?? throw new ApplicationFailureException($"No stored conversation has head '{head}'.", AgentErrorTypes.InvalidMemoryRequest, nonRetryable: true);
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        foreach (var message in messages)
        {
            var body = JsonSerializer.Serialize(message, Json);
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes((head ?? string.Empty) + "\n" + body)));
            position++;
            await c.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {database.Prefix}agent_messages (hash, parent, position, body) VALUES (@hash, @head, @position, @body) ON CONFLICT (hash) DO NOTHING",
                new { hash, head, position, body },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            head = hash;
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return head;
    }

    /// <summary>The conversation ending at <paramref name="head"/>, oldest first.</summary>
    public async Task<IReadOnlyList<ModelMessage>> LoadAsync(string head, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var bodies = await c.QueryAsync<string>(new CommandDefinition(
            $"""
            WITH RECURSIVE chain (hash, parent, position, body) AS (
                SELECT hash, parent, position, body FROM {database.Prefix}agent_messages WHERE hash = @head
                UNION ALL
                SELECT m.hash, m.parent, m.position, m.body FROM {database.Prefix}agent_messages m JOIN chain ON m.hash = chain.parent)
            SELECT body FROM chain ORDER BY position
            """,
            new { head },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        var list = bodies.Select(b => JsonSerializer.Deserialize<ModelMessage>(b, Json)!).ToList();
        return list.Count > 0
            ? list
            : throw new ApplicationFailureException($"No stored conversation has head '{head}'.", AgentErrorTypes.InvalidMemoryRequest, nonRetryable: true);
    }

    /// <summary>Bytes of message bodies stored (all conversations).</summary>
    public async Task<long> StoredBytesAsync(CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        return await c.ExecuteScalarAsync<long>(new CommandDefinition(
            $"SELECT CAST(COALESCE(SUM(LENGTH(body)), 0) AS bigint) FROM {database.Prefix}agent_messages", cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    // agent_messages comes from the versioned activity scripts (Scripts/*/activities-x.y.z.sql).
    private Task<System.Data.Common.DbConnection> OpenAsync(CancellationToken cancellationToken) => database.OpenAsync(cancellationToken);
}
