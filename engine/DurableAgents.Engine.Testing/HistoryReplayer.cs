using System.Text.Json;
using DurableAgents.Engine.History;
using DurableAgents.Engine.Runtime;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableAgents.Engine.Testing;

/// <summary>
/// Replays a recorded history against the current orchestrator code, as a worker would after a
/// deploy. Check recorded histories in and replay them in tests: a code change that would break
/// in-flight instances fails the build's tests, not production.
/// </summary>
public static class HistoryReplayer
{
    private static readonly JsonSerializerOptions Indented = new(DataConverter.Options) { WriteIndented = true };

    /// <summary>Reads a history saved as a JSON array of events.</summary>
    public static IReadOnlyList<HistoryEvent> Load(string json) =>
        JsonSerializer.Deserialize<List<HistoryEvent>>(json, DataConverter.Options) ?? [];

    /// <summary>Writes a history as an indented JSON array, for checking in.</summary>
    public static string Save(IReadOnlyList<HistoryEvent> history) =>
        JsonSerializer.Serialize(history, Indented);

    /// <summary>Replays <paramref name="history"/>; returns null when the code matches it, else the failure (e.g. NonDeterminism).</summary>
    public static TaskFailureDetails? Replay(ITaskOrchestrator orchestrator, IReadOnlyList<HistoryEvent> history, string instanceId = "replay", string name = "replay")
    {
        ArgumentNullException.ThrowIfNull(orchestrator);
        ArgumentNullException.ThrowIfNull(history);
        var session = new OrchestrationSession(instanceId, "replay", name, orchestrator, long.MaxValue, NullLoggerFactory.Instance);
        session.Replay(history);
        return session.ReplayFailure;
    }
}
