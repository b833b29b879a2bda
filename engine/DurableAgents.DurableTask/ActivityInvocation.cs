using Microsoft.DurableTask;

namespace DurableAgents;

/// <summary>
/// What the DurableAgents backend knows about an activity invocation beyond the SDK's
/// <see cref="TaskActivityContext"/>: the scheduled task's id within its execution, a key that is
/// stable across re-executions of that task, and a token that is cancelled when the host shuts
/// down or the activity's lease is lost.
/// </summary>
/// <param name="InstanceId">The orchestration instance that scheduled the task.</param>
/// <param name="ExecutionId">The execution (changes with ContinueAsNew).</param>
/// <param name="TaskId">The task's sequence id within the execution.</param>
/// <param name="DequeueCount">How many times the task has been leased, this time included.</param>
/// <param name="CancellationToken">Cancelled at host shutdown or when the lease is lost.</param>
public sealed record ActivityInvocation(string InstanceId, string ExecutionId, int TaskId, int DequeueCount, CancellationToken CancellationToken)
{
    /// <summary>
    /// <c>instance:execution:task</c>. Stable across re-executions of the same scheduled task
    /// (delivery is at least once) and unique per scheduled task: hand it to side-effecting calls
    /// (a webhook, an email, a payment) so that they happen once.
    /// </summary>
    public string IdempotencyKey => $"{InstanceId}:{ExecutionId}:{TaskId}";
}

/// <summary>
/// The <see cref="TaskActivityContext"/> the DurableAgents backend passes to activities. Activity
/// code reads it through <see cref="TaskActivityContextExtensions"/>, so that it also runs on other
/// Durable Task backends.
/// </summary>
public sealed class DurableAgentsActivityContext : TaskActivityContext
{
    /// <summary>Creates the context for one invocation.</summary>
    public DurableAgentsActivityContext(TaskName name, ActivityInvocation invocation, string? version = null)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        Name = name;
        Invocation = invocation;
        Version = version ?? string.Empty;
    }

    /// <inheritdoc />
    public override TaskName Name { get; }

    /// <inheritdoc />
    public override string InstanceId => Invocation.InstanceId;

    /// <inheritdoc />
    public override string Version { get; }

    /// <summary>The invocation details.</summary>
    public ActivityInvocation Invocation { get; }
}

/// <summary>Reads the DurableAgents invocation details from any <see cref="TaskActivityContext"/>.</summary>
public static class TaskActivityContextExtensions
{
    /// <summary>The invocation details, when the activity runs on the DurableAgents backend.</summary>
    public static bool TryGetInvocation(this TaskActivityContext context, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ActivityInvocation? invocation)
    {
        ArgumentNullException.ThrowIfNull(context);
        invocation = (context as DurableAgentsActivityContext)?.Invocation;
        return invocation is not null;
    }

    /// <summary>
    /// Cancelled when the host shuts down or the activity's lease is lost (the task then runs again
    /// elsewhere). <see cref="CancellationToken.None"/> on backends that do not supply one.
    /// </summary>
    public static CancellationToken GetCancellationToken(this TaskActivityContext context) =>
        context.TryGetInvocation(out var invocation) ? invocation.CancellationToken : CancellationToken.None;

    /// <summary>The scheduled task's id within its execution.</summary>
    /// <exception cref="InvalidOperationException">The backend does not supply task ids.</exception>
    public static int GetTaskId(this TaskActivityContext context) =>
        context.TryGetInvocation(out var invocation)
            ? invocation.TaskId
            : throw NotOnDurableAgents(nameof(GetTaskId));

    /// <summary>See <see cref="ActivityInvocation.IdempotencyKey"/>.</summary>
    /// <exception cref="InvalidOperationException">
    /// The backend does not supply task ids: a key that is not unique per task would suppress real
    /// side effects, so none is invented. Pass a key in the activity's input instead.
    /// </exception>
    public static string GetIdempotencyKey(this TaskActivityContext context) =>
        context.TryGetInvocation(out var invocation)
            ? invocation.IdempotencyKey
            : throw NotOnDurableAgents(nameof(GetIdempotencyKey));

    private static InvalidOperationException NotOnDurableAgents(string what) =>
        new($"{what} needs the DurableAgents backend (the activity runs on another Durable Task backend that does not supply task ids); pass an idempotency key in the activity input instead.");
}
