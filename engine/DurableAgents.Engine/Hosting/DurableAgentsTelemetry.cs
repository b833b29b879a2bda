using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DurableAgents.Engine.Hosting;

/// <summary>
/// Traces and metrics of the engine: an <see cref="ActivitySource"/> and a <see cref="Meter"/> named
/// <see cref="Name"/>. Spans: <c>orchestration {name}</c> per episode, <c>activity {name}</c> per
/// activity execution. Attribute names are a contract (dashboards and alerts use them).
/// </summary>
public static class DurableAgentsTelemetry
{
    /// <summary>Source and meter name: add it to the OpenTelemetry tracer and meter providers.</summary>
    public const string Name = "DurableAgents";

    /// <summary>The instance id attribute.</summary>
    public const string InstanceIdAttribute = "durableagents.instance_id";

    /// <summary>The orchestration name attribute.</summary>
    public const string OrchestrationAttribute = "durableagents.orchestration";

    /// <summary>The activity name attribute.</summary>
    public const string ActivityAttribute = "durableagents.activity";

    /// <summary>The task id attribute.</summary>
    public const string TaskIdAttribute = "durableagents.task_id";

    /// <summary>The outcome attribute (completed, failed, abandoned, a runtime status).</summary>
    public const string OutcomeAttribute = "durableagents.outcome";

    internal static readonly ActivitySource Source = new(Name);

    internal static readonly Meter Meter = new(Name);

    internal static readonly Counter<long> Episodes = Meter.CreateCounter<long>("durableagents.episodes", description: "Orchestration episodes run.");

    internal static readonly Counter<long> ActivityRuns = Meter.CreateCounter<long>("durableagents.activities", description: "Activity executions, by outcome.");

    internal static readonly Histogram<double> ActivityDuration = Meter.CreateHistogram<double>("durableagents.activity.duration", unit: "ms", description: "Activity execution time.");

    internal static readonly Counter<long> OrchestrationsFinished = Meter.CreateCounter<long>("durableagents.orchestrations.finished", description: "Orchestrations that reached a terminal status.");
}
