using System.Text.Json;
using System.Text.RegularExpressions;
using DurableAgents.Activities.Agents;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Agents;

/// <summary>
/// Long-term memory on each store: SQLite (exact cosine), PostgreSQL without pgvector (exact cosine) and a
/// real pgvector (PGlite with the pgvector extension behind the wire protocol, HNSW index).
/// </summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
[TestFixture("pgvector")]
public sealed partial class MemoryTests(string backend)
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 24, 9, 0, 0, TimeSpan.Zero));
    private ActivityDatabase? _database;
    private NpgsqlDataSource? _dataSource;
    private string _dir = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "durableagents-memory-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        var hub = "mem" + Guid.NewGuid().ToString("N")[..10];
        switch (backend)
        {
            case "sqlite":
                _database = ActivityDatabase.ForSqlite($"Data Source={Path.Combine(_dir, "m.db")}");
                break;
            case "postgres":
                _dataSource = NpgsqlDataSource.Create(Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES") ?? throw new IgnoreException("no PostgreSQL server: run scripts/test.sh"));
                _database = ActivityDatabase.ForPostgres(_dataSource, hub);
                break;
            default:
                _dataSource = NpgsqlDataSource.Create(Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_PGVECTOR") ?? throw new IgnoreException("no pgvector server: run scripts/test.sh"));
                _database = ActivityDatabase.ForPostgres(_dataSource, hub);
                break;
        }
    }

    [TearDown]
    public async Task TearDownAsync()
    {
        _database?.Dispose();
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private FactStore Store(int dimensions = 3) => new(_database!, new MemoryOptions { EmbeddingDimensions = dimensions }, _time);

    private string ExpectedKind => backend == "pgvector" ? "pgvector" : "exact";

    [Test]
    public async Task TopK_ReturnsTheClosestFactsFirst_OnlyFromTheScope_WithIdsAndVersions()
    {
        var store = Store();
        var north = await store.AddAsync("user:1", "north", 5, [1f, 0f, 0f], null);
        var northEast = await store.AddAsync("user:1", "north-east", 5, [1f, 1f, 0f], null);
        await store.AddAsync("user:1", "east", 5, [0f, 1f, 0f], null);
        await store.AddAsync("user:1", "up", 5, [0f, 0f, 1f], null);
        await store.AddAsync("user:2", "someone else's north", 9, [1f, 0.01f, 0f], null);

        var top = await store.SearchAsync("user:1", [1f, 0.1f, 0f], topK: 2);

        Assert.That(store.SearchKind, Is.EqualTo(ExpectedKind));
        Assert.That(top.Select(f => f.Fact.Text), Is.EqualTo(new[] { "north", "north-east" }));
        Assert.That(top.Select(f => f.Fact.Id), Is.EqualTo(new[] { north.Id, northEast.Id }));
        Assert.That(top.Select(f => f.Fact.Version), Is.All.EqualTo(1));
        Assert.That(top[0].Similarity, Is.EqualTo(0.995).Within(0.001));
        Assert.That(top[1].Similarity, Is.EqualTo(0.774).Within(0.001));
        var everything = await store.SearchAsync("user:1", [0f, 0f, 1f], topK: 10);
        Assert.That(everything, Has.Count.EqualTo(4));
        Assert.That(everything.Select(f => f.Fact.Scope), Is.All.EqualTo("user:1"), "another scope's closer fact is never returned");
        Assert.That((await store.SearchAsync("user:3", [1f, 0f, 0f], topK: 10)), Is.Empty, "a scope with no facts sees none of the others'");
    }

    [Test]
    public async Task UpdatesBumpTheVersion_DeletedAndExpiredFactsAreNotRecalled()
    {
        var store = Store();
        var fact = await store.AddAsync("user:1", "lives in Berlin", 5, [1f, 0f, 0f], null);
        var passing = await store.AddAsync("user:1", "is at a conference", 2, [0f, 1f, 0f], TimeSpan.FromDays(2));
        var wrong = await store.AddAsync("user:1", "likes tea", 5, [0f, 0f, 1f], null);

        var updated = await store.UpdateAsync("user:1", fact.Id, "lives in Lisbon", [0.9f, 0.1f, 0f]);
        var notMine = await store.UpdateAsync("user:2", fact.Id, "hijacked", [1f, 0f, 0f]);
        await store.DeleteAsync("user:1", wrong.Id);
        _time.Advance(TimeSpan.FromDays(3));

        Assert.That(updated!.Version, Is.EqualTo(2));
        Assert.That(notMine, Is.Null, "another scope cannot update the fact");
        var all = await store.SearchAsync("user:1", [1f, 1f, 1f], topK: 10);
        Assert.That(all.Select(f => (f.Fact.Text, f.Fact.Version)), Is.EqualTo(new[] { ("lives in Lisbon", 2) }));
        Assert.That((await store.ListAsync("user:1")).Select(f => f.Id), Is.EqualTo(new[] { fact.Id }));
        Assert.That(passing.ExpiresAt, Is.EqualTo(passing.UpdatedAt.AddDays(2)));
    }

    [Test]
    public async Task AVectorOfTheWrongSize_IsATypedError_AndStoresNothing()
    {
        var store = Store();
        var ex = await Assert.ThrowsAsync<ApplicationFailureException>(() => store.AddAsync("user:1", "x", 5, [1f, 0f], null));
        Assert.That(ex!.ErrorType, Is.EqualTo(AgentErrorTypes.InvalidMemoryRequest));
        Assert.That(ex.Message, Does.Contain("2 dimensions").And.Contain("configured for 3"));
        Assert.That(await store.ListAsync("user:1"), Is.Empty);
    }

    /// <summary>The Mem0 write path with a scripted model: extraction, then ADD / UPDATE / DELETE / NONE consolidation.</summary>
    [Test]
    public async Task Consolidation_AddsUpdatesAndDeletesFacts_ThroughTheModel()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), LlmTestHost.Provider("fast", 0, "primary", server));
        var store = Store(dimensions: 26); // the test server's embeddings: letter counts
        var memory = new MemoryService(host.Models, store, new MemoryOptions { EmbeddingDimensions = 26 }, NullLogger<MemoryService>.Instance);
        var origin = new ModelCallOrigin("mem-1", 1, "mem-1:e:1");

        // 1. Two new facts: both added.
        server.ThenText("""{"facts":[{"text":"The founder lives in Berlin","priority":7},{"text":"The founder likes green tea","priority":3}]}""")
            .ThenReply(req => Prompt(req).Contains("(none)", StringComparison.Ordinal)
                ? """{"operations":[{"event":"ADD","id":null,"text":"The founder lives in Berlin"},{"event":"ADD","id":null,"text":"The founder likes green tea"}]}"""
                : """{"operations":[]}""");
        var first = await memory.RememberAsync(origin, new RememberRequest("user:1", "I live in Berlin and I love green tea."));

        // 2. A move (UPDATE the Berlin fact), a contradiction (DELETE the tea fact), nothing new about the name (NONE).
        server.ThenText("""{"facts":[{"text":"The founder moved to Lisbon","priority":8},{"text":"The founder stopped drinking tea","priority":4}]}""")
            .ThenReply(req => $$"""{"operations":[{"event":"UPDATE","id":"{{IdOf(req, "Berlin")}}","text":"The founder lives in Lisbon"},{"event":"DELETE","id":"{{IdOf(req, "green tea")}}","text":null},{"event":"DELETE","id":"99","text":null}]}""");
        var second = await memory.RememberAsync(origin with { TaskKey = "mem-1:e:2" }, new RememberRequest("user:1", "We moved to Lisbon. No more tea for me."));

        Assert.That(first.Changes.Select(c => (c.Event, c.Text, c.Version)), Is.EqualTo(new[] { ("ADD", "The founder lives in Berlin", 1), ("ADD", "The founder likes green tea", 1) }));
        var berlin = first.Changes[0].FactId;
        var tea = first.Changes[1].FactId;
        Assert.That(second.Extracted, Is.EqualTo(new[] { "The founder moved to Lisbon", "The founder stopped drinking tea" }));
        Assert.That(second.Changes.Select(c => (c.Event, c.FactId, c.Version)), Is.EqualTo(new[] { ("UPDATE", berlin, 2), ("DELETE", tea, 2) }), "a made-up id (99) changes nothing");
        var facts = await store.ListAsync("user:1");
        Assert.That(facts.Select(f => (f.Id, f.Text, f.Version, f.Priority)), Is.EqualTo(new[] { (berlin, "The founder lives in Lisbon", 2, 7) }));

        // The read path through the same embeddings: the Lisbon fact, with its id and version.
        var recalled = await memory.RecallAsync(new RecallRequest("user:1", "Where does the founder live?", 3));
        Assert.That(recalled.Facts.Select(f => (f.Fact.Id, f.Fact.Version)), Is.EqualTo(new[] { (berlin, 2) }));
        Assert.That((await memory.RecallAsync(new RecallRequest("user:2", "Where does the founder live?", 3))).Facts, Is.Empty);

        // Both model calls of each write were accounted to the instance.
        var attempts = await host.Ledger.GetAttemptsAsync("mem-1");
        Assert.That(attempts.Select(a => a.TaskKey.Split('#')[0]), Is.EqualTo(new[] { "mem-1:e:1:extract", "mem-1:e:1:consolidate", "mem-1:e:2:extract", "mem-1:e:2:consolidate" }));
    }

    private static string Prompt(RecordedRequest request) =>
        string.Join("\n", request.Body["messages"]!.AsArray().Select(m => (string?)m!["content"]));

    /// <summary>The short id the consolidation prompt gave the existing fact containing <paramref name="text"/>.</summary>
    private static string IdOf(RecordedRequest request, string text) =>
        IdLine().Matches(Prompt(request)).Single(m => m.Groups[2].Value.Contains(text, StringComparison.Ordinal)).Groups[1].Value;

    [GeneratedRegex(@"- id (\d+): (.*)")]
    private static partial Regex IdLine();
}
