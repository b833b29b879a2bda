using DurableAgents.Engine.History;
using DurableAgents.Engine.Storage;
using DurableAgents.Engine.Tests.Support;
using NUnit.Framework;
using P = Microsoft.DurableTask.Protobuf;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Engine.Tests.Storage;

/// <summary>Host heartbeats on every store: beat counts, dead hosts' leases released (and fenced), restarts reclaim, stops hand back. Fake time throughout.</summary>
public sealed partial class StoreConformanceTests
{
    private static readonly TimeSpan LongLease = TimeSpan.FromMinutes(10);

    [Test]
    public async Task ReleaseHost_AtTheObservedBeatCount_ReleasesItsLeases_AndFencesItsCommits()
    {
        await _store.RegisterHostAsync("A", "a1", T0);
        await _store.RegisterHostAsync("B", "b1", T0);
        await _store.RegisterHostAsync("AB", "ab1", T0); // "A/" must not match "AB/..."
        var (orchestration, activity) = await LeaseBothAsync("i1", "A");
        var (otherOrchestration, _) = await LeaseBothAsync("i2", "AB");

        var seen = await _store.HeartbeatAsync("B", "b1", T0.AddSeconds(1));
        Assert.That(seen.Own, Is.EqualTo(HostRowState.Ok));
        Assert.That(seen.Others.Select(h => (h.HostId, h.Beats)), Is.EqualTo(new[] { ("A", 1L), ("AB", 1L) }));
        var a = seen.Others.Single(h => h.HostId == "A");

        var released = await _store.ReleaseHostAsync("A", a.Beats);

        Assert.That(released, Is.EqualTo(new ReleasedHost("A", T0, 1, 1)));
        Assert.That(await _store.ReleaseHostAsync("A", a.Beats), Is.Null, "released once: a second observer finds nothing");
        Assert.That((await _store.GetHostsAsync()).Select(h => h.HostId), Is.EqualTo(new[] { "AB", "B" }));

        // The work is B's at once (the leases had 10 minutes to run), and A's late writes are fenced off.
        var taken = await _store.TryLockOrchestrationAsync("B", LongLease, T0.AddSeconds(3));
        Assert.That(taken!.InstanceId, Is.EqualTo("i1"), "AB's instance stays AB's");
        var takenActivity = await _store.TryLockActivityAsync("B", LongLease, T0.AddSeconds(3));
        Assert.That(takenActivity!.Task.InstanceId, Is.EqualTo("i1"));
        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CommitOrchestrationAsync(orchestration, RunningEpisode(), T0.AddSeconds(4)));
        await Assert.ThrowsAsync<LeaseLostException>(() => _store.CompleteActivityAsync(activity, Events.TaskCompleted(1, "\"late\"", T0), T0.AddSeconds(4)));
        await _store.CommitOrchestrationAsync(otherOrchestration, RunningEpisode(), T0.AddSeconds(4));
    }

    [Test]
    public async Task ReleaseHost_AfterItBeatAgain_ReleasesNothing()
    {
        await _store.RegisterHostAsync("A", "a1", T0);
        await LeaseBothAsync("i1", "A");
        var observed = (await _store.HeartbeatAsync("B", "b1", T0)).Others.Single();

        await _store.HeartbeatAsync("A", "a1", T0.AddSeconds(1)); // alive after all (a stall, a slow store)

        Assert.That(await _store.ReleaseHostAsync("A", observed.Beats), Is.Null);
        Assert.That(await _store.TryLockActivityAsync("B", LongLease, T0.AddSeconds(1)), Is.Null, "A keeps its lease");
        Assert.That((await _store.GetHostsAsync()).Single(h => h.HostId == "A").Beats, Is.EqualTo(observed.Beats + 1));
    }

    [Test]
    public async Task Register_SameIdAgain_ReleasesWhatThePreviousRunHeld_AtOnce()
    {
        await _store.RegisterHostAsync("A", "run1", T0);
        await LeaseBothAsync("i1", "A");

        var previous = await _store.RegisterHostAsync("A", "run2", T0.AddMilliseconds(300));

        Assert.That(previous, Is.EqualTo(new ReleasedHost("A", T0, 1, 1)));
        Assert.That(await _store.TryLockOrchestrationAsync("A", LongLease, T0.AddMilliseconds(300)), Is.Not.Null);
        Assert.That(await _store.TryLockActivityAsync("A", LongLease, T0.AddMilliseconds(300)), Is.Not.Null);
        var first = await _store.RegisterHostAsync("fresh", "f1", T0);
        Assert.That(first, Is.EqualTo(new ReleasedHost("fresh", null, 0, 0)));
    }

    [Test]
    public async Task OldIncarnation_AfterTakeover_GetsConflict_AndItsStopTouchesNothing()
    {
        await _store.RegisterHostAsync("A", "run1", T0);
        await _store.RegisterHostAsync("A", "run2", T0.AddSeconds(1));
        await LeaseBothAsync("i1", "A");

        var beat = await _store.HeartbeatAsync("A", "run1", T0.AddSeconds(1));
        var stop = await _store.UnregisterHostAsync("A", "run1");

        Assert.That(beat.Own, Is.EqualTo(HostRowState.Conflict));
        Assert.That(stop.Orchestrations + stop.Activities, Is.Zero);
        var hosts = await _store.GetHostsAsync();
        Assert.That(hosts.Single().Incarnation, Is.EqualTo("run2"));
        Assert.That(await _store.TryLockOrchestrationAsync("B", LongLease, T0.AddSeconds(2)), Is.Null, "run2's lease stands");
    }

    [Test]
    public async Task Unregister_HandsBackItsLeases_AndDeletesItsRow()
    {
        await _store.RegisterHostAsync("A", "a1", T0);
        await LeaseBothAsync("i1", "A");

        var stop = await _store.UnregisterHostAsync("A", "a1");

        Assert.That(stop, Is.EqualTo(new ReleasedHost("A", T0, 1, 1)));
        Assert.That(await _store.GetHostsAsync(), Is.Empty);
        Assert.That(await _store.TryLockOrchestrationAsync("B", LongLease, T0), Is.Not.Null);
    }

    [Test]
    public async Task Heartbeat_AfterBeingPresumedDead_WritesItsRowAgain()
    {
        await _store.RegisterHostAsync("A", "a1", T0);
        Assert.That(await _store.ReleaseHostAsync("A", 1), Is.Not.Null);

        var beat = await _store.HeartbeatAsync("A", "a1", T0.AddSeconds(6));

        Assert.That(beat.Own, Is.EqualTo(HostRowState.Revived));
        Assert.That((await _store.GetHostsAsync()).Select(h => (h.HostId, h.HeartbeatAt, h.Beats)), Is.EqualTo(new[] { ("A", T0.AddSeconds(6), 1L) }));
    }

    [Test]
    public async Task Register_AgainUnderTheSameId_MovesTheBeatCount_SoObserversSeeTheRestart()
    {
        await _store.RegisterHostAsync("A", "run1", T0);
        var before = (await _store.GetHostsAsync()).Single().Beats;

        await _store.RegisterHostAsync("A", "run2", T0.AddSeconds(1));

        Assert.That((await _store.GetHostsAsync()).Single().Beats, Is.GreaterThan(before));
    }

    [Test]
    public async Task HostId_WithSlash_IsRefused_BeforeAnyWrite()
    {
        await Assert.ThatAsync(() => _store.RegisterHostAsync("a/b", "x", T0), Throws.ArgumentException);
        await Assert.ThatAsync(() => _store.HeartbeatAsync("a/b", "x", T0), Throws.ArgumentException);
        Assert.That(await _store.GetHostsAsync(), Is.Empty);
    }

    private static OrchestrationCommit RunningEpisode() => new()
    {
        NewEvents = [Events.OrchestratorStarted(T0)],
        ConsumedMessageIds = [],
        NewActivities = [],
        Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
    };

    // An instance with a scheduled activity, both leased by owner (for 10 minutes).
    private async Task<(OrchestrationWorkItem Orchestration, ActivityWorkItem Activity)> LeaseBothAsync(string id, string owner)
    {
        await _store.CreateInstanceAsync(new NewInstance(id, "e1", "Flow", null, "1", T0), [], T0);
        var first = await _store.TryLockOrchestrationsAsync(owner, LongLease, T0, 10);
        var item = first.Single(i => i.InstanceId == id);
        await _store.CommitOrchestrationAsync(
            item,
            new OrchestrationCommit
            {
                NewEvents = [Events.OrchestratorStarted(T0), Events.WithId(1, T0, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "Act" })],
                ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList(),
                NewActivities = [new ActivityTaskRequest(id, "e1", 1, "Act", null)],
                Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Running, null, null, null),
            },
            T0);
        var activity = (await _store.TryLockActivitiesAsync(owner, LongLease, T0, 10)).Single(a => a.Task.InstanceId == id);

        // Leave the instance leased too: a second message makes it visible, and owner takes it.
        await _store.SendClientMessageAsync(id, Events.EventRaised("go", null, T0), T0);
        var again = (await _store.TryLockOrchestrationsAsync(owner, LongLease, T0, 10)).Single(i => i.InstanceId == id);
        return (again, activity);
    }
}
