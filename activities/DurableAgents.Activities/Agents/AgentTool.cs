using System.ComponentModel;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;
using DurableAgents.Activities.Contracts.Llm;

namespace DurableAgents.Activities.Agents;

/// <summary>Who calls a tool: the activity's instance and task, the agent, and what the workflow granted it.</summary>
/// <param name="InstanceId">The orchestration instance.</param>
/// <param name="IdempotencyKey">Stable across retries of this tool call (instance, execution, task id): pass it to side-effecting calls.</param>
/// <param name="Agent">The agent profile.</param>
/// <param name="SessionId">The short-term memory session.</param>
/// <param name="MemoryScope">The long-term memory scope granted to the run, if any.</param>
/// <param name="Model">The agent's model profile (for tools that call a model or embed).</param>
public sealed record ToolContext(string InstanceId, string IdempotencyKey, string Agent, string SessionId, string? MemoryScope, string Model = "fast");

/// <summary>A tool agents can be granted (register with <c>services.AddAgentTool&lt;T&gt;()</c>).</summary>
public interface IAgentTool
{
    /// <summary>The name the model calls it by (letters, digits, _ and -).</summary>
    string Name { get; }

    /// <summary>What it does, for the model.</summary>
    string Description { get; }

    /// <summary>The JSON schema of its arguments object.</summary>
    JsonElement ParametersSchema { get; }

    /// <summary>True when calling it changes something outside (it then gets the idempotency key, and its turn is never answered from the cache).</summary>
    bool HasSideEffects { get; }

    /// <summary>Its time limit; null uses DurableAgents:Tools:DefaultTimeout.</summary>
    TimeSpan? Timeout { get; }

    /// <summary>Runs it with arguments already validated against <see cref="ParametersSchema"/>.</summary>
    Task<object?> ExecuteAsync(JsonElement arguments, ToolContext context, CancellationToken cancellationToken);
}

/// <summary>
/// A tool with typed arguments: the parameter schema is generated from <typeparamref name="TArgs"/>
/// (descriptions from <see cref="DescriptionAttribute"/>, no properties beyond the declared ones).
/// </summary>
public abstract class AgentTool<TArgs> : IAgentTool
    where TArgs : class
{
    private static readonly Lazy<JsonElement> Schema = new(() => ToolSchemas.For(typeof(TArgs)));

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract string Description { get; }

    /// <inheritdoc />
    public JsonElement ParametersSchema => Schema.Value;

    /// <inheritdoc />
    public virtual bool HasSideEffects => false;

    /// <inheritdoc />
    public virtual TimeSpan? Timeout => null;

    /// <inheritdoc />
    public Task<object?> ExecuteAsync(JsonElement arguments, ToolContext context, CancellationToken cancellationToken)
    {
        var args = arguments.Deserialize<TArgs>(LlmJson.Options) ?? throw new ToolException("The arguments were null.");
        return ExecuteAsync(args, context, cancellationToken);
    }

    /// <summary>Runs the tool. Throw <see cref="ToolException"/> for an error the model should see and can act on.</summary>
    protected abstract Task<object?> ExecuteAsync(TArgs arguments, ToolContext context, CancellationToken cancellationToken);
}

/// <summary>An error a tool reports to the model (e.g. "that host is not allowed"): the call completes with status error.</summary>
public sealed class ToolException : Exception
{
    /// <summary>Creates one.</summary>
    public ToolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates one with a cause.</summary>
    public ToolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates one.</summary>
    public ToolException()
    {
    }
}

/// <summary>A tool's result that asks a person: the agent loop waits for the human-input event.</summary>
/// <param name="Question">What to ask.</param>
public sealed record HumanInputRequested(string Question);

/// <summary>JSON schemas for tool arguments.</summary>
public static class ToolSchemas
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict, // "times": "1; DROP TABLE" is not a number
    };

    /// <summary>The schema of <paramref name="type"/>: descriptions from [Description], additionalProperties false on objects.</summary>
    public static JsonElement For(Type type)
    {
        var exporter = new JsonSchemaExporterOptions
        {
            TreatNullObliviousAsNonNullable = true,
            TransformSchemaNode = static (context, node) =>
            {
                if (node is not JsonObject obj)
                {
                    return node;
                }

                var description = (context.PropertyInfo?.AttributeProvider ?? context.TypeInfo.Type)
                    .GetCustomAttributes(typeof(DescriptionAttribute), inherit: false).OfType<DescriptionAttribute>().FirstOrDefault()?.Description;
                if (description is not null)
                {
                    obj["description"] = description;
                }

                if (context.PropertyInfo is null && context.TypeInfo.Kind == JsonTypeInfoKind.Object && obj.ContainsKey("properties"))
                {
                    obj["additionalProperties"] = false;
                }

                return obj;
            },
        };
        var node = JsonSchemaExporter.GetJsonSchemaAsNode(Options, type, exporter);
        return JsonSerializer.SerializeToElement(node);
    }
}
