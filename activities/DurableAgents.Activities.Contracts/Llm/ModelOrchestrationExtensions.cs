using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using System.Text.Json.Serialization.Metadata;
using Microsoft.DurableTask;

namespace DurableAgents.Activities.Contracts.Llm;

/// <summary>Model calls from orchestrations: each is one retried, checkpointed <see cref="ActivityNames.CallModel"/> activity.</summary>
public static class ModelOrchestrationExtensions
{
    private static readonly JsonSerializerOptions SchemaOptions = new(JsonSerializerDefaults.Web)
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict,
    };

    /// <summary>
    /// Calls the model; a completed call is never made again on replay. When the profile's providers are at
    /// their rate limits, the activity hands back "retry after T" instead of holding its slot: this waits on a
    /// durable timer (visible in the custom status as <c>waitingForModelCapacity</c> and on the timeline) and calls again.
    /// </summary>
    public static async Task<ModelResponse> CallModelAsync(this TaskOrchestrationContext context, ModelRequest request, TaskOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(context);
#pragma warning disable CA2007 // orchestration code: the continuation must stay on the orchestration's scheduler
        while (true)
        {
            var response = await context.CallActivityAsync<ModelResponse>(ActivityNames.CallModel, request, options);
            if (response.RetryAfter is not { } wait)
            {
                return response;
            }

            var until = context.CurrentUtcDateTime + wait;
            context.SetCustomStatus(new { waitingForModelCapacity = new { provider = response.Provider, until } });
            await context.CreateTimer(until, CancellationToken.None);
        }
#pragma warning restore CA2007
    }

    /// <summary>
    /// Calls the model for a structured answer of type <typeparamref name="T"/>: the request carries
    /// <typeparamref name="T"/>'s JSON schema (unless it sets a narrower one of its own), the activity validates the answer against it (with one
    /// repair attempt, then escalation), and the result is read as <typeparamref name="T"/>.
    /// </summary>
    public static async Task<(T Value, ModelResponse Response)> CallModelAsync<T>(this TaskOrchestrationContext context, ModelRequest request, TaskOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var typed = request with { ResponseSchema = request.ResponseSchema ?? SchemaOf<T>(), ResponseSchemaName = request.ResponseSchemaName ?? typeof(T).Name };
#pragma warning disable CA2007 // orchestration code: the continuation must stay on the orchestration's scheduler
        var response = await CallModelAsync(context, typed, options);
#pragma warning restore CA2007
        var value = response.ReadJsonAs<T>() ?? throw new InvalidOperationException($"The model answered null for {typeof(T).Name}.");
        return (value, response);
    }

    /// <summary>The JSON schema the model's answer must match to be read as <typeparamref name="T"/>.</summary>
    public static JsonElement SchemaOf<T>()
    {
        JsonNode node = JsonSchemaExporter.GetJsonSchemaAsNode(SchemaOptions, typeof(T), new JsonSchemaExporterOptions { TreatNullObliviousAsNonNullable = true });
        return JsonSerializer.SerializeToElement(node);
    }

    /// <summary>True when the failure is a budget refusal: the call was not made, and retrying will not help.</summary>
    public static bool IsBudgetExceeded(this TaskFailedException exception) =>
        exception?.FailureDetails.HasErrorType(LlmErrorTypes.BudgetExceeded) == true;
}
