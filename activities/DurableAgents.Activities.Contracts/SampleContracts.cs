namespace DurableAgents.Activities.Contracts;

/// <summary>Activity names, shared by orchestrations (which call them) and activities (which implement them).</summary>
public static class ActivityNames
{
    /// <summary>Greets a city: the canonical "hello cities" step.</summary>
    public const string SayHello = "SayHello";

    /// <summary>Drafts a short text for a topic with the offline simulator.</summary>
    public const string DraftText = "DraftText";
}

/// <summary>A draft request.</summary>
public sealed record DraftRequest(string Topic, string Stage, string? Previous);

/// <summary>A draft.</summary>
public sealed record Draft(string Stage, string Text);
