using DurableAgents.Engine.History;
using DurableAgents.Engine.Hosting;
using DurableAgents.Engine.Storage;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.Runtime;

/// <summary>
/// What a backend does around the orchestrator's code, whoever runs it (the in-process runner, or a
/// stock worker over gRPC): the episode's new events from the inbox, the episodes that need no code
/// (late messages for a finished instance, a termination, an unknown orchestrator), and the one
/// fenced commit that an <see cref="P.OrchestratorResponse"/> becomes.
/// </summary>
internal sealed class EpisodeBuilder
{
    private readonly IOrchestrationStore _store;
    private readonly ILogger _logger;
    private readonly DurableAgentsOptions _options;

    public EpisodeBuilder(IOrchestrationStore store, ILoggerFactory loggerFactory, DurableAgentsOptions options)
    {
        _store = store;
        _logger = loggerFactory.CreateLogger("DurableAgents.Engine.Orchestrations");
        _options = options;
    }

    /// <summary>The episode's inputs: the messages of the current execution, and the new events (OrchestratorStarted, then ExecutionStarted first).</summary>
    public static EpisodeInputs Inputs(OrchestrationWorkItem item, DateTimeOffset now)
    {
        // Messages addressed to an earlier execution (a timer or result from before ContinueAsNew) are dropped.
        var current = item.Messages.Where(m => m.ExecutionId is null || m.ExecutionId == item.ExecutionId).ToList();
        // ExecutionStarted comes first whatever the inbox order (events carried over by
        // ContinueAsNew, or raised right after a start, can share its visible time).
        var newEvents = new List<P.HistoryEvent>(current.Count + 1) { Events.OrchestratorStarted(now) };
        newEvents.AddRange(current.Select(m => m.Event).OrderBy(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted ? 0 : 1));
        return new EpisodeInputs(current, newEvents);
    }

    /// <summary>
    /// The commit of an episode that runs no orchestrator code, or null: late messages for a
    /// finished instance are consumed and dropped; a termination ends the instance from its history.
    /// </summary>
    public async Task<OrchestrationCommit?> WithoutCodeAsync(OrchestrationWorkItem item, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (item.Status.IsTerminal())
        {
            return new OrchestrationCommit { ConsumedMessageIds = item.Messages.Select(m => m.Id).ToList() };
        }

        var terminate = item.Messages.FirstOrDefault(m => m.Event.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionTerminated);
        return terminate is null ? null : await TerminateAsync(item, terminate.Event.ExecutionTerminated, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The one commit the orchestrator's <paramref name="response"/> to <paramref name="inputs"/> becomes, and the earliest timer it creates.</summary>
    /// <param name="past">The history the code was given (may be empty when a session cache held it).</param>
    public async Task<(OrchestrationCommit Commit, DateTimeOffset? EarliestTimer)> PlanAsync(
        OrchestrationWorkItem item, EpisodeInputs inputs, IReadOnlyList<P.HistoryEvent> past, P.OrchestratorResponse response, DateTimeOffset now, string cache, CancellationToken cancellationToken)
    {
        var plan = new EpisodePlan(item, now, _options.MaxPayloadBytes);
        plan.Apply(inputs.NewEvents, inputs.Delivered, response);

        // A sub-orchestration that ends (completes, fails, even by a payload refusal, or continues
        // as new) needs its parent, named in its ExecutionStarted.
        P.ParentInstanceInfo? parent = null;
        if (item.ParentInstanceId is not null && plan.NeedsParent)
        {
            parent = (await ExecutionStartedAsync(item, inputs.NewEvents.Concat(past), cancellationToken).ConfigureAwait(false))?.ExecutionStarted.ParentInstance;
        }

        var commit = plan.ToCommit(item.Messages.Select(m => m.Id).ToList(), parent);
        var update = commit.Instance!;

        _logger.EpisodeCompleted(item.InstanceId, item.Name, item.Messages.Count, commit.NewEvents.Count, update.Status, cache);
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

        return (commit, plan.EarliestTimer);
    }

    /// <summary>The execution's ExecutionStarted: among <paramref name="known"/> events, else from the stored history.</summary>
    private async Task<P.HistoryEvent?> ExecutionStartedAsync(OrchestrationWorkItem item, IEnumerable<P.HistoryEvent> known, CancellationToken cancellationToken) =>
        known.FirstExecutionStarted()
            ?? (item.HistoryLength > 0 ? (await _store.GetHistoryAsync(item.InstanceId, cancellationToken).ConfigureAwait(false)).FirstExecutionStarted() : null);

    public async Task<OrchestrationCommit> FailWithoutRunningAsync(OrchestrationWorkItem item, P.TaskFailureDetails failure, DateTimeOffset now, CancellationToken cancellationToken)
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

/// <summary>An episode's inputs: the delivered messages of the current execution and the new events built from them.</summary>
internal sealed record EpisodeInputs(IReadOnlyList<OrchestrationMessage> Delivered, List<P.HistoryEvent> NewEvents);
