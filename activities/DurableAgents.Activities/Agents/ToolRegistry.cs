using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Contracts.Llm;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NJsonSchema;

namespace DurableAgents.Activities.Agents;

/// <summary>Error types of the agent activities (stable strings, in TaskFailureDetails.ErrorType).</summary>
public static class AgentErrorTypes
{
    /// <summary>The workflow names an agent that is not configured. Not retryable.</summary>
    public const string UnknownAgent = "DurableAgents.Agents.UnknownAgent";

    /// <summary>A workflow's fetch (sitemap) was refused by the SSRF rules or failed. Not retryable.</summary>
    public const string FetchRefused = "DurableAgents.Agents.FetchRefused";

    /// <summary>A memory operation was refused (wrong vector size, no such conversation). Not retryable.</summary>
    public const string InvalidMemoryRequest = "DurableAgents.Agents.InvalidMemoryRequest";
}

/// <summary>
/// The tools registered in DI and the agents' grants. A call is executed only when the agent was granted the
/// tool and the arguments validate against the tool's schema; otherwise the model gets a tool error it can
/// correct itself from, the refusal is logged, and the tool never runs.
/// </summary>
public sealed partial class ToolRegistry
{
    private readonly Dictionary<string, IAgentTool> _tools;
    private readonly IOptionsMonitor<AgentOptions> _agents;
    private readonly ToolOptions _options;
    private readonly ILogger<ToolRegistry> _logger;
    private readonly ConcurrentDictionary<string, Task<JsonSchema>> _validators = new(StringComparer.Ordinal);

    /// <summary>Creates the registry.</summary>
    /// <exception cref="InvalidOperationException">Two tools share a name, or a name is not a valid function name.</exception>
    public ToolRegistry(IEnumerable<IAgentTool> tools, IOptionsMonitor<AgentOptions> agents, IOptions<ToolOptions> options, ILogger<ToolRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(tools);
        _tools = new Dictionary<string, IAgentTool>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (!ValidName().IsMatch(tool.Name))
            {
                throw new InvalidOperationException($"Tool name '{tool.Name}' ({tool.GetType().Name}) must be 1-64 letters, digits, '_' or '-'.");
            }

            if (!_tools.TryAdd(tool.Name, tool))
            {
                throw new InvalidOperationException($"Two tools are named '{tool.Name}': {_tools[tool.Name].GetType().Name} and {tool.GetType().Name}.");
            }
        }

        _agents = agents;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Every registered tool, by name.</summary>
    public IReadOnlyDictionary<string, IAgentTool> Tools => _tools;

    /// <summary>The agent profile.</summary>
    /// <exception cref="ApplicationFailureException">No such agent (non-retryable).</exception>
    public AgentProfile Agent(string name) =>
        _agents.CurrentValue.Agents.TryGetValue(name, out var profile)
            ? profile
            : throw new ApplicationFailureException(
                $"No agent '{name}' is configured (DurableAgents:Agents); configured: {string.Join(", ", _agents.CurrentValue.Agents.Keys.Order(StringComparer.Ordinal))}.",
                AgentErrorTypes.UnknownAgent,
                nonRetryable: true);

    /// <summary>The definitions of the tools <paramref name="agent"/> was granted, for a model request.</summary>
    public IReadOnlyList<ModelTool> DefinitionsFor(string agent) =>
        Agent(agent).Tools.Where(_tools.ContainsKey).Select(n => _tools[n]).Select(t => new ModelTool(t.Name, t.Description, t.ParametersSchema, t.HasSideEffects)).ToList();

    /// <summary>The granted tools as Microsoft.Extensions.AI declarations (for an <see cref="IChatClient"/>).</summary>
    public IReadOnlyList<AITool> DeclarationsFor(string agent) =>
        DefinitionsFor(agent).Select(t => (AITool)AIFunctionFactory.CreateDeclaration(t.Name, t.Description, t.ParametersSchema)).ToList();

    /// <summary>The granted tools in the OpenAI function-calling format: [{"type":"function","function":{name, description, parameters}}].</summary>
    public JsonArray OpenAiFunctionsFor(string agent) =>
        new(DefinitionsFor(agent).Select(t => (JsonNode)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject
            {
                ["name"] = t.Name,
                ["description"] = t.Description,
                ["parameters"] = JsonNode.Parse(t.ParametersSchema.GetRawText()),
            },
        }).ToArray());

    /// <summary>Checks and runs one tool call the model asked for.</summary>
    public async Task<ToolOutcome> InvokeAsync(ToolInvocation invocation, ToolContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invocation);
        ArgumentNullException.ThrowIfNull(context);
        var call = invocation.Call;
        var profile = Agent(invocation.Agent);

        // 1. Least privilege: only granted, registered tools run.
        if (!profile.Tools.Contains(call.Name, StringComparer.Ordinal) || !_tools.TryGetValue(call.Name, out var tool))
        {
            LogRefused(_logger, context.InstanceId, invocation.Agent, Printable(call.Name), "not granted");
            var granted = string.Join(", ", profile.Tools.Where(_tools.ContainsKey));
            return new ToolOutcome(call.Id, call.Name, ToolStatuses.Refused, $"Tool '{Printable(call.Name)}' is not available to you. Your tools: {(granted.Length == 0 ? "none" : granted)}.");
        }

        // 2. The arguments must be a JSON object matching the tool's schema.
        JsonElement arguments;
        string? errors;
        try
        {
            if (call.ArgumentsError is { } parseError)
            {
                throw new JsonException(parseError);
            }

            using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(call.ArgumentsJson) ? "{}" : call.ArgumentsJson);
            arguments = doc.RootElement.Clone();
            var validator = await _validators.GetOrAdd(tool.Name, _ => JsonSchema.FromJsonAsync(tool.ParametersSchema.GetRawText(), CancellationToken.None)).ConfigureAwait(false);
            errors = arguments.ValueKind != JsonValueKind.Object
                ? "the arguments must be a JSON object"
                : string.Join("; ", validator.Validate(arguments.GetRawText()).Take(10).Select(e => $"{(string.IsNullOrEmpty(e.Path) ? "#" : e.Path)}: {e.Kind}"));
        }
        catch (JsonException ex)
        {
            arguments = default;
            errors = $"the arguments are not valid JSON ({ex.Message})";
        }

        if (!string.IsNullOrEmpty(errors))
        {
            LogRefused(_logger, context.InstanceId, invocation.Agent, tool.Name, "invalid arguments: " + errors);
            return new ToolOutcome(call.Id, tool.Name, ToolStatuses.InvalidArguments, $"The arguments for '{tool.Name}' do not match its schema: {errors}. The tool did not run; call it again with corrected arguments.");
        }

        // 3. Run it under its time limit; a ToolException is an answer for the model, anything else fails the activity (and is retried).
        var limit = tool.Timeout ?? _options.DefaultTimeout;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        object? result;
        try
        {
            result = await tool.ExecuteAsync(arguments, context, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            LogTimedOut(_logger, context.InstanceId, tool.Name, (long)limit.TotalMilliseconds);
            return new ToolOutcome(call.Id, tool.Name, ToolStatuses.Timeout, $"The tool '{tool.Name}' did not finish within {limit.TotalSeconds:0.#} seconds.");
        }
        catch (ToolException ex)
        {
            return Capped(call.Id, tool.Name, ToolStatuses.Error, ex.Message);
        }

        if (result is HumanInputRequested human)
        {
            return new ToolOutcome(call.Id, tool.Name, ToolStatuses.AwaitingHuman, human.Question);
        }

        var text = result switch
        {
            null => "null",
            string s => s,
            JsonElement e => e.GetRawText(),
            _ => JsonSerializer.Serialize(result, LlmJson.Options),
        };
        return Capped(call.Id, tool.Name, ToolStatuses.Ok, text);
    }

    private ToolOutcome Capped(string callId, string name, string status, string text)
    {
        var max = _options.MaxResultChars;
        if (text.Length <= max)
        {
            return new ToolOutcome(callId, name, status, text);
        }

        var note = $"\n[truncated: the result had {text.Length} characters; the first {max} are shown]";
        return new ToolOutcome(callId, name, status, text[..Math.Max(0, max - note.Length)] + note, Truncated: true);
    }

    /// <summary>A model-supplied name as it may appear in logs and messages: short, no control characters.</summary>
    private static string Printable(string name)
    {
        var cleaned = new string(name.Where(c => !char.IsControl(c)).Take(64).ToArray());
        return cleaned.Length < name.Length ? cleaned + "…" : cleaned;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex ValidName();

    [LoggerMessage(EventId = 1320, Level = LogLevel.Warning, Message = "Tool call refused for {InstanceId}: agent {Agent} asked for {Tool} ({Reason}); the tool did not run.")]
    private static partial void LogRefused(ILogger logger, string instanceId, string agent, string tool, string reason);

    [LoggerMessage(EventId = 1321, Level = LogLevel.Warning, Message = "Tool {Tool} for {InstanceId} timed out after {LimitMs} ms.")]
    private static partial void LogTimedOut(ILogger logger, string instanceId, string tool, long limitMs);
}
