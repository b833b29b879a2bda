using DurableAgents.Activities;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>The shared rate limiter in each store (SQLite, PostgreSQL, Redis), on fake time: calls count over the last minute, leases settle to real usage.</summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
[TestFixture("redis")]
public sealed class ModelRateLimiterTests(string kind)
{
    private const string Deployment = "openaicompatible|http://127.0.0.1:1/v1|gpt-test";
    private ActivityTestDatabase _database = null!;
    private FakeTimeProvider _time = null!;
    private ActivityDatabase _a = null!;
    private ActivityDatabase _b = null!;

    private RateLimitTestStores _stores = null!;

    [SetUp]
    public void SetUp()
    {
        _database = ActivityTestDatabase.Create(kind == "redis" ? "sqlite" : kind);
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero));
        _a = Open();
        _b = Open();
        _stores = new RateLimitTestStores(kind, _time);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _stores.DisposeAsync();
        _a.Dispose();
        _b.Dispose();
        _database.Dispose();
    }

    // One host's limiter: over its database, or over Redis (falling back to its database).
    private ModelRateLimiter Limiter(ActivityDatabase db) => new(_stores.Store(db));

    // Two hosts' limiters over the same database share one bucket.
    private ActivityDatabase Open() => _database.IsPostgres ? ActivityDatabase.ForPostgres(_database.DataSource!, _database.Hub) : ActivityDatabase.ForSqlite(_database.SqliteConnectionString!);

    [Test]
    public async Task RequestsPerMinute_AreSharedByTwoLimiters_AndCountOverTheLastMinute()
    {
        var limits = new ModelLimits(null, RequestsPerMinute: 2, null);
        var hostA = Limiter(_a);
        var hostB = Limiter(_b);

        var first = await hostA.TryAcquireAsync(Deployment, limits, 100, default);
        var second = await hostB.TryAcquireAsync(Deployment, limits, 100, default);
        var third = await hostA.TryAcquireAsync(Deployment, limits, 100, default);

        Assert.That((first.Granted, second.Granted, third.Granted), Is.EqualTo((true, true, false)));
        Assert.That(third.RetryAfter, Is.EqualTo(ModelRateLimiter.WindowLength), "the first grant leaves the window (a minute and a second)");
        _time.Advance(ModelRateLimiter.WindowLength - TimeSpan.FromSeconds(1));
        Assert.That((await hostB.TryAcquireAsync(Deployment, limits, 100, default)).RetryAfter, Is.EqualTo(TimeSpan.FromSeconds(1)));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That((await hostB.TryAcquireAsync(Deployment, limits, 100, default)).Granted, Is.True);
    }

    [Test]
    public async Task TokensPerMinute_ReserveTheEstimate_AndTheUnusedPartComesBackAtRelease()
    {
        var limits = new ModelLimits(TokensPerMinute: 1000, null, null);
        var limiter = Limiter(_a);

        var big = await limiter.TryAcquireAsync(Deployment, limits, 600, default);
        var refused = await limiter.TryAcquireAsync(Deployment, limits, 600, default);
        Assert.That(big.Granted, Is.True);
        Assert.That(refused.RetryAfter, Is.EqualTo(ModelRateLimiter.RecheckAfter), "200 tokens short, and the call in flight holds 600 that may come back: look again soon");

        await limiter.ReleaseAsync(Deployment, limits, big, usedTokens: 100, default);

        var after = await limiter.TryAcquireAsync(Deployment, limits, 600, default);
        Assert.That(after.Granted, Is.True, "500 unused tokens came back at once");
        await limiter.ReleaseAsync(Deployment, limits, after, usedTokens: 600, default); // all used: 300 left, nothing in flight
        var shortfall = await limiter.TryAcquireAsync(Deployment, limits, 500, default);
        Assert.That(shortfall.RetryAfter, Is.EqualTo(ModelRateLimiter.WindowLength), "200 short with nothing in flight to come back: until the first grants leave the window");
    }

    [Test]
    public async Task ACallLargerThanAMinutesTokens_WaitsForAnEmptyWindow_ThenGoes()
    {
        var limits = new ModelLimits(TokensPerMinute: 1000, null, null);
        var limiter = Limiter(_a);
        var spent = await limiter.TryAcquireAsync(Deployment, limits, 500, default);
        await limiter.ReleaseAsync(Deployment, limits, spent, usedTokens: 500, default); // all of it used: nothing comes back

        var huge = await limiter.TryAcquireAsync(Deployment, limits, 5000, default);
        Assert.That(huge.RetryAfter, Is.EqualTo(ModelRateLimiter.WindowLength), "it waits for an empty window");
        _time.Advance(ModelRateLimiter.WindowLength);
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 5000, default)).Granted, Is.True);
    }

    [Test]
    public async Task MaxConcurrent_CountsCallsInFlight_AcrossLimiters()
    {
        var limits = new ModelLimits(null, null, MaxConcurrent: 1);
        var hostA = Limiter(_a);
        var hostB = Limiter(_b);

        var running = await hostA.TryAcquireAsync(Deployment, limits, 10, default);
        var blocked = await hostB.TryAcquireAsync(Deployment, limits, 10, default);
        await hostA.ReleaseAsync(Deployment, limits, running, 10, default);
        var next = await hostB.TryAcquireAsync(Deployment, limits, 10, default);

        Assert.That((running.Granted, blocked.Granted, next.Granted), Is.EqualTo((true, false, true)));

        // A lease whose host died ends by itself.
        Assert.That((await hostA.TryAcquireAsync(Deployment, limits, 10, default)).Granted, Is.False);
        _time.Advance(ModelRateLimiter.LeaseLifetime);
        Assert.That((await hostA.TryAcquireAsync(Deployment, limits, 10, default)).Granted, Is.True);
    }

    [Test]
    public async Task TheProvidersHeaders_CountAsUsed_AndA429TakesEverythingUntilItsRetryAfter()
    {
        var limits = new ModelLimits(TokensPerMinute: 10_000, RequestsPerMinute: 60, null);
        var limiter = Limiter(_a);
        await limiter.TryAcquireAsync(Deployment, limits, 100, default);

        // Another client of the deployment used most of it: the provider says 0 requests remain.
        await limiter.ObserveAsync(Deployment, limits, remainingRequests: 0, remainingTokens: 5_000, throttledFor: null, default);
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 100, default)).RetryAfter, Is.InRange(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.1)), "what the provider counts frees up over its minute: about one request a second");

        // A 429 with Retry-After 20 s: nothing goes for 20 s, then the bucket refills from empty.
        await limiter.ObserveAsync(Deployment, limits, null, null, throttledFor: TimeSpan.FromSeconds(20), default);
        _time.Advance(TimeSpan.FromSeconds(19));
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 100, default)).Granted, Is.False);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 100, default)).Granted, Is.True, "after the Retry-After there is room again");
    }

    [Test]
    public async Task RequestsACallSentBeyondItsFirst_CountAgainstTheLimit()
    {
        var limits = new ModelLimits(null, RequestsPerMinute: 3, null);
        var limiter = Limiter(_a);

        var retried = await limiter.TryAcquireAsync(Deployment, limits, 1, default);
        await limiter.ReleaseAsync(Deployment, limits, retried, 0, default, extraRequests: 1); // one HTTP retry (or a repair) under the same grant

        Assert.That((await limiter.SnapshotAsync(Deployment, default)).Requests, Is.EqualTo(2));
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 1, default)).Granted, Is.True);
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 1, default)).Granted, Is.False, "the provider saw three requests");
    }

    [Test]
    public async Task DifferentDeployments_HaveTheirOwnBuckets()
    {
        var limits = new ModelLimits(null, RequestsPerMinute: 1, null);
        var limiter = Limiter(_a);

        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 1, default)).Granted, Is.True);
        Assert.That((await limiter.TryAcquireAsync(Deployment + "-other", limits, 1, default)).Granted, Is.True);
        Assert.That((await limiter.TryAcquireAsync(Deployment, limits, 1, default)).Granted, Is.False);
    }
}

/// <summary>Rate limits in a running host: the real SDK, the local server with a quota, and the durable wait.</summary>
public sealed class ModelRateLimitTests
{
    [Test]
    public async Task AtTheLimit_TheCallHandsBackRetryAfter_AndTheWorkflowWaitsOnADurableTimer_With_No429()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ChatDelay = TimeSpan.FromMilliseconds(400); // the first calls are still in flight when the last asks
        server.QuotaRequestsPerMinute = 3;
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server))
        {
            ["DurableAgents:Llm:Profiles:fast:Providers:0:TokensPerMinute"] = "2400",
            ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "3",
            ["DurableAgents:Llm:RateLimitInlineWait"] = "00:00:00", // never wait in the activity: always durably
        };
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), settings);
        var request = new Contracts.Llm.ModelRequest { Messages = [Contracts.Llm.ModelMessage.User("hi")], Cache = Contracts.Llm.ModelCacheMode.None, MaxOutputTokens = 1000 };

        // Each call reserves about 1,000 tokens: two fit in 2,400, the third must wait for the first two to settle.
        var ids = new[] { "rl-1", "rl-2", "rl-3" };
        foreach (var id in ids)
        {
            await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(Ask), request, new Microsoft.DurableTask.StartOrchestrationOptions { InstanceId = id });
        }

        var token = TestTimeout.Token(60);
        foreach (var id in ids)
        {
            var done = await host.Client.WaitForInstanceCompletionAsync(id, true, token);
            Assert.That(done.RuntimeStatus, Is.EqualTo(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
        }

        Assert.That(server.ChatRequests, Has.Count.EqualTo(3), "one request per call: none refused and retried");
        Assert.That(server.QuotaRefusals, Is.Zero, "the limiter kept the deployment under its quota");
        var waited = new List<string>();
        foreach (var id in ids)
        {
            var history = await host.Backend.GetHistoryEventsAsync(id, token);
            if (history.Any(e => e.TimerCreated is not null))
            {
                waited.Add(id);
                Assert.That(history.Count(e => e.TaskScheduled?.Name == "CallModel"), Is.EqualTo(2), "it called again after the timer");
            }
        }

        Assert.That(waited, Has.Count.EqualTo(1), "exactly one call found the bucket empty");
        Assert.That(host.Logs.Entries.Select(e => e.Message), Has.Some.Contains("is at its rate limit; the workflow waits"));

        // Who waited (the dashboard's cost page): that instance, its workflow and lane, from its first refusal to its grant.
        var waits = await host.Services.GetRequiredService<RateLimitWaits>().ListAsync(DateTimeOffset.UtcNow.AddHours(-1), 10, token);
        Assert.That(waits.Select(w => (w.Deployment, w.InstanceId, w.Workflow, w.Lane)), Is.EqualTo(new[] { ("limited", waited[0], nameof(Ask), "interactive") }));
        Assert.That(waits[0].Waited, Is.GreaterThan(TimeSpan.Zero));
    }

    [Test]
    public async Task WhenTheProviderSaysNoRequestsRemain_TheNextCallWaitsDurably_InsteadOfBeingSent()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ReportRemainingRequests = 0;
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server))
        {
            ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "60", // configured higher than what is left
            ["DurableAgents:Llm:RateLimitInlineWait"] = "00:00:00",
            ["DurableAgents:Llm:Cache:Enabled"] = "false",
        };
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), settings);
        var request = new Contracts.Llm.ModelRequest { Messages = [Contracts.Llm.ModelMessage.User("hi")] };
        using var waits = new MetricCapture("durableagents.llm.ratelimit.waits");

        var first = await host.AskAsync(request, "seen-1");
        var second = await host.AskAsync(request, "seen-2");

        Assert.That((first.RuntimeStatus, second.RuntimeStatus), Is.EqualTo((Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed, Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed)));
        Assert.That((await host.Backend.GetHistoryEventsAsync("seen-1")).Any(e => e.TimerCreated is not null), Is.False);
        Assert.That((await host.Backend.GetHistoryEventsAsync("seen-2")).Any(e => e.TimerCreated is not null), Is.True, "the limiter learned from the header and made the second call wait");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
        Assert.That(waits.Total, Is.GreaterThanOrEqualTo(1), "the wait is on the metrics");
    }

    [Test]
    public async Task ALimitOfZeroOrLess_IsRefusedAtStart_NamingTheSetting()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server)) { ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "0" };

        var ex = await Assert.CatchAsync(async () => await LlmTestHost.StartAsync(settings));

        Assert.That(ex!.Message, Does.Contain("DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute must be a positive number"));
    }

    [Test]
    public async Task AnUnknownLane_IsRefusedAtStart_NamingTheSetting()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server)) { ["DurableAgents:Llm:Priorities:SeoAudit"] = "Urgent" };

        var ex = await Assert.CatchAsync(async () => await LlmTestHost.StartAsync(settings));

        Assert.That(ex!.ToString(), Does.Contain("DurableAgents:Llm:Priorities:SeoAudit"));
    }

    [Test]
    public async Task AnUnknownPriorityTag_IsLogged_AndTheCallTakesTheConfiguredLane()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server))
        {
            ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "60",
            ["DurableAgents:Llm:Cache:Enabled"] = "false",
        };
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), settings);

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(Ask), new Contracts.Llm.ModelRequest { Messages = [Contracts.Llm.ModelMessage.User("hi")] }, new Microsoft.DurableTask.StartOrchestrationOptions { InstanceId = "odd-tag", Tags = new Dictionary<string, string> { [ModelService.PriorityTag] = "urgent" } });
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token(30));

        Assert.That(done.RuntimeStatus, Is.EqualTo(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed));
        Assert.That(host.Logs.Entries.Where(e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning).Select(e => e.Message), Has.Some.Contains("odd-tag").And.Some.Contains("'urgent'"));
    }
}

/// <summary>The agent loop waits for capacity between turns, durably, and says nothing while it waits.</summary>
public sealed class AgentRateLimitTests
{
    [Test]
    public async Task AnAgentTurnWithoutCapacity_WaitsOnATimer_AndIsAskedAgain_WithNoEmptyAnswerInTheConversation()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        server.ChatDelay = TimeSpan.FromMilliseconds(400);
        server.DefaultText = "Here is my answer.";
        // Both profiles name the same deployment, so they share its limits.
        var settings = new Dictionary<string, string?>(LlmTestHost.Provider("fast", 0, "limited", server).Concat(LlmTestHost.Provider("strong", 0, "limited-strong", server)))
        {
            ["DurableAgents:Llm:Profiles:fast:Providers:0:MaxConcurrent"] = "1",
            ["DurableAgents:Llm:Profiles:strong:Providers:0:MaxConcurrent"] = "1",
            ["DurableAgents:Llm:RateLimitInlineWait"] = "00:00:00",
            ["DurableAgents:Llm:Cache:Enabled"] = "false", // the two chats ask the same: both must reach the model
        };
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), settings);
        var ids = new[] { "ag-1", "ag-2" };
        foreach (var id in ids)
        {
            await host.Client.ScheduleNewOrchestrationInstanceAsync("AgentChat", new DurableAgents.Orchestrations.AgentChatInput("Say something.", Agent: "writer"), new Microsoft.DurableTask.StartOrchestrationOptions { InstanceId = id });
        }

        var token = TestTimeout.Token(60);
        var waited = 0;
        foreach (var id in ids)
        {
            var done = await host.Client.WaitForInstanceCompletionAsync(id, true, token);
            Assert.That(done.RuntimeStatus, Is.EqualTo(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed), done.FailureDetails?.ToString());
            var result = done.ReadOutputAs<Contracts.Agents.AgentRunResult>()!;
            Assert.That(result.Text, Is.EqualTo("Here is my answer."));
            Assert.That(result.Turns, Is.EqualTo(1), "the wait is not a turn");
            var history = await host.Backend.GetHistoryEventsAsync(id, token);
            waited += history.Any(e => e.TimerCreated is not null) ? 1 : 0;
        }

        Assert.That(waited, Is.EqualTo(1), "one chat found the deployment busy (MaxConcurrent 1) and waited");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(2));
    }
}

/// <summary>Sums a counter of the DurableAgents.GenAI meter while it lives.</summary>
internal sealed class MetricCapture : IDisposable
{
    private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
    private long _total;

    public MetricCapture(string instrument)
    {
        _listener.InstrumentPublished = (i, l) =>
        {
            if (i.Name == instrument)
            {
                l.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _total, value));
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public void Dispose() => _listener.Dispose();
}

/// <summary>Priorities at a rate-limited deployment, on fake time: interactive first, batch never starved.</summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
[TestFixture("redis")]
public sealed class ModelPriorityTests(string kind)
{
    private const string Deployment = "openaicompatible|http://127.0.0.1:1/v1|gpt-test";
    private static readonly ModelLimits TenPerMinute = new(null, RequestsPerMinute: 10, null);
    private ActivityTestDatabase _database = null!;
    private ActivityDatabase _db = null!;
    private FakeTimeProvider _time = null!;
    private ModelRateLimiter _limiter = null!;
    private RateLimitTestStores _stores = null!;

    [SetUp]
    public void SetUp()
    {
        _database = ActivityTestDatabase.Create(kind == "redis" ? "sqlite" : kind);
        _db = _database.IsPostgres ? ActivityDatabase.ForPostgres(_database.DataSource!, _database.Hub) : ActivityDatabase.ForSqlite(_database.SqliteConnectionString!);
        _time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero));
        _stores = new RateLimitTestStores(kind, _time);
        // Reserve 2 of 10; interactive lane 7 while batch waits. Bursts at one instant: batch pacing is tested on its own.
        _limiter = new ModelRateLimiter(_stores.Store(_db), interactiveReserve: 0.2, batchShare: 0.3, batchPaceWindow: TimeSpan.Zero);
    }

    [TearDown]
    public async Task TearDown()
    {
        await _stores.DisposeAsync();
        _db.Dispose();
        _database.Dispose();
    }

    private async Task<int> GrantedAsync(ModelPriority lane, int tries)
    {
        var granted = 0;
        for (var i = 0; i < tries; i++)
        {
            granted += (await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, lane, default)).Granted ? 1 : 0;
        }

        return granted;
    }

    [Test]
    public async Task ASaturatingBatchJob_LeavesTheReserve_SoAPersonDoesNotWaitBehindIt()
    {
        Assert.That(await GrantedAsync(ModelPriority.Batch, 20), Is.EqualTo(8), "batch stops at the reserve");
        Assert.That(await GrantedAsync(ModelPriority.Interactive, 1), Is.EqualTo(1), "the interactive call goes at once");
    }

    [Test]
    public async Task InteractiveAlone_MayUseTheWholeDeployment()
    {
        Assert.That(await GrantedAsync(ModelPriority.Interactive, 20), Is.EqualTo(10));
    }

    [Test]
    public async Task WhileBatchWaits_InteractiveKeepsToItsLane_SoBatchGetsItsShare()
    {
        Assert.That(await GrantedAsync(ModelPriority.Batch, 20), Is.EqualTo(8), "batch takes all but the reserve, and the rest of its calls wait");

        // A minute later the window is empty and batch calls are still waiting.
        _time.Advance(ModelRateLimiter.WindowLength + TimeSpan.FromSeconds(1));
        var interactive = await GrantedAsync(ModelPriority.Interactive, 20);
        var batch = await GrantedAsync(ModelPriority.Batch, 20);

        Assert.That(interactive, Is.EqualTo(7), "interactive keeps to its lane (1 − 0.3 of 10) while batch waits");
        Assert.That(batch, Is.EqualTo(3), "batch gets its guaranteed share: the reserve is not held back once interactive's lane is used up");
    }

    [Test]
    public async Task WhileAPersonWaits_BatchKeepsToItsShare_SoWhatFreesUpNextGoesToThem()
    {
        // One request a second: 2 interactive, 6 batch (all the reserve and interactive's recent use leave it), 2 interactive.
        var lanes = new[] { ModelPriority.Interactive, ModelPriority.Interactive, ModelPriority.Batch, ModelPriority.Batch, ModelPriority.Batch, ModelPriority.Batch, ModelPriority.Batch, ModelPriority.Batch, ModelPriority.Interactive, ModelPriority.Interactive };
        foreach (var lane in lanes)
        {
            Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, lane, default)).Granted, Is.True);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var refused = await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, "chat-1", default);
        Assert.That(refused.Granted, Is.False);
        Assert.That(refused.RetryAfter, Is.EqualTo(TimeSpan.FromSeconds(51)), "until the first grant leaves the window");

        // The person comes back late (their timer, their replay): 4 grants have left meanwhile, and batch,
        // holding 4 of the 6 the reserve leaves it, would take the next slot, but a person is waiting and
        // batch is above its share of 3.
        _time.Advance(TimeSpan.FromSeconds(54));
        var batch = await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, "job-1", default);
        Assert.That(batch.Granted, Is.False, "batch keeps to its share while a person waits");
        Assert.That(batch.RetryAfter, Is.EqualTo(ModelRateLimiter.RecheckAfter), "and looks again when they should have been served");

        var served = await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, "chat-1", default);
        Assert.That(served.Granted, Is.True, "the capacity that freed up went to the person");
        Assert.That(served.Waited, Is.EqualTo(TimeSpan.FromSeconds(54)), "since the first refusal");

        // Nobody is waiting any more: batch goes, and its wait is counted from its own first refusal.
        _time.Advance(TimeSpan.FromSeconds(1));
        var next = await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, "job-1", default);
        Assert.That(next.Granted, Is.True);
        Assert.That(next.Waited, Is.EqualTo(TimeSpan.FromSeconds(1)));
        var snapshot = await _limiter.SnapshotAsync(Deployment, default);
        Assert.That((snapshot.Requests, snapshot.WaitingInteractive, snapshot.WaitingBatch, snapshot.Store), Is.EqualTo((7, 0, 0, kind)));
    }

    [Test]
    public async Task ABatchCallBehindOthers_IsToldToComeBackNearItsTurn_NotEverySecond()
    {
        // Batch takes its 8 of 10, one a second; then 20 batch calls queue up.
        for (var i = 0; i < 8; i++)
        {
            Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, default)).Granted, Is.True);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        var waits = new List<TimeSpan>();
        for (var k = 0; k < 20; k++)
        {
            waits.Add((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, $"job-{k}", default)).RetryAfter);
            _time.Advance(TimeSpan.FromMilliseconds(1));
        }

        var windowFrees = ModelRateLimiter.WindowLength - TimeSpan.FromSeconds(8); // the first grant leaves
        Assert.That(waits[0], Is.EqualTo(windowFrees), "the first in line waits for the window");
        Assert.That(waits[19], Is.EqualTo(TimeSpan.FromMilliseconds(ModelRateLimiter.QueueHintShare * 19 * ModelRateLimiter.WindowLength.TotalMilliseconds / 8)), "19 ahead at 8 a minute");
        Assert.That(waits.Select((w, k) => w + TimeSpan.FromMilliseconds(k)), Is.Ordered, "later in line, later back (each asked 1 ms after the one before)");

        // Asking again keeps its place; a newcomer queues behind everyone, up to the cap.
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, "job-19", default)).RetryAfter, Is.EqualTo(waits[19]));
        Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Batch, "job-new", default)).RetryAfter, Is.EqualTo(ModelRateLimiter.MaxQueueHint), "20 ahead would be 2 min 2 s: capped");
        Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, "chat", default)).RetryAfter, Is.LessThanOrEqualTo(windowFrees), "interactive calls do not queue behind batch");
    }

    [Test]
    public async Task BatchIsPaced_SoABurstDoesNotTakeAMinutesQuotaAtOnce()
    {
        var limits = new ModelLimits(null, RequestsPerMinute: 120, null);
        var paced = new ModelRateLimiter(_stores.Store(_db)); // defaults: reserve 10 %, share 20 %, pace window 5 s
        async Task<int> Burst(ModelRateLimiter limiter, ModelPriority lane, int calls)
        {
            var granted = 0;
            for (var i = 0; i < calls; i++)
            {
                granted += (await limiter.TryAcquireAsync(Deployment, limits, 1, lane, default)).Granted ? 1 : 0;
            }

            return granted;
        }

        Assert.That(await Burst(paced, ModelPriority.Batch, 50), Is.EqualTo(9), "108 a minute for batch (all but the reserve) is 9 per 5 s");
        Assert.That(await Burst(paced, ModelPriority.Interactive, 5), Is.EqualTo(5), "interactive calls are not paced");
        _time.Advance(ModelRateLimiter.DefaultBatchPaceWindow);
        Assert.That(await Burst(paced, ModelPriority.Batch, 50), Is.EqualTo(9), "the next 5 s, the next 9");

        // The same burst unpaced (another deployment) takes all it may at once.
        var unpaced = new ModelRateLimiter(_stores.Store(_db), batchPaceWindow: TimeSpan.Zero);
        var granted = 0;
        for (var i = 0; i < 150; i++)
        {
            granted += (await unpaced.TryAcquireAsync(Deployment + "-unpaced", limits, 1, ModelPriority.Batch, default)).Granted ? 1 : 0;
        }

        Assert.That(granted, Is.EqualTo(108));
    }

    [Test]
    public async Task WhileAPersonWaits_BatchStillGetsItsGuaranteedShare()
    {
        // Interactive work fills the deployment; batch has nothing in the window.
        for (var i = 0; i < 9; i++)
        {
            Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, default)).Granted, Is.True);
        }

        Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, default)).Granted, Is.True);
        Assert.That((await _limiter.TryAcquireAsync(Deployment, TenPerMinute, 1, ModelPriority.Interactive, "chat-2", default)).Granted, Is.False);
        _time.Advance(ModelRateLimiter.WindowLength);

        // A person is waiting, yet batch is below its share (3 of 10): it gets those 3, the person the rest.
        Assert.That(await GrantedAsync(ModelPriority.Batch, 10), Is.EqualTo(3));
        Assert.That(await GrantedAsync(ModelPriority.Interactive, 10), Is.EqualTo(7));
        var snapshot = await _limiter.SnapshotAsync(Deployment, default);
        Assert.That((snapshot.Requests, snapshot.WaitingInteractive), Is.EqualTo((10, 1)), "chat-2 counts as waiting until it asks again or its wait expires");
    }
}

/// <summary>The lane a call takes, end to end through the model service.</summary>
public sealed class ModelLaneSelectionTests
{
    private static Dictionary<string, string?> Limited(FakeOpenAiServer server) => new(LlmTestHost.Provider("fast", 0, "limited", server))
    {
        ["DurableAgents:Llm:Profiles:fast:Providers:0:RequestsPerMinute"] = "10",
        ["DurableAgents:Llm:InteractiveReserve"] = "0.2",
        ["DurableAgents:Llm:RateLimitInlineWait"] = "00:00:00",
        ["DurableAgents:Llm:Cache:Enabled"] = "false",
        ["DurableAgents:Llm:BatchPaceWindow"] = "00:00:00", // twelve calls at once: the lanes' shares, not pacing
    };

    [TestCase(ModelPriority.Batch, 8)]
    [TestCase(ModelPriority.Interactive, 10)]
    public async Task TheRequestsPriority_ChoosesTheLane(ModelPriority priority, int answered)
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), Limited(server));

        var responses = new List<ModelResponse>();
        for (var i = 0; i < 12; i++)
        {
            responses.Add(await host.Models.CallAsync(new ModelCallOrigin("lane-" + i, 1, $"lane-{i}:e:1"), new ModelRequest { Messages = [ModelMessage.User("hi " + i)], Priority = priority }));
        }

        Assert.That(responses.Count(r => r.RetryAfter is null), Is.EqualTo(answered));
        Assert.That(server.ChatRequests, Has.Count.EqualTo(answered), "a call without capacity sends nothing");
    }

    [Test]
    public async Task AnInstanceTaggedBatch_AndAWorkflowConfiguredBatch_TakeTheBatchLane()
    {
        await using var server = await FakeOpenAiServer.StartAsync();
        var settings = Limited(server);
        settings["DurableAgents:Llm:Priorities:Ask"] = "Batch";
        await using var host = await LlmTestHost.StartAsync(LlmTestHost.FastResilience(), settings);
        var request = new ModelRequest { Messages = [ModelMessage.User("hi")] };

        // Eight batch instances (by configuration) use all but the reserve; a ninth tagged interactive still goes at once.
        for (var i = 0; i < 8; i++)
        {
            Assert.That((await host.AskAsync(request, $"cfg-{i}")).RuntimeStatus, Is.EqualTo(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed));
        }

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync(nameof(Ask), request, new Microsoft.DurableTask.StartOrchestrationOptions { InstanceId = "tagged", Tags = new Dictionary<string, string> { [ModelService.PriorityTag] = "interactive" } });
        var done = await host.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token(30));

        Assert.That(done.RuntimeStatus, Is.EqualTo(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed));
        Assert.That((await host.Backend.GetHistoryEventsAsync("tagged")).Any(e => e.TimerCreated is not null), Is.False, "the interactive instance did not wait behind the batch ones");
        Assert.That(server.ChatRequests, Has.Count.EqualTo(9));

        // One request is left: a call of a configured-batch instance is refused (the reserve), one of the tagged instance goes.
        var ofBatch = await host.Models.CallAsync(new ModelCallOrigin("cfg-0", 99, "cfg-0:e:99"), request);
        var ofTagged = await host.Models.CallAsync(new ModelCallOrigin("tagged", 99, "tagged:e:99"), request);
        Assert.That(ofBatch.RetryAfter, Is.Not.Null, "Llm:Priorities:Ask=Batch put it in the batch lane");
        Assert.That(ofTagged.RetryAfter, Is.Null);
    }
}
