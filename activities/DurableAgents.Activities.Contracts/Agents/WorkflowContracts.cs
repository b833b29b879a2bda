namespace DurableAgents.Activities.Contracts.Agents;

/// <summary>The agent profiles the sample workflows use (defined by AddWorkflowAgents; override under DurableAgents:Agents:{name}).</summary>
public static class AgentNames
{
    /// <summary>Researches a topic (web_fetch, memory_search).</summary>
    public const string Researcher = "researcher";

    /// <summary>Turns research into an outline.</summary>
    public const string Outliner = "outliner";

    /// <summary>Writes drafts.</summary>
    public const string Writer = "writer";

    /// <summary>Optimises a draft for search.</summary>
    public const string SeoEditor = "seo-editor";

    /// <summary>Reviews a draft for legal and brand compliance.</summary>
    public const string ComplianceReviewer = "compliance-reviewer";

    /// <summary>Analyses data and arguments.</summary>
    public const string Analyst = "analyst";

    /// <summary>Group chat: plans.</summary>
    public const string Strategist = "strategist";

    /// <summary>Group chat: challenges.</summary>
    public const string Skeptic = "skeptic";

    /// <summary>Group chat: thinks about customers.</summary>
    public const string Marketer = "marketer";
}

/// <summary>The input of <see cref="ActivityNames.ReadSitemap"/>.</summary>
public sealed record SitemapRequest(string Url, int Max = 1000);

/// <summary>The output of <see cref="ActivityNames.ReadSitemap"/>.</summary>
public sealed record SitemapPages(IReadOnlyList<string> Urls, int SitemapsRead, bool Truncated);

/// <summary>The input of <see cref="ActivityNames.FetchPage"/>.</summary>
public sealed record FetchPageRequest(string Url, int MaxChars = 8000);

/// <summary>The output of <see cref="ActivityNames.FetchPage"/>: the page as text, or why it could not be read.</summary>
public sealed record PageText(string Url, int Status, string? Title, string Text, string? Error);

/// <summary>The input of <see cref="ActivityNames.PublishPost"/>.</summary>
public sealed record PublishRequest(string Topic, string Title, string Body);

/// <summary>The output of <see cref="ActivityNames.PublishPost"/>.</summary>
/// <param name="Status">published, or skipped (no webhook configured).</param>
/// <param name="IdempotencyKey">The key sent with the request (Idempotency-Key header).</param>
/// <param name="HttpStatus">The webhook's status code.</param>
public sealed record PublishReceipt(string Status, string IdempotencyKey, int? HttpStatus);
