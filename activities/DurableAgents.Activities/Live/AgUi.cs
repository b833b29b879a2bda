using System.Text.Json;
using System.Text.Json.Nodes;

namespace DurableAgents.Activities.Live;

/// <summary>
/// AG-UI events (https://docs.ag-ui.com/concepts/events) as JSON, in the field names and shapes of
/// <c>@ag-ui/core</c> 1.0: every event has <c>type</c> and a <c>timestamp</c> in Unix milliseconds.
/// </summary>
public static class AgUi
{
    /// <summary>The <c>CUSTOM</c> event name of a notice that events were trimmed before the reader's cursor.</summary>
    public const string MissedEvents = "durableagents.missed";

    /// <summary>The <c>CUSTOM</c> event name of a turn's model usage.</summary>
    public const string Usage = "durableagents.usage";

    /// <summary>The <c>CUSTOM</c> event name of a steer message the run received.</summary>
    public const string Steered = "durableagents.steer";

    /// <summary>The <c>CUSTOM</c> event name of an interrupt the run received.</summary>
    public const string Interrupted = "durableagents.interrupt";

    /// <summary>The <c>CUSTOM</c> event name of a model call that was cut off by an interrupt.</summary>
    public const string CallInterrupted = "durableagents.call-interrupted";

    /// <summary>Event types that end a run.</summary>
    public static bool IsTerminal(string? type) => type is "RUN_FINISHED" or "RUN_ERROR";

    /// <summary>The <c>type</c> of a stored event's JSON.</summary>
    public static string? TypeOf(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.TryGetProperty("type", out var t) ? t.GetString() : null;
    }

    private static JsonObject Event(string type, DateTimeOffset at, params (string Name, JsonNode? Value)[] fields)
    {
        var e = new JsonObject { ["type"] = type };
        foreach (var (name, value) in fields)
        {
            if (value is not null)
            {
                e[name] = value;
            }
        }

        e["timestamp"] = at.ToUnixTimeMilliseconds();
        return e;
    }

    /// <summary><c>RUN_STARTED</c>: thread = the instance, run = its execution.</summary>
    public static JsonObject RunStarted(string threadId, string runId, DateTimeOffset at) =>
        Event("RUN_STARTED", at, ("threadId", threadId), ("runId", runId));

    /// <summary><c>RUN_FINISHED</c> with the output as <c>result</c> and the run's usage.</summary>
    public static JsonObject RunFinished(string threadId, string runId, JsonNode? result, JsonArray? usage, DateTimeOffset at, string outcome = "success") =>
        Event("RUN_FINISHED", at, ("threadId", threadId), ("runId", runId), ("result", result), ("outcome", new JsonObject { ["type"] = outcome }), ("usage", usage));

    /// <summary><c>RUN_ERROR</c>.</summary>
    public static JsonObject RunError(string message, string? code, DateTimeOffset at) =>
        Event("RUN_ERROR", at, ("message", message), ("code", code));

    /// <summary><c>STEP_STARTED</c>.</summary>
    public static JsonObject StepStarted(string stepName, DateTimeOffset at) => Event("STEP_STARTED", at, ("stepName", stepName));

    /// <summary><c>STEP_FINISHED</c>.</summary>
    public static JsonObject StepFinished(string stepName, DateTimeOffset at) => Event("STEP_FINISHED", at, ("stepName", stepName));

    /// <summary><c>TEXT_MESSAGE_START</c> (role assistant, or user for a person's message).</summary>
    public static JsonObject TextStart(string messageId, string role, DateTimeOffset at) =>
        Event("TEXT_MESSAGE_START", at, ("messageId", messageId), ("role", role));

    /// <summary><c>TEXT_MESSAGE_CONTENT</c>; AG-UI requires a non-empty delta.</summary>
    public static JsonObject TextContent(string messageId, string delta, DateTimeOffset at) =>
        Event("TEXT_MESSAGE_CONTENT", at, ("messageId", messageId), ("delta", delta));

    /// <summary><c>TEXT_MESSAGE_END</c>.</summary>
    public static JsonObject TextEnd(string messageId, DateTimeOffset at) => Event("TEXT_MESSAGE_END", at, ("messageId", messageId));

    /// <summary><c>REASONING_START</c>.</summary>
    public static JsonObject ReasoningStart(string messageId, DateTimeOffset at) => Event("REASONING_START", at, ("messageId", messageId));

    /// <summary><c>REASONING_MESSAGE_START</c>.</summary>
    public static JsonObject ReasoningMessageStart(string messageId, DateTimeOffset at) =>
        Event("REASONING_MESSAGE_START", at, ("messageId", messageId), ("role", "reasoning"));

    /// <summary><c>REASONING_MESSAGE_CONTENT</c>.</summary>
    public static JsonObject ReasoningContent(string messageId, string delta, DateTimeOffset at) =>
        Event("REASONING_MESSAGE_CONTENT", at, ("messageId", messageId), ("delta", delta));

    /// <summary><c>REASONING_MESSAGE_END</c>.</summary>
    public static JsonObject ReasoningMessageEnd(string messageId, DateTimeOffset at) => Event("REASONING_MESSAGE_END", at, ("messageId", messageId));

    /// <summary><c>REASONING_END</c>.</summary>
    public static JsonObject ReasoningEnd(string messageId, DateTimeOffset at) => Event("REASONING_END", at, ("messageId", messageId));

    /// <summary><c>TOOL_CALL_START</c>.</summary>
    public static JsonObject ToolCallStart(string toolCallId, string name, string? parentMessageId, DateTimeOffset at) =>
        Event("TOOL_CALL_START", at, ("toolCallId", toolCallId), ("toolCallName", name), ("parentMessageId", parentMessageId));

    /// <summary><c>TOOL_CALL_ARGS</c>.</summary>
    public static JsonObject ToolCallArgs(string toolCallId, string delta, DateTimeOffset at) =>
        Event("TOOL_CALL_ARGS", at, ("toolCallId", toolCallId), ("delta", delta));

    /// <summary><c>TOOL_CALL_END</c>.</summary>
    public static JsonObject ToolCallEnd(string toolCallId, DateTimeOffset at) => Event("TOOL_CALL_END", at, ("toolCallId", toolCallId));

    /// <summary><c>TOOL_CALL_RESULT</c>.</summary>
    public static JsonObject ToolCallResult(string messageId, string toolCallId, string content, DateTimeOffset at) =>
        Event("TOOL_CALL_RESULT", at, ("messageId", messageId), ("toolCallId", toolCallId), ("content", content), ("role", "tool"));

    /// <summary><c>STATE_SNAPSHOT</c>.</summary>
    public static JsonObject StateSnapshot(JsonNode? snapshot, DateTimeOffset at) =>
        Event("STATE_SNAPSHOT", at, ("snapshot", snapshot ?? new JsonObject()));

    /// <summary><c>STATE_DELTA</c> (RFC 6902 operations).</summary>
    public static JsonObject StateDelta(JsonArray delta, DateTimeOffset at) => Event("STATE_DELTA", at, ("delta", delta));

    /// <summary><c>CUSTOM</c>.</summary>
    public static JsonObject Custom(string name, JsonNode? value, DateTimeOffset at) =>
        Event("CUSTOM", at, ("name", name), ("value", value ?? new JsonObject()));

    /// <summary>
    /// A JSON Patch from <paramref name="before"/> to <paramref name="after"/>: per top-level member add, replace or
    /// remove when both are objects; one whole-document replace otherwise. Null when nothing changed.
    /// </summary>
    public static JsonArray? Diff(JsonNode? before, JsonNode? after)
    {
        if (JsonNode.DeepEquals(before, after))
        {
            return null;
        }

        if (before is not JsonObject b || after is not JsonObject a)
        {
            return [new JsonObject { ["op"] = "replace", ["path"] = string.Empty, ["value"] = after?.DeepClone() }];
        }

        var ops = new JsonArray();
        foreach (var (name, value) in a)
        {
            if (!b.TryGetPropertyValue(name, out var old))
            {
                ops.Add(new JsonObject { ["op"] = "add", ["path"] = "/" + Pointer(name), ["value"] = value?.DeepClone() });
            }
            else if (!JsonNode.DeepEquals(old, value))
            {
                ops.Add(new JsonObject { ["op"] = "replace", ["path"] = "/" + Pointer(name), ["value"] = value?.DeepClone() });
            }
        }

        foreach (var (name, _) in b)
        {
            if (!a.ContainsKey(name))
            {
                ops.Add(new JsonObject { ["op"] = "remove", ["path"] = "/" + Pointer(name) });
            }
        }

        return ops;
    }

    private static string Pointer(string name) => name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}
