namespace DurableAgents.Activities.Contracts.Agents;

/// <summary>A long-term memory fact.</summary>
/// <param name="Id">Stable id.</param>
/// <param name="Scope">Whose fact it is (e.g. "user:42", "agent:writer"); reads never cross scopes.</param>
/// <param name="Text">The fact.</param>
/// <param name="Priority">0 (low) to 10 (high); ties in relevance are broken by priority.</param>
/// <param name="Version">1 when added; +1 on each update.</param>
/// <param name="UpdatedAt">When it was last written.</param>
/// <param name="ExpiresAt">When it stops being recalled; null for never.</param>
public sealed record MemoryFact(string Id, string Scope, string Text, int Priority, int Version, DateTimeOffset UpdatedAt, DateTimeOffset? ExpiresAt);

/// <summary>A recalled fact and how close it is to the query.</summary>
public sealed record RecalledFact(MemoryFact Fact, double Similarity);

/// <summary>The input of <see cref="ActivityNames.RecallMemory"/>.</summary>
/// <param name="Scope">Whose facts.</param>
/// <param name="Query">What to look for.</param>
/// <param name="TopK">How many facts at most.</param>
/// <param name="Profile">The model profile whose embedding model embeds the query.</param>
public sealed record RecallRequest(string Scope, string Query, int TopK = 5, string Profile = "fast");

/// <summary>The output of <see cref="ActivityNames.RecallMemory"/>: the facts, with their ids and versions, as they were read.</summary>
public sealed record RecallResult(IReadOnlyList<RecalledFact> Facts);

/// <summary>The input of <see cref="ActivityNames.RememberFacts"/>.</summary>
/// <param name="Scope">Whose facts.</param>
/// <param name="Conversation">The text to extract salient facts from (a conversation, notes).</param>
/// <param name="Profile">The model profile that extracts and consolidates.</param>
/// <param name="TimeToLive">How long new facts live; null for no expiry.</param>
public sealed record RememberRequest(string Scope, string Conversation, string Profile = "fast", TimeSpan? TimeToLive = null);

/// <summary>Consolidation events (as in Mem0).</summary>
public static class MemoryEvents
{
    /// <summary>A new fact.</summary>
    public const string Add = "ADD";

    /// <summary>An existing fact rewritten (its version goes up).</summary>
    public const string Update = "UPDATE";

    /// <summary>An existing fact contradicted and removed.</summary>
    public const string Delete = "DELETE";

    /// <summary>Nothing to change.</summary>
    public const string None = "NONE";
}

/// <summary>One change consolidation made.</summary>
/// <param name="Event">ADD, UPDATE, DELETE or NONE.</param>
/// <param name="FactId">The fact.</param>
/// <param name="Text">Its text after the change (before it, for DELETE).</param>
/// <param name="Version">Its version after the change.</param>
public sealed record MemoryChange(string Event, string FactId, string Text, int Version);

/// <summary>The output of <see cref="ActivityNames.RememberFacts"/>.</summary>
public sealed record RememberResult(IReadOnlyList<string> Extracted, IReadOnlyList<MemoryChange> Changes);
