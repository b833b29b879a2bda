using Dapper;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Data.Sqlite;
using Npgsql;
using NUnit.Framework;

namespace DurableAgents.Engine.Tests.Storage;

/// <summary>A database left at the previous schema upgrades in place and keeps its data.</summary>
public sealed class SchemaUpgradeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Test]
    public async Task Sqlite_From100_UpgradesTo110_KeepingInstances()
    {
        var dir = Directory.CreateTempSubdirectory("da-upgrade").FullName;
        var cs = $"Data Source={Path.Combine(dir, "store.db")}";
        try
        {
            var (version, script) = SqliteOrchestrationStore.SchemaScripts()[0];
            Assert.That(version, Is.EqualTo("1.0.0"));
            await using (var c = new SqliteConnection(cs))
            {
                await c.OpenAsync();
                await c.ExecuteAsync("CREATE TABLE schema_versions (version TEXT NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL);");
                await c.ExecuteAsync(script);
                await c.ExecuteAsync("INSERT INTO schema_versions VALUES ('1.0.0', 0)");
                await c.ExecuteAsync("INSERT INTO instances (instance_id, execution_id, name, status, created_at, last_updated_at) VALUES ('old-1', 'e1', 'Flow', 'Running', 1, 1)");
            }

            using var store = new SqliteOrchestrationStore(cs);
            await store.EnsureCreatedAsync();

            await using (var c = new SqliteConnection(cs))
            {
                Assert.That(await c.QueryAsync<string>("SELECT version FROM schema_versions ORDER BY version"), Is.EqualTo(new[] { "1.0.0", "1.1.0" }));
            }

            Assert.That((await store.GetInstanceAsync("old-1", false))!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Running));
            Assert.That(await store.TryConsumeTokenAsync("t", T0.AddDays(1), T0), Is.True);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public async Task Postgres_From100_UpgradesTo110_KeepingInstances()
    {
        var cs = StoreKinds.PostgresConnectionString;
        if (cs is null)
        {
            Assert.Ignore("no PostgreSQL server: run scripts/test.sh");
        }

        var hub = "u" + Guid.NewGuid().ToString("N")[..12];
        var schema = $"durableagents_{hub}";
        try
        {
            var (version, script) = PostgresOrchestrationStore.SchemaScripts()[0];
            Assert.That(version, Is.EqualTo("1.0.0"));
            await using (var c = new NpgsqlConnection(cs))
            {
                await c.OpenAsync();
                await c.ExecuteAsync($"CREATE SCHEMA {schema}; CREATE TABLE {schema}.schema_versions (version text PRIMARY KEY, applied_at bigint NOT NULL);");
                await c.ExecuteAsync(script.Replace("{schema}", schema, StringComparison.Ordinal));
                await c.ExecuteAsync($"INSERT INTO {schema}.schema_versions VALUES ('1.0.0', 0)");
                await c.ExecuteAsync($"INSERT INTO {schema}.instances (instance_id, execution_id, name, status, created_at, last_updated_at) VALUES ('old-1', 'e1', 'Flow', 'Running', 1, 1)");
            }

            await using var store = new PostgresOrchestrationStore(cs, hub);
            await store.EnsureCreatedAsync();

            await using (var c = new NpgsqlConnection(cs))
            {
                Assert.That(await c.QueryAsync<string>($"SELECT version FROM {schema}.schema_versions ORDER BY version"), Is.EqualTo(new[] { "1.0.0", "1.1.0" }));
            }

            Assert.That((await store.GetInstanceAsync("old-1", false))!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Running));
            Assert.That(await store.TryConsumeTokenAsync("t", T0.AddDays(1), T0), Is.True);
            Assert.That(await store.TryConsumeTokenAsync("t", T0.AddDays(1), T0), Is.False);
        }
        finally
        {
            StoreKinds.DropHub(cs, hub);
        }
    }
}
