using System.Text.Json;
using NJsonSchema;

namespace DurableAgents.Activities.Llm;

/// <summary>Validates a structured answer against its JSON schema (NJsonSchema).</summary>
public static class StructuredOutput
{
    /// <summary>The parsed answer when it is JSON matching <paramref name="schema"/>; otherwise null and what is wrong.</summary>
    public static async Task<(JsonElement? Json, string? Errors)> ValidateAsync(string? text, JsonElement schema, CancellationToken cancellationToken = default)
    {
        var candidate = StripFence(text);
        if (string.IsNullOrWhiteSpace(candidate))
        {
            return (null, "the answer was empty");
        }

        JsonElement json;
        try
        {
            using var doc = JsonDocument.Parse(candidate);
            json = doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            return (null, $"the answer is not valid JSON ({ex.Message})");
        }

        var validator = await JsonSchema.FromJsonAsync(schema.GetRawText(), cancellationToken).ConfigureAwait(false);
        var errors = validator.Validate(candidate);
        return errors.Count == 0
            ? (json, null)
            : (null, string.Join("; ", errors.Take(10).Select(e => $"{(string.IsNullOrEmpty(e.Path) ? "#" : e.Path)}: {e.Kind}")));
    }

    /// <summary>Models often wrap JSON in a Markdown code fence; the fence is not part of the answer.</summary>
    private static string? StripFence(string? text)
    {
        var t = text?.Trim();
        if (t is null || !t.StartsWith("```", StringComparison.Ordinal))
        {
            return t;
        }

        var firstNewLine = t.IndexOf('\n', StringComparison.Ordinal);
        var end = t.LastIndexOf("```", StringComparison.Ordinal);
        return firstNewLine > 0 && end > firstNewLine ? t[(firstNewLine + 1)..end].Trim() : t;
    }
}
