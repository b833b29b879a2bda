using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using Npgsql;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Support;

/// <summary>
/// The stores the conformance suite runs on: SQLite always, PostgreSQL when scripts/test.sh has
/// started a server (DURABLEAGENTS_TEST_POSTGRES). Without one, the PostgreSQL fixtures are
/// reported as skipped rather than silently missing.
/// </summary>
public static class StoreKinds
{
    public static string? PostgresConnectionString => Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES");

    public static IEnumerable<TestFixtureData> All
    {
        get
        {
            yield return new TestFixtureData("sqlite");
            var postgres = new TestFixtureData("postgres");
            if (PostgresConnectionString is null)
            {
                postgres.Ignore("no PostgreSQL server: run scripts/test.sh");
            }

            yield return postgres;
        }
    }

    /// <summary>A factory for a fresh, empty store of the kind (each call a new store object on the same database), and a cleanup action.</summary>
    public static (Func<IServiceProvider, IOrchestrationStore> Factory, Action Cleanup) Create(string kind)
    {
        switch (kind)
        {
            case "sqlite":
                var dir = Path.Combine(Path.GetTempPath(), "durableagents-tests", Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, "store.db");
                return (_ => new SqliteOrchestrationStore($"Data Source={path}"), () =>
                {
                    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                    try
                    {
                        Directory.Delete(dir, true);
                    }
                    catch (IOException)
                    {
                    }
                });
            case "postgres":
                var cs = PostgresConnectionString ?? throw new InvalidOperationException("DURABLEAGENTS_TEST_POSTGRES is not set.");
                var hub = "t" + Guid.NewGuid().ToString("N")[..12];
                return (_ => new PostgresOrchestrationStore(cs, hub), () => DropHub(cs, hub));
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown store kind.");
        }
    }

    public static void DropHub(string connectionString, string hub)
    {
        // Unpooled: after a server restart in a fault test, pooled connections are dead.
        using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
        c.Open();
        using var cmd = new NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE", c);
        cmd.ExecuteNonQuery();
    }
}
