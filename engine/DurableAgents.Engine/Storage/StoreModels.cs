using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Storage;

/// <summary>An instance to create.</summary>
public sealed record NewInstance(
    string InstanceId,
    string ExecutionId,
    string Name,
    string? Version,
    string? Input,
    DateTimeOffset StartAt,
    P.ParentInstanceInfo? Parent = null,
    IReadOnlyDictionary<string, string>? Tags = null)
{
    /// <summary>The ExecutionStarted message this instance begins with.</summary>
    public P.HistoryEvent ToStartedEvent(DateTimeOffset now) =>
        Events.ExecutionStarted(InstanceId, ExecutionId, Name, Version, Input, Parent, StartAt > now ? StartAt : null, Tags, now);
}

/// <summary>A message in an orchestration inbox.</summary>
/// <param name="Id">Store-assigned id (0 for a message not yet stored).</param>
/// <param name="InstanceId">The target instance.</param>
/// <param name="ExecutionId">The target execution; null for messages that follow the instance across ContinueAsNew (external events).</param>
/// <param name="Event">The payload.</param>
/// <param name="VisibleAt">When it may be processed (future for timers and delayed starts).</param>
public sealed record OrchestrationMessage(long Id, string InstanceId, string? ExecutionId, P.HistoryEvent Event, DateTimeOffset VisibleAt);

/// <summary>A leased instance with its new messages.</summary>
public sealed class OrchestrationWorkItem
{
    /// <summary>The instance id.</summary>
    public required string InstanceId { get; init; }

    /// <summary>The current execution id.</summary>
    public required string ExecutionId { get; init; }

    /// <summary>The orchestrator name.</summary>
    public required string Name { get; init; }

    /// <summary>The version tag.</summary>
    public string? Version { get; init; }

    /// <summary>The parent instance, for sub-orchestrations.</summary>
    public string? ParentInstanceId { get; init; }

    /// <summary>The status before this episode.</summary>
    public required OrchestrationRuntimeStatus Status { get; init; }

    /// <summary>How many events the current execution's history holds; lets a worker reuse a cached orchestrator without loading history.</summary>
    public required int HistoryLength { get; init; }

    /// <summary>Visible messages, oldest first.</summary>
    public required IReadOnlyList<OrchestrationMessage> Messages { get; init; }

    /// <summary>Who holds the lease.</summary>
    public required string LockOwner { get; init; }

    /// <summary>When the lease lapses.</summary>
    public required DateTimeOffset LockExpiresAt { get; init; }
}

/// <summary>
/// Which orchestrator or activity names a lease call takes: only <see cref="Names"/>, or (with
/// <see cref="Exclude"/>) every name but them. Names compare case-insensitively, as the SDK's
/// <c>TaskName</c> does. A host's own worker takes the tasks it registers; the workers connected
/// over gRPC take the ones they announce, or everything the host does not run itself.
/// </summary>
public sealed record NameFilter
{
    private NameFilter(IReadOnlyList<string> names, bool exclude)
    {
        Names = names;
        Exclude = exclude;
    }

    /// <summary>The names, lower-cased (as the stores compare them).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>True: every name except <see cref="Names"/>; false: only them.</summary>
    public bool Exclude { get; }

    /// <summary>Only these names (none at all when empty).</summary>
    public static NameFilter Only(IEnumerable<string> names) => new(Normalize(names), exclude: false);

    /// <summary>Every name but these; null (no filter) when there are none.</summary>
    public static NameFilter? AllBut(IEnumerable<string> names)
    {
        var list = Normalize(names);
        return list.Length == 0 ? null : new NameFilter(list, exclude: true);
    }

    /// <summary>Whether the filter lets <paramref name="name"/> through.</summary>
    public bool Matches(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Names.Contains(name.ToLowerInvariant(), StringComparer.Ordinal) != Exclude;
    }

    private static string[] Normalize(IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        return names.Select(n => n.ToLowerInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
    }
}

/// <summary>An activity to enqueue.</summary>
public sealed record ActivityTaskRequest(string InstanceId, string ExecutionId, int TaskId, string Name, string? Input, string? Version = null);

/// <summary>A leased activity task.</summary>
public sealed class ActivityWorkItem
{
    /// <summary>The store's id for the task.</summary>
    public required long Id { get; init; }

    /// <summary>The task.</summary>
    public required ActivityTaskRequest Task { get; init; }

    /// <summary>How many times the task has been leased, this time included.</summary>
    public required int DequeueCount { get; init; }

    /// <summary>Who holds the lease.</summary>
    public required string LockOwner { get; init; }

    /// <summary>When the lease lapses (updated on renewal).</summary>
    public DateTimeOffset LockExpiresAt { get; set; }
}

/// <summary>An activity's result, to be delivered in place of its leased task.</summary>
public sealed record ActivityCompletion(ActivityWorkItem WorkItem, P.HistoryEvent Result);

/// <summary>Per completion whether it was applied, and the instances leased for their next episode.</summary>
public sealed record ActivityResults(IReadOnlyList<bool> Applied, IReadOnlyList<OrchestrationWorkItem> Leased);

/// <summary>The instance row as an episode leaves it.</summary>
public sealed record InstanceUpdate(
    OrchestrationRuntimeStatus Status,
    string? Output,
    string? CustomStatus,
    P.TaskFailureDetails? Failure);

/// <summary>Everything one episode writes, committed atomically.</summary>
public sealed class OrchestrationCommit
{
    /// <summary>Events appended to the current execution's history.</summary>
    public IReadOnlyList<P.HistoryEvent> NewEvents { get; init; } = [];

    /// <summary>Inbox message ids consumed by this episode (deleted).</summary>
    public IReadOnlyList<long> ConsumedMessageIds { get; init; } = [];

    /// <summary>Activity tasks to enqueue.</summary>
    public IReadOnlyList<ActivityTaskRequest> NewActivities { get; init; } = [];

    /// <summary>Messages to this or other instances (timers, events, child results). Messages to instances that do not exist are dropped.</summary>
    public IReadOnlyList<OrchestrationMessage> NewMessages { get; init; } = [];

    /// <summary>Sub-orchestrations to create. One whose id is held by an active instance fails its parent task instead.</summary>
    public IReadOnlyList<NewInstance> NewInstances { get; init; } = [];

    /// <summary>The instance row after the episode; null leaves the row as it is (late messages to a finished instance).</summary>
    public InstanceUpdate? Instance { get; init; }

    /// <summary>Claim the first <see cref="ActivityClaim.Count"/> new activities for the committing worker.</summary>
    public ActivityClaim? ClaimActivities { get; init; }

    /// <summary>A copy of this commit that claims activities.</summary>
    public OrchestrationCommit WithActivityClaim(ActivityClaim claim) => new()
    {
        NewEvents = NewEvents,
        ConsumedMessageIds = ConsumedMessageIds,
        NewActivities = NewActivities,
        NewMessages = NewMessages,
        NewInstances = NewInstances,
        Instance = Instance,
        ContinueAsNew = ContinueAsNew,
        ClaimActivities = claim,
    };

    /// <summary>
    /// Set for ContinueAsNew: the history is cleared, the execution id and input replaced, and the
    /// new ExecutionStarted is expected among <see cref="NewMessages"/>.
    /// </summary>
    public ContinueAsNewRequest? ContinueAsNew { get; init; }
}

/// <summary>Activities a committing worker takes for itself: leased to <paramref name="Owner"/> for <paramref name="Lease"/>.</summary>
public sealed record ActivityClaim(string Owner, TimeSpan Lease, int Count);

/// <summary>Restart of an instance with new input and empty history.</summary>
public sealed record ContinueAsNewRequest(string NewExecutionId, string? Input);

/// <summary>An instance as stored.</summary>
public sealed record InstanceRecord(
    string InstanceId,
    string ExecutionId,
    string Name,
    string? Version,
    OrchestrationRuntimeStatus Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    DateTimeOffset? CompletedAt,
    string? Input,
    string? Output,
    string? CustomStatus,
    P.TaskFailureDetails? Failure,
    string? ParentInstanceId)
{
    /// <summary>The tags given at start.</summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }
}

/// <summary>Filters for listing instances. Every filter is optional.</summary>
public sealed record InstanceQuery
{
    /// <summary>Only these statuses.</summary>
    public IReadOnlyCollection<OrchestrationRuntimeStatus>? Statuses { get; init; }

    /// <summary>Only this orchestrator name (exact).</summary>
    public string? Name { get; init; }

    /// <summary>Created at or after.</summary>
    public DateTimeOffset? CreatedFrom { get; init; }

    /// <summary>Created before.</summary>
    public DateTimeOffset? CreatedTo { get; init; }

    /// <summary>Instance id starts with.</summary>
    public string? InstanceIdPrefix { get; init; }

    /// <summary>Page size. The default value is 100.</summary>
    public int PageSize { get; init; } = 100;

    /// <summary>The token from the previous page.</summary>
    public string? ContinuationToken { get; init; }

    /// <summary>Include inputs and outputs.</summary>
    public bool FetchInputsAndOutputs { get; init; }
}

/// <summary>One page of instances, newest first.</summary>
public sealed record InstancePage(IReadOnlyList<InstanceRecord> Instances, string? ContinuationToken);

/// <summary>Which finished instances to purge.</summary>
public sealed record PurgeFilter(DateTimeOffset? CreatedFrom, DateTimeOffset? CreatedTo, IReadOnlyCollection<OrchestrationRuntimeStatus>? Statuses);

/// <summary>
/// A rewind of a failed instance: cut its history before the episode that failed it, deliver that
/// episode's inputs again, re-run its failed activities and re-create its failed sub-orchestrations.
/// </summary>
public sealed record RewindRequest(
    string InstanceId,
    string ExecutionId,
    int ExpectedHistoryLength,
    int KeepHistoryLength,
    IReadOnlyList<OrchestrationMessage> Messages,
    IReadOnlyList<ActivityTaskRequest> Activities,
    IReadOnlyList<NewInstance> Children);

/// <summary>A host of the task hub as its heartbeat row records it.</summary>
/// <param name="HostId">The host's id (<c>DurableAgents:WorkerId</c>, or derived); its lease owners start with "<c>{HostId}/</c>".</param>
/// <param name="Incarnation">The process that heartbeats under this id (new at every start).</param>
/// <param name="StartedAt">When that process registered.</param>
/// <param name="HeartbeatAt">Its last heartbeat, by its own clock (for people; liveness goes by <paramref name="Beats"/>).</param>
/// <param name="Beats">Heartbeats written since it registered: a host is alive while this changes.</param>
public sealed record HostRecord(string HostId, string Incarnation, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt, long Beats);

/// <summary>The leases of one host that were released (it died, or it is starting again, or it stopped).</summary>
/// <param name="HostId">The host.</param>
/// <param name="LastHeartbeat">Its last heartbeat, or null when it had no row.</param>
/// <param name="Orchestrations">Orchestration leases released.</param>
/// <param name="Activities">Activity leases released.</param>
public sealed record ReleasedHost(string HostId, DateTimeOffset? LastHeartbeat, int Orchestrations, int Activities);

/// <summary>What a heartbeat found.</summary>
/// <param name="Own">Whether this host's row was there (<see cref="HostRowState.Ok"/>), missing because another host presumed it dead and released its leases (<see cref="HostRowState.Revived"/>), or held by another process under the same id (<see cref="HostRowState.Conflict"/>).</param>
/// <param name="Others">The other hosts' rows, for the caller to see whose beats stopped.</param>
public sealed record HeartbeatResult(HostRowState Own, IReadOnlyList<HostRecord> Others);

/// <summary>The state of a host's own heartbeat row, as a heartbeat found it.</summary>
public enum HostRowState
{
    /// <summary>The row was ours and is refreshed.</summary>
    Ok,

    /// <summary>The row was gone (another host presumed this one dead and released its leases); it is written again.</summary>
    Revived,

    /// <summary>Another process heartbeats under the same host id: a configuration error (two hosts with one <c>WorkerId</c>).</summary>
    Conflict,
}
