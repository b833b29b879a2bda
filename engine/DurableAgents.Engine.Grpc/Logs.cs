using Microsoft.Extensions.Logging;

namespace DurableAgents.Engine.Grpc;

/// <summary>gRPC endpoint log messages (event ids 1400–1419 are a contract). Payloads are never logged.</summary>
internal static partial class Logs
{
    [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "DurableAgents Durable Task gRPC endpoint listening on {Address} ({Auth}).")]
    public static partial void GrpcListening(this ILogger logger, string address, string auth);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "gRPC worker stream {StreamId} connected: up to {Orchestrations} orchestration and {Activities} activity work items, orchestrations {OrchestrationFilter}, activities {ActivityFilter}.")]
    public static partial void StreamConnected(this ILogger logger, string streamId, int orchestrations, int activities, string orchestrationFilter, string activityFilter);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Information, Message = "gRPC worker stream {StreamId} ended; {Returned} work items it held went back to the queue.")]
    public static partial void StreamEnded(this ILogger logger, string streamId, int returned);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "A {Kind} completion was refused: {Reason}")]
    public static partial void CompletionRefused(this ILogger logger, string kind, string reason);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Warning, Message = "A gRPC call to {Method} was refused: missing or wrong API key.")]
    public static partial void Unauthenticated(this ILogger logger, string method);

    [LoggerMessage(EventId = 1405, Level = LogLevel.Error, Message = "gRPC worker stream {StreamId} could not poll the store; retrying in {Delay}.")]
    public static partial void StreamPollError(this ILogger logger, string streamId, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 1407, Level = LogLevel.Debug, Message = "History of {InstanceId} streamed: {Events} events in {Chunks} chunks (for a work item: {ForWorkItem}).")]
    public static partial void HistoryStreamed(this ILogger logger, string instanceId, int events, int chunks, bool forWorkItem);

    [LoggerMessage(EventId = 1406, Level = LogLevel.Debug, Message = "Work item {Kind} for {InstanceId} abandoned by its worker.")]
    public static partial void WorkItemAbandoned(this ILogger logger, string kind, string instanceId);
}
