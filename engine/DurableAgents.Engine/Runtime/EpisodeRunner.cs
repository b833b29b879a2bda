using System.Collections.Concurrent;
using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Grpc;
using Microsoft.Extensions.Logging;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// Runs one episode for a leased instance on the Durable Task SDK's own runner
/// (<see cref="GrpcOrchestrationRunner.LoadAndRun(string, ITaskOrchestrator, ExtendedSessionsCache, IServiceProvider)"/>,
/// the entry the Functions isolated worker uses): it builds the protocol's
/// <see cref="P.OrchestratorRequest"/> (past events only when the session cache cannot be trusted),
/// and turns the <see cref="P.OrchestratorResponse"/> actions into one fenced commit.
/// </summary>
internal sealed class EpisodeRunner : IDisposable
{
    private readonly IOrchestrationStore _store;
    private readonly IDurableTaskFactory _factory;
    private readonly IServiceProvider _services;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly DurableAgentsOptions _options;
    private readonly ExtendedSessionsCache _sessions = new();

    // What the SDK's session cache holds for an instance: the execution and history length it was
    // left at by a commit of ours. A work item with anything else (another host ran the instance,
    // a commit failed) is sent with its full history, which replaces the cached state.
    private readonly ConcurrentDictionary<string, (string ExecutionId, int HistoryLength)> _cached = new(StringComparer.Ordinal);

    private long _cacheHits;
    private long _cacheMisses;

    public EpisodeRunner(IOrchestrationStore store, IDurableTaskFactory factory, IServiceProvider services, TimeProvider time, ILoggerFactory loggerFactory, DurableAgentsOptions options)
    {
        _store = store;
        _factory = factory;
        _services = services;
        _time = time;
        _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Orchestrations");
        _options = options;
    }

    /// <summary>Episodes that continued a cached session (new events only).</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);

    /// <summary>Episodes that replayed history.</summary>
    public long CacheMisses => Interlocked.Read(ref _cacheMisses);

    private bool Sessions => _options.ExtendedSessionIdleTimeout > TimeSpan.Zero;

    public void Dispose() => _sessions.Dispose();

    /// <summary>Forgets the cached state of an instance (its commit failed).</summary>
    public void Forget(string instanceId) => _cached.TryRemove(instanceId, out _);

    public async Task<EpisodeResult> RunAsync(OrchestrationWorkItem item, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (item.Status.IsTerminal())
        {
            // Late messages for a finished instance (a timer, an activity result, an event): consume and drop.
            return new EpisodeResult(new OrchestrationCommit { ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList() }, null, null);
        }

        var terminate = item.Messages.FirstOrDefault(m => m.Event.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionTerminated);
        if (terminate is not null)
        {
            Forget(item.InstanceId);
            return new EpisodeResult(await TerminateAsync(item, terminate.Event.ExecutionTerminated, now, cancellationToken).ConfigureAwait(false), null, null);
        }

        if (!_factory.TryCreateOrchestrator(new TaskName(item.Name), _services, out var orchestrator))
        {
            Forget(item.InstanceId);
            return new EpisodeResult(
                await FailWithoutRunningAsync(item, Events.Failure(ErrorTypes.OrchestratorNotFound, $"No orchestrator named '{item.Name}' is registered on this worker."), now, cancellationToken).ConfigureAwait(false),
                null,
                null);
        }

        // Messages addressed to an earlier execution (a timer or result from before ContinueAsNew) are dropped.
        var current = item.Messages.Where(m => m.ExecutionId is null || m.ExecutionId == item.ExecutionId).ToList();
        // ExecutionStarted comes first whatever the inbox order (events carried over by
        // ContinueAsNew, or raised right after a start, can share its visible time).
        var newEvents = new List<P.HistoryEvent>(current.Count + 1) { Events.OrchestratorStarted(now) };
        newEvents.AddRange(current.Select(m => m.Event).OrderBy(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted ? 0 : 1));

        var cached = Sessions
            && _cached.TryGetValue(item.InstanceId, out var mark)
            && mark.ExecutionId == item.ExecutionId
            && mark.HistoryLength == item.HistoryLength;
        IReadOnlyList<P.HistoryEvent> past = cached || item.HistoryLength == 0
            ? []
            : await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false);
        var response = Run(item, past, newEvents, includeState: !cached, orchestrator);
        if (response.RequiresHistory)
        {
            // The SDK's cache no longer has the session (idle timeout, memory pressure): replay.
            cached = false;
            past = await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false);
            response = Run(item, past, newEvents, includeState: true, orchestrator);
        }

        Interlocked.Increment(ref cached ? ref _cacheHits : ref _cacheMisses);
        var plan = new EpisodePlan(item, now, _options.MaxPayloadBytes);
        plan.Apply(newEvents, current, response);

        // A sub-orchestration that ends (completes, fails, even by a payload refusal, or continues
        // as new) needs its parent, named in its ExecutionStarted.
        P.ParentInstanceInfo? parent = null;
        if (item.ParentInstanceId is not null && plan.NeedsParent)
        {
            parent = (await ExecutionStartedAsync(item, newEvents.Concat(past), cancellationToken).ConfigureAwait(false))?.ExecutionStarted.ParentInstance;
        }

        var commit = plan.ToCommit(item.Messages.Select(m => m.Id).ToList(), parent);
        var update = commit.Instance!;

        _logger.EpisodeCompleted(item.InstanceId, item.Name, item.Messages.Count, commit.NewEvents.Count, update.Status, cached ? "hit" : "miss");
        if (update.Status.IsTerminal())
        {
            if (update.Failure is { } f)
            {
                _logger.OrchestrationFailed(item.InstanceId, item.Name, f.ErrorType, f.ErrorMessage);
            }
            else
            {
                _logger.OrchestrationFinished(item.InstanceId, item.Name, update.Status);
            }
        }

        Action? committed = null;
        if (Sessions && commit.ContinueAsNew is null && !update.Status.IsTerminal())
        {
            var after = (item.ExecutionId, item.HistoryLength + commit.NewEvents.Count);
            committed = () => _cached[item.InstanceId] = after;
        }
        else
        {
            Forget(item.InstanceId);
        }

        return new EpisodeResult(commit, committed, plan.EarliestTimer);
    }

    private P.OrchestratorResponse Run(OrchestrationWorkItem item, IReadOnlyList<P.HistoryEvent> past, List<P.HistoryEvent> newEvents, bool includeState, ITaskOrchestrator orchestrator)
    {
        var request = new P.OrchestratorRequest { InstanceId = item.InstanceId, ExecutionId = item.ExecutionId };
        request.PastEvents.AddRange(past);
        request.NewEvents.AddRange(newEvents);
        if (Sessions)
        {
            request.Properties["IsExtendedSession"] = Value.ForBool(true);
            request.Properties["ExtendedSessionIdleTimeoutInSeconds"] = Value.ForNumber(_options.ExtendedSessionIdleTimeout.TotalSeconds);
            request.Properties["IncludeState"] = Value.ForBool(includeState);
        }

        var encoded = GrpcOrchestrationRunner.LoadAndRun(
            Convert.ToBase64String(request.ToByteArray()),
            orchestrator,
            Sessions ? _sessions : null,
            _services);
        return P.OrchestratorResponse.Parser.ParseFrom(Convert.FromBase64String(encoded));
    }

    /// <summary>The execution's ExecutionStarted: among <paramref name="known"/> events, else from the stored history.</summary>
    private async Task<P.HistoryEvent?> ExecutionStartedAsync(OrchestrationWorkItem item, IEnumerable<P.HistoryEvent> known, CancellationToken cancellationToken) =>
        known.FirstExecutionStarted()
            ?? (item.HistoryLength > 0 ? (await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false)).FirstExecutionStarted() : null);

    private async Task<OrchestrationCommit> FailWithoutRunningAsync(OrchestrationWorkItem item, P.TaskFailureDetails failure, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var events = new List<P.HistoryEvent> { Events.OrchestratorStarted(now) };
        if (item.Messages.Select(m => m.Event).FirstExecutionStarted() is { } first)
        {
            events.Add(first); // the first episode: its history begins with the start
        }

        var started = await ExecutionStartedAsync(item, item.Messages.Select(m => m.Event), cancellationToken).ConfigureAwait(false);

        events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.Failed, null, failure, now));
        var messages = new List<OrchestrationMessage>();
        if (started?.ExecutionStarted.ParentInstance is { } p)
        {
            messages.Add(new OrchestrationMessage(0, p.OrchestrationInstance.InstanceId, p.OrchestrationInstance.ExecutionId, Events.SubOrchestrationFailed(p.TaskScheduledId, failure, now), now));
        }

        _logger.OrchestrationFailed(item.InstanceId, item.Name, failure.ErrorType, failure.ErrorMessage);
        return new OrchestrationCommit
        {
            NewEvents = events,
            ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList(),
            NewMessages = messages,
            Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Failed, null, null, failure),
        };
    }

    private async Task<OrchestrationCommit> TerminateAsync(OrchestrationWorkItem item, P.ExecutionTerminatedEvent terminate, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Terminating needs no orchestrator code: the children still running and the parent come
        // from history, so even an instance whose code no longer replays can be stopped.
        var history = item.HistoryLength > 0
            ? await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false)
            : [];
        var all = history.Concat(item.Messages.Where(m => m.ExecutionId is null || m.ExecutionId == item.ExecutionId).Select(m => m.Event)).ToList();
        var started = all.FirstExecutionStarted();
        var parent = started?.ExecutionStarted.ParentInstance;
        var children = new Dictionary<int, string>();
        foreach (var e in history)
        {
            switch (e.EventTypeCase)
            {
                case P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCreated:
                    children[e.EventId] = e.SubOrchestrationInstanceCreated.InstanceId;
                    break;
                case P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCompleted:
                    children.Remove(e.SubOrchestrationInstanceCompleted.TaskScheduledId);
                    break;
                case P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceFailed:
                    children.Remove(e.SubOrchestrationInstanceFailed.TaskScheduledId);
                    break;
                default:
                    break;
            }
        }

        var events = new List<P.HistoryEvent> { Events.OrchestratorStarted(now) };
        if (item.HistoryLength == 0 && started is not null)
        {
            events.Add(started);
        }

        events.Add(Events.ExecutionTerminated(terminate.Input, terminate.Recurse, now));
        events.Add(Events.ExecutionCompleted(P.OrchestrationStatus.Terminated, terminate.Input, null, now));
        var reason = terminate.Input is null ? "(no reason given)" : terminate.Input;

        // Children are terminated too when the request says so (TerminateInstanceOptions.Recursive;
        // the HTTP API asks for it by default).
        var messages = terminate.Recurse
            ? children.Values
                .Select(child => new OrchestrationMessage(0, child, null, Events.ExecutionTerminated(DataConverter.Serialize($"Parent '{item.InstanceId}' was terminated: {reason}"), recurse: true, now), now))
                .ToList()
            : [];
        if (parent is not null)
        {
            var failure = Events.Failure(ErrorTypes.Terminated, $"Sub-orchestration '{item.InstanceId}' was terminated: {reason}");
            messages.Add(new OrchestrationMessage(0, parent.OrchestrationInstance.InstanceId, parent.OrchestrationInstance.ExecutionId, Events.SubOrchestrationFailed(parent.TaskScheduledId, failure, now), now));
        }

        _logger.OrchestrationTerminated(item.InstanceId, children.Count);
        return new OrchestrationCommit
        {
            NewEvents = events,
            ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList(),
            NewMessages = messages,
            Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Terminated, terminate.Input, null, null),
        };
    }
}

/// <summary>What an episode produced: the commit, what to remember once it lands, and the earliest new timer.</summary>
internal sealed record EpisodeResult(OrchestrationCommit Commit, Action? Committed, DateTimeOffset? EarliestTimer);
