using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Live;
using DurableAgents.Activities.Llm;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// One LLM turn of an agent: appends the new messages to the stored conversation, asks the agent's model
/// with the agent's instructions and granted tools, and stores the answer. Input and output carry the
/// conversation's head key, not the transcript.
/// </summary>
public sealed class AgentTurn(ToolRegistry tools, ConversationStore conversations, ModelService models, LiveEvents live, Microsoft.Extensions.Options.IOptions<LlmOptions> llm) : TaskActivity<AgentTurnRequest, AgentTurnResult>
{
    /// <inheritdoc />
    public override async Task<AgentTurnResult> RunAsync(TaskActivityContext context, AgentTurnRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var profile = tools.Agent(input.Agent);
        var head = input.Conversation ?? await conversations.AppendAsync(null, [ModelMessage.System(profile.Instructions)], cancellationToken).ConfigureAwait(false);
        head = await conversations.AppendAsync(head, input.Append, cancellationToken).ConfigureAwait(false);
        var messages = await conversations.LoadAsync(head!, cancellationToken).ConfigureAwait(false);
        var maxTurns = input.MaxTurns ?? profile.MaxTurns;
        if (input.RecordOnly)
        {
            return new AgentTurnResult(head!, messages.Count, new ModelResponse { Profile = profile.Model, Provider = string.Empty, Model = string.Empty, Usage = new ModelUsage(0, 0), Cache = new ModelCacheInfo(false, null, null) }, maxTurns);
        }

        // On the live stream: the turn as a step, and what the person said (their input, or a steer) as user messages.
        var step = $"turn {input.Turn}";
        await live.EmitAsync(context.InstanceId, AgUi.StepStarted(step, live.Now), cancellationToken).ConfigureAwait(false);
        var n = 0;
        foreach (var said in input.Append.Where(m => m.Role == ChatRoles.User))
        {
            var user = live.Text(context.InstanceId, $"user-{context.InstanceId}-{context.GetTaskId()}-{n++}", "user"); // unique in a thread of many runs
            await user.WriteAsync(said.Text, cancellationToken).ConfigureAwait(false);
            await user.EndAsync().ConfigureAwait(false);
        }

        var granted = tools.DefinitionsFor(input.Agent);
        ModelResponse response;
        try
        {
            response = await models.CallAsync(
                new ModelCallOrigin(context.InstanceId, context.GetTaskId(), context.GetIdempotencyKey()),
                new ModelRequest
                {
                    Profile = profile.Model,
                    Messages = messages,
                    Tools = granted.Count > 0 ? granted : null,
                    Budget = input.Budget,
                    ResponseSchema = input.ResponseSchema,
                    ResponseSchemaName = input.ResponseSchema is null ? null : "answer",
                    Stream = llm.Value.StreamAgentTurns,
                    Interruptible = true,
                },
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await live.EmitAsync(context.InstanceId, AgUi.StepFinished(step, live.Now), CancellationToken.None).ConfigureAwait(false);
        }

        if (response.RetryAfter is not null)
        {
            return new AgentTurnResult(head!, messages.Count, response, maxTurns); // no answer: the loop waits and asks again
        }

        if (response.Interrupted && string.IsNullOrEmpty(response.Text))
        {
            return new AgentTurnResult(head!, messages.Count, response, maxTurns); // cut off before it said anything
        }

        head = await conversations.AppendAsync(head, [new ModelMessage(ChatRoles.Assistant, response.Text, response.ToolCalls.Count > 0 ? response.ToolCalls : null)], cancellationToken).ConfigureAwait(false);
        return new AgentTurnResult(head!, messages.Count + 1, response, maxTurns);
    }
}

/// <summary>One tool call: allow-list, schema validation, time limit, size cap (see <see cref="ToolRegistry"/>).</summary>
public sealed class CallTool(ToolRegistry tools, LiveEvents live) : TaskActivity<ToolInvocation, ToolOutcome>
{
    /// <inheritdoc />
    public override Task<ToolOutcome> RunAsync(TaskActivityContext context, ToolInvocation input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(input);
        var toolContext = new ToolContext(context.InstanceId, context.GetIdempotencyKey(), input.Agent, input.SessionId ?? context.InstanceId, input.MemoryScope, tools.Agent(input.Agent).Model);
        return RunAsync(context.InstanceId, input, toolContext, cancellationToken);
    }

    private async Task<ToolOutcome> RunAsync(string instanceId, ToolInvocation input, ToolContext toolContext, CancellationToken cancellationToken)
    {
        var outcome = await tools.InvokeAsync(input, toolContext, cancellationToken).ConfigureAwait(false);
        await live.EmitAsync(instanceId, AgUi.ToolCallResult("tool-" + outcome.CallId, outcome.CallId, outcome.Content, live.Now), cancellationToken).ConfigureAwait(false);
        return outcome;
    }
}

/// <summary>Long-term memory read: the facts (ids, versions, similarity) land in history, so replay sees the same facts.</summary>
public sealed class RecallMemory(MemoryService memory) : TaskActivity<RecallRequest, RecallResult>
{
    /// <inheritdoc />
    public override Task<RecallResult> RunAsync(TaskActivityContext context, RecallRequest input) =>
        memory.RecallAsync(input, context.GetCancellationToken());
}

/// <summary>Long-term memory write: extract salient facts and consolidate them (ADD/UPDATE/DELETE/NONE).</summary>
public sealed class RememberFacts(MemoryService memory) : TaskActivity<RememberRequest, RememberResult>
{
    /// <inheritdoc />
    public override Task<RememberResult> RunAsync(TaskActivityContext context, RememberRequest input)
    {
        var cancellationToken = context.GetCancellationToken();
        ArgumentNullException.ThrowIfNull(context);
        return memory.RememberAsync(new ModelCallOrigin(context.InstanceId, context.GetTaskId(), context.GetIdempotencyKey()), input, cancellationToken);
    }
}
