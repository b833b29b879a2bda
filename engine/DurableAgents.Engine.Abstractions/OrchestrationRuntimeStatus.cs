namespace DurableAgents;

/// <summary>The runtime status of an orchestration instance.</summary>
public enum OrchestrationRuntimeStatus
{
    /// <summary>Scheduled, not yet started (possibly with a future start time).</summary>
    Pending,

    /// <summary>Started and not finished.</summary>
    Running,

    /// <summary>Paused by <c>SuspendInstanceAsync</c>; events are kept until it resumes.</summary>
    Suspended,

    /// <summary>Finished with an output.</summary>
    Completed,

    /// <summary>Finished with failure details.</summary>
    Failed,

    /// <summary>Stopped by <c>TerminateInstanceAsync</c>.</summary>
    Terminated,
}

/// <summary>Helpers for <see cref="OrchestrationRuntimeStatus"/>.</summary>
public static class OrchestrationRuntimeStatusExtensions
{
    /// <summary>True for Completed, Failed and Terminated: no further work happens.</summary>
    public static bool IsTerminal(this OrchestrationRuntimeStatus status) =>
        status is OrchestrationRuntimeStatus.Completed or OrchestrationRuntimeStatus.Failed or OrchestrationRuntimeStatus.Terminated;
}
