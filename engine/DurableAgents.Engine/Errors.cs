using Microsoft.DurableTask.Client;

namespace DurableAgents;

/// <summary>Helpers for the SDK's <see cref="OrchestrationRuntimeStatus"/>.</summary>
public static class OrchestrationRuntimeStatusExtensions
{
    /// <summary>True for Completed, Failed and Terminated: no further work happens.</summary>
    public static bool IsTerminal(this OrchestrationRuntimeStatus status) =>
        status is OrchestrationRuntimeStatus.Completed or OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated;
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
            $"No {kind} named '{name}' is registered. Registered {kind}s: {(registered.Any() ? string.Join(", ", registered.Order(StringComparer.Ordinal)) : "none")}.",
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

/// <summary>A payload given as JSON text is not valid JSON; nothing was written.</summary>
public sealed class InvalidPayloadException : DurableAgentsException
{
    /// <summary>Creates the exception.</summary>
    public InvalidPayloadException(string message, Exception? innerException = null)
        : base(message, "DurableAgents.InvalidJson", nonRetryable: true, innerException: innerException)
    {
    }
}
