namespace DurableAgents.Activities.Contracts;

/// <summary>Activity names, shared by orchestrations (which call them) and activities (which implement them).</summary>
public static class ActivityNames
{
    /// <summary>Greets a city: the canonical "hello cities" step.</summary>
    public const string SayHello = "SayHello";

    /// <summary>Drafts a short text for a topic with the "fast" model profile.</summary>
    public const string DraftText = "DraftText";

    /// <summary>Emails signed approve/reject links to approvers.</summary>
    public const string SendApprovalRequest = "SendApprovalRequest";

    /// <summary>Calls a chat model through a profile: input ModelRequest, output ModelResponse.</summary>
    public const string CallModel = "CallModel";

    /// <summary>Embeds texts through a profile's embedding model: input EmbeddingRequest, output EmbeddingResponse.</summary>
    public const string Embed = "Embed";

    /// <summary>One LLM turn of an agent: input AgentTurnRequest, output AgentTurnResult.</summary>
    public const string AgentTurn = "AgentTurn";

    /// <summary>One tool call of an agent, checked against its allow-list and the tool's schema: input ToolInvocation, output ToolOutcome.</summary>
    public const string CallTool = "CallTool";

    /// <summary>Long-term memory read: input RecallRequest, output RecallResult.</summary>
    public const string RecallMemory = "RecallMemory";

    /// <summary>Long-term memory write (extract and consolidate facts): input RememberRequest, output RememberResult.</summary>
    public const string RememberFacts = "RememberFacts";

    /// <summary>Reads a sitemap (SSRF-safe): input SitemapRequest, output SitemapPages.</summary>
    public const string ReadSitemap = "ReadSitemap";

    /// <summary>Fetches a page as text (SSRF-safe): input FetchPageRequest, output PageText.</summary>
    public const string FetchPage = "FetchPage";

    /// <summary>Publishes a post to the configured webhook with an idempotency key: input PublishRequest, output PublishReceipt.</summary>
    public const string PublishPost = "PublishPost";
}

/// <summary>A draft request.</summary>
public sealed record DraftRequest(string Topic, string Stage, string? Previous);

/// <summary>A draft.</summary>
public sealed record Draft(string Stage, string Text);

/// <summary>Asks people to decide; each gets an approve and a reject link by email.</summary>
/// <param name="EventName">The external event the decision is raised as.</param>
/// <param name="Approvers">Email addresses.</param>
/// <param name="Subject">Email subject.</param>
/// <param name="Summary">What is being decided (plain text).</param>
/// <param name="ExpiresAt">When the links stop working.</param>
public sealed record ApprovalRequest(string EventName, IReadOnlyList<string> Approvers, string Subject, string Summary, DateTime ExpiresAt);

/// <summary>The payload of the approval event: who decided what, and when.</summary>
public sealed record ApprovalDecision(string Decision, string Approver, DateTimeOffset DecidedAt)
{
    /// <summary>True for "approve".</summary>
    public bool IsApproved => string.Equals(Decision, ApprovalDecisions.Approve, StringComparison.Ordinal);
}

/// <summary>Decision values.</summary>
public static class ApprovalDecisions
{
    /// <summary>Approve.</summary>
    public const string Approve = "approve";

    /// <summary>Reject.</summary>
    public const string Reject = "reject";
}
