using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using DurableAgents.Tests.Support;
using NUnit.Framework;

namespace DurableAgents.Activities.Tests.Llm;

/// <summary>The ledger on both databases: reservations are idempotent per task and atomic per instance.</summary>
[TestFixture("sqlite")]
[TestFixture("postgres")]
public sealed class ModelLedgerTests(string kind)
{
    private RelationalModelLedger _ledger = null!;
    private ActivityTestDatabase _database = null!;

    [SetUp]
    public void SetUp()
    {
        _database = ActivityTestDatabase.Create(kind);
        _ledger = _database.IsPostgres
            ? RelationalModelLedger.ForPostgres(_database.DataSource!, _database.Hub)
            : RelationalModelLedger.ForSqlite(_database.SqliteConnectionString!);
    }

    [TearDown]
    public void TearDown()
    {
        _ledger.Dispose();
        _database.Dispose();
    }

    [Test]
    public async Task Reserve_SameTaskTwice_IsOneReservation_SoReplayNeverDoubleCharges()
    {
        var budget = new ModelBudget(MaxTokens: 150);

        var first = await _ledger.ReserveAsync("i", "i:e:1", budget, 100, 0);
        var again = await _ledger.ReserveAsync("i", "i:e:1", budget, 100, 0);
        var other = await _ledger.ReserveAsync("i", "i:e:2", budget, 100, 0);

        Assert.That((first.Allowed, again.Allowed), Is.EqualTo((true, true)));
        Assert.That(again.UsedTokens, Is.Zero, "its own reservation does not count against it");
        Assert.That(other.Allowed, Is.False, "100 + 100 > 150");
        Assert.That(other.UsedTokens, Is.EqualTo(100));
    }

    [Test]
    public async Task Reserve_ParallelFanOut_NeverSqueezesPastTheBudget()
    {
        var budget = new ModelBudget(MaxTokens: 500, MaxCost: 100m);

        var decisions = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(() => _ledger.ReserveAsync("fan", $"fan:e:{i}", budget, 100, 1m))));

        Assert.That(decisions.Count(d => d.Allowed), Is.EqualTo(5));
    }

    [Test]
    public async Task Settle_ReplacesTheEstimate_WithWhatWasUsed()
    {
        var budget = new ModelBudget(MaxTokens: 250);
        await _ledger.ReserveAsync("s", "s:e:1", budget, 200, 0);
        await _ledger.SettleAsync("s", "s:e:1", 30, 0);

        var next = await _ledger.ReserveAsync("s", "s:e:2", budget, 200, 0);

        Assert.That(next.Allowed, Is.True);
        Assert.That(next.UsedTokens, Is.EqualTo(30));
    }

    [Test]
    public async Task Settle_OfAReExecutedTask_AddsItsUsage_BecauseBothRunsWereBilled()
    {
        var budget = new ModelBudget(MaxTokens: 1000);
        await _ledger.ReserveAsync("r", "r:e:1", budget, 200, 0);
        await _ledger.SettleAsync("r", "r:e:1", 30, 0.003m);

        // The host died after the call but before its result committed: the task runs again.
        var again = await _ledger.ReserveAsync("r", "r:e:1", budget, 200, 0);
        await _ledger.SettleAsync("r", "r:e:1", 40, 0.004m);
        var next = await _ledger.ReserveAsync("r", "r:e:2", budget, 10, 0);

        Assert.That(again.Allowed, Is.True, "a re-executed task finds its reservation");
        Assert.That((next.UsedTokens, next.UsedCost), Is.EqualTo((70L, 0.007m)));
    }

    [Test]
    public async Task Totals_PerInstanceAndPerWorkflow_SumEveryAttempt_IncludingFailedOnes()
    {
        var at = DateTimeOffset.UnixEpoch;
        ModelAttemptRecord R(string instance, string workflow, int attempt, string outcome, long input, long output, decimal cost) => new()
        {
            InstanceId = instance, Workflow = workflow, TaskKey = instance + ":t", Attempt = attempt, Profile = "fast", Provider = "p", Model = "m",
            Outcome = outcome, InputTokens = input, OutputTokens = output, LatencyMs = 5, Cost = cost, At = at,
        };
        await _ledger.RecordAsync([R("a", "Wf1", 1, "HTTP 429", 0, 0, 0), R("a", "Wf1", 2, "ok", 100, 20, 0.0012m), R("b", "Wf1", 1, "cache-hit", 0, 0, 0), R("c", "Wf2", 1, "ok", 7, 3, 0.0001m)]);
        await _ledger.RecordAsync([R("a", "Wf1", 2, "ok", 100, 20, 0.0012m)]); // a retried write of the same attempt is not counted twice

        var a = await _ledger.GetInstanceTotalsAsync("a");
        var workflows = await _ledger.GetWorkflowTotalsAsync();

        Assert.That(a, Is.EqualTo(new ModelUsageTotals("a", 2, 100, 20, 0.0012m, 0)));
        Assert.That(workflows, Is.EqualTo(new[] { new ModelUsageTotals("Wf1", 3, 100, 20, 0.0012m, 1), new ModelUsageTotals("Wf2", 1, 7, 3, 0.0001m, 0) }));
        Assert.That((await _ledger.GetAttemptsAsync("a")).Select(x => x.Outcome), Is.EqualTo(new[] { "HTTP 429", "ok" }));
    }

    [Test]
    public async Task DailyTotals_TopSpenders_AndBudgetRefusals_ForTheCostView()
    {
        var day1 = new DateTimeOffset(2026, 11, 20, 23, 59, 0, TimeSpan.Zero);
        var day2 = day1.AddMinutes(2);
        ModelAttemptRecord R(string instance, DateTimeOffset at, string outcome, long input, decimal cost) => new()
        {
            InstanceId = instance, Workflow = "Wf", TaskKey = instance + ":" + outcome, Attempt = 1, Profile = "fast", Provider = "p", Model = "m",
            Outcome = outcome, InputTokens = input, OutputTokens = 0, LatencyMs = 5, Cost = cost, At = at,
        };
        await _ledger.RecordAsync([R("x", day1, "ok", 100, 0.01m), R("y", day2, "ok", 50, 0.05m), R("y", day2, RelationalModelLedger.BudgetRefused, 0, 0), R("z", day2, "cache-hit", 0, 0)]);

        var daily = await _ledger.GetDailyTotalsAsync(day1.AddDays(-1));
        var top = await _ledger.GetTopInstancesAsync(2);

        Assert.That(daily, Is.EqualTo(new[] { new ModelUsageTotals("2026-11-20", 1, 100, 0, 0.01m, 0), new ModelUsageTotals("2026-11-21", 2, 50, 0, 0.05m, 1, 1) }));
        Assert.That(top.Select(t => t.Key), Is.EqualTo(new[] { "y", "x" }));
        Assert.That((await _ledger.GetDailyTotalsAsync(day2.AddHours(1))), Is.Empty);
    }

    private static ModelAttemptRecord Open(string instance, string taskKey, int attempt, string host, long estimate, decimal estimatedCost) => new()
    {
        InstanceId = instance, Workflow = "Wf", TaskKey = taskKey, Attempt = attempt, Profile = "fast", Provider = "p", Model = "m",
        Outcome = RelationalModelLedger.InFlight, At = DateTimeOffset.UnixEpoch, Host = host, EstimatedTokens = estimate, EstimatedCost = estimatedCost,
    };

    [Test]
    public async Task WriteAhead_InFlightRow_IsSettledInPlace_AndAnInterruptedOne_CountsItsEstimateAgainstTheBudget()
    {
        await _ledger.BeginAttemptAsync(Open("w", "w:e:1#r1", 1, "host-a", 300, 0.03m));
        await _ledger.BeginAttemptAsync(Open("w", "w:e:2#r1", 1, "host-b", 200, 0.02m));
        Assert.That((await _ledger.GetAttemptsAsync("w")).Select(a => a.Outcome), Is.All.EqualTo(RelationalModelLedger.InFlight));
        Assert.That((await _ledger.GetInstanceTotalsAsync("w")).InFlight, Is.EqualTo(2));

        // host-a dies: its row becomes interrupted; host-b's call settles in place (same row).
        Assert.That(await _ledger.InterruptHostsAsync(["host-a"]), Is.EqualTo(1));
        await _ledger.RecordAsync([Open("w", "w:e:2#r1", 1, "host-b", 0, 0) with { Outcome = "ok", InputTokens = 40, OutputTokens = 10, Cost = 0.005m }]);

        var attempts = await _ledger.GetAttemptsAsync("w");
        Assert.That(attempts.Select(a => (a.TaskKey, a.Outcome, a.EstimatedTokens)), Is.EqualTo(new[] { ("w:e:1#r1", "interrupted", 300L), ("w:e:2#r1", "ok", 200L) }));
        var totals = await _ledger.GetInstanceTotalsAsync("w");
        Assert.That(totals, Is.EqualTo(new ModelUsageTotals("w", 2, 40, 10, 0.005m, 0, 0, Interrupted: 1, InterruptedCost: 0.03m, InFlight: 0)));

        // The budget counts the interrupted estimate: 300 of 400 are gone.
        var decision = await _ledger.ReserveAsync("w", "w:e:3", new ModelBudget(MaxTokens: 400), 150, 0);
        Assert.That((decision.Allowed, decision.UsedTokens), Is.EqualTo((false, 300L)));

        // A late settle of the interrupted attempt (its host was only stalled) replaces the estimate with the truth.
        await _ledger.RecordAsync([Open("w", "w:e:1#r1", 1, "host-a", 0, 0) with { Outcome = "ok", InputTokens = 30, OutputTokens = 5, Cost = 0.003m }]);
        Assert.That((await _ledger.GetInstanceTotalsAsync("w")).Interrupted, Is.Zero);
        await _ledger.RecordAsync([Open("w", "w:e:1#r1", 1, "host-a", 0, 0) with { Outcome = "HTTP 500" }]);
        Assert.That((await _ledger.GetAttemptsAsync("w"))[0].Outcome, Is.EqualTo("ok"), "a settled row is never overwritten");
    }

    [Test]
    public async Task ARunOfTheSameTask_InterruptsTheEarlierRunsOpenAttempts_NotOtherTasksOrItsOwn()
    {
        await _ledger.BeginAttemptAsync(Open("t", "t:e:1#run1", 1, "h", 100, 0));
        await _ledger.BeginAttemptAsync(Open("t", "t:e:10#run1", 1, "h", 100, 0)); // "t:e:1" is a prefix of "t:e:10", not its task
        await _ledger.BeginAttemptAsync(Open("t", "t:e:1#run2", 1, "h", 100, 0));

        var marked = await _ledger.InterruptEarlierRunsAsync("t", "t:e:1", "t:e:1#run2");

        Assert.That(marked, Is.EqualTo(1));
        Assert.That((await _ledger.GetAttemptsAsync("t")).Select(a => (a.TaskKey, a.Outcome)), Is.EqualTo(new[] { ("t:e:1#run1", "interrupted"), ("t:e:10#run1", "in-flight"), ("t:e:1#run2", "in-flight") }));
    }
}
