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
}
