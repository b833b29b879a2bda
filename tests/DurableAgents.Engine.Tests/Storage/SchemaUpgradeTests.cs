using Dapper;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.DurableTask.Client;
using Npgsql;
using NUnit.Framework;
using System.Data.Common;

namespace DurableAgents.Engine.Tests.Storage;

/// <summary>
/// Schema 2.0.0 stores Durable Task protocol events. A task hub left by the 1.x schema is upgraded
/// when it holds no instances, and refused at start (naming the way out, changing nothing) when it
/// holds instances whose histories are in the pre-SDK format.
/// </summary>
[TestFixtureSource(typeof(StoreKinds), nameof(StoreKinds.All))]
public sealed class SchemaUpgradeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly string _kind;
    private string? _dir;
    private string _hub = string.Empty;

    public SchemaUpgradeTests(string kind) => _kind = kind;

    [TearDown]
    public void TearDown()
    {
        if (_dir is not null)
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(_dir, true);
            _dir = null;
        }

        if (_kind == "postgres" && _hub.Length > 0)
        {
            StoreKinds.DropHub(StoreKinds.PostgresConnectionString!, _hub);
        }
    }

    [Test]
    public async Task From1x_EmptyTaskHub_UpgradesTo200_AndWorks()
    {
        var (store, connect, schema) = await CreateAt1xAsync(withInstance: false);
        using var disposeStore = store as IDisposable;

        await store.EnsureCreatedAsync();

        await using var c = await connect();
        Assert.That(await c.QueryAsync<string>($"SELECT version FROM {schema}schema_versions ORDER BY version"), Is.EqualTo(new[] { "1.0.0", "1.1.0", "2.0.0", "2.1.0" }));
        await store.CreateInstanceAsync(new NewInstance("new-1", "e1", "Flow", null, "1", T0, Tags: new Dictionary<string, string> { ["team"] = "seo" }), [], T0);
        var created = await store.GetInstanceAsync("new-1", true);
        Assert.That(created!.Status, Is.EqualTo(OrchestrationRuntimeStatus.Pending));
        Assert.That(created.Tags, Is.EquivalentTo(new Dictionary<string, string> { ["team"] = "seo" }));
        Assert.That(await store.TryConsumeTokenAsync("t", T0.AddDays(1), T0), Is.True);
    }

    [Test]
    public async Task From1x_WithInstances_RefusedAtStart_NamingTheWayOut_NothingChanged()
    {
        var (store, connect, schema) = await CreateAt1xAsync(withInstance: true);
        using var disposeStore = store as IDisposable;

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => store.EnsureCreatedAsync());

        Assert.That(ex!.Message, Does.Contain("DurableAgents 1.x").And.Contain("1 instance(s)").And.Contain(_kind == "sqlite" ? "DurableAgents:Sqlite:ConnectionString" : "DurableAgents:Postgres:TaskHub"));
        Assert.That(ex.Message, Does.Not.Contain("Password").IgnoreCase);
        await using var c = await connect();
        Assert.That(await c.QueryAsync<string>($"SELECT version FROM {schema}schema_versions ORDER BY version"), Is.EqualTo(new[] { "1.0.0", "1.1.0" }));
        Assert.That(await c.QuerySingleAsync<string>($"SELECT status FROM {schema}instances WHERE instance_id = 'old-1'"), Is.EqualTo("Running"));
    }

    /// <summary>A task hub as the 1.x scripts left it, optionally with an instance in flight.</summary>
    private async Task<(IOrchestrationStore Store, Func<Task<DbConnection>> Connect, string Schema)> CreateAt1xAsync(bool withInstance)
    {
        IReadOnlyList<(string Version, string Sql)> scripts;
        Func<Task<DbConnection>> connect;
        string schema;
        IOrchestrationStore store;
        if (_kind == "sqlite")
        {
            _dir = Directory.CreateTempSubdirectory("da-upgrade").FullName;
            var cs = $"Data Source={Path.Combine(_dir, "store.db")}";
            scripts = SqliteOrchestrationStore.SchemaScripts();
            schema = string.Empty;
            connect = async () =>
            {
                var c = new SqliteConnection(cs);
                await c.OpenAsync();
                return c;
            };
            store = new SqliteOrchestrationStore(cs);
        }
        else
        {
            var cs = StoreKinds.PostgresConnectionString!;
            _hub = "u" + Guid.NewGuid().ToString("N")[..12];
            schema = $"durableagents_{_hub}.";
            scripts = PostgresOrchestrationStore.SchemaScripts();
            connect = async () =>
            {
                var c = new NpgsqlConnection(cs);
                await c.OpenAsync();
                return c;
            };
            store = new PostgresOrchestrationStore(cs, _hub);
        }

        Assert.That(scripts.Select(s => s.Version), Is.EqualTo(new[] { "1.0.0", "1.1.0", "2.0.0", "2.1.0" }));
        await using var c = await connect();
        if (_kind == "postgres")
        {
            await c.ExecuteAsync($"CREATE SCHEMA durableagents_{_hub};");
        }

        await c.ExecuteAsync($"CREATE TABLE {schema}schema_versions (version text NOT NULL PRIMARY KEY, applied_at bigint NOT NULL);");
        foreach (var (version, sql) in scripts.Take(2))
        {
            await c.ExecuteAsync(sql.Replace("{schema}", schema.TrimEnd('.'), StringComparison.Ordinal));
            await c.ExecuteAsync($"INSERT INTO {schema}schema_versions VALUES (@version, 0)", new { version });
        }

        if (withInstance)
        {
            await c.ExecuteAsync($"INSERT INTO {schema}instances (instance_id, execution_id, name, status, created_at, last_updated_at) VALUES ('old-1', 'e1', 'Flow', 'Running', 1, 1)");
        }

        return (store, connect, schema);
    }
}
