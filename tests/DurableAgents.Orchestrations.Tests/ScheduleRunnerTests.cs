using System.Text.Json;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Schedules;
using DurableAgents.Engine;
using DurableAgents.Engine.Client;
using DurableAgents.Engine.Postgres;
using DurableAgents.Engine.Sqlite;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Testing;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Orchestrations.Tests;

/// <summary>Cron schedules on a fake clock, with two hosts sharing one store (PostgreSQL when available).</summary>
[NonParallelizable]
public sealed class ScheduleRunnerTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 30, TimeSpan.Zero);
    private FakeTimeProvider _time = null!;
    private readonly List<IAsyncDisposable> _hosts = [];
    private Action _cleanup = () => { };
    private Func<IServiceProvider, IOrchestrationStore> _store = null!;

    [SetUp]
    public void SetUp()
    {
        _time = new FakeTimeProvider(Start);
        var cs = Environment.GetEnvironmentVariable("DURABLEAGENTS_TEST_POSTGRES");
        if (cs is not null)
        {
            var hub = "s" + Guid.NewGuid().ToString("N")[..12];
            _store = _ => new PostgresOrchestrationStore(cs, hub);
            _cleanup = () =>
            {
                using var c = new Npgsql.NpgsqlConnection(new Npgsql.NpgsqlConnectionStringBuilder(cs) { Pooling = false }.ToString());
                c.Open();
                using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS durableagents_{hub} CASCADE", c);
                drop.ExecuteNonQuery();
            };
        }
        else
        {
            var dir = Directory.CreateTempSubdirectory("da-sched").FullName;
            _store = _ => new SqliteOrchestrationStore($"Data Source={Path.Combine(dir, "store.db")}");
            _cleanup = () =>
            {
                Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
                Directory.Delete(dir, true);
            };
        }
    }

    [TearDown]
    public async Task TearDown()
    {
        foreach (var h in _hosts)
        {
            await h.DisposeAsync();
        }

        _hosts.Clear();
        _cleanup();
    }

    private async Task<DurableAgentsTestHost> HostAsync()
    {
        var host = await DurableAgentsTestHost.StartAsync(
            b => b
                .AddOrchestrator<ScheduleRunner>()
                .AddActivity<StartScheduledRun>()
                .AddOrchestratorFunc<string?, string?>("Echo", (_, s) => Task.FromResult(s))
                .AddOrchestratorFunc<object?, string>("Forever", (ctx, _) => ctx.WaitForExternalEvent<string>("never")),
            timeProvider: _time,
            storeFactory: _store);
        _hosts.Add(host);
        return host;
    }

    private static async Task<string> StartScheduleAsync(DurableTaskClient client, ScheduleDefinition def) =>
        await client.ScheduleNewOrchestrationInstanceAsync(ScheduleNames.Runner, new ScheduleState(def, null), new StartOrchestrationOptions { InstanceId = ScheduleNames.InstanceId(def.Id) });

    /// <summary>Waits until the schedule has armed its timer for <paramref name="next"/> (it has handled everything before).</summary>
    private static async Task WaitArmedAsync(DurableTaskClient client, string scheduleId, DateTime next)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var expected = JsonSerializer.Serialize(new { next = next }, DurableAgents.Engine.DataConverter.Options);
        while ((await client.GetInstanceAsync(ScheduleNames.InstanceId(scheduleId), false, cts.Token))?.SerializedCustomStatus != expected)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    private static async Task<List<string>> RunsAsync(DurableTaskClient client, string scheduleId)
    {
        var ids = new List<string>();
        await foreach (var i in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = $"{scheduleId}@", PageSize = 1000 }))
        {
            ids.Add(i.InstanceId);
        }

        return ids.Order(StringComparer.Ordinal).ToList();
    }

    private static DateTime At(int minute) => new(2026, 1, 1, 0, minute, 0, DateTimeKind.Utc);

    [Test]
    public async Task EveryFiveMinutes_TwoHosts_EachOccurrenceStartsExactlyOneRun()
    {
        var a = await HostAsync();
        await HostAsync();
        await StartScheduleAsync(a.Client, new ScheduleDefinition("report", "*/5 * * * *", "Echo", Input: JsonDocument.Parse("\"weekly\"").RootElement));
        await WaitArmedAsync(a.Client, "report", At(5));

        _time.Advance(TimeSpan.FromMinutes(5));
        await WaitArmedAsync(a.Client, "report", At(10));
        _time.Advance(TimeSpan.FromMinutes(5));
        await WaitArmedAsync(a.Client, "report", At(15));

        Assert.That(await RunsAsync(a.Client, "report"), Is.EqualTo(new[] { "report@20260101T000500Z", "report@20260101T001000Z" }));
        var run = await a.Client.WaitForInstanceCompletionAsync("report@20260101T000500Z", true);
        Assert.That(run.ReadOutputAs<string>(), Is.EqualTo("weekly"));
    }

    [TestCase(CatchUpPolicy.Skip, 0)]
    [TestCase(CatchUpPolicy.RunOnce, 1)]
    public async Task AnHourOfDowntime_FollowsTheCatchUpPolicy(CatchUpPolicy policy, int expectedRuns)
    {
        var a = await HostAsync();
        await StartScheduleAsync(a.Client, new ScheduleDefinition("sync", "*/5 * * * *", "Echo", CatchUp: policy));
        await WaitArmedAsync(a.Client, "sync", At(5));

        _time.Advance(TimeSpan.FromMinutes(62.5)); // 12 occurrences pass while the timer is overdue; the latest (01:00) is 3 minutes late
        await WaitArmedAsync(a.Client, "sync", At(0).AddHours(1).AddMinutes(5));

        var runs = await RunsAsync(a.Client, "sync");
        Assert.That(runs, Has.Count.EqualTo(expectedRuns));
        if (expectedRuns == 1)
        {
            Assert.That(runs[0], Is.EqualTo("sync@20260101T010000Z"), "one run stands for the missed ones: the latest");
        }
    }

    [TestCase(OverlapPolicy.Skip, 1)]
    [TestCase(OverlapPolicy.Allow, 2)]
    public async Task PreviousRunStillGoing_FollowsTheOverlapPolicy(OverlapPolicy policy, int expectedRuns)
    {
        var a = await HostAsync();
        await StartScheduleAsync(a.Client, new ScheduleDefinition("crawl", "*/5 * * * *", "Forever", Overlap: policy));
        await WaitArmedAsync(a.Client, "crawl", At(5));

        _time.Advance(TimeSpan.FromMinutes(5));
        await WaitArmedAsync(a.Client, "crawl", At(10));
        await a.Client.WaitForInstanceStartAsync("crawl@20260101T000500Z");
        _time.Advance(TimeSpan.FromMinutes(5));
        await WaitArmedAsync(a.Client, "crawl", At(15));

        Assert.That(await RunsAsync(a.Client, "crawl"), Has.Count.EqualTo(expectedRuns));
    }

    [Test]
    public async Task Paused_StartsNothing_ResumedCarriesOn()
    {
        var a = await HostAsync();
        var id = await StartScheduleAsync(a.Client, new ScheduleDefinition("digest", "*/5 * * * *", "Echo"));
        await WaitArmedAsync(a.Client, "digest", At(5));

        await a.Client.SuspendInstanceAsync(id, "pause");
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while ((await a.Client.GetInstanceAsync(id))!.RuntimeStatus != OrchestrationRuntimeStatus.Suspended)
            {
                await Task.Delay(10, cts.Token);
            }
        }

        _time.Advance(TimeSpan.FromMinutes(12));
        await Task.Delay(200);
        Assert.That(await RunsAsync(a.Client, "digest"), Is.Empty, "a paused schedule starts nothing");

        await a.Client.ResumeInstanceAsync(id, "resume");
        await WaitArmedAsync(a.Client, "digest", At(15));
        _time.Advance(TimeSpan.FromMinutes(3));
        await WaitArmedAsync(a.Client, "digest", At(20));

        Assert.That(await RunsAsync(a.Client, "digest"), Is.EqualTo(new[] { "digest@20260101T001500Z" }), "missed while paused: skipped; then on time again");
    }
}
