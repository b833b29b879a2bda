using System.ComponentModel.DataAnnotations;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Llm;

/// <summary>Where a provider entry sends its calls.</summary>
public enum ModelProviderKind
{
    /// <summary>The offline simulator: deterministic, no network, clearly labelled. The default when nothing is configured.</summary>
    Simulator = 0,

    /// <summary>Azure OpenAI through Azure.AI.OpenAI: Endpoint, a deployment name as Model, and ApiKey or UseManagedIdentity.</summary>
    AzureOpenAI = 1,

    /// <summary>OpenAI (api.openai.com unless Endpoint says otherwise) with ApiKey.</summary>
    OpenAI = 2,

    /// <summary>Any OpenAI-compatible endpoint (Ollama, vLLM, LM Studio) by base URL, e.g. http://localhost:11434/v1.</summary>
    OpenAICompatible = 3,
}

/// <summary>Model calls: profiles, prices, budgets, cache, resilience (configuration section DurableAgents:Llm).</summary>
public sealed class LlmOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Llm";

    /// <summary>
    /// Named profiles ("fast", "strong", ...). With none configured, "fast" and "strong" both use the
    /// offline simulator and "fast" escalates to "strong".
    /// </summary>
    public Dictionary<string, ModelProfileOptions> Profiles { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Prices per model name (as the provider reports or as configured), per million tokens.</summary>
    public Dictionary<string, ModelPrice> Prices { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Budgets per workflow (orchestration) name, used when a request carries none.</summary>
    public Dictionary<string, BudgetOptions> Budgets { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The response cache.</summary>
    public ModelCacheOptions Cache { get; init; } = new();

    /// <summary>HTTP resilience for every provider.</summary>
    public ModelResilienceOptions Resilience { get; init; } = new();

    /// <summary>
    /// Log prompts and completions (and put them on traces). Off by default: they may hold personal or
    /// confidential data.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool LogContent { get; init; }

    /// <summary>Lanes per workflow name at rate-limited deployments (<c>Llm:Priorities:SeoAudit=Batch</c>); unlisted workflows are interactive. An instance tag <c>priority</c> set at start overrides it.</summary>
    public Dictionary<string, ModelPriority> Priorities { get; init; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The share of each minute's capacity batch calls leave for interactive ones (while interactive calls have room in their lane). It stands idle when no person is waiting: keep it small.</summary>
    /// <value>The default value is 0.1.</value>
    [Range(0.0, 0.9)]
    public double InteractiveReserve { get; init; } = 0.1;

    /// <summary>The share of each minute's capacity guaranteed to batch calls: while batch calls wait, interactive calls take no more than the rest.</summary>
    /// <value>The default value is 0.2.</value>
    [Range(0.0, 0.9)]
    public double BatchShare { get; init; } = 0.2;

    /// <summary>
    /// Batch calls are paced: within any window of this length they take at most their minute's requests
    /// in proportion (5 s of 61), so a burst of batch work does not take a minute's quota at once and
    /// capacity frees up evenly for the people who come after it. Zero turns pacing off.
    /// </summary>
    /// <value>The default value is 5 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan BatchPaceWindow { get; init; } = ModelRateLimiter.DefaultBatchPaceWindow;

    /// <summary>
    /// The longest a call waits in its activity for rate-limit capacity. Beyond it the call hands back
    /// "retry after" and the orchestration waits on a durable timer, holding no activity slot.
    /// </summary>
    /// <value>The default value is 2 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan RateLimitInlineWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a background response is polled until it completes (non-streaming calls; streaming calls follow the event stream).</summary>
    /// <value>The default value is 500 ms.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan BackgroundPollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Agent turns stream their answer, so the live view shows tokens, reasoning and tool calls as they arrive.
    /// Off: each turn's answer appears on the live stream whole, when it is done.
    /// </summary>
    /// <value>The default value is true.</value>
    public bool StreamAgentTurns { get; init; } = true;

    /// <summary>Output tokens reserved for a call that sets no MaxOutputTokens (also sent to the provider as its limit).</summary>
    /// <value>The default value is 1024.</value>
    [Range(1, 1_000_000)]
    public int DefaultMaxOutputTokens { get; init; } = 1024;
}

/// <summary>A model profile: a fallback chain of providers and an optional escalation profile.</summary>
public sealed class ModelProfileOptions
{
    /// <summary>Tried in order: on a transient, auth or request failure of one, the next answers.</summary>
    public List<ModelProviderOptions> Providers { get; init; } = [];

    /// <summary>The profile to escalate to when an answer fails schema validation (e.g. "strong").</summary>
    public string? EscalateTo { get; init; }
}

/// <summary>One provider entry of a profile.</summary>
public sealed class ModelProviderOptions
{
    /// <summary>A name for logs, accounting and the circuit breaker (one breaker per name). Defaults to Kind-Model.</summary>
    public string? Name { get; init; }

    /// <summary>Where calls go.</summary>
    public ModelProviderKind Kind { get; init; }

    /// <summary>The base URL (Azure: https://{resource}.openai.azure.com; compatible: e.g. http://localhost:11434/v1).</summary>
    public string? Endpoint { get; init; }

    /// <summary>The API key (from Key Vault or environment; never logged). Not needed with UseManagedIdentity.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Azure OpenAI only: authenticate with DefaultAzureCredential (managed identity on Azure) instead of a key.</summary>
    public bool UseManagedIdentity { get; init; }

    /// <summary>The chat model (Azure: the deployment name).</summary>
    public string Model { get; init; } = "simulator";

    /// <summary>The embedding model (Azure: the deployment name), if the profile embeds.</summary>
    public string? EmbeddingModel { get; init; }

    /// <summary>
    /// Calls go to the Responses API in background mode (<c>POST /responses</c> with <c>background: true</c>):
    /// the provider's continuation token is recorded in the ledger as soon as it accepts the request, and a
    /// re-executed call of the same task (after a crash, a lost lease or a retry) polls or resumes that
    /// response instead of generating again. Kinds OpenAI and OpenAICompatible (the endpoint must implement
    /// background responses; Azure OpenAI does on its v1 endpoint, <c>https://{resource}.openai.azure.com/openai/v1/</c>,
    /// configured as OpenAICompatible) and the simulator. Chat completions have no such API: there a crash
    /// can repeat the calls in flight, each visible as an interrupted attempt.
    /// </summary>
    /// <value>The default value is false.</value>
    public bool BackgroundResponses { get; init; }

    /// <summary>
    /// The deployment's tokens-per-minute quota (input + output), enforced before calls are sent and
    /// shared by every host of the activity database. Null: no limit. Entries naming the same endpoint
    /// and model share one limit.
    /// </summary>
    public int? TokensPerMinute { get; init; }

    /// <summary>The deployment's requests-per-minute quota (see <see cref="TokensPerMinute"/>). Null: no limit.</summary>
    public int? RequestsPerMinute { get; init; }

    /// <summary>The most calls in flight at once to the deployment, across hosts. Null: no limit.</summary>
    public int? MaxConcurrent { get; init; }

    /// <summary>The key its limits are kept under: kind, endpoint and model, so entries for one deployment share them.</summary>
    public string DeploymentKey => $"{Kind}|{Endpoint?.TrimEnd('/')}|{Model}".ToLowerInvariant();

    /// <summary>The entry's effective name.</summary>
    public string EffectiveName => string.IsNullOrWhiteSpace(Name) ? $"{Kind}-{Model}" : Name;
}

/// <summary>A price per million tokens, in one currency across the table.</summary>
public sealed class ModelPrice
{
    /// <summary>Per million input tokens.</summary>
    public decimal InputPerMillion { get; init; }

    /// <summary>Per million output tokens.</summary>
    public decimal OutputPerMillion { get; init; }

    /// <summary>The cost of a call.</summary>
    public decimal CostOf(long inputTokens, long outputTokens) =>
        ((inputTokens * InputPerMillion) + (outputTokens * OutputPerMillion)) / 1_000_000m;
}

/// <summary>A configured budget.</summary>
public sealed class BudgetOptions
{
    /// <summary>Input plus output tokens per instance.</summary>
    public long? MaxTokens { get; init; }

    /// <summary>Cost per instance, in the price table's currency.</summary>
    public decimal? MaxCost { get; init; }
}

/// <summary>The response cache: Redis when DurableAgents:Redis:Configuration is set, in-process otherwise.</summary>
public sealed class ModelCacheOptions
{
    /// <summary>Whether answers are cached at all (requests can still opt out with Cache = None).</summary>
    /// <value>The default value is true.</value>
    public bool Enabled { get; init; } = true;

    /// <summary>How long an answer stays.</summary>
    /// <value>The default value is 24 hours.</value>
    public TimeSpan TimeToLive { get; init; } = TimeSpan.FromHours(24);

    /// <summary>The cosine similarity a semantic hit needs.</summary>
    /// <value>The default value is 0.95.</value>
    [Range(0.5, 1.0)]
    public double SemanticThreshold { get; init; } = 0.95;

    /// <summary>How many recent answers per scope the semantic match compares against.</summary>
    /// <value>The default value is 500.</value>
    [Range(1, 100_000)]
    public int SemanticEntries { get; init; } = 500;
}

/// <summary>The HTTP resilience pipeline around every provider (Microsoft.Extensions.Http.Resilience).</summary>
public sealed class ModelResilienceOptions
{
    /// <summary>Retries after the first attempt, on 408, 429, 5xx and connection failures; Retry-After is honoured.</summary>
    /// <value>The default value is 3.</value>
    [Range(0, 10)]
    public int MaxRetryAttempts { get; init; } = 3;

    /// <summary>The first back-off delay (exponential, with jitter) when the provider sends no Retry-After.</summary>
    /// <value>The default value is 2 seconds.</value>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The timeout of one HTTP attempt.</summary>
    /// <value>The default value is 100 seconds.</value>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>The timeout of one call including its retries.</summary>
    /// <value>The default value is 5 minutes.</value>
    public TimeSpan TotalTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The failure ratio in the sampling window that opens a provider's circuit.</summary>
    /// <value>The default value is 0.5.</value>
    [Range(0.01, 1.0)]
    public double CircuitFailureRatio { get; init; } = 0.5;

    /// <summary>Calls in the window before the ratio counts.</summary>
    /// <value>The default value is 10.</value>
    [Range(2, 10_000)]
    public int CircuitMinimumThroughput { get; init; } = 10;

    /// <summary>The sampling window.</summary>
    /// <value>The default value is 30 seconds.</value>
    public TimeSpan CircuitSamplingDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit stays open before a probe.</summary>
    /// <value>The default value is 30 seconds.</value>
    public TimeSpan CircuitBreakDuration { get; init; } = TimeSpan.FromSeconds(30);
}
