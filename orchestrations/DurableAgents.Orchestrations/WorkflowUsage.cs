using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Tokens and cost of a workflow's model calls (every workflow reports it in its output).</summary>
/// <param name="InputTokens">Input tokens.</param>
/// <param name="OutputTokens">Output tokens.</param>
/// <param name="Cost">Cost from the price table.</param>
/// <param name="ModelCalls">Model calls (agent turns count one each).</param>
public sealed record WorkflowUsage(long InputTokens = 0, long OutputTokens = 0, decimal Cost = 0, int ModelCalls = 0)
{
    /// <summary>Input plus output.</summary>
    public long TotalTokens => InputTokens + OutputTokens;

    /// <summary>Plus one model call.</summary>
    public WorkflowUsage Add(ModelResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        return new(InputTokens + response.Usage.InputTokens, OutputTokens + response.Usage.OutputTokens, Cost + response.Cost, ModelCalls + 1);
    }

    /// <summary>Plus an agent run.</summary>
    public WorkflowUsage Add(AgentRunResult run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new(InputTokens + run.Usage.InputTokens, OutputTokens + run.Usage.OutputTokens, Cost + run.Cost, ModelCalls + run.Turns);
    }

    /// <summary>Plus another workflow's usage (a sub-orchestration's).</summary>
    public WorkflowUsage Add(WorkflowUsage other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new(InputTokens + other.InputTokens, OutputTokens + other.OutputTokens, Cost + other.Cost, ModelCalls + other.ModelCalls);
    }

    /// <summary>What is left of a token budget.</summary>
    public long Remaining(long maxTokens) => Math.Max(0, maxTokens - TotalTokens);
}

/// <summary>Retry policies the sample workflows share.</summary>
internal static class Retries
{
    /// <summary>Three attempts, 2 s then 4 s apart; typed (non-retryable) failures are not retried.</summary>
    public static TaskOptions Default { get; } = RetryPolicies.Options(3, TimeSpan.FromSeconds(2), backoffCoefficient: 2);
}
