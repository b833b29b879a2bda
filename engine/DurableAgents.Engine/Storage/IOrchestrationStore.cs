using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Storage;

/// <summary>
/// The durable state of a task hub: instances, histories, orchestration inboxes and the activity
/// queue. Every store (SQLite, PostgreSQL) passes the same conformance suite. Invariants:
/// <list type="bullet">
/// <item>An episode's result is committed in ONE transaction, fenced by the orchestration lease
/// (owner and expiry): a worker that lost its lease commits nothing (<see cref="LeaseLostException"/>).</item>
/// <item>An activity result is written to the orchestration inbox in the same transaction that
/// deletes the activity task, fenced by the activity lease: a duplicate execution is discarded.</item>
/// <item>Client operations validate first and write nothing when they throw.</item>
/// </list>
/// Times are passed in from the caller's <see cref="TimeProvider"/> so that tests can use fake time.
/// </summary>
public interface IOrchestrationStore
{
    /// <summary>Creates or upgrades the schema. Safe to call from several hosts at once.</summary>
    Task EnsureCreatedAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates an instance (Pending) and its ExecutionStarted message, visible at <see cref="NewInstance.StartAt"/>.</summary>
    /// <exception cref="OrchestrationAlreadyExistsException">The id is taken by an instance whose status is in <paramref name="dedupeStatuses"/>.</exception>
    Task CreateInstanceAsync(NewInstance instance, IReadOnlyCollection<OrchestrationRuntimeStatus> dedupeStatuses, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Leases up to <paramref name="maxCount"/> instances that have visible inbox messages (each with
    /// its own lease token) and returns them with their messages; empty when there is no work. With
    /// <paramref name="names"/>, only instances whose orchestrator name it lets through.
    /// </summary>
    Task<IReadOnlyList<OrchestrationWorkItem>> TryLockOrchestrationsAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default);

    /// <summary>The current execution's full history, in order.</summary>
    Task<IReadOnlyList<P.HistoryEvent>> GetHistoryAsync(string instanceId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Commits an episode and releases the lease, in one transaction. When the commit asks to claim
    /// activities (<see cref="OrchestrationCommit.ClaimActivities"/>), the first of its new activities
    /// are inserted already leased to the caller and returned, so it can run them without a queue round trip.
    /// </summary>
    /// <returns>The claimed activities (empty unless claimed).</returns>
    /// <exception cref="LeaseLostException">The lease expired or was taken; nothing was written.</exception>
    Task<IReadOnlyList<ActivityWorkItem>> CommitOrchestrationAsync(OrchestrationWorkItem workItem, OrchestrationCommit commit, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Releases an orchestration lease without consuming its messages, so they are retried after <paramref name="retryAfter"/>.</summary>
    Task AbandonOrchestrationAsync(OrchestrationWorkItem workItem, TimeSpan retryAfter, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Leases up to <paramref name="maxCount"/> visible activity tasks (each with its own lease token), with <paramref name="names"/> only those it lets through; empty when there are none.</summary>
    Task<IReadOnlyList<ActivityWorkItem>> TryLockActivitiesAsync(string owner, TimeSpan leaseDuration, DateTimeOffset now, int maxCount, NameFilter? names = null, CancellationToken cancellationToken = default);

    /// <summary>Extends an activity lease; false when it was lost.</summary>
    Task<bool> RenewActivityLeaseAsync(ActivityWorkItem workItem, TimeSpan leaseDuration, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// For each completion, deletes the task and delivers its result (TaskCompleted or TaskFailed) to
    /// the orchestration, atomically per completion and fenced by its lease token; several completions
    /// share one transaction (group commit). In the same transaction leases to <paramref name="owner"/>
    /// up to <paramref name="maxLeases"/> of the instances that just received a result, are running,
    /// are held by nobody and pass <paramref name="names"/>, so their next episode runs at once,
    /// without a poll and a lease round trip.
    /// </summary>
    /// <returns>Per completion, in order, whether it was applied (false: another worker owns the task now, nothing written for it); and the leased instances.</returns>
    Task<ActivityResults> CompleteActivitiesAndLeaseAsync(IReadOnlyList<ActivityCompletion> completions, string owner, TimeSpan leaseDuration, int maxLeases, DateTimeOffset now, NameFilter? names = null, CancellationToken cancellationToken = default);

    /// <summary>Releases an activity lease so another worker can run it.</summary>
    Task AbandonActivityAsync(ActivityWorkItem workItem, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Reads an instance, or null.</summary>
    Task<InstanceRecord?> GetInstanceAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default);

    /// <summary>Lists instances matching a query, with continuation-token paging.</summary>
    Task<InstancePage> QueryInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default);

    /// <summary>Counts instances per status, with the query's name, created-time and id-prefix filters (status filter and paging ignored).</summary>
    Task<IReadOnlyDictionary<OrchestrationRuntimeStatus, long>> CountInstancesAsync(InstanceQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Delivers a client message (EventRaised, ExecutionTerminated, ExecutionSuspended, ExecutionResumed)
    /// to an instance's inbox.
    /// </summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is finished (or the operation does not fit its state).</exception>
    Task SendClientMessageAsync(string instanceId, P.HistoryEvent message, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Deletes a finished instance with its history and messages (and, when <paramref name="recursive"/>,
    /// its sub-orchestrations at any depth, which must be finished too); returns how many instances
    /// were deleted (0 when it does not exist).
    /// </summary>
    /// <exception cref="OrchestrationStateException">The instance, or one of its descendants, is not finished; nothing was deleted.</exception>
    Task<int> PurgeInstanceAsync(string instanceId, bool recursive, CancellationToken cancellationToken = default);

    /// <summary>Rewinds a failed instance as <paramref name="request"/> says, in one transaction.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is not Failed, or changed since it was read; nothing was written.</exception>
    Task RewindInstanceAsync(RewindRequest request, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Deletes finished instances matching the filter; returns how many.</summary>
    Task<int> PurgeInstancesAsync(PurgeFilter filter, CancellationToken cancellationToken = default);

    /// <summary>
    /// Registers a host process under <paramref name="hostId"/> (its heartbeat row, now) and releases
    /// every lease whose owner starts with "<c>{hostId}/</c>": what a previous run under the same id
    /// held when it died, so a restarted host resumes its work at once instead of when the leases expire.
    /// </summary>
    /// <returns>The previous run's last heartbeat (null: none) and the leases released.</returns>
    Task<ReleasedHost> RegisterHostAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Refreshes this host's heartbeat and counts a beat (re-writing its row when another host presumed
    /// it dead), and returns the other hosts' rows. Whether one of them is dead is the caller's call:
    /// its beats stopped changing for long enough on the caller's own clock (<see cref="ReleaseHostAsync"/>).
    /// </summary>
    Task<HeartbeatResult> HeartbeatAsync(string hostId, string incarnation, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Declares a host dead if its beats are still <paramref name="observedBeats"/>: deletes its row and
    /// releases all its leases in one transaction. Released work is visible at once; the host, if it is
    /// only stalled, is fenced off by the changed lease tokens (its commits write nothing).
    /// </summary>
    /// <returns>What was released; null when the host beat since (or another host released it first).</returns>
    Task<ReleasedHost?> ReleaseHostAsync(string hostId, long observedBeats, CancellationToken cancellationToken = default);

    /// <summary>
    /// At a graceful stop: releases what this host still holds and deletes its row, unless another
    /// process has registered under the same id since (then nothing is touched).
    /// </summary>
    Task<ReleasedHost> UnregisterHostAsync(string hostId, string incarnation, CancellationToken cancellationToken = default);

    /// <summary>The hosts that heartbeat, by id.</summary>
    Task<IReadOnlyList<HostRecord>> GetHostsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Marks a single-use token (an approval link) as used. True the first time for a token id,
    /// false on every later call, across all hosts. Rows are kept until <paramref name="expiresAt"/>
    /// has passed (an expired token is refused before it gets here), then pruned.
    /// </summary>
    Task<bool> TryConsumeTokenAsync(string tokenId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Undoes <see cref="TryConsumeTokenAsync"/> when the action the token stood for could not be carried out.</summary>
    Task ReleaseTokenAsync(string tokenId, CancellationToken cancellationToken = default);
}

/// <summary>Single-item forms of the batch lease calls.</summary>
public static class OrchestrationStoreExtensions
{
    /// <summary>Leases one instance with visible messages, or returns null.</summary>
    public static async Task<OrchestrationWorkItem?> TryLockOrchestrationAsync(this IOrchestrationStore store, string owner, TimeSpan leaseDuration, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var items = await store.TryLockOrchestrationsAsync(owner, leaseDuration, now, 1, names: null, cancellationToken).ConfigureAwait(false);
        return items.Count > 0 ? items[0] : null;
    }

    /// <summary>Completes activities without leasing their instances (see <see cref="IOrchestrationStore.CompleteActivitiesAndLeaseAsync"/>).</summary>
    /// <returns>Per completion, in order: true if applied, false if another worker owns the task now.</returns>
    public static async Task<IReadOnlyList<bool>> CompleteActivitiesAsync(this IOrchestrationStore store, IReadOnlyList<ActivityCompletion> completions, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        return (await store.CompleteActivitiesAndLeaseAsync(completions, string.Empty, TimeSpan.Zero, 0, now, names: null, cancellationToken).ConfigureAwait(false)).Applied;
    }

    /// <summary>Completes one activity.</summary>
    /// <exception cref="LeaseLostException">Another worker owns the task now; nothing was written.</exception>
    public static async Task CompleteActivityAsync(this IOrchestrationStore store, ActivityWorkItem workItem, P.HistoryEvent result, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(workItem);
        var applied = await store.CompleteActivitiesAsync([new ActivityCompletion(workItem, result)], now, cancellationToken).ConfigureAwait(false);
        if (!applied[0])
        {
            throw new LeaseLostException($"Activity task {workItem.Id} is no longer leased by {workItem.LockOwner}.");
        }
    }

    /// <summary>Leases one activity task, or returns null.</summary>
    public static async Task<ActivityWorkItem?> TryLockActivityAsync(this IOrchestrationStore store, string owner, TimeSpan leaseDuration, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var items = await store.TryLockActivitiesAsync(owner, leaseDuration, now, 1, names: null, cancellationToken).ConfigureAwait(false);
        return items.Count > 0 ? items[0] : null;
    }
}

/// <summary>Raised when a store write was fenced off because the lease was no longer ours.</summary>
public sealed class LeaseLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LeaseLostException(string message)
        : base(message)
    {
    }
}
