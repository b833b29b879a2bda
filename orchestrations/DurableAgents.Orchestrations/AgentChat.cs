using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Orchestrations;

/// <summary>Input of <see cref="AgentChat"/>.</summary>
/// <param name="Message">The user's message.</param>
/// <param name="Agent">The agent profile (DurableAgents:Agents:{name}); "assistant" is built in.</param>
/// <param name="MemoryScope">Whose long-term memory the agent may search and write (e.g. "user:42"); null for none.</param>
/// <param name="MaxTurns">LLM turns at most; null uses the agent's.</param>
/// <param name="MaxTokens">The instance's token budget; null for none.</param>
/// <param name="Conversation">An earlier run's conversation (<see cref="AgentRunResult.Conversation"/>) to continue; null starts a new one.</param>
public sealed record AgentChatInput(string Message, string Agent = "assistant", string? MemoryScope = null, int? MaxTurns = null, long? MaxTokens = null, string? Conversation = null);

/// <summary>
/// One agent run as a workflow: the durable agent loop (each LLM turn and each tool call its own
/// checkpointed activity), under a token budget, with the agent's tool allow-list enforced by the tool activity.
/// </summary>
public sealed class AgentChat : TaskOrchestrator<AgentChatInput, AgentRunResult>
{
    /// <inheritdoc />
    public override Task<AgentRunResult> RunAsync(TaskOrchestrationContext context, AgentChatInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return context.RunAgentAsync(new AgentRun
        {
            Agent = input.Agent,
            Input = input.Message,
            Conversation = input.Conversation,
            MemoryScope = input.MemoryScope,
            MaxTurns = input.MaxTurns,
            Budget = input.MaxTokens is { } max ? new ModelBudget(MaxTokens: max) : null,
        });
    }
}
