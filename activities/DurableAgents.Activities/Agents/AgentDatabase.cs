using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// The engine's database as the agent stores use it: the same SQLite file, or the task hub's PostgreSQL
/// schema. Tables are created on first use (idempotent DDL; on PostgreSQL under an advisory lock so hosts
/// starting together do not collide).
/// </summary>
public sealed class AgentDatabase : IDisposable
{
    private readonly Func<DbConnection> _connect;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<string> _created = new(StringComparer.Ordinal);

    private AgentDatabase(Func<DbConnection> connect, bool postgres, string prefix)
    {
        _connect = connect;
        IsPostgres = postgres;
        Prefix = prefix;
    }

    /// <summary>True on PostgreSQL.</summary>
    public bool IsPostgres { get; }

    /// <summary>The table prefix ("" on SQLite, "durableagents_{hub}." on PostgreSQL).</summary>
    public string Prefix { get; }

    /// <summary>The engine's SQLite file.</summary>
    public static AgentDatabase ForSqlite(string connectionString) => new(() => new SqliteConnection(connectionString), postgres: false, prefix: string.Empty);

    /// <summary>The task hub's PostgreSQL schema.</summary>
    public static AgentDatabase ForPostgres(NpgsqlDataSource dataSource, string taskHub)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        return new(dataSource.CreateConnection, postgres: true, prefix: $"durableagents_{taskHub}.");
    }

    /// <summary>An open connection on which <paramref name="ddl"/> (keyed <paramref name="name"/>) has run once in this process.</summary>
    public async Task<DbConnection> OpenAsync(string name, Func<DbConnection, CancellationToken, Task> ddl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ddl);
        var c = _connect();
        try
        {
            await c.OpenAsync(cancellationToken).ConfigureAwait(false);
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
