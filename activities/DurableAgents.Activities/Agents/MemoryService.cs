using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Llm;
using Microsoft.Extensions.Logging;

namespace DurableAgents.Activities.Agents;

/// <summary>
/// Long-term memory, Mem0-style. Write: the model extracts salient facts from a conversation, then
/// consolidates them against the most similar existing facts of the scope, choosing for each ADD, UPDATE
/// (of an existing id), DELETE (a contradicted fact) or NONE. Read: the query's embedding, the top-k facts of
/// the scope by cosine similarity, with their ids and versions.
/// </summary>
public sealed partial class MemoryService(ModelService models, FactStore facts, MemoryOptions options, ILogger<MemoryService> logger)
{
    private const string ExtractPrompt =
        """
        You extract salient, durable facts worth remembering about the user, their business and their preferences from the text you are given.
        Each fact is one short, self-contained sentence. Skip greetings, small talk and anything only true for this moment.
        Give each a priority from 0 (trivia) to 10 (must never be forgotten). Answer with JSON only.
        """;

    private const string ConsolidatePrompt =
        """
        You maintain a memory of facts. You get the existing facts (with ids) and new facts.
        For each new fact decide one event:
        ADD: it is new information (id null).
        UPDATE: it refines or corrects an existing fact (give that fact's id and the merged text).
        DELETE: it contradicts an existing fact that is no longer true (give that fact's id).
        NONE: it is already known (give the existing id).
        Use only ids from the existing facts. Answer with JSON only.
        """;

    /// <summary>The top-k facts of the request's scope closest to its query.</summary>
    public async Task<RecallResult> RecallAsync(RecallRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        RequireScope(request.Scope);
        var vector = await EmbedAsync(request.Profile, request.Query, cancellationToken).ConfigureAwait(false);
        return new RecallResult(await facts.SearchAsync(request.Scope, vector, request.TopK, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Extracts facts from the request's text and consolidates them into its scope.</summary>
    public async Task<RememberResult> RememberAsync(ModelCallOrigin origin, RememberRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(origin);
        ArgumentNullException.ThrowIfNull(request);
        RequireScope(request.Scope);

        // 1. Extract.
        var extraction = await models.CallAsync(
            origin with { TaskKey = origin.TaskKey + ":extract" },
            new ModelRequest
            {
                Profile = request.Profile,
                Messages = [ModelMessage.System(ExtractPrompt), ModelMessage.User(request.Conversation)],
                ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Extracted>(),
                ResponseSchemaName = "facts",
                Temperature = 0,
            },
            cancellationToken).ConfigureAwait(false);
        var extracted = extraction.ReadJsonAs<Extracted>()?.Facts.Where(f => !string.IsNullOrWhiteSpace(f.Text)).ToList() ?? [];
        if (extracted.Count == 0)
        {
            return new RememberResult([], []);
        }

        // 2. Candidates: the existing facts most similar to each new one. The model sees short ids (0, 1, …), never ours.
        var texts = extracted.Select(f => f.Text).Distinct(StringComparer.Ordinal).ToList();
        var vectors = await EmbedManyAsync(request.Profile, texts, cancellationToken).ConfigureAwait(false);
        var embedded = texts.Zip(vectors).ToDictionary(p => p.First, p => p.Second, StringComparer.Ordinal); // a fact kept as extracted is not embedded again
        var candidates = new Dictionary<string, MemoryFact>(StringComparer.Ordinal);
        foreach (var v in vectors)
        {
            foreach (var hit in await facts.SearchAsync(request.Scope, v, options.ConsolidationCandidates, cancellationToken).ConfigureAwait(false))
            {
                candidates.TryAdd(hit.Fact.Id, hit.Fact);
            }
        }

        var shortIds = candidates.Values.Select((f, i) => (Short: i.ToString(CultureInfo.InvariantCulture), Fact: f)).ToList();
        var prompt = new StringBuilder("Existing facts:\n");
        foreach (var (s, f) in shortIds)
        {
            prompt.Append(CultureInfo.InvariantCulture, $"- id {s}: {f.Text}\n");
        }

        prompt.Append(shortIds.Count == 0 ? "(none)\n" : string.Empty).Append("\nNew facts:\n");
        foreach (var f in extracted)
        {
            prompt.Append(CultureInfo.InvariantCulture, $"- {f.Text}\n");
        }

        // 3. Consolidate.
        var decision = await models.CallAsync(
            origin with { TaskKey = origin.TaskKey + ":consolidate" },
            new ModelRequest
            {
                Profile = request.Profile,
                Messages = [ModelMessage.System(ConsolidatePrompt), ModelMessage.User(prompt.ToString())],
                ResponseSchema = ModelOrchestrationExtensions.SchemaOf<Consolidation>(),
                ResponseSchemaName = "memory_events",
                Temperature = 0,
            },
            cancellationToken).ConfigureAwait(false);
        var operations = decision.ReadJsonAs<Consolidation>()?.Operations ?? [];

        async Task<float[]> VectorOfAsync(string text) =>
            embedded.TryGetValue(text, out var known) ? known : await EmbedAsync(request.Profile, text, cancellationToken).ConfigureAwait(false);

        // 4. Apply. An id the model made up is treated as no id: UPDATE becomes ADD, DELETE and NONE are dropped.
        var changes = new List<MemoryChange>();
        var byShort = shortIds.ToDictionary(p => p.Short, p => p.Fact, StringComparer.Ordinal);
        foreach (var op in operations)
        {
            var target = op.Id is { } sid && byShort.TryGetValue(sid.Trim(), out var t) ? t : null;
            var priority = extracted.FirstOrDefault(f => string.Equals(f.Text, op.Text, StringComparison.OrdinalIgnoreCase))?.Priority ?? target?.Priority ?? 5;
            switch (op.Event)
            {
                case MemoryEventKind.ADD:
                case MemoryEventKind.UPDATE when target is null:
                    if (!string.IsNullOrWhiteSpace(op.Text))
                    {
                        var added = await facts.AddAsync(request.Scope, op.Text, priority, await VectorOfAsync(op.Text).ConfigureAwait(false), request.TimeToLive, cancellationToken).ConfigureAwait(false);
                        changes.Add(new MemoryChange(MemoryEvents.Add, added.Id, added.Text, added.Version));
                    }

                    break;
                case MemoryEventKind.UPDATE:
                    var updated = await facts.UpdateAsync(request.Scope, target!.Id, op.Text ?? target.Text, await VectorOfAsync(op.Text ?? target.Text).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                    if (updated is not null)
                    {
                        changes.Add(new MemoryChange(MemoryEvents.Update, updated.Id, updated.Text, updated.Version));
                    }

                    break;
                case MemoryEventKind.DELETE when target is not null:
                    if (await facts.DeleteAsync(request.Scope, target.Id, cancellationToken).ConfigureAwait(false) is { } deleted)
                    {
                        changes.Add(new MemoryChange(MemoryEvents.Delete, deleted.Id, deleted.Text, deleted.Version + 1));
                    }

                    break;
                case MemoryEventKind.NONE when target is not null:
                    changes.Add(new MemoryChange(MemoryEvents.None, target.Id, target.Text, target.Version));
                    break;
                default:
                    LogIgnored(logger, origin.InstanceId, op.Event, op.Id ?? "(none)");
                    break;
            }
        }

        return new RememberResult(extracted.Select(f => f.Text).ToList(), changes);
    }

    private static void RequireScope(string scope)
    {
        if (string.IsNullOrWhiteSpace(scope))
        {
            throw new ApplicationFailureException("A memory scope is required (e.g. \"user:42\").", AgentErrorTypes.InvalidMemoryRequest, nonRetryable: true);
        }
    }

    private async Task<float[]> EmbedAsync(string profile, string text, CancellationToken cancellationToken) =>
        (await EmbedManyAsync(profile, [text], cancellationToken).ConfigureAwait(false))[0];

    private async Task<IReadOnlyList<float[]>> EmbedManyAsync(string profile, IReadOnlyList<string> texts, CancellationToken cancellationToken) =>
        (await models.EmbedAsync(new EmbeddingRequest(texts, profile), cancellationToken).ConfigureAwait(false)).Vectors;

    [LoggerMessage(EventId = 1322, Level = LogLevel.Information, Message = "Memory consolidation for {InstanceId}: ignored event {Event} for id {Id} (no such candidate fact).")]
    private static partial void LogIgnored(ILogger logger, string instanceId, MemoryEventKind @event, string id);

    /// <summary>The extraction answer.</summary>
    public sealed record Extracted(IReadOnlyList<ExtractedFact> Facts);

    /// <summary>One extracted fact.</summary>
    public sealed record ExtractedFact(string Text, int Priority);

    /// <summary>The consolidation answer.</summary>
    public sealed record Consolidation(IReadOnlyList<MemoryOperation> Operations);

    /// <summary>One consolidation event.</summary>
    public sealed record MemoryOperation(MemoryEventKind Event, string? Id, string? Text);

    /// <summary>Consolidation events as the model names them.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<MemoryEventKind>))]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707:Identifiers should not contain underscores", Justification = "The names are the wire values.")]
    public enum MemoryEventKind
    {
        /// <summary>New.</summary>
        ADD,

        /// <summary>Rewrite an existing fact.</summary>
        UPDATE,

        /// <summary>Remove a contradicted fact.</summary>
        DELETE,

        /// <summary>Already known.</summary>
        NONE,
    }
}
