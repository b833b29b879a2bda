using System.Text.Json.Nodes;
using DurableAgents.Activities.Live;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Live;

/// <summary>
/// The live event log, in process and in Redis: ids 1, 2, 3 … per instance, reads after a cursor return each
/// event once, readers wake on appends (in Redis: made by another host's connection), and a cursor before the
/// trimmed part gets a notice saying how much it missed.
/// </summary>
[TestFixture("in-process")]
[TestFixture("redis")]
public sealed class AgentEventLogTests(string kind)
{
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-02T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private IAgentEventLog? _shared;

    /// <summary>Two hosts' logs: the same object in process; two Redis connections on one task hub otherwise.</summary>
    private (IAgentEventLog Writer, IAgentEventLog Reader) Hosts(int maxEvents = 5_000)
    {
        var options = new LiveStreamOptions { MaxEvents = maxEvents };
        if (kind == "in-process")
        {
            _shared = new InProcessAgentEventLog(options, _time);
            return (_shared, _shared);
        }

        var configuration = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_REDIS") ?? throw new IgnoreException("no Redis server: run scripts/test.sh");
        var hub = "live-" + Guid.NewGuid().ToString("n");
        var a = new LlmRedis(configuration, hub, NullLogger<LlmRedis>.Instance);
        var b = new LlmRedis(configuration, hub, NullLogger<LlmRedis>.Instance);
        _owned.Add(a);
        _owned.Add(b);
        return (new RedisAgentEventLog(a, options), new RedisAgentEventLog(b, options));
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    internal static JsonObject Text(int n) => AgUi.TextContent("m1", "piece " + n, DateTimeOffset.UnixEpoch);

    private static int PieceOf(AgentStreamItem item) => int.Parse(JsonNode.Parse(item.Json)!["delta"]!.GetValue<string>()["piece ".Length..], System.Globalization.CultureInfo.InvariantCulture);

    internal static async Task<List<AgentStreamItem>> ReadToEndAsync(IAgentEventLog log, string instance, long after, CancellationToken cancellationToken)
    {
        var items = new List<AgentStreamItem>();
        await foreach (var item in AgentEventReader.ReadAsync(log, instance, after, _ => Task.FromResult(true), TimeProvider.System, cancellationToken))
        {
            items.Add(item);
        }

        return items;
    }

    [Test]
    public async Task Ids_IncreaseByOne_AndAReadAfterACursorGivesEachLaterEventOnce()
    {
        var (writer, reader) = Hosts();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ids = new List<long>();
        for (var i = 1; i <= 20; i++)
        {
            ids.Add(await writer.AppendAsync("i-1", Text(i), cts.Token));
        }

        await writer.AppendAsync("i-2", Text(99), cts.Token);
        Assert.That(ids, Is.EqualTo(Enumerable.Range(1, 20).Select(i => (long)i)), "1, 2, 3 … per instance");

        var page = await reader.ReadAsync("i-1", 7, 100, cts.Token);
        Assert.That(page.Entries.Select(e => e.Id), Is.EqualTo(Enumerable.Range(8, 13).Select(i => (long)i)));
        Assert.That(page.Entries.Select(e => PieceOf(new AgentStreamItem(e.Id, e.Json, null))), Is.EqualTo(Enumerable.Range(8, 13)), "the events themselves, in order");
        Assert.That((page.First, page.Last), Is.EqualTo((1L, 20L)));
        Assert.That((await reader.ReadAsync("i-2", 0, 100, cts.Token)).Entries.Select(e => e.Id), Is.EqualTo(new long[] { 1 }), "instances have their own ids");
        Assert.That(await reader.ReadAsync("nobody", 0, 100, cts.Token), Is.EqualTo(new AgentEventPage([], 0, 0)).Using<AgentEventPage>((x, y) => x.Entries.Count == y.Entries.Count && x.First == y.First && x.Last == y.Last));
    }

    [Test]
    public async Task AReader_IsWokenByAppends_AndStopsAtTheRunsEnd()
    {
        var (writer, reader) = Hosts();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await writer.AppendAsync("w-1", Text(1), cts.Token);
        var received = new List<AgentStreamItem>();
        var first = new TaskCompletionSource();
        var reading = Task.Run(
            async () =>
            {
                await foreach (var item in AgentEventReader.ReadAsync(reader, "w-1", 0, _ => Task.FromResult(false), TimeProvider.System, cts.Token))
                {
                    received.Add(item);
                    first.TrySetResult();
                }
            },
            cts.Token);

        await first.Task.WaitAsync(cts.Token); // the reader has read what was there and waits for more
        for (var i = 2; i <= 5; i++)
        {
            await writer.AppendAsync("w-1", Text(i), cts.Token);
        }

        await writer.AppendAsync("w-1", AgUi.RunFinished("w-1", "e", null, null, DateTimeOffset.UnixEpoch), cts.Token);
        await reading.WaitAsync(cts.Token);
        Assert.That(received.Select(r => r.Id), Is.EqualTo(Enumerable.Range(1, 6).Select(i => (long?)i)));
        Assert.That(received[^1].Type, Is.EqualTo("RUN_FINISHED"));
    }

    [Test]
    public async Task AQuietStream_GetsAKeepAlive_AfterTheInterval_AndGoesOn()
    {
        var (writer, reader) = Hosts();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await writer.AppendAsync("k-1", Text(1), cts.Token);
        var received = System.Threading.Channels.Channel.CreateUnbounded<AgentStreamItem>();
        var reading = Task.Run(
            async () =>
            {
                await foreach (var item in AgentEventReader.ReadAsync(reader, "k-1", 0, _ => Task.FromResult(false), _time, cts.Token, keepAlive: TimeSpan.FromSeconds(15)))
                {
                    await received.Writer.WriteAsync(item, cts.Token);
                }

                received.Writer.Complete();
            },
            cts.Token);

        Assert.That((await received.Reader.ReadAsync(cts.Token)).Id, Is.EqualTo(1));
        _time.Advance(TimeSpan.FromSeconds(16)); // quiet for longer than the interval (fake time; the reader checks every 2 s)
        var keepAlive = await received.Reader.ReadAsync(cts.Token);
        Assert.That((keepAlive.IsKeepAlive, keepAlive.Id), Is.EqualTo((true, (long?)null)));

        await writer.AppendAsync("k-1", Text(2), cts.Token);
        await writer.AppendAsync("k-1", AgUi.RunFinished("k-1", "e", null, null, DateTimeOffset.UnixEpoch), cts.Token);
        await reading.WaitAsync(cts.Token);
        var rest = new List<AgentStreamItem>();
        await foreach (var item in received.Reader.ReadAllAsync(cts.Token))
        {
            rest.Add(item);
        }

        Assert.That(rest.Select(r => r.Id), Is.EqualTo(new long?[] { 2, 3 }), "the stream goes on after it; one keep-alive for one quiet interval");
    }

    [Test]
    public async Task ACursorBeforeTheTrimmedPart_GetsANoticeOfHowManyItMissed_ThenTheRest()
    {
        var (writer, reader) = Hosts(maxEvents: 5);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var i = 1; i <= 12; i++)
        {
            await writer.AppendAsync("t-1", Text(i), cts.Token);
        }

        var items = await ReadToEndAsync(reader, "t-1", 3, cts.Token);
        var notice = JsonNode.Parse(items[0].Json)!;
        Assert.That(items[0].Id, Is.Null, "the notice has no id: a client's cursor stays where it was");
        Assert.That(notice["type"]!.GetValue<string>(), Is.EqualTo("CUSTOM"));
        Assert.That(notice["name"]!.GetValue<string>(), Is.EqualTo(AgUi.MissedEvents));
        Assert.That(notice["value"]!["missed"]!.GetValue<long>(), Is.EqualTo(4), "4, 5, 6 and 7 were trimmed");
        Assert.That(notice["value"]!["firstAvailable"]!.GetValue<long>(), Is.EqualTo(8));
        Assert.That(items.Skip(1).Select(i => i.Id), Is.EqualTo(Enumerable.Range(8, 5).Select(i => (long?)i)));

        var fromHeld = await ReadToEndAsync(reader, "t-1", 9, cts.Token);
        Assert.That(fromHeld.Select(i => i.Id), Is.EqualTo(new long?[] { 10, 11, 12 }), "a cursor inside what is held: no notice");
    }

    [Test]
    public async Task ACursorFromALogThatIsGone_GetsANotice_ThenEverythingHeld()
    {
        var (writer, reader) = Hosts();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var i = 1; i <= 3; i++)
        {
            await writer.AppendAsync("g-1", Text(i), cts.Token);
        }

        var items = await ReadToEndAsync(reader, "g-1", 40, cts.Token);
        Assert.That(JsonNode.Parse(items[0].Json)!["name"]!.GetValue<string>(), Is.EqualTo(AgUi.MissedEvents));
        Assert.That(JsonNode.Parse(items[0].Json)!["value"]!["missed"], Is.Null, "unknown how many");
        Assert.That(items.Skip(1).Select(i => i.Id), Is.EqualTo(new long?[] { 1, 2, 3 }));
    }
}

/// <summary>The in-process log's age bound, on fake time (Redis expires a whole stream after its last event, on its own clock).</summary>
public sealed class InProcessAgentEventLogTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-02T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Test]
    public async Task InProcess_EventsOlderThanMaxAge_AreDropped_AndTheReaderIsToldSo()
    {
        var log = new InProcessAgentEventLog(new LiveStreamOptions { MaxAge = TimeSpan.FromMinutes(10) }, _time);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await log.AppendAsync("a-1", AgentEventLogTests.Text(1), cts.Token);
        await log.AppendAsync("a-1", AgentEventLogTests.Text(2), cts.Token);
        _time.Advance(TimeSpan.FromMinutes(11));
        await log.AppendAsync("a-1", AgentEventLogTests.Text(3), cts.Token);

        var items = await AgentEventLogTests.ReadToEndAsync(log, "a-1", 0, cts.Token);
        Assert.That(JsonNode.Parse(items[0].Json)!["value"]!["missed"]!.GetValue<long>(), Is.EqualTo(2));
        Assert.That(items.Skip(1).Select(i => i.Id), Is.EqualTo(new long?[] { 3 }));
    }
}
