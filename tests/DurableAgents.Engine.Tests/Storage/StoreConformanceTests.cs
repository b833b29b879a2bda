using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;
using P = Microsoft.DurableTask.Protobuf;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Storage;

/// <summary>The store contract itself, on every store: leases, fencing, atomicity (host heartbeats in StoreConformanceTests.Hosts.cs). Time is passed in explicitly.</summary>
[TestFixtureSource(typeof(StoreKinds), nameof(StoreKinds.All))]
public sealed partial class StoreConformanceTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly OrchestrationRuntimeStatus[] Active = [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];
    private readonly string _storeKind;
    private Action _cleanup = () => { };
    private IOrchestrationStore _store = null!;

    public StoreConformanceTests(string storeKind) => _storeKind = storeKind;

    [SetUp]
    public async Task SetUp()
    {
        var (factory, cleanup) = StoreKinds.Create(_storeKind);
        _cleanup = cleanup;
        _store = factory(null!);
        await _store.EnsureCreatedAsync();
    }

    [TearDown]
    public void TearDown()
    {
        (_store as IDisposable)?.Dispose();
        _cleanup();
    }

    private async Task<OrchestrationWorkItem> CreateAndLockAsync(string id, string owner = "A", TimeSpan? lease = null)
    {
        await _store.CreateInstanceAsync(new NewInstance(id, "e1", "Flow", null, "1", T0), Active, T0);
        var item = await _store.TryLockOrchestrationAsync(owner, lease ?? TimeSpan.FromSeconds(10), T0);
        Assert.That(item, Is.Not.Null);
        return item!;
    }

    private static OrchestrationCommit RunningCommit(params P.HistoryEvent[] events) => RunningCommit([], [], events);

    private static OrchestrationCommit RunningCommit(IReadOnlyList<long> consumed, IReadOnlyList<ActivityTaskRequest> activities, params P.HistoryEvent[] events) => new()
    {
        NewEvents = events,
        ConsumedMessageIds = consumed,
        NewActivities = activities,
        Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
    };

    [Test]
    public async Task EnsureCreated_CalledTwice_IsIdempotent()
    {
        await _store.EnsureCreatedAsync();
        await _store.EnsureCreatedAsync();

        Assert.That(await _store.GetInstanceAsync("none", false), Is.Null);
    }

    [Test]
    public async Task Lock_HeldLease_IsNotGivenToAnotherOwner_UntilItExpires()
    {
        var a = await CreateAndLockAsync("i1", lease: TimeSpan.FromSeconds(10));

        Assert.That(await _store.TryLockOrchestrationAsync("B", TimeSpan.FromSeconds(10), T0.AddSeconds(9)), Is.Null);
        var b = await _store.TryLockOrchestrationAsync("B", TimeSpan.FromSeconds(10), T0.AddSeconds(11));

        Assert.That(b, Is.Not.Null);
        Assert.That(b!.LockOwner, Is.Not.EqualTo(a.LockOwner));
        Assert.That(b.Messages.Select(m => m.Event.EventTypeCase), Has.One.EqualTo(P.HistoryEvent.EventTypeOneofCase.ExecutionStarted));
    }

    [Test]
    public async Task Commit_AfterLeaseTakenOver_ThrowsLeaseLost_AndWritesNothing()
    {
        var a = await CreateAndLockAsync("i1", lease: TimeSpan.FromSeconds(10));
        var b = await _store.TryLockOrchestrationAsync("B", TimeSpan.FromSeconds(10), T0.AddSeconds(11));

        var commit = new OrchestrationCommit
        {
            NewEvents = [Events.OrchestratorStarted(T0), Events.WithId(0, T0, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "Act" })],
            ConsumedMessageIds = a.Messages.Select(m => m.Id).ToList(),
            NewActivities = [new ActivityTaskRequest("i1", "e1", 0, "Act", null)],
            Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, "\"a\"", null),
        };
        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CommitOrchestrationAsync(a, commit, T0.AddSeconds(12)));

        Assert.That(await _store.GetHistoryAsync("i1"), Is.Empty);
        Assert.That(await _store.TryLockActivityAsync("X", TimeSpan.FromSeconds(10), T0.AddSeconds(12)), Is.Null, "no activity was enqueued");
        var instance = await _store.GetInstanceAsync("i1", true);
        Assert.That(instance!.CustomStatus, Is.Null);
        Assert.That(instance.Status, Is.EqualTo(OrchestrationRuntimeStatus.Pending));

        // The new owner's commit goes through.
        await _store.CommitOrchestrationAsync(b!, commit, T0.AddSeconds(12));
        Assert.That(await _store.GetHistoryAsync("i1"), Has.Count.EqualTo(2));
    }

    [Test]
    public async Task Commit_ExpiredLeaseEvenIfNotTakenOver_IsRejected()
    {
        var a = await CreateAndLockAsync("i1", lease: TimeSpan.FromSeconds(10));

        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CommitOrchestrationAsync(a, RunningCommit(Events.OrchestratorStarted(T0)), T0.AddSeconds(11)));
        Assert.That(await _store.GetHistoryAsync("i1"), Is.Empty);
    }

    [Test]
    public async Task Commit_Twice_SecondIsFencedOff()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(a, RunningCommit(Events.OrchestratorStarted(T0)), T0.AddSeconds(1));

        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CommitOrchestrationAsync(a, RunningCommit(Events.OrchestratorStarted(T0)), T0.AddSeconds(2)));
        Assert.That(await _store.GetHistoryAsync("i1"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task ActivityCompletion_ByWorkerThatLostItsLease_IsDiscarded_OnlyOneResultDelivered()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(
            a,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0), Events.WithId(0, T0, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "Act" })],
                ConsumedMessageIds = a.Messages.Select(m => m.Id).ToList(),
                NewActivities = [new ActivityTaskRequest("i1", "e1", 0, "Act", null)],
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
            },
            T0);

        var first = await _store.TryLockActivityAsync("W1", TimeSpan.FromSeconds(5), T0);
        Assert.That(await _store.TryLockActivityAsync("W2", TimeSpan.FromSeconds(5), T0.AddSeconds(4)), Is.Null, "still leased");
        var second = await _store.TryLockActivityAsync("W2", TimeSpan.FromSeconds(5), T0.AddSeconds(6));
        Assert.That(second!.DequeueCount, Is.EqualTo(2));

        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CompleteActivityAsync(first!, Events.TaskCompleted(0, "\"first\"", T0), T0.AddSeconds(7)));
        await _store.CompleteActivityAsync(second, Events.TaskCompleted(0, "\"second\"", T0), T0.AddSeconds(7));

        var next = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddSeconds(8));
        Assert.That(next!.Messages.Select(m => m.Event).Where(e => e.TaskCompleted is not null).Select(e => e.TaskCompleted.Result), Is.EqualTo(new[] { "\"second\"" }));
    }

    [Test]
    public async Task ActivityLease_Renewed_IsNotTakenOver()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(
            a,
            RunningCommit([], [new ActivityTaskRequest("i1", "e1", 0, "Act", null)], Events.OrchestratorStarted(T0)),
            T0);
        var w1 = await _store.TryLockActivityAsync("W1", TimeSpan.FromSeconds(5), T0);

        Assert.That(await _store.RenewActivityLeaseAsync(w1!, TimeSpan.FromSeconds(5), T0.AddSeconds(4)), Is.True);

        Assert.That(await _store.TryLockActivityAsync("W2", TimeSpan.FromSeconds(5), T0.AddSeconds(8)), Is.Null);
        Assert.That(await _store.TryLockActivityAsync("W2", TimeSpan.FromSeconds(5), T0.AddSeconds(10)), Is.Not.Null);
        Assert.That(await _store.RenewActivityLeaseAsync(w1!, TimeSpan.FromSeconds(5), T0.AddSeconds(11)), Is.False, "renewal after takeover fails");
    }

    [Test]
    public async Task Timer_Message_IsInvisibleUntilItsTime()
    {
        var a = await CreateAndLockAsync("i1");
        var fireAt = T0.AddMinutes(5);
        await _store.CommitOrchestrationAsync(
            a,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0)],
                ConsumedMessageIds = a.Messages.Select(m => m.Id).ToList(),
                NewMessages = [new OrchestrationMessage(0, "i1", "e1", Events.TimerFired(0, Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(fireAt), fireAt), fireAt)],
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
            },
            T0);

        Assert.That(await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddMinutes(4)), Is.Null);
        var item = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddMinutes(5));
        Assert.That(item!.Messages.Single().Event.EventTypeCase, Is.EqualTo(P.HistoryEvent.EventTypeOneofCase.TimerFired));
    }

    [Test]
    public async Task Messages_ToMissingInstance_AreDropped()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(
            a,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0)],
                ConsumedMessageIds = a.Messages.Select(m => m.Id).ToList(),
                NewMessages = [new OrchestrationMessage(0, "ghost", null, Events.EventRaised("hi", null, T0), T0)],
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
            },
            T0);

        Assert.That(await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddSeconds(1)), Is.Null);
    }

    [Test]
    public async Task SuspendedInstance_OnlyControlMessagesAreLeased()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(
            a,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0)],
                ConsumedMessageIds = a.Messages.Select(m => m.Id).ToList(),
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Suspended, null, null, null),
            },
            T0);
        await _store.SendClientMessageAsync("i1", Events.EventRaised("e", null, T0), T0);
        Assert.That(await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddSeconds(1)), Is.Null);

        await _store.SendClientMessageAsync("i1", Events.ExecutionResumed(null, T0), T0.AddSeconds(1));
        var item = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddSeconds(2));

        Assert.That(item!.Messages.Select(m => m.Event.EventTypeCase), Has.All.EqualTo(P.HistoryEvent.EventTypeOneofCase.ExecutionResumed));
    }

    [Test]
    public async Task ContinueAsNew_ClearsHistory_AndReplacesExecution()
    {
        var a = await CreateAndLockAsync("i1");
        await _store.CommitOrchestrationAsync(a, RunningCommit(a.Messages.Select(m => m.Id).ToList(), [], Events.OrchestratorStarted(T0), Events.WithId(0, T0, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "x" })), T0);
        var b = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0);
        Assert.That(b, Is.Null, "no messages left");
        await _store.SendClientMessageAsync("i1", Events.EventRaised("go", null, T0), T0);
        b = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0);

        await _store.CommitOrchestrationAsync(
            b!,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0), Events.ExecutionCompleted(P.OrchestrationStatus.ContinuedAsNew, "2", null, T0)],
                ConsumedMessageIds = b!.Messages.Select(m => m.Id).ToList(),
                NewMessages = [new OrchestrationMessage(0, "i1", "e2", Events.ExecutionStarted("i1", "e2", "Flow", null, "2", null, null, null, T0), T0)],
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
                ContinueAsNew = new ContinueAsNewRequest("e2", "2"),
            },
            T0);

        Assert.That(await _store.GetHistoryAsync("i1"), Is.Empty);
        var instance = await _store.GetInstanceAsync("i1", true);
        Assert.That(instance!.ExecutionId, Is.EqualTo("e2"));
        Assert.That(instance.Input, Is.EqualTo("2"));
        var c = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0);
        Assert.That(c!.HistoryLength, Is.Zero);
        Assert.That(c.ExecutionId, Is.EqualTo("e2"));
    }

    [Test]
    public async Task Commit_ClaimingActivities_ReturnsThemLeased_TheRestStayQueued()
    {
        var a = await CreateAndLockAsync("i1");
        var activities = Enumerable.Range(0, 3).Select(i => new ActivityTaskRequest("i1", "e1", i, "Act", $"{i}")).ToList();
        var commit = RunningCommit(a.Messages.Select(m => m.Id).ToList(), activities, Events.OrchestratorStarted(T0))
            .WithActivityClaim(new ActivityClaim("W1", TimeSpan.FromSeconds(30), 2));

        var claimed = await _store.CommitOrchestrationAsync(a, commit, T0);

        Assert.That(claimed.Select(c => c.Task.TaskId), Is.EquivalentTo(new[] { 0, 1 }));
        Assert.That(claimed.Select(c => c.LockOwner), Has.All.StartsWith("W1/"));
        Assert.That(claimed.Select(c => c.LockOwner).Distinct().Count(), Is.EqualTo(2), "each claimed task has its own lease token");
        var others = await _store.TryLockActivitiesAsync("W2", TimeSpan.FromSeconds(30), T0.AddSeconds(1), 10);
        Assert.That(others.Select(o => o.Task.TaskId), Is.EqualTo(new[] { 2 }), "claimed tasks are not offered to others while leased");

        await _store.CompleteActivityAsync(claimed[0], Events.TaskCompleted(claimed[0].Task.TaskId, "\"ok\"", T0), T0.AddSeconds(2));
        var next = await _store.TryLockOrchestrationAsync("A", TimeSpan.FromSeconds(10), T0.AddSeconds(3));
        Assert.That(next!.Messages.Select(m => m.Event).Single(e => e.TaskCompleted is not null).TaskCompleted.TaskScheduledId, Is.EqualTo(claimed[0].Task.TaskId));
    }

    [Test]
    public async Task Commit_ClaimingActivities_WhenFencedOff_ClaimsNothing()
    {
        var a = await CreateAndLockAsync("i1", lease: TimeSpan.FromSeconds(10));
        var commit = RunningCommit([], [new ActivityTaskRequest("i1", "e1", 0, "Act", null)], Events.OrchestratorStarted(T0))
            .WithActivityClaim(new ActivityClaim("W1", TimeSpan.FromSeconds(30), 1));

        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CommitOrchestrationAsync(a, commit, T0.AddSeconds(11)));

        Assert.That(await _store.TryLockActivitiesAsync("W2", TimeSpan.FromSeconds(30), T0.AddMinutes(5), 10), Is.Empty);
    }

    [Test]
    public async Task LockMany_ReturnsEachInstanceOnce_WithItsOwnToken()
    {
        for (var i = 0; i < 5; i++)
        {
            await _store.CreateInstanceAsync(new NewInstance($"m{i}", "e1", "Flow", null, null, T0), Active, T0);
        }

        var first = await _store.TryLockOrchestrationsAsync("A", TimeSpan.FromSeconds(10), T0, 3);
        var second = await _store.TryLockOrchestrationsAsync("B", TimeSpan.FromSeconds(10), T0, 10);

        Assert.That(first, Has.Count.EqualTo(3));
        Assert.That(second, Has.Count.EqualTo(2));
        Assert.That(first.Concat(second).Select(w => w.InstanceId), Is.Unique);
        Assert.That(first.Concat(second).Select(w => w.InstanceId), Is.EquivalentTo(Enumerable.Range(0, 5).Select(i => $"m{i}")));
        Assert.That(first.Select(w => w.LockOwner), Is.Unique);
        Assert.That(first.Concat(second).Select(w => w.Messages.Count), Has.All.EqualTo(1));
    }

    [Test]
    public async Task LockWithNameFilter_TakesOnlyWhatItLetsThrough_CaseInsensitively()
    {
        await _store.CreateInstanceAsync(new NewInstance("mine", "e1", "HostFlow", null, null, T0), Active, T0);
        await _store.CreateInstanceAsync(new NewInstance("theirs", "e1", "RemoteFlow", null, null, T0), Active, T0);

        var remote = await _store.TryLockOrchestrationsAsync("grpc", TimeSpan.FromSeconds(10), T0, 10, NameFilter.AllBut(["hostflow"]));
        var host = await _store.TryLockOrchestrationsAsync("host", TimeSpan.FromSeconds(10), T0, 10, NameFilter.Only(["HOSTFLOW"]));

        Assert.That(remote.Select(w => w.InstanceId), Is.EqualTo(new[] { "theirs" }));
        Assert.That(host.Select(w => w.InstanceId), Is.EqualTo(new[] { "mine" }));

        // Activities: the same rule on the task name; a result only leases an instance the filter lets through.
        var commit = RunningCommit(
            remote[0].Messages.Select(m => m.Id).ToList(),
            [new ActivityTaskRequest("theirs", "e1", 0, "HostAct", null), new ActivityTaskRequest("theirs", "e1", 1, "RemoteAct", null)],
            Events.OrchestratorStarted(T0));
        await _store.CommitOrchestrationAsync(remote[0], commit, T0);
        var hostActivities = await _store.TryLockActivitiesAsync("host", TimeSpan.FromSeconds(30), T0, 10, NameFilter.Only(["hostact"]));
        Assert.That(hostActivities.Select(a => a.Task.Name), Is.EqualTo(new[] { "HostAct" }));
        Assert.That(await _store.TryLockActivitiesAsync("none", TimeSpan.FromSeconds(30), T0, 10, NameFilter.Only([])), Is.Empty);

        var results = await _store.CompleteActivitiesAndLeaseAsync(
            [new ActivityCompletion(hostActivities[0], Events.TaskCompleted(0, "1", T0))], "host", TimeSpan.FromSeconds(10), 5, T0, NameFilter.Only(["hostflow"]));
        Assert.That(results.Applied, Is.EqualTo(new[] { true }));
        Assert.That(results.Leased, Is.Empty, "the result went to an orchestration this worker does not run");
        var next = await _store.TryLockOrchestrationsAsync("grpc", TimeSpan.FromSeconds(10), T0, 10, NameFilter.AllBut(["hostflow"]));
        Assert.That(next.Select(w => w.InstanceId), Is.EqualTo(new[] { "theirs" }), "its owner's side picks it up");
    }

    [Test]
    public async Task TryConsumeToken_FirstUseWins_LaterUsesAreRefused()
    {
        Assert.That(await _store.TryConsumeTokenAsync("tok-1", T0.AddDays(3), T0), Is.True);
        Assert.That(await _store.TryConsumeTokenAsync("tok-1", T0.AddDays(3), T0.AddMinutes(1)), Is.False);
        Assert.That(await _store.TryConsumeTokenAsync("tok-2", T0.AddDays(3), T0.AddMinutes(1)), Is.True);

        await _store.ReleaseTokenAsync("tok-1");
        Assert.That(await _store.TryConsumeTokenAsync("tok-1", T0.AddDays(3), T0.AddMinutes(2)), Is.True, "a released token can be used again");
    }
}
