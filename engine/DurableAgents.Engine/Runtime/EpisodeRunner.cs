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
    private readonly DurableAgentsOptions _options;
    private readonly EpisodeBuilder _builder;
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
        _options = options;
        _builder = new EpisodeBuilder(store, loggerFactory, options);
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
        if (await _builder.WithoutCodeAsync(item, now, cancellationToken).ConfigureAwait(false) is { } done)
        {
            Forget(item.InstanceId);
            return new EpisodeResult(done, null, null);
        }

        if (!_factory.TryCreateOrchestrator(new TaskName(item.Name), _services, out var orchestrator))
        {
            Forget(item.InstanceId);
            return new EpisodeResult(
                await _builder.FailWithoutRunningAsync(item, Events.Failure(ErrorTypes.OrchestratorNotFound, $"No orchestrator named '{item.Name}' is registered on this worker."), now, cancellationToken).ConfigureAwait(false),
                null,
                null);
        }

        var inputs = EpisodeBuilder.Inputs(item, now);
        var newEvents = inputs.NewEvents;
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
        var (commit, earliestTimer) = await _builder.PlanAsync(item, inputs, past, response, now, cached ? "hit" : "miss", cancellationToken).ConfigureAwait(false);
        var update = commit.Instance!;
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

        return new EpisodeResult(commit, committed, earliestTimer);
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
}

/// <summary>What an episode produced: the commit, what to remember once it lands, and the earliest new timer.</summary>
internal sealed record EpisodeResult(OrchestrationCommit Commit, Action? Committed, DateTimeOffset? EarliestTimer);
