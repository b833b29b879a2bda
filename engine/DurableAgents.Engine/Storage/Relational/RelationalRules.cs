using DurableAgents.Engine.History;
using Microsoft.DurableTask.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Storage.Relational;

/// <summary>
/// The few primitives a SQL store implements inside one of its transactions. The relational rules
/// (<see cref="RelationalRules"/>) are written once over them, so SQLite and PostgreSQL cannot
/// drift apart on what a start, a child, a client message or a purge means.
/// </summary>
internal interface IRelationalTransaction
{
    /// <summary>The instance's status, or null; where the database can, the row stays locked until the transaction ends.</summary>
    Task<OrchestrationRuntimeStatus?> StatusOfAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>Deletes an instance with its history, inbox and activity tasks.</summary>
    Task DeleteInstanceAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>Inserts a Pending instance and its ExecutionStarted message.</summary>
    Task InsertInstanceAsync(NewInstance instance, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Inserts inbox messages; a message to an instance that does not exist is dropped.</summary>
    Task InsertMessagesAsync(IReadOnlyList<OrchestrationMessage> messages, CancellationToken cancellationToken);

    /// <summary>The ids of the instance's sub-orchestrations at any depth.</summary>
    Task<IReadOnlyList<string>> DescendantIdsAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>
    /// Makes a Failed instance Running again with its history cut to <paramref name="keepHistoryLength"/>
    /// events (output, failure and completion time cleared), if its history still has
    /// <paramref name="expectedHistoryLength"/> events; false (nothing changed) otherwise.
    /// </summary>
    Task<bool> ReopenFailedAsync(string instanceId, int expectedHistoryLength, int keepHistoryLength, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Queues activity tasks.</summary>
    Task InsertActivitiesAsync(IReadOnlyList<ActivityTaskRequest> activities, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>The relational rules of every SQL store, over <see cref="IRelationalTransaction"/>.</summary>
internal static class RelationalRules
{
    /// <summary>
    /// Dedupe on start: an id held by an instance in a dedupe status, or by one that is not finished,
    /// is refused; a finished instance with the id is replaced.
    /// </summary>
    /// <exception cref="OrchestrationAlreadyExistsException">The id is taken.</exception>
    public static async Task CreateInstanceAsync(IRelationalTransaction tx, NewInstance instance, IReadOnlyCollection<OrchestrationRuntimeStatus> dedupeStatuses, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(instance);
        ArgumentNullException.ThrowIfNull(dedupeStatuses);
        if (await tx.StatusOfAsync(instance.InstanceId, cancellationToken).ConfigureAwait(false) is { } status)
        {
            if (dedupeStatuses.Contains(status) || !status.IsTerminal())
            {
                throw new OrchestrationAlreadyExistsException(instance.InstanceId, status);
            }

            await tx.DeleteInstanceAsync(instance.InstanceId, cancellationToken).ConfigureAwait(false);
        }

        await tx.InsertInstanceAsync(instance, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Child-id collisions: a sub-orchestration whose id is held by an instance that is not finished
    /// is not created, and its parent gets SubOrchestrationInstanceFailed instead (returned, to be
    /// inserted with the commit's other messages); a finished one is replaced.
    /// </summary>
    public static Task<IReadOnlyList<OrchestrationMessage>> CreateChildrenAsync(IRelationalTransaction tx, OrchestrationWorkItem parent, IReadOnlyList<NewInstance> children, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parent);
        return CreateChildrenAsync(tx, parent.InstanceId, parent.ExecutionId, children, now, cancellationToken);
    }

    private static async Task<IReadOnlyList<OrchestrationMessage>> CreateChildrenAsync(IRelationalTransaction tx, string parentInstanceId, string parentExecutionId, IReadOnlyList<NewInstance> children, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(children);
        var failures = new List<OrchestrationMessage>();
        foreach (var child in children)
        {
            var existing = await tx.StatusOfAsync(child.InstanceId, cancellationToken).ConfigureAwait(false);
            if (existing is { } s && !s.IsTerminal())
            {
                var failure = Events.Failure(ErrorTypes.InstanceAlreadyExists, $"Cannot start sub-orchestration '{child.Name}': instance id '{child.InstanceId}' is in use by a {s} instance.");
                failures.Add(new OrchestrationMessage(0, parentInstanceId, parentExecutionId, Events.SubOrchestrationFailed(child.Parent!.TaskScheduledId, failure, now), now));
                continue;
            }

            if (existing is not null)
            {
                await tx.DeleteInstanceAsync(child.InstanceId, cancellationToken).ConfigureAwait(false);
            }

            await tx.InsertInstanceAsync(child, now, cancellationToken).ConfigureAwait(false);
        }

        return failures;
    }

    /// <summary>Client messages (events, terminate, suspend, resume) go to existing, unfinished instances only.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is finished.</exception>
    public static async Task SendClientMessageAsync(IRelationalTransaction tx, string instanceId, P.HistoryEvent message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(message);
        var status = await tx.StatusOfAsync(instanceId, cancellationToken).ConfigureAwait(false)
            ?? throw new OrchestrationNotFoundException(instanceId);
        if (status.IsTerminal())
        {
            throw new OrchestrationStateException(instanceId, status, StoreRows.OperationName(message));
        }

        await tx.InsertMessagesAsync([new OrchestrationMessage(0, instanceId, null, message, now)], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rewind: only a Failed instance whose history has not changed since it was read.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is not Failed, or changed meanwhile; nothing was written.</exception>
    public static async Task RewindAsync(IRelationalTransaction tx, RewindRequest request, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(request);
        var status = await tx.StatusOfAsync(request.InstanceId, cancellationToken).ConfigureAwait(false)
            ?? throw new OrchestrationNotFoundException(request.InstanceId);
        if (status != OrchestrationRuntimeStatus.Failed
            || !await tx.ReopenFailedAsync(request.InstanceId, request.ExpectedHistoryLength, request.KeepHistoryLength, now, cancellationToken).ConfigureAwait(false))
        {
            throw new OrchestrationStateException(request.InstanceId, status, "rewind");
        }

        await tx.InsertActivitiesAsync(request.Activities, now, cancellationToken).ConfigureAwait(false);
        var collisions = await CreateChildrenAsync(tx, request.InstanceId, request.ExecutionId, request.Children, now, cancellationToken).ConfigureAwait(false);
        await tx.InsertMessagesAsync([.. request.Messages, .. collisions], cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Purge: only finished instances (and, when recursive, descendants that are all finished too);
    /// nothing is deleted when one of them is not. Returns how many instances were deleted.
    /// </summary>
    /// <exception cref="OrchestrationStateException">The instance or a descendant is not finished.</exception>
    public static async Task<int> PurgeAsync(IRelationalTransaction tx, string instanceId, bool recursive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (await tx.StatusOfAsync(instanceId, cancellationToken).ConfigureAwait(false) is not { } root)
        {
            return 0;
        }

        var ids = new List<string> { instanceId };
        if (recursive)
        {
            ids.AddRange((await tx.DescendantIdsAsync(instanceId, cancellationToken).ConfigureAwait(false)).Where(id => id != instanceId));
        }

        foreach (var id in ids)
        {
            var status = id == instanceId ? root : await tx.StatusOfAsync(id, cancellationToken).ConfigureAwait(false);
            if (status is { } s && !s.IsTerminal())
            {
                throw new OrchestrationStateException(id, s, "purge");
            }
        }

        foreach (var id in ids)
        {
            await tx.DeleteInstanceAsync(id, cancellationToken).ConfigureAwait(false);
        }

        return ids.Count;
    }
}
