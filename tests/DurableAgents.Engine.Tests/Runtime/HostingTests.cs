using DurableAgents.Tests.Support;
using DurableTask.Core.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Testing;
using DurableAgents.Engine.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NUnit.Framework;
using Microsoft.DurableTask;

namespace DurableAgents.Engine.Tests.Runtime;

/// <summary>Worker lifecycle and logging, on SQLite.</summary>
public sealed class HostingTests
{
    private readonly List<Action> _cleanups = [];

    [TearDown]
    public void TearDown()
    {
        _cleanups.ForEach(c => c());
        _cleanups.Clear();
    }

    private Func<IServiceProvider, DurableAgents.Engine.Storage.IOrchestrationStore> NewStore()
    {
        var (factory, cleanup) = StoreKinds.Create("sqlite");
        _cleanups.Add(cleanup);
        return factory;
    }

    private static void Register(DurableTaskRegistry b) => b
        .AddOrchestratorFunc<object?, string>("Gated", (ctx, _) => ctx.CallActivityAsync<string>(nameof(CountingGateActivity)))
        .AddActivity<CountingGateActivity>();

    [Test]
    public async Task Shutdown_ActivityInFlight_FinishesAndIsNotRunAgain()
    {
        var store = NewStore();
        var gate = new CountingGate();
        var first = await DurableAgentsTestHost.StartAsync(Register, storeFactory: store, services: s => s.AddSingleton(gate));
        var id = await first.Client.ScheduleNewOrchestrationInstanceAsync("Gated");
        await gate.Entered.Task.WaitAsync(TestTimeout.Token());

        var stopping = first.StopAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(50);
        Assert.That(stopping.IsCompleted, Is.False, "stop waits for the in-flight activity");
        gate.Open.TrySetResult();
        await stopping;
        await first.DisposeAsync();

        await using var second = await DurableAgentsTestHost.StartAsync(Register, storeFactory: store, services: s => s.AddSingleton(gate));
        var done = await second.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token());

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("run 1"));
        Assert.That(gate.Runs, Is.EqualTo(1));
    }

    [Test]
    public async Task Shutdown_TimeoutExpires_ActivityIsAbandonedNotFailed_AndRunsAgainElsewhere()
    {
        var store = NewStore();
        var gate = new CountingGate();
        var logs = new CapturingLoggerProvider();
        var first = await DurableAgentsTestHost.StartAsync(Register, o => o.ActivityLease = TimeSpan.FromMinutes(5), storeFactory: store, services: s => s.AddSingleton(gate), loggerProvider: logs);
        var id = await first.Client.ScheduleNewOrchestrationInstanceAsync("Gated");
        await gate.Entered.Task.WaitAsync(TestTimeout.Token());

        await first.StopAsync(TimeSpan.FromMilliseconds(200)); // the activity honours its token and is cancelled
        await first.DisposeAsync();
        Assert.That(logs.Entries.Select(e => e.Id.Id), Does.Contain(1022), "the activity was abandoned (event 1022)");
        gate.Open.TrySetResult();

        // A 5-minute lease would block a takeover: the abandon released it.
        await using var second = await DurableAgentsTestHost.StartAsync(Register, storeFactory: store, services: s => s.AddSingleton(gate));
        var done = await second.Client.WaitForInstanceCompletionAsync(id, true, TestTimeout.Token(20));

        Assert.That(done.ReadOutputAs<string>(), Is.EqualTo("run 2"));
        var history = await second.Client.GetOrchestrationHistoryAsync(id);
        Assert.That(history.OfType<TaskFailedEvent>(), Is.Empty, "a shutdown is not the activity's failure");
    }

    [Test]
    public async Task ReplaySafeLogger_LogsEachStepOnce_EvenWhenANewHostReplays()
    {
        var store = NewStore();
        var logs1 = new CapturingLoggerProvider();
        var logs2 = new CapturingLoggerProvider();
        static void Logging(DurableTaskRegistry b) => b
            .AddOrchestratorFunc<object?, string>("Logged", async (ctx, _) =>
            {
                var log = ctx.CreateReplaySafeLogger("Workflow.Logged");
#pragma warning disable CA1848, CA2254 // user code, plain logging
                log.LogInformation("step one");
                await ctx.CallActivityAsync<int>("One");
                log.LogInformation("waiting");
                var answer = await ctx.WaitForExternalEvent<string>("go");
                log.LogInformation("step two");
#pragma warning restore CA1848, CA2254
                return answer;
            })
            .AddActivityFunc<object?, int>("One", (_, _) => 1);

        string id;
        await using (var first = await DurableAgentsTestHost.StartAsync(Logging, storeFactory: store, loggerProvider: logs1))
        {
            id = await first.Client.ScheduleNewOrchestrationInstanceAsync("Logged");
            await first.WaitUntilAsync(id, () => Task.FromResult(logs1.Entries.Any(e => e.Message == "waiting")), TestTimeout.Token(30));
        }

        await using var second = await DurableAgentsTestHost.StartAsync(Logging, storeFactory: store, loggerProvider: logs2);
        await second.Client.RaiseEventAsync(id, "go", "ok");
        await second.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        string[] Workflow(CapturingLoggerProvider p) => p.Entries.Where(e => e.Category == "Workflow.Logged").Select(e => e.Message).ToArray();
        Assert.That(Workflow(logs1), Is.EqualTo(new[] { "step one", "waiting" }));
        Assert.That(Workflow(logs2), Is.EqualTo(new[] { "step two" }), "the replay on the second host logs nothing twice");
    }

    [Test]
    public async Task HappyPath_LogsNoWarningsOrErrors_AndNoPayloads()
    {
        var logs = new CapturingLoggerProvider();
        await using var host = await DurableAgentsTestHost.StartAsync(
            b => b.AddOrchestratorFunc<string, string>("Secretive", (ctx, s) => ctx.CallActivityAsync<string>("Echo", s))
                .AddActivityFunc<string, string>("Echo", (_, s) => s),
            storeFactory: NewStore(),
            loggerProvider: logs);

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Secretive", "sk-top-secret-value");
        await host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());

        Assert.That(logs.Entries.Where(e => e.Level >= LogLevel.Warning).Select(e => e.Message), Is.Empty);
        Assert.That(logs.Entries.Select(e => e.Message), Has.None.Contains("sk-top-secret-value"));
        Assert.That(logs.Entries.Select(e => e.Id.Id), Does.Contain(1011), "the finish is logged with its stable event id");
    }

    [Test]
    public async Task Telemetry_EpisodesAndActivities_AreSpansWithInstanceAndOutcome()
    {
        var spans = new System.Collections.Concurrent.ConcurrentBag<System.Diagnostics.Activity>();

        // An activity's span ends once its result is committed, which can be just after the
        // instance completes (its next episode runs in that same commit): wait for both spans.
        var activitySpans = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>();
        var bothActivitiesStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // Likewise the completing episode's span ends just after its commit, which the client can see first.
        var completedEpisodeStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == DurableAgentsTelemetry.Name,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = span =>
            {
                spans.Add(span);
                if ((string?)span.GetTagItem(DurableAgentsTelemetry.InstanceIdAttribute) == "traced-1" && span.DisplayName.StartsWith("activity ", StringComparison.Ordinal)
                    && activitySpans.TryAdd(span.DisplayName, true) && activitySpans.Count == 2)
                {
                    bothActivitiesStopped.TrySetResult();
                }

                if ((string?)span.GetTagItem(DurableAgentsTelemetry.InstanceIdAttribute) == "traced-1" && span.DisplayName == "orchestration Traced"
                    && span.GetTagItem(DurableAgentsTelemetry.OutcomeAttribute) is "Completed")
                {
                    completedEpisodeStopped.TrySetResult();
                }
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        await using var host = await DurableAgentsTestHost.StartAsync(
            b => b.AddOrchestratorFunc<object?, string>("Traced", async (ctx, _) =>
                {
                    try
                    {
                        await ctx.CallActivityAsync<string>("Breaks");
                    }
                    catch (TaskFailedException)
                    {
                    }

                    return await ctx.CallActivityAsync<string>("Works");
                })
                .AddActivityFunc<object?, string>("Works", (_, _) => "ok")
                .AddActivityFunc<object?, string>("Breaks", string (_, _) => throw new InvalidOperationException("nope")),
            storeFactory: NewStore());

        var id = await host.Client.ScheduleNewOrchestrationInstanceAsync("Traced", null, new StartOrchestrationOptions { InstanceId = "traced-1" });
        await host.Client.WaitForInstanceCompletionAsync(id, false, TestTimeout.Token());
        await bothActivitiesStopped.Task.WaitAsync(TestTimeout.Token());
        await completedEpisodeStopped.Task.WaitAsync(TestTimeout.Token());

        var mine = spans.Where(s => (string?)s.GetTagItem(DurableAgentsTelemetry.InstanceIdAttribute) == "traced-1").ToList();
        Assert.That(mine.Where(s => s.DisplayName == "orchestration Traced"), Is.Not.Empty);
        Assert.That(mine.Last(s => s.DisplayName == "orchestration Traced" && s.GetTagItem(DurableAgentsTelemetry.OutcomeAttribute) is "Completed"), Is.Not.Null);
        var works = mine.Single(s => s.DisplayName == "activity Works");
        Assert.That(works.GetTagItem(DurableAgentsTelemetry.OutcomeAttribute), Is.EqualTo("completed"));
        var breaks = mine.Single(s => s.DisplayName == "activity Breaks");
        Assert.That(breaks.Status, Is.EqualTo(System.Diagnostics.ActivityStatusCode.Error));
        Assert.That(breaks.StatusDescription, Is.EqualTo(typeof(InvalidOperationException).FullName));
    }
}

public sealed class CountingGate
{
    private int _runs;

    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Runs => Volatile.Read(ref _runs);

    public int Enter()
    {
        Entered.TrySetResult();
        return Interlocked.Increment(ref _runs);
    }
}

public sealed class CountingGateActivity(CountingGate gate) : TaskActivity<object?, string>
{
    public override async Task<string> RunAsync(TaskActivityContext context, object? input)
    {
        var cancellationToken = context.GetCancellationToken();
        var run = gate.Enter();
        await gate.Open.Task.WaitAsync(cancellationToken);
        return $"run {run}";
    }
}
