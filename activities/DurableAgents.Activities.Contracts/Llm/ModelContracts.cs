using System.Text.Json;

namespace DurableAgents.Activities.Contracts.Llm;

/// <summary>A chat message role.</summary>
public static class ChatRoles
{
    /// <summary>Instructions for the model.</summary>
    public const string System = "system";

    /// <summary>The person (or the workflow speaking for them).</summary>
    public const string User = "user";

    /// <summary>The model.</summary>
    public const string Assistant = "assistant";

    /// <summary>A tool's result, answering the assistant's tool call <see cref="ModelMessage.ToolCallId"/>.</summary>
    public const string Tool = "tool";
}

/// <summary>One message of a conversation.</summary>
/// <param name="Role">system, user, assistant or tool (<see cref="ChatRoles"/>).</param>
/// <param name="Text">The text; for a tool message, the tool's result.</param>
/// <param name="ToolCalls">Tool calls the assistant asked for (assistant messages only).</param>
/// <param name="ToolCallId">The call a tool message answers (tool messages only).</param>
public sealed record ModelMessage(string Role, string? Text, IReadOnlyList<ModelToolCall>? ToolCalls = null, string? ToolCallId = null)
{
    /// <summary>A system message.</summary>
    public static ModelMessage System(string text) => new(ChatRoles.System, text);

    /// <summary>A user message.</summary>
    public static ModelMessage User(string text) => new(ChatRoles.User, text);

    /// <summary>An assistant message.</summary>
    public static ModelMessage Assistant(string text) => new(ChatRoles.Assistant, text);

    /// <summary>A tool's result for the call <paramref name="toolCallId"/>.</summary>
    public static ModelMessage ToolResult(string toolCallId, string result) => new(ChatRoles.Tool, result, null, toolCallId);
}

/// <summary>A tool the model may ask to call.</summary>
/// <param name="Name">The tool name.</param>
/// <param name="Description">What it does, for the model.</param>
/// <param name="ParametersSchema">A JSON schema of its arguments object.</param>
/// <param name="HasSideEffects">
/// True (the default) when calling the tool changes something. A request offering such a tool is never
/// answered from the response cache: a cached "call the tool" would skip nothing, but a cached answer
/// that assumes a call happened would.
/// </param>
public sealed record ModelTool(string Name, string Description, JsonElement ParametersSchema, bool HasSideEffects = true);

/// <summary>A tool call the model asked for.</summary>
/// <param name="Id">The provider's call id, echoed in the tool result message.</param>
/// <param name="Name">The tool name.</param>
/// <param name="ArgumentsJson">The arguments object as JSON.</param>
/// <param name="ArgumentsError">Why the model's arguments could not be parsed as JSON, if they could not (ArgumentsJson is then "{}").</param>
public sealed record ModelToolCall(string Id, string Name, string ArgumentsJson, string? ArgumentsError = null);

/// <summary>A token and/or cost ceiling for one orchestration instance (all its model calls together).</summary>
/// <param name="MaxTokens">Input plus output tokens; null for no token ceiling.</param>
/// <param name="MaxCost">Cost in the price table's currency; null for no cost ceiling.</param>
public sealed record ModelBudget(long? MaxTokens = null, decimal? MaxCost = null);

/// <summary>How the response cache may answer a request.</summary>
public enum ModelCacheMode
{
    /// <summary>Exact match (same profile, messages, tools, options and schema) when the cache is enabled.</summary>
    Exact = 0,

    /// <summary>Never from the cache, and the answer is not stored.</summary>
    None = 1,

    /// <summary>Exact match, else a stored answer whose prompt embedding is similar enough (opt-in).</summary>
    Semantic = 2,
}

/// <summary>Which lane a model call takes at a rate-limited deployment.</summary>
public enum ModelPriority
{
    /// <summary>A person is waiting (HTTP-started chat, approvals): served first, from a reserve batch work cannot take.</summary>
    Interactive,

    /// <summary>Scheduled and bulk work (SEO audits, weekly content): takes what interactive work leaves, with a guaranteed share.</summary>
    Batch,
}

/// <summary>The input of <see cref="ActivityNames.CallModel"/>.</summary>
public sealed record ModelRequest
{
    /// <summary>The lane at rate-limited deployments; null: the workflow's (<c>Llm:Priorities:&lt;workflow&gt;</c>, an instance tag <c>priority</c>, else interactive).</summary>
    public ModelPriority? Priority { get; init; }

    /// <summary>The model profile (configuration DurableAgents:Llm:Profiles:{name}). The default is "fast".</summary>
    public string Profile { get; init; } = "fast";

    /// <summary>The conversation.</summary>
    public required IReadOnlyList<ModelMessage> Messages { get; init; }

    /// <summary>Tools the model may call.</summary>
    public IReadOnlyList<ModelTool>? Tools { get; init; }

    /// <summary>A JSON schema the answer must validate against (structured output); null for free text.</summary>
    public JsonElement? ResponseSchema { get; init; }

    /// <summary>The schema's name, as providers want one.</summary>
    public string? ResponseSchemaName { get; init; }

    /// <summary>Output token ceiling for this call; null uses the profile's.</summary>
    public int? MaxOutputTokens { get; init; }

    /// <summary>Sampling temperature; null uses the provider's default.</summary>
    public float? Temperature { get; init; }

    /// <summary>The instance's budget; null uses DurableAgents:Llm:Budgets:{workflow name}, if any.</summary>
    public ModelBudget? Budget { get; init; }

    /// <summary>How the response cache may answer.</summary>
    public ModelCacheMode Cache { get; init; }

    /// <summary>Publish tokens while they arrive (see the streaming API); the durable result is the final message.</summary>
    public bool Stream { get; init; }

    /// <summary>
    /// When the answer fails schema validation (after the repair attempt), try the profile's escalation
    /// profile (e.g. fast → strong). The default is true.
    /// </summary>
    public bool EscalateOnValidationFailure { get; init; } = true;

    /// <summary>
    /// The call may be cut off by <c>POST /api/instances/{id}/interrupt</c>: it then returns what it had
    /// (<see cref="ModelResponse.Interrupted"/>) instead of its full answer. Only the agent loop asks for this;
    /// other calls are never interrupted.
    /// </summary>
    public bool Interruptible { get; init; }
}

/// <summary>Token counts of a call.</summary>
public sealed record ModelUsage(long InputTokens, long OutputTokens)
{
    /// <summary>Input plus output.</summary>
    public long TotalTokens => InputTokens + OutputTokens;
}

/// <summary>How the response cache took part in a call.</summary>
/// <param name="Hit">True when the answer came from the cache and no model was called.</param>
/// <param name="Kind">exact or semantic for a hit; null for a miss.</param>
/// <param name="Key">The cache entry's key (a SHA-256 of the request), for hits and for stored misses.</param>
/// <param name="Similarity">The cosine similarity of a semantic hit.</param>
/// <param name="Skipped">Why the cache was not consulted, if it was not.</param>
public sealed record ModelCacheInfo(bool Hit, string? Kind, string? Key, double? Similarity = null, string? Skipped = null);

/// <summary>The output of <see cref="ActivityNames.CallModel"/>.</summary>
public sealed record ModelResponse
{
    /// <summary>The answer's text (for structured output, the JSON text).</summary>
    public string? Text { get; init; }

    /// <summary>The validated JSON answer for structured output.</summary>
    public JsonElement? Json { get; init; }

    /// <summary>Tool calls the model asked for; the workflow runs them and calls the model again.</summary>
    public IReadOnlyList<ModelToolCall> ToolCalls { get; init; } = [];

    /// <summary>The profile that answered (differs from the request's after an escalation).</summary>
    public required string Profile { get; init; }

    /// <summary>The provider entry that answered (its configured name).</summary>
    public required string Provider { get; init; }

    /// <summary>The model that answered.</summary>
    public required string Model { get; init; }

    /// <summary>Tokens of the answering call (zero for a cache hit).</summary>
    public required ModelUsage Usage { get; init; }

    /// <summary>Cost of every attempt this activity made, failed ones included (zero for a cache hit).</summary>
    public decimal Cost { get; init; }

    /// <summary>The cache decision.</summary>
    public required ModelCacheInfo Cache { get; init; }

    /// <summary>True when the offline simulator answered: the text is not from a real model.</summary>
    public bool Simulated { get; init; }

    /// <summary>Provider calls made, including failed attempts, repairs and fallbacks.</summary>
    public int Attempts { get; init; }

    /// <summary>Why the answering model is not the first one tried, if so (fallback, escalation).</summary>
    public string? Route { get; init; }

    /// <summary>
    /// Set when no answer was made because every provider of the profile was at its rate limit: call
    /// again after this long. <c>CallModelAsync</c> waits on a durable timer and calls again by itself.
    /// </summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>
    /// True when an interrupt cut the call off (<see cref="ModelRequest.Interruptible"/>): <see cref="Text"/> is what had
    /// streamed by then, there are no tool calls, and the ledger has the attempt as interrupted.
    /// </summary>
    public bool Interrupted { get; init; }

    /// <summary>The structured answer as <typeparamref name="T"/>.</summary>
    public T? ReadJsonAs<T>() =>
        Json is { } json ? json.Deserialize<T>(LlmJson.Options) : throw new InvalidOperationException("The response has no JSON answer: the request had no response schema.");
}

/// <summary>The input of <see cref="ActivityNames.Embed"/>.</summary>
public sealed record EmbeddingRequest(IReadOnlyList<string> Texts, string Profile = "fast");

/// <summary>The output of <see cref="ActivityNames.Embed"/>.</summary>
public sealed record EmbeddingResponse(IReadOnlyList<float[]> Vectors, string Model, long InputTokens, bool Simulated);

/// <summary>Error types of the model activities (stable strings, in <see cref="TaskFailureDetails.ErrorType"/>).</summary>
public static class LlmErrorTypes
{
    /// <summary>The call would exceed the instance's token or cost budget; it was not made. Not retryable.</summary>
    public const string BudgetExceeded = "DurableAgents.BudgetExceeded";

    /// <summary>The provider refused the content (content filter). Not retryable.</summary>
    public const string ContentFiltered = "DurableAgents.Llm.ContentFiltered";

    /// <summary>The provider rejected the credentials (401/403). Not retryable.</summary>
    public const string Authentication = "DurableAgents.Llm.Authentication";

    /// <summary>The provider rejected the request as invalid (400, 404, 422). Not retryable.</summary>
    public const string InvalidRequest = "DurableAgents.Llm.InvalidRequest";

    /// <summary>Rate limited, overloaded, timed out, unreachable or circuit open. Retryable.</summary>
    public const string Transient = "DurableAgents.Llm.Transient";

    /// <summary>The answer did not match the response schema after a repair attempt (and escalation). Not retryable.</summary>
    public const string InvalidStructuredOutput = "DurableAgents.Llm.InvalidStructuredOutput";

    /// <summary>The request names a profile that is not configured. Not retryable.</summary>
    public const string UnknownProfile = "DurableAgents.Llm.UnknownProfile";
}

/// <summary>JSON options for structured answers (web defaults: camelCase, case-insensitive reads).</summary>
public static class LlmJson
{
    /// <summary>The options.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);
}
