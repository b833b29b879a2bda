using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Contracts.Agents;

/// <summary>What an agent run is asked to do (see <see cref="AgentOrchestrationExtensions.RunAgentAsync"/>).</summary>
public sealed record AgentRun
{
    /// <summary>The agent profile (configuration DurableAgents:Agents:{name}): model profile, instructions, tool allow-list.</summary>
    public required string Agent { get; init; }

    /// <summary>The user's message that starts the run.</summary>
    public required string Input { get; init; }

    /// <summary>Earlier turns' conversation to continue (a <see cref="AgentRunResult.Conversation"/>), or null for a new one.</summary>
    public string? Conversation { get; init; }

    /// <summary>The short-term memory session the agent's scratchpad tools use; null uses the instance id.</summary>
    public string? SessionId { get; init; }

    /// <summary>Whose long-term memory the agent's memory tools read and write (e.g. "user:42"); null for no memory access.</summary>
    public string? MemoryScope { get; init; }

    /// <summary>LLM turns at most; null uses the agent profile's MaxTurns.</summary>
    public int? MaxTurns { get; init; }

    /// <summary>The instance's token/cost budget, shared by every model call of the workflow.</summary>
    public ModelBudget? Budget { get; init; }

    /// <summary>How long a "request human input" tool call waits for the <see cref="AgentEvents.HumanInput"/> event.</summary>
    public TimeSpan HumanInputTimeout { get; init; } = TimeSpan.FromDays(3);

    /// <summary>A JSON schema the agent's final answer must match; null for free text.</summary>
    public JsonElement? ResponseSchema { get; init; }
}

/// <summary>Why an agent run stopped.</summary>
public static class AgentStopReasons
{
    /// <summary>The model answered without asking for a tool.</summary>
    public const string Answered = "answered";

    /// <summary>The run reached its maximum number of turns.</summary>
    public const string MaxTurns = "max-turns";

    /// <summary>The next model call would have exceeded the workflow's budget; it was not made.</summary>
    public const string Budget = "budget";

    /// <summary>A human was asked for input and did not answer in time.</summary>
    public const string HumanInputTimeout = "human-input-timeout";

    /// <summary>A person interrupted the run (<see cref="AgentEvents.Interrupt"/> without a message); the text is what the agent had said by then.</summary>
    public const string Interrupted = "interrupted";
}

/// <summary>External events an agent run waits for.</summary>
public static class AgentEvents
{
    /// <summary>The answer to a "request human input" tool call: a string payload.</summary>
    public const string HumanInput = "human-input";

    /// <summary>
    /// A person's message for the agent (a <see cref="SteerMessage"/> payload), taken at the next turn boundary: it is
    /// added to the conversation as a user message before the next model call.
    /// </summary>
    public const string Steer = "steer";

    /// <summary>
    /// Stop the run now (an <see cref="InterruptRequest"/> payload): the in-flight model call is cut off and the run
    /// stops with what it has, or, when the request carries a message, goes on with it as the next user message.
    /// </summary>
    public const string Interrupt = "interrupt";
}

/// <summary>The payload of <see cref="AgentEvents.Steer"/>.</summary>
/// <param name="Message">What the person says to the agent.</param>
public sealed record SteerMessage(string Message);

/// <summary>The payload of <see cref="AgentEvents.Interrupt"/>.</summary>
/// <param name="Message">A message to go on with instead of stopping; null stops the run.</param>
public sealed record InterruptRequest(string? Message = null);

/// <summary>One tool call of a run, as the run's result reports it.</summary>
/// <param name="Turn">The LLM turn that asked for it (1-based).</param>
/// <param name="Name">The tool.</param>
/// <param name="ArgumentsJson">The arguments the model passed.</param>
/// <param name="Status">The outcome (<see cref="ToolStatuses"/>).</param>
public sealed record AgentToolCallSummary(int Turn, string Name, string ArgumentsJson, string Status);

/// <summary>The result of an agent run.</summary>
/// <param name="Text">The final answer (empty when the run stopped before one).</param>
/// <param name="Json">The final answer as JSON, when the run asked for a response schema.</param>
/// <param name="StopReason">Why it stopped (<see cref="AgentStopReasons"/>).</param>
/// <param name="Turns">LLM turns taken.</param>
/// <param name="ToolCalls">Every tool call, in order.</param>
/// <param name="Usage">Tokens of all the run's model calls.</param>
/// <param name="Cost">Cost of all the run's model calls.</param>
/// <param name="Conversation">The conversation's head: pass it as <see cref="AgentRun.Conversation"/> to continue.</param>
public sealed record AgentRunResult(
    string Text,
    JsonElement? Json,
    string StopReason,
    int Turns,
    IReadOnlyList<AgentToolCallSummary> ToolCalls,
    ModelUsage Usage,
    decimal Cost,
    string? Conversation);

/// <summary>The input of <see cref="ActivityNames.AgentTurn"/>: append messages to a stored conversation, then ask the agent's model.</summary>
/// <param name="Agent">The agent profile.</param>
/// <param name="Conversation">The stored conversation's head (content address), or null to start one with the agent's instructions.</param>
/// <param name="Append">Messages to add before asking (the user's input, tool results).</param>
/// <param name="Turn">The turn number (1-based), for logs and traces.</param>
/// <param name="Budget">The workflow's budget.</param>
/// <param name="ResponseSchema">A JSON schema for the final answer, if any.</param>
public sealed record AgentTurnRequest(string Agent, string? Conversation, IReadOnlyList<ModelMessage> Append, int Turn, ModelBudget? Budget = null, JsonElement? ResponseSchema = null)
{
    /// <summary>The run's turn limit; null uses the agent profile's.</summary>
    public int? MaxTurns { get; init; }

    /// <summary>Only append <see cref="Append"/> to the conversation (a stopped run's last tool results); no model call.</summary>
    public bool RecordOnly { get; init; }
}

/// <summary>The output of <see cref="ActivityNames.AgentTurn"/>.</summary>
/// <param name="Conversation">The new head, including the model's answer.</param>
/// <param name="Messages">Messages in the conversation now.</param>
/// <param name="Response">The model's answer (text or tool calls), with its usage.</param>
/// <param name="MaxTurns">The run's turn limit (the request's, else the agent profile's).</param>
public sealed record AgentTurnResult(string Conversation, int Messages, ModelResponse Response, int MaxTurns);

/// <summary>The input of <see cref="ActivityNames.CallTool"/>.</summary>
/// <param name="Agent">The agent whose allow-list applies.</param>
/// <param name="Call">The call as the model asked for it (untrusted).</param>
/// <param name="SessionId">The short-term memory session.</param>
/// <param name="MemoryScope">The long-term memory scope the workflow granted, if any.</param>
public sealed record ToolInvocation(string Agent, ModelToolCall Call, string? SessionId = null, string? MemoryScope = null);

/// <summary>Outcomes of a tool call.</summary>
public static class ToolStatuses
{
    /// <summary>The tool ran and returned its result.</summary>
    public const string Ok = "ok";

    /// <summary>The agent may not use this tool (or no such tool exists); it did not run.</summary>
    public const string Refused = "refused";

    /// <summary>The arguments did not match the tool's schema; it did not run.</summary>
    public const string InvalidArguments = "invalid-arguments";

    /// <summary>The tool ran and reported an error the model can act on (e.g. a blocked URL).</summary>
    public const string Error = "error";

    /// <summary>The tool did not finish within its time limit.</summary>
    public const string Timeout = "timeout";

    /// <summary>The tool asks a human; the workflow waits for the <see cref="AgentEvents.HumanInput"/> event.</summary>
    public const string AwaitingHuman = "awaiting-human";
}

/// <summary>The output of <see cref="ActivityNames.CallTool"/>: what goes back to the model as the tool message.</summary>
/// <param name="CallId">The model's call id.</param>
/// <param name="Name">The tool.</param>
/// <param name="Status">The outcome (<see cref="ToolStatuses"/>).</param>
/// <param name="Content">The result (JSON) or the error message for the model.</param>
/// <param name="Truncated">True when the result was cut to the size limit.</param>
public sealed record ToolOutcome(string CallId, string Name, string Status, string Content, bool Truncated = false);
