using System.Data.Common;
using Dapper;
using DurableAgents.Activities.Agents;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests;

/// <summary>
/// The activity tables (ledger, conversations) come from versioned scripts recorded in
/// activity_schema_versions. A database whose tables an earlier, unversioned build created is
/// adopted with its rows; a new one gets every script once.
/// </summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
public sealed class ActivitySchemaTests(string kind)
{
    private ActivityTestDatabase _db = null!;
    private ActivityDatabase _database = null!;
    private string _prefix = string.Empty;

    [SetUp]
    public void SetUp()
    {
        _db = ActivityTestDatabase.Create(kind);
        _database = _db.OpenActivityDatabase();
        _prefix = _db.Prefix;
    }

    [TearDown]
    public void TearDown()
    {
        _database.Dispose();
        _db.Dispose();
    }

    [Test]
    public async Task Open_NewDatabase_AppliesEveryScriptOnce()
    {
        await using (await _database.OpenAsync(CancellationToken.None))
        {
        }

        await using var c = await OpenRawAsync();
        Assert.That(await c.QueryAsync<string>($"SELECT version FROM {_prefix}activity_schema_versions ORDER BY version"), Is.EqualTo(ActivityDatabase.SchemaScripts(kind == "postgres").Select(s => s.Version)));
        Assert.That(await c.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {_prefix}llm_attempts"), Is.Zero);
        Assert.That(await c.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {_prefix}agent_messages"), Is.Zero);
    }

    [Test]
    public async Task Open_TablesFromAnUnversionedBuild_AdoptedWithTheirRows()
    {
        await using (var c = await OpenRawAsync())
        {
            if (kind == "postgres")
            {
                await c.ExecuteAsync($"CREATE SCHEMA {_prefix.TrimEnd('.')}");
            }

            // What the unversioned build created at first use, with a conversation in it.
            await c.ExecuteAsync(ActivityDatabase.SchemaScripts(kind == "postgres")[0].Sql.Replace("{schema}", _prefix.TrimEnd('.'), StringComparison.Ordinal));
            await c.ExecuteAsync($"INSERT INTO {_prefix}agent_messages (hash, parent, position, body) VALUES ('h1', NULL, 0, '{{}}')");
            var blob = kind == "postgres" ? "bytea" : "BLOB";
            await c.ExecuteAsync(
                $"""
                CREATE TABLE {_prefix}memory_facts (
                    id text PRIMARY KEY, scope text NOT NULL, text text NOT NULL, priority bigint NOT NULL, version bigint NOT NULL,
                    updated_ms bigint NOT NULL, expires_ms bigint NULL, deleted bigint NOT NULL, embedding {blob} NOT NULL);
                INSERT INTO {_prefix}memory_facts VALUES ('f1', 'user:1', 'likes tea', 1, 1, 0, NULL, 0, @e);
                """,
                new { e = new byte[] { 1, 2, 3, 4 } });
        }

        var store = new ConversationStore(_database);
        Assert.That(await store.StoredBytesAsync(CancellationToken.None), Is.EqualTo(2), "the earlier row is still there");

        await using var check = await OpenRawAsync();
        Assert.That(await check.QueryAsync<string>($"SELECT version FROM {_prefix}activity_schema_versions ORDER BY version"), Is.EqualTo(ActivityDatabase.SchemaScripts(kind == "postgres").Select(s => s.Version)));
        Assert.That(await check.QuerySingleAsync<string>($"SELECT text FROM {_prefix}memory_facts WHERE id = 'f1'"), Is.EqualTo("likes tea"), "the earlier fact is still there");
    }

    private async Task<DbConnection> OpenRawAsync()
    {
        var c = _db.CreateConnection();
        await c.OpenAsync();
        return c;
    }
}
