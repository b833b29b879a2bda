using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.Options;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Client;

/// <summary>
/// The Durable Task SDK's <see cref="DurableTaskClient"/> over the DurableAgents store, built by
/// <c>services.AddDurableTaskClient(b => b.UseDurableAgents())</c>. Application code depends on
/// <see cref="DurableTaskClient"/>; the few extras here (instance counts, the name filter, the
/// stored protocol history) are for hosts that know they run on this backend. Every method
/// validates before it writes: a call that throws has changed nothing.
/// </summary>
public sealed class DurableAgentsClient : DurableTaskClient
{
    private static readonly OrchestrationRuntimeStatus[] DefaultDedupe =
        [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];

    private readonly IOrchestrationStore _store;
    private readonly WorkSignal _signal;
    private readonly TimeProvider _time;
    private readonly DurableAgentsOptions _options;
    private readonly Microsoft.DurableTask.DataConverter _converter;
    private readonly HashSet<string> _orchestrators;

    /// <summary>Created by the SDK's client builder.</summary>
    public DurableAgentsClient(
        string name,
        IOrchestrationStore store,
        WorkSignal signal,
        TimeProvider time,
        IOptions<DurableAgentsOptions> options,
        IOptionsMonitor<DurableTaskClientOptions> clientOptions,
        IOptionsMonitor<DurableTaskRegistry> registry)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clientOptions);
        ArgumentNullException.ThrowIfNull(registry);
        _store = store;
        _signal = signal;
        _time = time;
        _options = options.Value;
        _converter = clientOptions.Get(name).DataConverter;
        _orchestrators = registry.Get(name).GetOrchestrators().Select(o => o.Key.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <inheritdoc />
    /// <exception cref="TaskNotRegisteredException">This host registers orchestrators and none has the name.</exception>
    /// <exception cref="InvalidInstanceIdException">The id breaks the rules of <see cref="InstanceIds"/>.</exception>
    /// <exception cref="PayloadTooLargeException">The input is over the limit.</exception>
    /// <exception cref="OrchestrationAlreadyExistsException">The id is in use by an instance in a dedupe status.</exception>
    public override Task<string> ScheduleNewOrchestrationInstanceAsync(TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(orchestratorName.Name);
        var name = orchestratorName.Name;

        // A host that registers orchestrators refuses names it does not know (a typo would wait
        // forever); a client-only host (remote workers) accepts any name.
        if (_orchestrators.Count > 0)
        {
            name = _orchestrators.FirstOrDefault(n => string.Equals(n, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new TaskNotRegisteredException("orchestrator", name, _orchestrators);
        }

        var dedupe = options?.DedupeStatuses is { } statuses
            ? statuses.Select(s => Enum.Parse<OrchestrationRuntimeStatus>(s, ignoreCase: true)).ToArray()
            : null;
        return StartSerializedAsync(name, _converter.Serialize(input), options, dedupe, cancellation);
    }

    /// <summary>
    /// Starts an instance of any orchestrator name with an input that is already serialized (the
    /// gRPC endpoint's path, whose workers may run orchestrators this host does not register).
    /// </summary>
    /// <param name="dedupe">Statuses in which an existing instance with the id refuses the start; null: every non-terminal status.</param>
    internal async Task<string> StartSerializedAsync(string name, string? serializedInput, StartOrchestrationOptions? options, IReadOnlyCollection<OrchestrationRuntimeStatus>? dedupe, CancellationToken cancellation)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var instanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N");
        InstanceIds.Validate(instanceId);
        CheckSize(serializedInput, "orchestration input");
        var now = _time.GetUtcNow();
        var startAt = options?.StartAt is { } at && at > now ? at : now;
        await _store.CreateInstanceAsync(
            new NewInstance(instanceId, Guid.NewGuid().ToString("N"), name, options?.Version?.Version, serializedInput, startAt, Tags: options?.Tags),
            dedupe ?? DefaultDedupe,
            now,
            cancellation).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
        return instanceId;
    }

    /// <summary>Raises an event whose payload is already serialized.</summary>
    internal Task RaiseSerializedEventAsync(string instanceId, string eventName, string? serialized, CancellationToken cancellation)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(eventName);
        CheckSize(serialized, $"payload of event '{eventName}'");
        return SendAsync(instanceId, now => Events.EventRaised(eventName, serialized, now), cancellation);
    }

    /// <summary>Terminates an instance with an output that is already serialized.</summary>
    internal Task TerminateSerializedAsync(string instanceId, string? serializedOutput, bool recursive, CancellationToken cancellation)
    {
        CheckSize(serializedOutput, "termination output");
        return SendAsync(instanceId, now => Events.ExecutionTerminated(serializedOutput, recursive, now), cancellation);
    }

    /// <inheritdoc />
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is finished.</exception>
    public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
        RaiseSerializedEventAsync(instanceId, eventName, _converter.Serialize(eventPayload), cancellation);

    /// <inheritdoc />
    public override Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default) =>
        TerminateSerializedAsync(instanceId, _converter.Serialize(options?.Output), options?.Recursive ?? false, cancellation);

    /// <inheritdoc />
    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, now => Events.ExecutionSuspended(reason, now), cancellation);

    /// <inheritdoc />
    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, now => Events.ExecutionResumed(reason, now), cancellation);

    /// <inheritdoc />
    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var record = await _store.GetInstanceAsync(instanceId, getInputsAndOutputs, cancellation).ConfigureAwait(false);
        return record is null ? null : ToMetadata(record);
    }

    /// <inheritdoc />
    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create(async (continuation, pageSize, cancellation) =>
        {
            var page = await QueryInstancesAsync(
                new InstanceQuery
                {
                    Statuses = filter?.Statuses?.ToList(),
                    CreatedFrom = filter?.CreatedFrom,
                    CreatedTo = filter?.CreatedTo,
                    InstanceIdPrefix = filter?.InstanceIdPrefix,
                    PageSize = pageSize ?? filter?.PageSize ?? OrchestrationQuery.DefaultPageSize,
                    FetchInputsAndOutputs = filter?.FetchInputsAndOutputs ?? false,
                    ContinuationToken = continuation ?? filter?.ContinuationToken,
                },
                cancellation).ConfigureAwait(false);
            return new Page<OrchestrationMetadata>(page.Instances.Select(ToMetadata).ToList(), page.ContinuationToken);
        });

    /// <inheritdoc />
    public override async Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var purged = await _store.PurgeInstanceAsync(instanceId, options?.Recursive ?? false, cancellation).ConfigureAwait(false);
        return new PurgeResult(purged);
    }

    /// <inheritdoc />
    public override async Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var purged = await _store.PurgeInstancesAsync(new PurgeFilter(filter.CreatedFrom, filter.CreatedTo, filter.Statuses?.ToList()), cancellation).ConfigureAwait(false);
        return new PurgeResult(purged, isComplete: true);
    }

    /// <inheritdoc />
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    public override async Task<string> RestartAsync(string instanceId, bool restartWithNewInstanceId = false, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var record = await _store.GetInstanceAsync(instanceId, includePayloads: true, cancellation).ConfigureAwait(false)
            ?? throw new OrchestrationNotFoundException(instanceId);
        var newId = restartWithNewInstanceId ? Guid.NewGuid().ToString("N") : instanceId;
        var now = _time.GetUtcNow();

        // Restarting in place replaces a finished instance; a running one is refused (dedupe on
        // every non-terminal status), as the SDK documents.
        await _store.CreateInstanceAsync(
            new NewInstance(newId, Guid.NewGuid().ToString("N"), record.Name, record.Version, record.Input, now),
            DefaultDedupe,
            now,
            cancellation).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
        return newId;
    }

    /// <inheritdoc />
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    public override async Task<IList<DurableTask.Core.History.HistoryEvent>> GetOrchestrationHistoryAsync(string instanceId, CancellationToken cancellation = default) =>
        (await GetHistoryEventsAsync(instanceId, cancellation).ConfigureAwait(false)).Select(CoreHistory.ToCore).ToList();

    /// <inheritdoc />
    public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        WaitAsync(instanceId, getInputsAndOutputs, s => s != OrchestrationRuntimeStatus.Pending, cancellation);

    /// <inheritdoc />
    public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        WaitAsync(instanceId, getInputsAndOutputs, s => s.IsTerminal(), cancellation);

    /// <inheritdoc />
    /// <exception cref="NotSupportedException">Always: durable entities are not supported by this backend yet.</exception>
    public override Microsoft.DurableTask.Client.Entities.DurableEntityClient Entities =>
        throw new NotSupportedException("Durable entities are not yet supported by the DurableAgents backend; use an orchestration (with events) or an activity over your own storage instead.");

    /// <summary>
    /// Rewinds a Failed instance: the episode that failed it is taken out of its history, the
    /// activities that failed in it run again, the sub-orchestrations that failed in it start again
    /// (from their beginning, with the same instance id), and the rest of that episode's inputs are
    /// delivered again, so the orchestration continues as if the failures had not happened yet.
    /// Completed work is not repeated. A sub-orchestration is rewound through its root.
    /// </summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is not Failed, or is a sub-orchestration; nothing was written.</exception>
    public override async Task RewindInstanceAsync(string instanceId, string reason, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var record = await _store.GetInstanceAsync(instanceId, includePayloads: false, cancellation).ConfigureAwait(false)
            ?? throw new OrchestrationNotFoundException(instanceId);
        if (record.Status != OrchestrationRuntimeStatus.Failed || record.ParentInstanceId is not null)
        {
            throw new OrchestrationStateException(instanceId, record.Status, record.ParentInstanceId is null ? "rewind" : $"rewind a sub-orchestration (rewind its root '{record.ParentInstanceId}')");
        }

        var history = await _store.GetHistoryAsync(instanceId, cancellation).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        await _store.RewindInstanceAsync(Rewind.Plan(record, history, now), now, cancellation).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
        _signal.NotifyActivities();
    }

    /// <inheritdoc />
    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The orchestrator names this host registers (empty on a client-only host).</summary>
    public IReadOnlyCollection<string> OrchestratorNames => _orchestrators;

    /// <summary>True when this host registers an orchestrator with the name (case-insensitive).</summary>
    public bool HasOrchestrator(string name) => _orchestrators.Contains(name);

    /// <summary>The stored history of the current execution: the Durable Task protocol's events, in order.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    public async Task<IReadOnlyList<P.HistoryEvent>> GetHistoryEventsAsync(string instanceId, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        _ = await _store.GetInstanceAsync(instanceId, false, cancellation).ConfigureAwait(false) ?? throw new OrchestrationNotFoundException(instanceId);
        return await _store.GetHistoryAsync(instanceId, cancellation).ConfigureAwait(false);
    }

    /// <summary>The stored instance row, with what <see cref="OrchestrationMetadata"/> lacks (parent, completion time); null when it does not exist.</summary>
    public Task<InstanceRecord?> GetInstanceRecordAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        return _store.GetInstanceAsync(instanceId, getInputsAndOutputs, cancellation);
    }

    /// <summary>The hosts of the task hub that heartbeat, by id (a dead host's row is removed when its leases are released).</summary>
    public Task<IReadOnlyList<HostRecord>> GetHostsAsync(CancellationToken cancellation = default) => _store.GetHostsAsync(cancellation);

    /// <summary>Lists instances (newest first) with the name filter <see cref="OrchestrationQuery"/> lacks, a page at a time.</summary>
    public Task<InstancePage> QueryInstancesAsync(InstanceQuery query, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.PageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.PageSize, 1000);
        return _store.QueryInstancesAsync(query, cancellation);
    }

    /// <summary>Counts instances per status (name, created-time and id-prefix filters apply; status filter and paging do not).</summary>
    public Task<IReadOnlyDictionary<OrchestrationRuntimeStatus, long>> CountInstancesAsync(InstanceQuery? query = null, CancellationToken cancellation = default) =>
        _store.CountInstancesAsync(query ?? new InstanceQuery(), cancellation);

    /// <summary>The SDK's view of a stored instance.</summary>
    public OrchestrationMetadata ToMetadata(InstanceRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        return new OrchestrationMetadata(record.Name, record.InstanceId)
        {
            RuntimeStatus = record.Status,
            CreatedAt = record.CreatedAt,
            LastUpdatedAt = record.LastUpdatedAt,
            SerializedInput = record.Input,
            SerializedOutput = record.Output,
            SerializedCustomStatus = record.CustomStatus,
            FailureDetails = record.Failure.ToSdk(),
            Tags = record.Tags ?? new Dictionary<string, string>(),
            DataConverter = _converter,
        };
    }

    private Task<OrchestrationMetadata> WaitAsync(string instanceId, bool getInputsAndOutputs, Func<OrchestrationRuntimeStatus, bool> done, CancellationToken cancellation)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);

        // Woken by the commits of this host and by the store's notifications of other hosts'
        // commits; the slow poll only bounds the wait when no notification path reaches us.
        var maxPoll = _options.WaitPollInterval;
        var firstPoll = TimeSpan.FromMilliseconds(Math.Min(50, maxPoll.TotalMilliseconds));
        return _signal.WaitForAsync(
            instanceId,
            async () =>
            {
                var m = await GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation).ConfigureAwait(false)
                    ?? throw new OrchestrationNotFoundException(instanceId);
                return (done(m.RuntimeStatus), m);
            },
            firstPoll,
            maxPoll,
            _time,
            cancellation);
    }

    private async Task SendAsync(string instanceId, Func<DateTimeOffset, P.HistoryEvent> message, CancellationToken cancellation)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var now = _time.GetUtcNow();
        await _store.SendClientMessageAsync(instanceId, message(now), now, cancellation).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
    }

    private void CheckSize(string? serialized, string what)
    {
        var size = DataConverter.ByteCount(serialized);
        if (size > _options.MaxPayloadBytes)
        {
            throw new PayloadTooLargeException(what, size, _options.MaxPayloadBytes);
        }
    }
}
