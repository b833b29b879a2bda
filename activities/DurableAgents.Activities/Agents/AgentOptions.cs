using System.ComponentModel.DataAnnotations;

namespace DurableAgents.Activities.Agents;

/// <summary>Agent profiles (configuration DurableAgents:Agents:{name}).</summary>
public sealed class AgentOptions
{
    /// <summary>The configuration section the agents live under (as DurableAgents:Agents:{name}).</summary>
    public const string SectionName = "DurableAgents";

    /// <summary>Agent profiles by name.</summary>
    public Dictionary<string, AgentProfile> Agents { get; init; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>An agent: which model it thinks with, what it is told, and which tools it may use.</summary>
public sealed class AgentProfile
{
    /// <summary>The model profile (DurableAgents:Llm:Profiles:{name}); the default is "fast".</summary>
    public string Model { get; set; } = "fast";

    /// <summary>The system prompt.</summary>
    public string Instructions { get; set; } = "You are a careful assistant. Use your tools when they help, and answer briefly.";

    /// <summary>The tools it may use (least privilege: nothing unless listed).</summary>
    public List<string> Tools { get; set; } = [];

    /// <summary>LLM turns per run at most.</summary>
    [Range(1, 200)]
    public int MaxTurns { get; set; } = 10;
}

/// <summary>Tool execution limits (configuration DurableAgents:Tools).</summary>
public sealed class ToolOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Tools";

    /// <summary>How long a tool may run when it sets no limit of its own.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Characters of a tool result given back to the model; the rest is cut and the cut is said.</summary>
    [Range(256, 1_000_000)]
    public int MaxResultChars { get; set; } = 16_000;

    /// <summary>The web fetch and sitemap tools' limits.</summary>
    public FetchOptions Fetch { get; set; } = new();
}

/// <summary>Limits of the web fetch tools (DurableAgents:Tools:Fetch).</summary>
public sealed class FetchOptions
{
    /// <summary>Hosts that may be fetched (exact names, or "*.example.com"); empty allows any public host.</summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// Allow loopback addresses (127.0.0.0/8, ::1). Off by default: a prompt-injected model must not reach
    /// the host's own endpoints. For local development and tests only. Private, link-local and metadata
    /// addresses are refused always.
    /// </summary>
    public bool AllowLoopback { get; set; }

    /// <summary>Bytes read of a response at most; a longer body is cut.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxResponseBytes { get; set; } = 2 * 1024 * 1024;

    /// <summary>The time limit of one fetch, redirects included.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Redirects followed at most (each one checked like the first URL).</summary>
    [Range(0, 10)]
    public int MaxRedirects { get; set; } = 5;

    /// <summary>URLs a sitemap read returns at most.</summary>
    [Range(1, 100_000)]
    public int MaxSitemapUrls { get; set; } = 5_000;
}

/// <summary>Agent memory (configuration DurableAgents:Memory).</summary>
public sealed class MemoryOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "DurableAgents:Memory";

    /// <summary>How long short-term (session) memory lives after its last write.</summary>
    public TimeSpan SessionTimeToLive { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Long-term memory's vector search: Auto (pgvector when the extension exists, else exact), Exact, or Pgvector (required).</summary>
    public VectorSearchMode VectorSearch { get; set; } = VectorSearchMode.Auto;

    /// <summary>The embedding model's dimensions (the simulator's is 256); a vector of another length is refused.</summary>
    [Range(1, 16_000)]
    public int EmbeddingDimensions { get; set; } = 256;

    /// <summary>Existing facts compared with each new fact during consolidation.</summary>
    [Range(1, 50)]
    public int ConsolidationCandidates { get; set; } = 5;
}

/// <summary>How long-term memory finds similar facts.</summary>
public enum VectorSearchMode
{
    /// <summary>pgvector (HNSW, cosine) on PostgreSQL when the extension is available; exact cosine otherwise.</summary>
    Auto = 0,

    /// <summary>An exact cosine scan of the scope's facts (SQLite, or PostgreSQL without pgvector).</summary>
    Exact = 1,

    /// <summary>pgvector, and fail at start when the extension is not available.</summary>
    Pgvector = 2,
}
