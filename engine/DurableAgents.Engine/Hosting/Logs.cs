using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Engine log messages. Event ids are a contract: changing one breaks users' alerts and queries.
/// Payloads (inputs, outputs, event data) are never logged.
/// </summary>
internal static partial class Logs
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "DurableAgents worker {WorkerId} started: {Orchestrations} orchestration and {Activities} activity slots.")]
    public static partial void WorkerStarted(this ILogger logger, string workerId, int orchestrations, int activities);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "DurableAgents worker {WorkerId} stopping; waiting for {InFlight} in-flight work items.")]
    public static partial void WorkerStopping(this ILogger logger, string workerId, int inFlight);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Episode for {InstanceId} ({Name}): {Messages} messages, {NewEvents} new events, status {Status}, cache {CacheResult}.")]
    public static partial void EpisodeCompleted(this ILogger logger, string instanceId, string name, int messages, int newEvents, OrchestrationRuntimeStatus status, string cacheResult);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Information, Message = "Orchestration {InstanceId} ({Name}) finished: {Status}.")]
    public static partial void OrchestrationFinished(this ILogger logger, string instanceId, string name, OrchestrationRuntimeStatus status);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "Orchestration {InstanceId} ({Name}) failed: {ErrorType}: {ErrorMessage}")]
    public static partial void OrchestrationFailed(this ILogger logger, string instanceId, string name, string errorType, string errorMessage);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Lease on {InstanceId} was lost before its episode committed; the episode was discarded and another worker will redo it.")]
    public static partial void OrchestrationLeaseLost(this ILogger logger, string instanceId);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Error, Message = "Episode for {InstanceId} could not be processed; it will be retried.")]
    public static partial void EpisodeError(this ILogger logger, string instanceId, Exception exception);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Information, Message = "Orchestration {InstanceId} terminated; terminating {Children} running children.")]
    public static partial void OrchestrationTerminated(this ILogger logger, string instanceId, int children);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Debug, Message = "Activity {Name} #{TaskId} of {InstanceId} finished: {Outcome}.")]
    public static partial void ActivityFinished(this ILogger logger, string name, int taskId, string instanceId, string outcome);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Warning, Message = "Activity {Name} #{TaskId} of {InstanceId} ran again after its lease was lost; this duplicate result was discarded.")]
    public static partial void ActivityDuplicateDiscarded(this ILogger logger, string name, int taskId, string instanceId);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Information, Message = "Activity {Name} #{TaskId} of {InstanceId} was abandoned at shutdown; another worker will run it.")]
    public static partial void ActivityAbandoned(this ILogger logger, string name, int taskId, string instanceId);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Error, Message = "Activity {Name} #{TaskId} of {InstanceId} could not be completed in the store; it will run again after its lease expires.")]
    public static partial void ActivityStoreError(this ILogger logger, string name, int taskId, string instanceId, Exception exception);

    [LoggerMessage(EventId = 1030, Level = LogLevel.Error, Message = "The store could not be polled for {Kind} work; backing off for {Delay}.")]
    public static partial void PollError(this ILogger logger, string kind, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 1040, Level = LogLevel.Information, Message = "Host {HostId} ({Source} id) registered; released {Orchestrations} orchestration and {Activities} activity leases its previous run held.")]
    public static partial void HostRegistered(this ILogger logger, string hostId, string source, int orchestrations, int activities);

    [LoggerMessage(EventId = 1041, Level = LogLevel.Warning, Message = "Host {HostId} stopped heartbeating (its last heartbeat by its own clock {LastHeartbeat:O}); released its {Orchestrations} orchestration and {Activities} activity leases for the others.")]
    public static partial void HostDead(this ILogger logger, string hostId, DateTimeOffset? lastHeartbeat, int orchestrations, int activities);

    [LoggerMessage(EventId = 1042, Level = LogLevel.Information, Message = "Host {HostId} stopped; handed back {Orchestrations} orchestration and {Activities} activity leases.")]
    public static partial void HostUnregistered(this ILogger logger, string hostId, int orchestrations, int activities);

    [LoggerMessage(EventId = 1043, Level = LogLevel.Warning, Message = "Host {HostId} was presumed dead by another host (its beats stood still for {DeadAfter}) and its leases were released; work it still runs will be discarded at commit and redone.")]
    public static partial void HostPresumedDead(this ILogger logger, string hostId, TimeSpan deadAfter);

    [LoggerMessage(EventId = 1044, Level = LogLevel.Error, Message = "Another process heartbeats as host {HostId}: two hosts share one DurableAgents:WorkerId. The newer one released this one's leases; give every host its own id.")]
    public static partial void HostIdConflict(this ILogger logger, string hostId);

    [LoggerMessage(EventId = 1045, Level = LogLevel.Warning, Message = "Heartbeat of host {HostId} could not be written; retrying at the next interval.")]
    public static partial void HeartbeatFailed(this ILogger logger, string hostId, Exception exception);

    [LoggerMessage(EventId = 1046, Level = LogLevel.Error, Message = "Lease-release observer {Observer} failed.")]
    public static partial void ObserverFailed(this ILogger logger, string observer, Exception exception);

    [LoggerMessage(EventId = 1047, Level = LogLevel.Warning, Message = "Episode observer {Observer} failed for instance {InstanceId}; the episode is committed.")]
    public static partial void EpisodeObserverFailed(this ILogger logger, string observer, string instanceId, Exception exception);
}
