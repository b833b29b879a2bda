using System.Data.Common;
using DurableAgents.Activities;
using Microsoft.Data.Sqlite;
using Npgsql;
using NUnit.Framework;

namespace DurableAgents.Tests.Support;

/// <summary>
/// A fresh database for the activity stores: a SQLite file in a temp folder, or a task hub schema
/// of its own on the test PostgreSQL (DURABLEAGENTS_TEST_POSTGRES; the test is ignored without
/// one). Disposing deletes the file or drops the schema.
/// </summary>
public sealed class ActivityTestDatabase : IDisposable
{
    private readonly string? _dir;

    private ActivityTestDatabase(string kind, string? dir, string? sqliteConnectionString, NpgsqlDataSource? dataSource, string hub)
    {
        Kind = kind;
        _dir = dir;
        SqliteConnectionString = sqliteConnectionString;
        DataSource = dataSource;
        Hub = hub;
    }

    /// <summary>"sqlite" or "postgres".</summary>
    public string Kind { get; }

    /// <summary>True on PostgreSQL.</summary>
    public bool IsPostgres => DataSource is not null;

    /// <summary>The SQLite connection string (SQLite only).</summary>
    public string? SqliteConnectionString { get; }

    /// <summary>The data source (PostgreSQL only).</summary>
    public NpgsqlDataSource? DataSource { get; }

    /// <summary>The task hub (PostgreSQL only; its schema is <c>durableagents_&lt;hub&gt;</c>).</summary>
    public string Hub { get; }

    /// <summary>The tables' prefix: "" on SQLite, "durableagents_&lt;hub&gt;." on PostgreSQL.</summary>
    public string Prefix => IsPostgres ? $"durableagents_{Hub}." : string.Empty;

    /// <summary>Creates a database of the kind.</summary>
    public static ActivityTestDatabase Create(string kind)
    {
        if (kind == "sqlite")
        {
            var dir = Directory.CreateTempSubdirectory("da-activity-db").FullName;
            return new ActivityTestDatabase(kind, dir, $"Data Source={Path.Combine(dir, "a.db")}", null, string.Empty);
        }

        var cs = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES") ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh");
        return new ActivityTestDatabase(kind, null, null, NpgsqlDataSource.Create(cs), "t" + Guid.NewGuid().ToString("N")[..10]);
    }

    /// <summary>The activity stores' view of it.</summary>
    public ActivityDatabase OpenActivityDatabase() =>
        IsPostgres ? ActivityDatabase.ForPostgres(DataSource!, Hub) : ActivityDatabase.ForSqlite(SqliteConnectionString!);

    /// <summary>A raw connection, not opened.</summary>
    public DbConnection CreateConnection() => IsPostgres ? DataSource!.CreateConnection() : new SqliteConnection(SqliteConnectionString);

    /// <inheritdoc />
    public void Dispose()
    {
        if (DataSource is not null)
        {
            using (var c = DataSource.OpenConnection())
            using (var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{Hub} CASCADE", c))
            {
                drop.ExecuteNonQuery();
            }

            DataSource.Dispose();
        }

        if (_dir is not null)
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(_dir, true);
        }
    }
}
