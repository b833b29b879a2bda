using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableAgents.Engine.History;

/// <summary>
/// Builds the Durable Task protocol's history events (<see cref="P.HistoryEvent"/>, from
/// Microsoft.DurableTask.Grpc). The store keeps exactly these messages, as their canonical JSON
/// (<see cref="HistoryJson"/>), so what the protocol speaks is what the store keeps.
/// </summary>
public static class Events
{
    /// <summary>The first event of every execution.</summary>
    public static P.HistoryEvent ExecutionStarted(
        string instanceId,
        string executionId,
        string name,
        string? version,
        string? input,
        P.ParentInstanceInfo? parent,
        DateTimeOffset? scheduledStart,
        IReadOnlyDictionary<string, string>? tags,
        DateTimeOffset now)
    {
        var started = new P.ExecutionStartedEvent
        {
            Name = name,
            Version = version,
            Input = input,
            OrchestrationInstance = new P.OrchestrationInstance { InstanceId = instanceId, ExecutionId = executionId },
            ParentInstance = parent,
            ScheduledStartTimestamp = scheduledStart is { } at ? Timestamp.FromDateTimeOffset(at) : null,
        };
        if (tags is not null)
        {
            foreach (var (key, value) in tags)
            {
                started.Tags[key] = value;
            }
        }

        return New(now, e => e.ExecutionStarted = started);
    }

    /// <summary>Marks the start of an episode; its timestamp is the orchestration's CurrentUtcDateTime.</summary>
    public static P.HistoryEvent OrchestratorStarted(DateTimeOffset now) => New(now, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent());

    /// <summary>Marks the end of an episode.</summary>
    public static P.HistoryEvent OrchestratorCompleted(DateTimeOffset now) => New(now, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent());

    /// <summary>An activity result.</summary>
    public static P.HistoryEvent TaskCompleted(int taskScheduledId, string? result, DateTimeOffset now) =>
        New(now, e => e.TaskCompleted = new P.TaskCompletedEvent { TaskScheduledId = taskScheduledId, Result = result });

    /// <summary>An activity failure.</summary>
    public static P.HistoryEvent TaskFailed(int taskScheduledId, P.TaskFailureDetails failure, DateTimeOffset now) =>
        New(now, e => e.TaskFailed = new P.TaskFailedEvent { TaskScheduledId = taskScheduledId, FailureDetails = failure });

    /// <summary>A durable timer fired.</summary>
    public static P.HistoryEvent TimerFired(int timerId, Timestamp fireAt, DateTimeOffset now) =>
        New(now, e => e.TimerFired = new P.TimerFiredEvent { TimerId = timerId, FireAt = fireAt });

    /// <summary>An external event.</summary>
    public static P.HistoryEvent EventRaised(string name, string? input, DateTimeOffset now) =>
        New(now, e => e.EventRaised = new P.EventRaisedEvent { Name = name, Input = input });

    /// <summary>A child orchestration completed.</summary>
    public static P.HistoryEvent SubOrchestrationCompleted(int taskScheduledId, string? result, DateTimeOffset now) =>
        New(now, e => e.SubOrchestrationInstanceCompleted = new P.SubOrchestrationInstanceCompletedEvent { TaskScheduledId = taskScheduledId, Result = result });

    /// <summary>A child orchestration failed or was terminated.</summary>
    public static P.HistoryEvent SubOrchestrationFailed(int taskScheduledId, P.TaskFailureDetails failure, DateTimeOffset now) =>
        New(now, e => e.SubOrchestrationInstanceFailed = new P.SubOrchestrationInstanceFailedEvent { TaskScheduledId = taskScheduledId, FailureDetails = failure });

    /// <summary>A terminate request (as a message) or the record of a termination (in history).</summary>
    public static P.HistoryEvent ExecutionTerminated(string? reason, bool recurse, DateTimeOffset now) =>
        New(now, e => e.ExecutionTerminated = new P.ExecutionTerminatedEvent { Input = reason, Recurse = recurse });

    /// <summary>A suspend request.</summary>
    public static P.HistoryEvent ExecutionSuspended(string? reason, DateTimeOffset now) =>
        New(now, e => e.ExecutionSuspended = new P.ExecutionSuspendedEvent { Input = reason });

    /// <summary>A resume request.</summary>
    public static P.HistoryEvent ExecutionResumed(string? reason, DateTimeOffset now) =>
        New(now, e => e.ExecutionResumed = new P.ExecutionResumedEvent { Input = reason });

    /// <summary>The end of an execution.</summary>
    public static P.HistoryEvent ExecutionCompleted(P.OrchestrationStatus status, string? result, P.TaskFailureDetails? failure, DateTimeOffset now) =>
        New(now, e => e.ExecutionCompleted = new P.ExecutionCompletedEvent { OrchestrationStatus = status, Result = result, FailureDetails = failure });

    /// <summary>Where a sub-orchestration reports back: its parent's name, version, instance and execution, and the parent's task id for it.</summary>
    public static P.ParentInstanceInfo Parent(string name, string? version, string instanceId, string executionId, int taskScheduledId) => new()
    {
        TaskScheduledId = taskScheduledId,
        Name = name,
        Version = version,
        OrchestrationInstance = new P.OrchestrationInstance { InstanceId = instanceId, ExecutionId = executionId },
    };

    /// <summary>A scheduling event with its task id.</summary>
    public static P.HistoryEvent WithId(int eventId, DateTimeOffset now, Action<P.HistoryEvent> set)
    {
        ArgumentNullException.ThrowIfNull(set);
        var e = New(now, set);
        e.EventId = eventId;
        return e;
    }

    /// <summary>The first ExecutionStarted among <paramref name="events"/>, or null.</summary>
    public static P.HistoryEvent? FirstExecutionStarted(this IEnumerable<P.HistoryEvent> events) =>
        events.FirstOrDefault(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);

    /// <summary>Failure details for an exception, keeping the typed error data of <see cref="DurableAgentsException"/>.</summary>
    public static P.TaskFailureDetails Failure(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var details = new P.TaskFailureDetails
        {
            ErrorType = exception is DurableAgentsException dae ? dae.ErrorType : exception.GetType().FullName ?? exception.GetType().Name,
            ErrorMessage = exception.Message,
            StackTrace = exception.StackTrace,
            IsNonRetriable = exception is DurableAgentsException { NonRetryable: true },
            InnerFailure = exception.InnerException is { } inner ? Failure(inner) : null,
        };
        foreach (var (key, value) in TaskFailureDetailsExtensions.PropertiesOf(exception))
        {
            details.Properties[key] = ToValue(value);
        }

        return details;
    }

    /// <summary>Failure details made by the engine itself (an unknown orchestrator, a termination).</summary>
    public static P.TaskFailureDetails Failure(string errorType, string message, bool nonRetriable = true) =>
        Failure(new DurableAgentsException(message, errorType, nonRetriable));

    /// <summary>The SDK's failure details for a protocol one.</summary>
    public static Microsoft.DurableTask.TaskFailureDetails? ToSdk(this P.TaskFailureDetails? failure) =>
        failure is null
            ? null
            : new Microsoft.DurableTask.TaskFailureDetails(
                failure.ErrorType,
                failure.ErrorMessage,
                failure.StackTrace,
                failure.InnerFailure.ToSdk(),
                PropertiesOf(failure));

    /// <summary>A failure's properties as plain values (bool, number, string; null otherwise), or null when it has none.</summary>
    internal static Dictionary<string, object?>? PropertiesOf(P.TaskFailureDetails failure) =>
        failure.Properties.Count == 0 ? null : failure.Properties.ToDictionary(p => p.Key, p => FromValue(p.Value));

    private static Value ToValue(object? value) => value switch
    {
        null => Value.ForNull(),
        bool b => Value.ForBool(b),
        string s => Value.ForString(s),
        double d => Value.ForNumber(d),
        int i => Value.ForNumber(i),
        long l => Value.ForNumber(l),
        _ => Value.ForString(Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty),
    };

    private static object? FromValue(Value value) => value.KindCase switch
    {
        Value.KindOneofCase.BoolValue => value.BoolValue,
        Value.KindOneofCase.StringValue => value.StringValue,
        Value.KindOneofCase.NumberValue => value.NumberValue,
        _ => null,
    };

    private static P.HistoryEvent New(DateTimeOffset now, Action<P.HistoryEvent> set)
    {
        var e = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTimeOffset(now) };
        set(e);
        return e;
    }
}

/// <summary>
/// The canonical protobuf JSON of history events and failure details, as stored.
/// WARNING: this is the persisted form of every history; it must stay readable by later versions.
/// </summary>
public static class HistoryJson
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    /// <summary>Serializes a history event.</summary>
    public static string Serialize(P.HistoryEvent e) => Formatter.Format(e);

    /// <summary>Deserializes a history event.</summary>
    public static P.HistoryEvent Deserialize(string json) => Parser.Parse<P.HistoryEvent>(json);

    /// <summary>Serializes failure details; null stays null.</summary>
    public static string? SerializeFailure(P.TaskFailureDetails? failure) => failure is null ? null : Formatter.Format(failure);

    /// <summary>Deserializes failure details; null stays null.</summary>
    public static P.TaskFailureDetails? DeserializeFailure(string? json) => json is null ? null : Parser.Parse<P.TaskFailureDetails>(json);

    /// <summary>The event's Durable Task type name, e.g. <c>TaskScheduled</c>.</summary>
    public static string TypeName(this P.HistoryEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.EventTypeCase.ToString();
    }
}
