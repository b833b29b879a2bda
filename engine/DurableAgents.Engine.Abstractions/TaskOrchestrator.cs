namespace DurableAgents;

/// <summary>Untyped orchestrator contract used by the engine; implement <see cref="TaskOrchestrator{TInput, TOutput}"/> instead.</summary>
public interface ITaskOrchestrator
{
    /// <summary>The declared input type.</summary>
    Type InputType { get; }

    /// <summary>The declared output type.</summary>
    Type OutputType { get; }

    /// <summary>Runs the orchestrator with an already-deserialized input.</summary>
    Task<object?> RunAsync(TaskOrchestrationContext context, object? input);
}

/// <summary>
/// An orchestration written as a C# method. It must be deterministic: time, ids and waits come
/// from <see cref="TaskOrchestrationContext"/>; all I/O happens in activities. Orchestrators get
/// no dependency injection (there is nothing safe to inject into replayed code).
/// </summary>
public abstract class TaskOrchestrator<TInput, TOutput> : ITaskOrchestrator
{
    Type ITaskOrchestrator.InputType => typeof(TInput);

    Type ITaskOrchestrator.OutputType => typeof(TOutput);

    /// <summary>The orchestration's code.</summary>
    public abstract Task<TOutput> RunAsync(TaskOrchestrationContext context, TInput input);

    async Task<object?> ITaskOrchestrator.RunAsync(TaskOrchestrationContext context, object? input)
    {
        // No ConfigureAwait: the continuation must stay on the orchestration's scheduler.
#pragma warning disable CA2007
        return await RunAsync(context, (TInput)input!);
#pragma warning restore CA2007
    }
}

/// <summary>Untyped activity contract used by the engine; implement <see cref="TaskActivity{TInput, TOutput}"/> instead.</summary>
public interface ITaskActivity
{
    /// <summary>The declared input type.</summary>
    Type InputType { get; }

    /// <summary>The declared output type.</summary>
    Type OutputType { get; }

    /// <summary>Runs the activity with an already-deserialized input.</summary>
    Task<object?> RunAsync(TaskActivityContext context, object? input, CancellationToken cancellationToken);
}

/// <summary>
/// A unit of work with side effects (an LLM call, a tool, a database read). Executed at least once:
/// pass <see cref="TaskActivityContext.IdempotencyKey"/> to anything that must not happen twice.
/// Activities get constructor injection and a fresh DI scope per invocation.
/// </summary>
public abstract class TaskActivity<TInput, TOutput> : ITaskActivity
{
    Type ITaskActivity.InputType => typeof(TInput);

    Type ITaskActivity.OutputType => typeof(TOutput);

    /// <summary>The activity's code.</summary>
    public abstract Task<TOutput> RunAsync(TaskActivityContext context, TInput input, CancellationToken cancellationToken);

    async Task<object?> ITaskActivity.RunAsync(TaskActivityContext context, object? input, CancellationToken cancellationToken) =>
        await RunAsync(context, (TInput)input!, cancellationToken).ConfigureAwait(false);
}

/// <summary>What an activity knows about its invocation.</summary>
public abstract class TaskActivityContext
{
    /// <summary>The activity name.</summary>
    public abstract string Name { get; }

    /// <summary>The orchestration instance that scheduled it.</summary>
    public abstract string InstanceId { get; }

    /// <summary>The task's sequence id within the orchestration execution.</summary>
    public abstract int TaskId { get; }

    /// <summary>
    /// Stable across re-executions of the same scheduled task (at-least-once delivery) and unique
    /// per scheduled task: hand it to side-effecting calls so they happen once.
    /// </summary>
    public abstract string IdempotencyKey { get; }
}
