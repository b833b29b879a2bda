using System.Data.Common;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace DurableAgents.Activities;

/// <summary>
/// The engine's database as the activities' stores use it (the model ledger, conversations, long-term
/// memory): the same SQLite file, or the task hub's PostgreSQL schema, one connection pool for all
/// of them. Their tables come from versioned scripts (<c>Scripts/{sqlite,postgres}/activities-x.y.z.sql</c>,
/// never edited once released), applied in order at first use and recorded in
/// <c>activity_schema_versions</c>; on PostgreSQL under an advisory lock, so hosts starting together
/// do not collide.
/// </summary>
public sealed class ActivityDatabase : IDisposable
{
    private readonly Func<DbConnection> _connect;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<string> _created = new(StringComparer.Ordinal);
    private volatile bool _schemaApplied;

    private ActivityDatabase(Func<DbConnection> connect, bool postgres, string prefix)
    {
        _connect = connect;
        IsPostgres = postgres;
        Prefix = prefix;
    }

    /// <summary>True on PostgreSQL.</summary>
    public bool IsPostgres { get; }

    /// <summary>The table prefix ("" on SQLite, "durableagents_{hub}." on PostgreSQL).</summary>
    public string Prefix { get; }

    /// <summary>Registers the database the engine is configured for (DurableAgents:Store, :Sqlite, :Postgres), once.</summary>
    internal static void TryAdd(IServiceCollection services, IConfiguration configuration)
    {
        var taskHub = configuration["DurableAgents:Postgres:TaskHub"] ?? "default";
        var store = configuration["DurableAgents:Store"] ?? "Sqlite";
        // On PostgreSQL: the process's one data source, registered by the engine's UsePostgres().
        services.TryAddSingleton(sp => string.Equals(store, "Postgres", StringComparison.OrdinalIgnoreCase)
            ? ForPostgres(sp.GetService<NpgsqlDataSource>() ?? NpgsqlDataSource.Create(configuration["DurableAgents:Postgres:ConnectionString"] ?? string.Empty), taskHub)
            : ForSqlite(configuration["DurableAgents:Sqlite:ConnectionString"] ?? "Data Source=.data/durableagents.db"));
    }

    /// <summary>The engine's SQLite file.</summary>
    public static ActivityDatabase ForSqlite(string connectionString) => new(() => new SqliteConnection(connectionString), postgres: false, prefix: string.Empty);

    /// <summary>The task hub's PostgreSQL schema.</summary>
    public static ActivityDatabase ForPostgres(NpgsqlDataSource dataSource, string taskHub)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        return new(dataSource.CreateConnection, postgres: true, prefix: $"durableagents_{taskHub}.");
    }

    /// <summary>The versioned scripts of the activity tables for this database kind, in version order.</summary>
    public static IReadOnlyList<(string Version, string Sql)> SchemaScripts(bool postgres)
    {
        var assembly = typeof(ActivityDatabase).Assembly;
        var prefix = (postgres ? "postgres" : "sqlite") + ".activities-";
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n => (Version: n[prefix.Length..^".sql".Length], Name: n))
            .OrderBy(x => Version.Parse(x.Version))
            .Select(x =>
            {
                using var stream = assembly.GetManifestResourceStream(x.Name)!;
                using var reader = new StreamReader(stream);
                return (x.Version, reader.ReadToEnd());
            })
            .ToList();
    }

    /// <summary>
    /// Begins a write transaction that holds <paramref name="key"/>'s lock until it ends: on SQLite the
    /// database write lock (BEGIN IMMEDIATE), on PostgreSQL a transaction-scoped advisory lock on the key
    /// (<paramref name="space"/> keeps different kinds of keys apart).
    /// </summary>
    public static async Task<DbTransaction> BeginLockedAsync(DbConnection connection, string key, int space, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (connection is SqliteConnection sqlite)
        {
            return sqlite.BeginTransaction(deferred: false);
        }

        var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(hashtextextended(@key, @space))", new { key, space = (long)space }, tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return tx;
    }

    /// <summary>An open connection on which the versioned scripts have been applied.</summary>
    public Task<DbConnection> OpenAsync(CancellationToken cancellationToken) =>
        OpenAsync("schema", static (_, _) => Task.CompletedTask, cancellationToken);

    /// <summary>An open connection on which the versioned scripts, then <paramref name="ddl"/> (keyed <paramref name="name"/>), have run once in this process.</summary>
    public async Task<DbConnection> OpenAsync(string name, Func<DbConnection, CancellationToken, Task> ddl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ddl);
        var c = _connect();
        try
        {
            await c.OpenAsync(cancellationToken).ConfigureAwait(false);
            if (!_schemaApplied)
            {
                await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    if (!_schemaApplied)
                    {
                        await ApplyScriptsAsync(c, cancellationToken).ConfigureAwait(false);
                        _schemaApplied = true;
                    }
                }
                finally
                {
                    _gate.Release();
                }
            }

            bool created;
            lock (_created)
            {
                created = _created.Contains(name);
            }

            if (!created)
            {
                await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    lock (_created)
                    {
                        created = _created.Contains(name);
                    }

                    if (!created)
                    {
                        await ddl(c, cancellationToken).ConfigureAwait(false);
                        lock (_created)
                        {
                            _created.Add(name);
                        }
                    }
                }
                finally
                {
                    _gate.Release();
                }
            }

            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task ApplyScriptsAsync(DbConnection c, CancellationToken cancellationToken)
    {
        var schema = Prefix.TrimEnd('.');
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = tx.ConfigureAwait(false);
        if (IsPostgres)
        {
            await c.ExecuteAsync(new CommandDefinition($"SELECT pg_advisory_xact_lock(7007001); CREATE SCHEMA IF NOT EXISTS {schema};", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        await c.ExecuteAsync(new CommandDefinition(
            $"CREATE TABLE IF NOT EXISTS {Prefix}activity_schema_versions (version text NOT NULL PRIMARY KEY, applied_at bigint NOT NULL);", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var applied = (await c.QueryAsync<string>(new CommandDefinition($"SELECT version FROM {Prefix}activity_schema_versions", transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        foreach (var (version, sql) in SchemaScripts(IsPostgres))
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await c.ExecuteAsync(new CommandDefinition(sql.Replace("{schema}", schema, StringComparison.Ordinal), transaction: tx, cancellationToken: cancellationToken)).ConfigureAwait(false);
            await c.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {Prefix}activity_schema_versions (version, applied_at) VALUES (@version, @now)",
                new { version, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                tx,
                cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="sql"/> as the tables' creation: on PostgreSQL in a transaction holding the DDL advisory lock, after creating the schema.</summary>
    public Task CreateAsync(DbConnection connection, string sql, CancellationToken cancellationToken)
    {
        var text = IsPostgres
            ? $"BEGIN; SELECT pg_advisory_xact_lock(7007001); CREATE SCHEMA IF NOT EXISTS {Prefix.TrimEnd('.')};\n{sql}\nCOMMIT;"
            : sql;
        return connection.ExecuteAsync(new CommandDefinition(text, cancellationToken: cancellationToken));
    }

    /// <inheritdoc />
    public void Dispose() => _gate.Dispose();
}
