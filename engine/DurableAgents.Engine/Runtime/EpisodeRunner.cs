using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// Runs one episode for a leased instance: resume the cached session or replay history, apply the
/// new messages, and commit the result in one fenced transaction.
/// </summary>
internal sealed class EpisodeRunner
{
    private readonly IOrchestrationStore _store;
    private readonly TaskRegistry _registry;
    private readonly SessionCache _cache;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly long _maxPayloadBytes;

    public EpisodeRunner(IOrchestrationStore store, TaskRegistry registry, SessionCache cache, TimeProvider time, ILoggerFactory loggerFactory, long maxPayloadBytes)
    {
        _store = store;
        _registry = registry;
        _cache = cache;
        _time = time;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Orchestrations");
        _maxPayloadBytes = maxPayloadBytes;
    }

    private long _cacheHits;
    private long _cacheMisses;

    /// <summary>Episodes that resumed a cached session.</summary>
    public long CacheHits => Interlocked.Read(ref _cacheHits);

    /// <summary>Episodes that replayed history.</summary>
    public long CacheMisses => Interlocked.Read(ref _cacheMisses);

    public async Task<EpisodeResult> RunAsync(OrchestrationWorkItem item, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (item.Status.IsTerminal())
        {
            // Late messages for a finished instance (a timer, an activity result, an event): consume and drop.
            return new EpisodeResult(new OrchestrationCommit { ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList() }, null, null);
        }

        var terminate = item.Messages.FirstOrDefault(m => m.Event is ExecutionTerminatedEvent);
        if (terminate is not null)
        {
            return new EpisodeResult(await TerminateAsync(item, (ExecutionTerminatedEvent)terminate.Event, now, cancellationToken).ConfigureAwait(false), null, null);
        }

        var session = _cache.Take(item.InstanceId, item.ExecutionId, item.HistoryLength);
        var cacheResult = "hit";
        if (session is null)
        {
            cacheResult = "miss";
            Interlocked.Increment(ref _cacheMisses);
            ITaskOrchestrator orchestrator;
            try
            {
                orchestrator = _registry.CreateOrchestrator(item.Name);
            }
            catch (TaskNotRegisteredException ex)
            {
                return new EpisodeResult(FailWithoutRunning(item, ex, now), null, null);
            }

            session = new OrchestrationSession(item.InstanceId, item.ExecutionId, item.Name, orchestrator, _maxPayloadBytes, _loggerFactory);
            if (item.HistoryLength > 0)
            {
                var history = await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false);
                session.Replay(history);
            }
        }
        else
        {
            Interlocked.Increment(ref _cacheHits);
        }

        var output = session.RunEpisode(item.Messages, now);
        var update = session.Finish(output, now);
        session.HistoryLength = output.ContinueAsNew is null ? item.HistoryLength + output.NewEvents.Count : 0;
        var commit = new OrchestrationCommit
        {
            NewEvents = output.NewEvents,
            ConsumedMessageIds = output.Consumed,
            NewActivities = output.NewActivities,
            NewMessages = output.NewMessages,
            NewInstances = output.NewInstances,
            Instance = update,
            ContinueAsNew = output.ContinueAsNew,
        };

        _logger.EpisodeCompleted(item.InstanceId, item.Name, item.Messages.Count, output.NewEvents.Count, update.Status, cacheResult);
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

        var toCache = output.ContinueAsNew is null && !update.Status.IsTerminal() ? session : null;
        return new EpisodeResult(commit, toCache, output.EarliestTimer);
    }

    private OrchestrationCommit FailWithoutRunning(OrchestrationWorkItem item, Exception ex, DateTimeOffset now)
    {
        var failure = TaskFailureDetails.FromException(ex);
        var events = new List<HistoryEvent> { new OrchestratorStartedEvent { Timestamp = now } };
        var messages = new List<OrchestrationMessage>();
        var started = item.Messages.Select(m => m.Event).OfType<ExecutionStartedEvent>().FirstOrDefault();
        if (started is not null)
        {
            events.Add(started);
        }

        events.Add(new ExecutionFailedEvent(failure) { Timestamp = now });
        if (started?.Parent is { } p)
        {
            messages.Add(new OrchestrationMessage(0, p.InstanceId, p.ExecutionId, new SubOrchestrationInstanceFailedEvent(p.TaskScheduledId, failure) { Timestamp = now }, now));
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

    private async Task<OrchestrationCommit> TerminateAsync(OrchestrationWorkItem item, ExecutionTerminatedEvent terminate, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Terminating needs no orchestrator code: the children still running and the parent come
        // from history, so even an instance whose code no longer replays can be stopped.
        _cache.Take(item.InstanceId, item.ExecutionId, item.HistoryLength);
        var history = item.HistoryLength > 0
            ? await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false)
            : [];
        var all = history.Concat(item.Messages.Where(m => m.ExecutionId is null || m.ExecutionId == item.ExecutionId).Select(m => m.Event)).ToList();
        var parent = all.OfType<ExecutionStartedEvent>().FirstOrDefault()?.Parent;
        var children = new Dictionary<int, string>();
        foreach (var e in history)
        {
            switch (e)
            {
                case SubOrchestrationInstanceCreatedEvent c:
                    children[c.EventId] = c.InstanceId;
                    break;
                case SubOrchestrationInstanceCompletedEvent c:
                    children.Remove(c.TaskScheduledId);
                    break;
                case SubOrchestrationInstanceFailedEvent c:
                    children.Remove(c.TaskScheduledId);
                    break;
                default:
                    break;
            }
        }

        var ended = terminate with { Timestamp = now };
        var events = new List<HistoryEvent> { new OrchestratorStartedEvent { Timestamp = now } };
        if (item.HistoryLength == 0 && all.OfType<ExecutionStartedEvent>().FirstOrDefault() is { } started)
        {
            events.Add(started);
        }

        events.Add(ended);
        var messages = children.Values
            .Select(child => new OrchestrationMessage(0, child, null, new ExecutionTerminatedEvent($"Parent '{item.InstanceId}' was terminated: {terminate.Reason}") { Timestamp = now }, now))
            .ToList();
        if (parent is not null)
        {
            var failure = new TaskFailureDetails(ErrorTypes.Terminated, $"Sub-orchestration '{item.InstanceId}' was terminated: {terminate.Reason}", IsNonRetriable: true);
            messages.Add(new OrchestrationMessage(0, parent.InstanceId, parent.ExecutionId, new SubOrchestrationInstanceFailedEvent(parent.TaskScheduledId, failure) { Timestamp = now }, now));
        }

        _logger.OrchestrationTerminated(item.InstanceId, children.Count);
        return new OrchestrationCommit
        {
            NewEvents = events,
            ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList(),
            NewMessages = messages,
            Instance = new InstanceUpdate(OrchestrationRuntimeStatus.Terminated, DataConverter.Serialize(terminate.Reason), null, null),
        };
    }
}

/// <summary>What an episode produced: the commit, the session to cache once it succeeds, and the earliest new timer.</summary>
internal sealed record EpisodeResult(OrchestrationCommit Commit, OrchestrationSession? SessionToCache, DateTimeOffset? EarliestTimer);
