namespace DurableAgents;

/// <summary>
/// Orchestration-side retry: each retry waits on a durable timer, so a retry schedule survives
/// restarts and costs nothing while it waits. Delay before attempt n+1 is
/// <c>min(FirstRetryInterval * BackoffCoefficient^(n-1), MaxRetryInterval)</c>.
/// </summary>
public sealed class RetryPolicy
{
    /// <summary>Creates a retry policy.</summary>
    /// <param name="maxNumberOfAttempts">Total attempts, including the first. Must be at least 1.</param>
    /// <param name="firstRetryInterval">Delay before the second attempt. Must be positive.</param>
    /// <param name="backoffCoefficient">Multiplier per attempt; at least 1. The default value is 1 (fixed interval).</param>
    /// <param name="maxRetryInterval">Cap on a single delay. The default is no cap.</param>
    /// <param name="retryTimeout">Total time after which no more attempts are started. The default is no limit.</param>
    public RetryPolicy(
        int maxNumberOfAttempts,
        TimeSpan firstRetryInterval,
        double backoffCoefficient = 1.0,
        TimeSpan? maxRetryInterval = null,
        TimeSpan? retryTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNumberOfAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(firstRetryInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(backoffCoefficient, 1.0);
        if (maxRetryInterval is { } max)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(max, firstRetryInterval);
        }

        MaxNumberOfAttempts = maxNumberOfAttempts;
        FirstRetryInterval = firstRetryInterval;
        BackoffCoefficient = backoffCoefficient;
        MaxRetryInterval = maxRetryInterval ?? TimeSpan.FromDays(6);
        RetryTimeout = retryTimeout ?? Timeout.InfiniteTimeSpan;
    }

    /// <summary>Total attempts including the first.</summary>
    public int MaxNumberOfAttempts { get; }

    /// <summary>Delay before the second attempt.</summary>
    public TimeSpan FirstRetryInterval { get; }

    /// <summary>Multiplier applied per attempt.</summary>
    public double BackoffCoefficient { get; }

    /// <summary>Cap on a single delay.</summary>
    public TimeSpan MaxRetryInterval { get; }

    /// <summary>Overall time budget; <see cref="Timeout.InfiniteTimeSpan"/> for none.</summary>
    public TimeSpan RetryTimeout { get; }

    /// <summary>
    /// Decides whether a failure is retried. The default retries everything not marked
    /// non-retriable (<see cref="TaskFailureDetails.IsNonRetriable"/>).
    /// </summary>
    public Func<TaskFailureDetails, bool> HandleFailure { get; init; } = static f => !f.IsNonRetriable;

    /// <summary>The delay before attempt <paramref name="nextAttempt"/> (2 for the first retry).</summary>
    public TimeSpan GetDelay(int nextAttempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nextAttempt, 2);
        var ticks = FirstRetryInterval.Ticks * Math.Pow(BackoffCoefficient, nextAttempt - 2);
        return ticks >= MaxRetryInterval.Ticks ? MaxRetryInterval : TimeSpan.FromTicks((long)ticks);
    }
}

/// <summary>Options for an activity or sub-orchestration call.</summary>
public class TaskOptions
{
    /// <summary>Retry policy; null for a single attempt.</summary>
    public RetryPolicy? Retry { get; init; }

    /// <summary>Creates options with a retry policy.</summary>
    public static TaskOptions FromRetryPolicy(RetryPolicy policy) => new() { Retry = policy };
}

/// <summary>Options for a sub-orchestration call.</summary>
public sealed class SubOrchestrationOptions : TaskOptions
{
    /// <summary>The child's instance id; by default derived deterministically from the parent id and task id.</summary>
    public string? InstanceId { get; init; }

    /// <summary>The child's version tag.</summary>
    public string? Version { get; init; }
}

/// <summary>The parent of a sub-orchestration.</summary>
public sealed record ParentOrchestrationInstance(string Name, string InstanceId);
