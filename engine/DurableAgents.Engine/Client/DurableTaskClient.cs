using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Options;

namespace DurableAgents.Engine.Client;

/// <summary>
/// Starts, queries and controls orchestration instances (the Durable Task client API). Every method
/// validates before it writes: a call that throws has changed nothing.
/// </summary>
public sealed class DurableTaskClient
{
    private static readonly OrchestrationRuntimeStatus[] DefaultDedupe =
        [OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Suspended];

    private readonly IOrchestrationStore _store;
    private readonly TaskRegistry _registry;
    private readonly WorkSignal _signal;
    private readonly TimeProvider _time;
    private readonly DurableAgentsOptions _options;

    /// <summary>Created by DI.</summary>
    public DurableTaskClient(IOrchestrationStore store, TaskRegistry registry, WorkSignal signal, TimeProvider time, IOptions<DurableAgentsOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _registry = registry;
        _signal = signal;
        _time = time;
        _options = options.Value;
    }

    /// <summary>Schedules a new instance and returns its id.</summary>
    /// <exception cref="TaskNotRegisteredException">No orchestrator with the name is registered.</exception>
    /// <exception cref="InvalidInstanceIdException">The id breaks the rules of <see cref="InstanceIds"/>.</exception>
    /// <exception cref="PayloadTooLargeException">The input is over the limit.</exception>
    /// <exception cref="OrchestrationAlreadyExistsException">The id is in use by an instance in a dedupe status.</exception>
    public Task<string> ScheduleNewOrchestrationInstanceAsync(string orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellationToken = default) =>
        ScheduleSerializedAsync(orchestratorName, DataConverter.Serialize(input), options, cancellationToken);

    /// <summary>Schedules a new instance whose input is already JSON (as received by the HTTP API).</summary>
    public async Task<string> ScheduleSerializedAsync(string orchestratorName, string? serializedInput, StartOrchestrationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(orchestratorName);
        if (!_registry.HasOrchestrator(orchestratorName))
        {
            throw new TaskNotRegisteredException("orchestrator", orchestratorName, _registry.OrchestratorNames);
        }

        var canonicalName = _registry.OrchestratorNames.First(n => string.Equals(n, orchestratorName, StringComparison.OrdinalIgnoreCase));
        var instanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N");
        InstanceIds.Validate(instanceId);
        CheckSize(serializedInput, "orchestration input");
        CheckJson(serializedInput, "orchestration input");
        var now = _time.GetUtcNow();
        var startAt = options?.StartAt is { } at && at > now ? at : now;
        await _store.CreateInstanceAsync(
            new NewInstance(instanceId, Guid.NewGuid().ToString("N"), canonicalName, options?.Version, serializedInput, startAt),
            options?.DedupeStatuses ?? DefaultDedupe,
            now,
            cancellationToken).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
        return instanceId;
    }

    /// <summary>Reads an instance; null when it does not exist.</summary>
    public async Task<OrchestrationMetadata?> GetInstanceAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var record = await _store.GetInstanceAsync(instanceId, getInputsAndOutputs, cancellationToken).ConfigureAwait(false);
        return record is null ? null : new OrchestrationMetadata(record);
    }

    /// <summary>Counts instances per status (name, created-time and id-prefix filters apply; status filter and paging do not).</summary>
    public Task<IReadOnlyDictionary<OrchestrationRuntimeStatus, long>> CountInstancesAsync(InstanceQuery? query = null, CancellationToken cancellationToken = default) =>
        _store.CountInstancesAsync(query ?? new InstanceQuery(), cancellationToken);

    /// <summary>Lists instances (newest first) matching a query, a page at a time.</summary>
    public async Task<OrchestrationPage> GetAllInstancesAsync(InstanceQuery? query = null, CancellationToken cancellationToken = default)
    {
        query ??= new InstanceQuery();
        ArgumentOutOfRangeException.ThrowIfLessThan(query.PageSize, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.PageSize, 1000);
        var page = await _store.QueryInstancesAsync(query, cancellationToken).ConfigureAwait(false);
        return new OrchestrationPage(page.Instances.Select(r => new OrchestrationMetadata(r)).ToList(), page.ContinuationToken);
    }

    /// <summary>Sends an event to an instance. Events to a suspended instance wait until it resumes.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    /// <exception cref="OrchestrationStateException">The instance is finished.</exception>
    public async Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        ArgumentException.ThrowIfNullOrWhiteSpace(eventName);
        var serialized = DataConverter.Serialize(eventPayload);
        await RaiseSerializedEventAsync(instanceId, eventName, serialized, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends an event whose payload is already JSON.</summary>
    public async Task RaiseSerializedEventAsync(string instanceId, string eventName, string? serializedPayload, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(eventName);
        CheckSize(serializedPayload, $"payload of event '{eventName}'");
        CheckJson(serializedPayload, $"payload of event '{eventName}'");
        await SendAsync(instanceId, new EventRaisedEvent(eventName, serializedPayload), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Terminates an instance and, recursively, its running sub-orchestrations.</summary>
    /// <exception cref="OrchestrationStateException">The instance is already finished.</exception>
    public Task TerminateInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellationToken = default) =>
        SendAsync(instanceId, new ExecutionTerminatedEvent(reason), cancellationToken);

    /// <summary>Suspends an instance: it keeps its state and events but does nothing until resumed.</summary>
    public Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellationToken = default) =>
        SendAsync(instanceId, new ExecutionSuspendedEvent(reason), cancellationToken);

    /// <summary>Resumes a suspended instance.</summary>
    public Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellationToken = default) =>
        SendAsync(instanceId, new ExecutionResumedEvent(reason), cancellationToken);

    /// <summary>Deletes a finished instance and its history. False when it does not exist.</summary>
    /// <exception cref="OrchestrationStateException">The instance is not finished.</exception>
    public Task<bool> PurgeInstanceAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        return _store.PurgeInstanceAsync(instanceId, cancellationToken);
    }

    /// <summary>Deletes finished instances matching the filter; returns how many.</summary>
    public Task<int> PurgeAllInstancesAsync(PurgeFilter filter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return _store.PurgeInstancesAsync(filter, cancellationToken);
    }

    /// <summary>The current execution's history.</summary>
    /// <exception cref="OrchestrationNotFoundException">No such instance.</exception>
    public async Task<IReadOnlyList<HistoryEvent>> GetOrchestrationHistoryAsync(string instanceId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        _ = await _store.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) ?? throw new OrchestrationNotFoundException(instanceId);
        return await _store.GetHistoryAsync(instanceId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until the instance has left Pending.</summary>
    public Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellationToken = default) =>
        WaitAsync(instanceId, getInputsAndOutputs, s => s != OrchestrationRuntimeStatus.Pending, cancellationToken);

    /// <summary>Waits until the instance is Completed, Failed or Terminated.</summary>
    public Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellationToken = default) =>
        WaitAsync(instanceId, getInputsAndOutputs, s => s.IsTerminal(), cancellationToken);

    private async Task<OrchestrationMetadata> WaitAsync(string instanceId, bool getInputsAndOutputs, Func<OrchestrationRuntimeStatus, bool> done, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(2);
        while (true)
        {
            var m = await GetInstanceAsync(instanceId, getInputsAndOutputs, cancellationToken).ConfigureAwait(false)
                ?? throw new OrchestrationNotFoundException(instanceId);
            if (done(m.RuntimeStatus))
            {
                return m;
            }

            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }

    private async Task SendAsync(string instanceId, HistoryEvent message, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(instanceId);
        var now = _time.GetUtcNow();
        await _store.SendClientMessageAsync(instanceId, message with { Timestamp = now }, now, cancellationToken).ConfigureAwait(false);
        _signal.NotifyOrchestrations();
    }

    private static void CheckJson(string? serialized, string what)
    {
        if (serialized is null)
        {
            return;
        }

        try
        {
            using var _ = System.Text.Json.JsonDocument.Parse(serialized);
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidPayloadException($"The {what} is not valid JSON: {ex.Message}", ex);
        }
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
