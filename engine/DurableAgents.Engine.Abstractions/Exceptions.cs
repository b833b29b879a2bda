namespace DurableAgents;

/// <summary>
/// The one error root of DurableAgents. <see cref="ErrorType"/> is a stable string that survives
/// serialization into history; <see cref="NonRetryable"/> and <see cref="NextRetryDelay"/> make
/// retryability data rather than a type hierarchy (as Temporal's ApplicationFailureException does).
/// </summary>
public class DurableAgentsException : Exception
{
    /// <summary>Creates an error with a stable error type.</summary>
    public DurableAgentsException(string message, string errorType, bool nonRetryable = false, TimeSpan? nextRetryDelay = null, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorType = errorType;
        NonRetryable = nonRetryable;
        NextRetryDelay = nextRetryDelay;
    }

    /// <summary>A stable machine-readable error type, e.g. <c>DurableAgents.PayloadTooLarge</c>.</summary>
    public string ErrorType { get; }

    /// <summary>True when retrying cannot help (bad input, content filter, budget exceeded).</summary>
    public bool NonRetryable { get; }

    /// <summary>A delay the failing party asked for (e.g. Retry-After), if any.</summary>
    public TimeSpan? NextRetryDelay { get; }
}

/// <summary>
/// Thrown by activity code to fail with a typed error, for example
/// <c>throw new ApplicationFailureException("content filtered", "ContentFilter", nonRetryable: true)</c>.
/// </summary>
public sealed class ApplicationFailureException : DurableAgentsException
{
    /// <summary>Creates an application failure.</summary>
    public ApplicationFailureException(string message, string errorType, bool nonRetryable = false, TimeSpan? nextRetryDelay = null, Exception? innerException = null)
        : base(message, errorType, nonRetryable, nextRetryDelay, innerException)
    {
    }
}

/// <summary>
/// Thrown inside an orchestration when an awaited activity or sub-orchestration failed.
/// <see cref="FailureDetails"/> carries what the failed task reported.
/// </summary>
public sealed class TaskFailedException : Exception
{
    /// <summary>Creates the exception for a failed task.</summary>
    public TaskFailedException(string taskName, int taskId, TaskFailureDetails failureDetails)
        : base($"Task '{taskName}' (#{taskId}) failed with {failureDetails.ErrorType}: {failureDetails.ErrorMessage}")
    {
        TaskName = taskName;
        TaskId = taskId;
        FailureDetails = failureDetails;
    }

    /// <summary>The activity or sub-orchestrator name.</summary>
    public string TaskName { get; }

    /// <summary>The task's sequence id within the orchestration.</summary>
    public int TaskId { get; }

    /// <summary>What the task reported.</summary>
    public TaskFailureDetails FailureDetails { get; }
}

/// <summary>Error types used by the engine; stable strings, part of the public contract.</summary>
public static class ErrorTypes
{
    /// <summary>An orchestration's code did not match its history.</summary>
    public const string NonDeterminism = "DurableAgents.NonDeterminism";

    /// <summary>A payload exceeded the configured size limit.</summary>
    public const string PayloadTooLarge = "DurableAgents.PayloadTooLarge";

    /// <summary>No orchestrator with the name is registered.</summary>
    public const string OrchestratorNotFound = "DurableAgents.OrchestratorNotFound";

    /// <summary>No activity with the name is registered.</summary>
    public const string ActivityNotFound = "DurableAgents.ActivityNotFound";

    /// <summary>An input or output could not be read as the declared type.</summary>
    public const string SerializationFailed = "DurableAgents.SerializationFailed";

    /// <summary>An orchestrator awaited something that is not a context task.</summary>
    public const string NonContextAwait = "DurableAgents.NonContextAwait";

    /// <summary>A sub-orchestration was terminated.</summary>
    public const string Terminated = "DurableAgents.Terminated";

    /// <summary>A sub-orchestration instance id is already in use by a running instance.</summary>
    public const string InstanceAlreadyExists = "DurableAgents.InstanceAlreadyExists";
}

/// <summary>An instance id is already in use by an instance in one of the dedupe statuses.</summary>
public sealed class OrchestrationAlreadyExistsException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public OrchestrationAlreadyExistsException(string instanceId, OrchestrationRuntimeStatus status)
        : base($"An orchestration instance with id '{instanceId}' already exists with status {status}.", ErrorTypes.InstanceAlreadyExists, nonRetryable: true)
    {
        InstanceId = instanceId;
        Status = status;
    }

    /// <summary>The conflicting instance id.</summary>
    public string InstanceId { get; }

    /// <summary>The existing instance's status.</summary>
    public OrchestrationRuntimeStatus Status { get; }
}

/// <summary>No instance with the id exists.</summary>
public sealed class OrchestrationNotFoundException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public OrchestrationNotFoundException(string instanceId)
        : base($"No orchestration instance with id '{instanceId}' exists.", "DurableAgents.InstanceNotFound", nonRetryable: true)
    {
        InstanceId = instanceId;
    }

    /// <summary>The unknown instance id.</summary>
    public string InstanceId { get; }
}

/// <summary>The operation needs an instance that is not finished (or, for purge, one that is).</summary>
public sealed class OrchestrationStateException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public OrchestrationStateException(string instanceId, OrchestrationRuntimeStatus status, string operation)
        : base($"Cannot {operation} orchestration instance '{instanceId}': its status is {status}.", "DurableAgents.InvalidInstanceState", nonRetryable: true)
    {
        InstanceId = instanceId;
        Status = status;
        Operation = operation;
    }

    /// <summary>The instance id.</summary>
    public string InstanceId { get; }

    /// <summary>Its status at the time of the call.</summary>
    public OrchestrationRuntimeStatus Status { get; }

    /// <summary>What was attempted (raise an event to, terminate, suspend, purge...).</summary>
    public string Operation { get; }
}

/// <summary>No orchestrator or activity with the name is registered.</summary>
public sealed class TaskNotRegisteredException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public TaskNotRegisteredException(string kind, string name, IEnumerable<string> registered)
        : base(
            $"No {kind} named '{name}' is registered. Registered {kind}s: {string.Join(", ", registered.Order(StringComparer.Ordinal))}.",
            kind == "orchestrator" ? ErrorTypes.OrchestratorNotFound : ErrorTypes.ActivityNotFound,
            nonRetryable: true)
    {
        Name = name;
    }

    /// <summary>The unknown name.</summary>
    public string Name { get; }
}

/// <summary>A payload is larger than the configured limit; nothing was written.</summary>
public sealed class PayloadTooLargeException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public PayloadTooLargeException(string what, long size, long limit)
        : base($"The {what} is {size:N0} bytes, over the limit of {limit:N0} bytes (DurableAgents:MaxPayloadBytes).", ErrorTypes.PayloadTooLarge, nonRetryable: true)
    {
        Size = size;
        Limit = limit;
    }

    /// <summary>The payload size in bytes (UTF-8 JSON).</summary>
    public long Size { get; }

    /// <summary>The configured limit.</summary>
    public long Limit { get; }
}

/// <summary>An instance id is empty, too long or has characters outside the allowed set.</summary>
public sealed class InvalidInstanceIdException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public InvalidInstanceIdException(string message)
        : base(message, "DurableAgents.InvalidInstanceId", nonRetryable: true)
    {
    }
}

/// <summary>
/// The orchestrator's code did not make the same decisions as the history it is replaying:
/// typically a code change deployed while instances were in flight.
/// </summary>
public sealed class NonDeterminismException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public NonDeterminismException(string message)
        : base(message, ErrorTypes.NonDeterminism, nonRetryable: true)
    {
    }
}

/// <summary>A payload given as JSON text is not valid JSON; nothing was written.</summary>
public sealed class InvalidPayloadException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public InvalidPayloadException(string message, Exception? innerException = null)
        : base(message, "DurableAgents.InvalidJson", nonRetryable: true, innerException: innerException)
    {
    }
}
