using System.Text.Json;
using DurableAgents.Activities.Contracts;
using DurableAgents.Activities.Contracts.Llm;
using DurableTask.Core.History;

namespace DurableAgents.Functions.Dashboard;

/// <summary>One bar of the timeline: an activity, timer or sub-orchestration from scheduling to completion, or an event (a point).</summary>
public sealed record Span(string Kind, string Name, DateTimeOffset Start, DateTimeOffset? End, string Outcome, int Attempt, string? Link);

/// <summary>A tool call of the agent view.</summary>
public sealed record ToolCallView(string Tool, string Arguments, string Status, string Result, TimeSpan? Duration);

/// <summary>An LLM turn of the agent view, with the tool calls that followed it.</summary>
public sealed record LlmTurnView(string Activity, string? Agent, string Model, long InputTokens, long OutputTokens, decimal Cost, bool CacheHit, string? Text, string? Error, TimeSpan? Duration, List<ToolCallView> ToolCalls)
{
    /// <summary>What a person said that this agent turn added to the conversation (the task, a steer, an interrupt's message).</summary>
    public IReadOnlyList<string> PersonSaid { get; init; } = [];
}

/// <summary>An approval the instance is waiting for: the event its links raise, and who may decide.</summary>
public sealed record PendingApproval(string EventName, IReadOnlyList<string> Approvers);

/// <summary>What the detail page shows, read from an execution's history.</summary>
public sealed class InstanceView
{
    private InstanceView()
    {
    }

    public List<Span> Spans { get; } = [];

    public List<LlmTurnView> Turns { get; } = [];

    public List<string> Children { get; } = [];

    public PendingApproval? Approval { get; private set; }

    /// <summary>Reads a history (one execution).</summary>
    public static InstanceView From(IEnumerable<HistoryEvent> history, bool running)
    {
        ArgumentNullException.ThrowIfNull(history);
        var view = new InstanceView();
        var scheduled = new Dictionary<int, TaskScheduledEvent>();
        var open = new Dictionary<int, int>(); // task or timer id → index of its span in view.Spans
        var failures = new Dictionary<string, int>(StringComparer.Ordinal);
        var approvers = new List<string>();
        string? approvalEvent = null;
        LlmTurnView? lastTurn = null;
        var toolsByTask = new Dictionary<int, (string Tool, string Args)>();
        foreach (var e in history)
        {
            switch (e)
            {
                case TaskScheduledEvent t:
                    scheduled[t.EventId] = t;
                    var key = t.Name + "\n" + t.Input;
                    open[t.EventId] = view.Spans.Count;
                    view.Spans.Add(new Span("activity", t.Name ?? "?", At(t), null, "running", failures.GetValueOrDefault(key) + 1, null));
                    if (t.Name == ActivityNames.SendApprovalRequest && ReadInput(t.Input) is { } req)
                    {
                        approvalEvent = Str(req, "eventName") ?? approvalEvent;
                        approvers.AddRange(Arr(req, "approvers").Select(a => a.GetString() ?? string.Empty).Where(a => a.Length > 0));
                    }
                    else if (t.Name == ActivityNames.CallTool && ReadInput(t.Input) is { } inv && Obj(inv, "call") is { } call)
                    {
                        toolsByTask[t.EventId] = (Str(call, "name") ?? "?", Str(call, "argumentsJson") ?? "{}");
                    }

                    break;
                case TaskCompletedEvent c when open.Remove(c.TaskScheduledId, out var i):
                    Close(view, i, At(c), "completed");
                    Completed(view, scheduled[c.TaskScheduledId], c.Result, null, At(c), ref lastTurn, toolsByTask);
                    break;
                case TaskFailedEvent f when open.Remove(f.TaskScheduledId, out var i):
                    Close(view, i, At(f), "failed: " + (f.FailureDetails?.ErrorType ?? f.Reason));
                    var failedKey = view.Spans[i].Name + "\n" + scheduled[f.TaskScheduledId].Input;
                    failures[failedKey] = failures.GetValueOrDefault(failedKey) + 1;
                    Completed(view, scheduled[f.TaskScheduledId], null, (f.FailureDetails?.ErrorMessage ?? f.Reason), At(f), ref lastTurn, toolsByTask);
                    break;
                case TimerCreatedEvent tc:
                    open[tc.EventId] = view.Spans.Count;
                    view.Spans.Add(new Span("timer", "timer until " + Format.T(new DateTimeOffset(DateTime.SpecifyKind(tc.FireAt, DateTimeKind.Utc))), At(tc), null, "waiting", 1, null));
                    break;
                case TimerFiredEvent tf when open.Remove(tf.TimerId, out var i):
                    Close(view, i, At(tf), "fired");
                    break;
                case SubOrchestrationInstanceCreatedEvent so:
                    open[so.EventId] = view.Spans.Count;
                    view.Spans.Add(new Span("sub-orchestration", so.Name ?? "?", At(so), null, "running", 1, so.InstanceId));
                    view.Children.Add(so.InstanceId);
                    break;
                case SubOrchestrationInstanceCompletedEvent sc when open.Remove(sc.TaskScheduledId, out var i):
                    Close(view, i, At(sc), "completed");
                    break;
                case SubOrchestrationInstanceFailedEvent sf when open.Remove(sf.TaskScheduledId, out var i):
                    Close(view, i, At(sf), "failed: " + (sf.FailureDetails?.ErrorType ?? sf.Reason));
                    break;
                case EventRaisedEvent er:
                    view.Spans.Add(new Span("event", "event " + er.Name, At(er), At(er), "received", 1, null));
                    break;
            }
        }

        if (running && approvalEvent is not null)
        {
            view.Approval = new PendingApproval(approvalEvent, approvers.Distinct(StringComparer.OrdinalIgnoreCase).ToList());
        }

        return view;
    }

    private static DateTimeOffset At(HistoryEvent e) => new(DateTime.SpecifyKind(e.Timestamp, DateTimeKind.Utc));

    private static void Close(InstanceView view, int index, DateTimeOffset end, string outcome) =>
        view.Spans[index] = view.Spans[index] with { End = end, Outcome = outcome };

    private static void Completed(
        InstanceView view, TaskScheduledEvent t, string? result, string? error, DateTimeOffset end, ref LlmTurnView? lastTurn,
        Dictionary<int, (string Tool, string Args)> toolsByTask)
    {
        var duration = end - At(t);
        if (t.Name is ActivityNames.CallModel or ActivityNames.AgentTurn)
        {
            var input = ReadInput(t.Input);
            var output = Read(result);
            var response = t.Name == ActivityNames.AgentTurn && output is { } o ? Obj(o, "response") : output;
            var usage = response is { } r ? Obj(r, "usage") : null;
            var turn = new LlmTurnView(
                t.Name,
                input is { } i && t.Name == ActivityNames.AgentTurn ? $"{Str(i, "agent")} (turn {Num(i, "turn")})" : input is { } j ? $"profile {Str(j, "profile") ?? "fast"}" : null,
                response is { } m ? Str(m, "model") ?? "?" : "—",
                usage is { } u ? Num(u, "inputTokens") : 0,
                usage is { } u2 ? Num(u2, "outputTokens") : 0,
                response is { } c && Prop(c, "cost") is { ValueKind: JsonValueKind.Number } cost ? cost.GetDecimal() : 0m,
                response is { } h && Obj(h, "cache") is { } cache && Prop(cache, "hit") is { ValueKind: JsonValueKind.True },
                response is { } x ? Str(x, "text") : null,
                error,
                duration,
                [])
            {
                PersonSaid = input is { } said && t.Name == ActivityNames.AgentTurn
                    ? Arr(said, "append").Where(m => Str(m, "role") == ChatRoles.User && Str(m, "text") is not null).Select(m => Str(m, "text")!).ToList()
                    : [],
            };
            view.Turns.Add(turn);
            lastTurn = turn;
        }
        else if (t.Name == ActivityNames.CallTool && toolsByTask.TryGetValue(t.EventId, out var tool))
        {
            var outcome = Read(result);
            var call = new ToolCallView(tool.Tool, tool.Args, outcome is { } a ? Str(a, "status") ?? "?" : "failed", outcome is { } b ? Str(b, "content") ?? string.Empty : error ?? string.Empty, duration);
            if (lastTurn is not null)
            {
                lastTurn.ToolCalls.Add(call);
            }
        }
    }

    /// <summary>An activity's scheduled input: the SDK sends it as a one-element JSON array.</summary>
    private static JsonElement? ReadInput(string? json) =>
        json is { Length: > 2 } && json[0] == '[' && json[^1] == ']' ? Read(json[1..^1]) : Read(json);

    private static JsonElement? Read(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static JsonElement? Prop(JsonElement e, string name)
    {
        foreach (var p in e.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return p.Value;
            }
        }

        return null;
    }

    private static JsonElement? Obj(JsonElement e, string name) => Prop(e, name) is { ValueKind: JsonValueKind.Object } o ? o : null;

    private static string? Str(JsonElement e, string name) => Prop(e, name) is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;

    private static long Num(JsonElement e, string name) => Prop(e, name) is { ValueKind: JsonValueKind.Number } n ? n.GetInt64() : 0;

    private static List<JsonElement> Arr(JsonElement e, string name) => Prop(e, name) is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray().ToList() : [];
}
