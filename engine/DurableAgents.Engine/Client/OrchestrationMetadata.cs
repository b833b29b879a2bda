using DurableAgents.Engine.Storage;

namespace DurableAgents.Engine.Client;

/// <summary>An orchestration instance's state as seen by a client.</summary>
public sealed class OrchestrationMetadata
{
    internal OrchestrationMetadata(InstanceRecord r)
    {
        InstanceId = r.InstanceId;
        Name = r.Name;
        Version = r.Version;
        RuntimeStatus = r.Status;
        CreatedAt = r.CreatedAt;
        LastUpdatedAt = r.LastUpdatedAt;
        CompletedAt = r.CompletedAt;
        SerializedInput = r.Input;
        SerializedOutput = r.Output;
        SerializedCustomStatus = r.CustomStatus;
        FailureDetails = r.Failure;
        ParentInstanceId = r.ParentInstanceId;
    }

    /// <summary>The instance id.</summary>
    public string InstanceId { get; }

    /// <summary>The orchestrator name.</summary>
    public string Name { get; }

    /// <summary>The version tag stored at start.</summary>
    public string? Version { get; }

    /// <summary>The status.</summary>
    public OrchestrationRuntimeStatus RuntimeStatus { get; }

    /// <summary>When the instance was created.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>When the instance last changed.</summary>
    public DateTimeOffset LastUpdatedAt { get; }

    /// <summary>When it finished, if it has.</summary>
    public DateTimeOffset? CompletedAt { get; }

    /// <summary>The input JSON (when requested).</summary>
    public string? SerializedInput { get; }

    /// <summary>The output JSON (when requested and completed); for a terminated instance, the reason.</summary>
    public string? SerializedOutput { get; }

    /// <summary>The custom status JSON.</summary>
    public string? SerializedCustomStatus { get; }

    /// <summary>Why it failed.</summary>
    public TaskFailureDetails? FailureDetails { get; }

    /// <summary>The parent's id, for sub-orchestrations.</summary>
    public string? ParentInstanceId { get; }

    /// <summary>True while not finished.</summary>
    public bool IsRunning => !RuntimeStatus.IsTerminal();

    /// <summary>True once Completed, Failed or Terminated.</summary>
    public bool IsCompleted => RuntimeStatus.IsTerminal();

    /// <summary>Reads the input as <typeparamref name="T"/>.</summary>
    public T? ReadInputAs<T>() => DataConverter.Deserialize<T>(SerializedInput, "orchestration input");

    /// <summary>Reads the output as <typeparamref name="T"/>.</summary>
    public T? ReadOutputAs<T>() => DataConverter.Deserialize<T>(SerializedOutput, "orchestration output");

    /// <summary>Reads the custom status as <typeparamref name="T"/>.</summary>
    public T? ReadCustomStatusAs<T>() => DataConverter.Deserialize<T>(SerializedCustomStatus, "custom status");
}

/// <summary>Options for starting an instance.</summary>
public sealed class StartOrchestrationOptions
{
    /// <summary>The instance id; a new GUID (N format) by default.</summary>
    public string? InstanceId { get; init; }

    /// <summary>Start no earlier than this time; now by default.</summary>
    public DateTimeOffset? StartAt { get; init; }

    /// <summary>A version tag stored with the instance.</summary>
    public string? Version { get; init; }

    /// <summary>
    /// Statuses of an existing instance with the same id that make the start fail with
    /// <see cref="OrchestrationAlreadyExistsException"/>. The default is Pending, Running and
    /// Suspended: a finished instance with the same id is replaced.
    /// </summary>
    public IReadOnlyCollection<OrchestrationRuntimeStatus>? DedupeStatuses { get; init; }
}

/// <summary>A page of instances.</summary>
public sealed record OrchestrationPage(IReadOnlyList<OrchestrationMetadata> Instances, string? ContinuationToken);
