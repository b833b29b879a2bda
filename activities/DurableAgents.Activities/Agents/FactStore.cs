using System.Data.Common;
using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using Dapper;
using DurableAgents.Activities.Contracts.Agents;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// Long-term memory facts with embeddings, per scope. On PostgreSQL with the pgvector extension the
/// embedding is a vector column with an HNSW index (cosine); elsewhere (SQLite, PostgreSQL without pgvector)
/// it is stored as float32 bytes and searched by an exact cosine scan of the scope's facts. Deleted facts
/// are kept (marked) so a version history stays; deleted and expired facts are never recalled.
/// </summary>
public sealed class FactStore(ActivityDatabase database, MemoryOptions options, TimeProvider time)
{
    private bool? _pgvector;

    /// <summary>"pgvector" or "exact": how searches run (known after the first use).</summary>
    public string? SearchKind => _pgvector is null ? null : _pgvector.Value ? "pgvector" : "exact";

    /// <summary>Adds a fact; returns it.</summary>
    public async Task<MemoryFact> AddAsync(string scope, string text, int priority, float[] embedding, TimeSpan? timeToLive, CancellationToken cancellationToken = default)
    {
        Check(embedding);
        var now = time.GetUtcNow();
        var fact = new MemoryFact(Guid.CreateVersion7(now).ToString("N"), scope, text, Math.Clamp(priority, 0, 10), 1, now, timeToLive is { } ttl ? now + ttl : null);
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        await c.ExecuteAsync(new CommandDefinition(
            $"INSERT INTO {database.Prefix}memory_facts (id, scope, text, priority, version, updated_ms, expires_ms, deleted, embedding) VALUES (@Id, @Scope, @Text, @Priority, 1, @updated, @expires, 0, {EmbeddingParameter})",
            new { fact.Id, fact.Scope, fact.Text, fact.Priority, updated = now.ToUnixTimeMilliseconds(), expires = fact.ExpiresAt?.ToUnixTimeMilliseconds(), embedding = EmbeddingValue(embedding) },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return fact;
    }

    /// <summary>Rewrites a fact of <paramref name="scope"/> (version + 1); null when there is no such live fact.</summary>
    public async Task<MemoryFact?> UpdateAsync(string scope, string id, string text, float[] embedding, CancellationToken cancellationToken = default)
    {
        Check(embedding);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var changed = await c.ExecuteAsync(new CommandDefinition(
            $"UPDATE {database.Prefix}memory_facts SET text = @text, version = version + 1, updated_ms = @now, embedding = {EmbeddingParameter} WHERE scope = @scope AND id = @id AND deleted = 0",
            new { scope, id, text, now, embedding = EmbeddingValue(embedding) },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return changed == 0 ? null : await GetAsync(c, scope, id, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Marks a fact of <paramref name="scope"/> deleted; returns it as it was, or null.</summary>
    public async Task<MemoryFact?> DeleteAsync(string scope, string id, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var fact = await GetAsync(c, scope, id, cancellationToken).ConfigureAwait(false);
        if (fact is null)
        {
            return null;
        }

        await c.ExecuteAsync(new CommandDefinition(
            $"UPDATE {database.Prefix}memory_facts SET deleted = 1, version = version + 1, updated_ms = @now WHERE scope = @scope AND id = @id",
            new { scope, id, now },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return fact;
    }

    /// <summary>The live facts of a scope, newest first.</summary>
    public async Task<IReadOnlyList<MemoryFact>> ListAsync(string scope, CancellationToken cancellationToken = default)
    {
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        var rows = await c.QueryAsync<FactRow>(new CommandDefinition(
            $"SELECT {Columns} FROM {database.Prefix}memory_facts WHERE scope = @scope AND deleted = 0 AND (expires_ms IS NULL OR expires_ms > @now) ORDER BY updated_ms DESC, id",
            new { scope, now = time.GetUtcNow().ToUnixTimeMilliseconds() },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return rows.Select(r => r.ToFact()).ToList();
    }

    /// <summary>The <paramref name="topK"/> live facts of <paramref name="scope"/> closest to <paramref name="query"/> (cosine), closest first.</summary>
    public async Task<IReadOnlyList<RecalledFact>> SearchAsync(string scope, float[] query, int topK, CancellationToken cancellationToken = default)
    {
        Check(query);
        var k = Math.Clamp(topK, 1, 100);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var c = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = c.ConfigureAwait(false);
        if (_pgvector == true)
        {
            var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = tx.ConfigureAwait(false);
            await c.ExecuteAsync(new CommandDefinition($"SET LOCAL hnsw.ef_search = {Math.Max(40, k * 4)}", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var rows = await c.QueryAsync<ScoredRow>(new CommandDefinition(
                $"SELECT {Columns}, 1 - (embedding <=> CAST(@query AS vector)) AS Similarity FROM {database.Prefix}memory_facts WHERE scope = @scope AND deleted = 0 AND (expires_ms IS NULL OR expires_ms > @now) ORDER BY embedding <=> CAST(@query AS vector), priority DESC, id LIMIT @k",
                new { scope, query = VectorText(query), now, k },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            var list = rows.Select(r => new RecalledFact(r.ToFact(), r.Similarity)).ToList();
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return list;
        }

        var all = await c.QueryAsync<EmbeddedRow>(new CommandDefinition(
            $"SELECT {Columns}, embedding AS Embedding FROM {database.Prefix}memory_facts WHERE scope = @scope AND deleted = 0 AND (expires_ms IS NULL OR expires_ms > @now)",
            new { scope, now },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return all
            .Select(r => new RecalledFact(r.ToFact(), TensorPrimitives.CosineSimilarity(query, MemoryMarshal.Cast<byte, float>(r.Embedding))))
            .OrderByDescending(f => f.Similarity)
            .ThenByDescending(f => f.Fact.Priority)
            .ThenBy(f => f.Fact.Id, StringComparer.Ordinal)
            .Take(k)
            .ToList();
    }

    private const string Columns = "id AS Id, scope AS Scope, text AS Text, priority AS Priority, version AS Version, updated_ms AS UpdatedMs, expires_ms AS ExpiresMs";

    private string EmbeddingParameter => _pgvector == true ? "CAST(@embedding AS vector)" : "@embedding";

    private object EmbeddingValue(float[] embedding) => _pgvector == true ? VectorText(embedding) : MemoryMarshal.AsBytes(embedding.AsSpan()).ToArray();

    private static string VectorText(float[] v)
    {
        var sb = new StringBuilder(v.Length * 10).Append('[');
        for (var i = 0; i < v.Length; i++)
        {
            sb.Append(i == 0 ? string.Empty : ",").Append(v[i].ToString("R", CultureInfo.InvariantCulture));
        }

        return sb.Append(']').ToString();
    }

    private void Check(float[] embedding)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        if (embedding.Length != options.EmbeddingDimensions)
        {
            throw new ApplicationFailureException(
                $"The embedding has {embedding.Length} dimensions; long-term memory is configured for {options.EmbeddingDimensions} (DurableAgents:Memory:EmbeddingDimensions).",
                AgentErrorTypes.InvalidMemoryRequest,
                nonRetryable: true);
        }
    }

    private async Task<MemoryFact?> GetAsync(DbConnection c, string scope, string id, CancellationToken cancellationToken)
    {
        var row = await c.QuerySingleOrDefaultAsync<FactRow>(new CommandDefinition(
            $"SELECT {Columns} FROM {database.Prefix}memory_facts WHERE scope = @scope AND id = @id AND deleted = 0",
            new { scope, id },
            cancellationToken: cancellationToken)).ConfigureAwait(false);
        return row?.ToFact();
    }

    private Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        database.OpenAsync("memory_facts", CreateAsync, cancellationToken);

    private async Task CreateAsync(DbConnection c, CancellationToken cancellationToken)
    {
        var usePgvector = false;
        if (database.IsPostgres && options.VectorSearch != VectorSearchMode.Exact)
        {
            var available = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'vector'", cancellationToken: cancellationToken)).ConfigureAwait(false) > 0;
            if (available)
            {
                await c.ExecuteAsync(new CommandDefinition("CREATE EXTENSION IF NOT EXISTS vector", cancellationToken: cancellationToken)).ConfigureAwait(false);
                usePgvector = true;
            }
            else if (options.VectorSearch == VectorSearchMode.Pgvector)
            {
                throw new InvalidOperationException("DurableAgents:Memory:VectorSearch is Pgvector, but the PostgreSQL server has no 'vector' extension.");
            }
        }
        else if (options.VectorSearch == VectorSearchMode.Pgvector)
        {
            throw new InvalidOperationException("DurableAgents:Memory:VectorSearch is Pgvector, which needs the PostgreSQL store.");
        }

        // The table comes from the versioned scripts (activities-1.1.0.sql); its embedding column's
        // type follows the settings, so it is added here, once, if the table has none yet.
        var embedding = usePgvector ? $"vector({options.EmbeddingDimensions})" : database.IsPostgres ? "bytea" : "BLOB";
        if (database.IsPostgres)
        {
            var index = usePgvector
                ? $"CREATE INDEX IF NOT EXISTS memory_facts_embedding ON {database.Prefix}memory_facts USING hnsw (embedding vector_cosine_ops);"
                : string.Empty;
            await database.CreateAsync(c, $"ALTER TABLE {database.Prefix}memory_facts ADD COLUMN IF NOT EXISTS embedding {embedding};\n{index}", cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // BEGIN IMMEDIATE: another process adding the column at the same time waits, then sees it.
            var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
            await using var transaction = tx.ConfigureAwait(false);
            var has = await c.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM pragma_table_info('memory_facts') WHERE name = 'embedding'", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            if (has == 0)
            {
                await c.ExecuteAsync(new CommandDefinition($"ALTER TABLE memory_facts ADD COLUMN embedding {embedding}", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            }

            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (usePgvector)
        {
            // A table created earlier without pgvector keeps its bytea column: search it exactly.
            var type = await c.ExecuteScalarAsync<string>(new CommandDefinition(
                "SELECT udt_name FROM information_schema.columns WHERE table_schema = @schema AND table_name = 'memory_facts' AND column_name = 'embedding'",
                new { schema = database.Prefix.TrimEnd('.') },
                cancellationToken: cancellationToken)).ConfigureAwait(false);
            usePgvector = string.Equals(type, "vector", StringComparison.Ordinal);
        }

        _pgvector = usePgvector;
    }

    private record FactRow(string Id, string Scope, string Text, long Priority, long Version, long UpdatedMs, long? ExpiresMs)
    {
        public MemoryFact ToFact() => new(Id, Scope, Text, (int)Priority, (int)Version, DateTimeOffset.FromUnixTimeMilliseconds(UpdatedMs), ExpiresMs is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null);
    }

    private sealed record ScoredRow(string Id, string Scope, string Text, long Priority, long Version, long UpdatedMs, long? ExpiresMs, double Similarity)
        : FactRow(Id, Scope, Text, Priority, Version, UpdatedMs, ExpiresMs);

    private sealed record EmbeddedRow(string Id, string Scope, string Text, long Priority, long Version, long UpdatedMs, long? ExpiresMs, byte[] Embedding)
        : FactRow(Id, Scope, Text, Priority, Version, UpdatedMs, ExpiresMs);
}
