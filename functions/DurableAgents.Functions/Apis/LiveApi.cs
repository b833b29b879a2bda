using System.Globalization;
using System.Text.Json;
using DurableAgents.Activities.Contracts.Agents;
using DurableAgents.Activities.Live;
using DurableAgents.Functions.Hosting;
using DurableAgents.Functions.Http;
using DurableAgents.Orchestrations;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;

namespace DurableAgents.Functions.Apis;

/// <summary>Live agents: the resumable event stream of an instance, steering and interrupting, and the AG-UI endpoint.</summary>
internal static class LiveApi
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Behind a proxy that buffers whole responses (the Functions host, for a custom handler), a stream that never ends
    /// shows nothing: unless Live:ResponseWindow is set, GET stream responses there end after 1 s, and the client asks
    /// again after the last id it got. Elsewhere they are unbounded.
    /// </summary>
    public static void AddLiveApi(this IServiceCollection services) =>
        services.AddOptions<LiveStreamOptions>().PostConfigure<ApiKeyFilter>((o, keys) => o.ResponseWindow ??= keys.BehindFunctionsHost ? TimeSpan.FromSeconds(1) : TimeSpan.Zero);

    public static void MapLiveApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<Hosting.ApiKeyFilter>().WithTags("Live agents");
        api.MapGet("/instances/{instanceId}/stream", StreamAsync).WithName("StreamInstanceEvents")
            .WithSummary("Server-sent events: the instance's AG-UI events (tokens, reasoning, tool calls, steps, state), resumable after Last-Event-ID or ?after=.");
        api.MapPost("/instances/{instanceId}/steer", SteerAsync).WithName("SteerAgent").WithSummary("A person's message for a running agent, taken before its next model call.");
        api.MapPost("/instances/{instanceId}/interrupt", InterruptAsync).WithName("InterruptAgent").WithSummary("Cuts off the agent's model call in flight; the run stops, or goes on with the message.");
        api.MapPost("/agents/{workflow}/agui", AgUiRunAsync).WithName("AgUiRun").WithSummary("An AG-UI run: starts the agent workflow (continuing the thread's conversation) and streams its events.");
    }

    /// <summary>
    /// Streams the instance's events after the cursor (the <c>Last-Event-ID</c> header, else <c>?after=</c>, else from the
    /// start), each with its <c>id:</c>, until the run finishes or the client leaves. 404 for an unknown instance, 400 for a bad cursor.
    /// </summary>
    internal static async Task<IResult> StreamAsync(
        string instanceId, HttpContext http, DurableTaskClient client, IAgentEventLog log, IOptions<LiveStreamOptions> options, TimeProvider time, CancellationToken cancellationToken, string? after = null)
    {
        var cursorText = http.Request.Headers["Last-Event-ID"].FirstOrDefault() is { Length: > 0 } header ? header : after;
        long cursor = 0;
        if (cursorText is not null && (!long.TryParse(cursorText, NumberStyles.None, CultureInfo.InvariantCulture, out cursor)))
        {
            return Problems.BadRequest($"The stream cursor '{Truncate(cursorText)}' is not an event id: give the id of the last event you saw (a non-negative integer), in Last-Event-ID or ?after=.");
        }

        if (await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) is null)
        {
            return Problems.NotFound(instanceId);
        }

        await WriteEventsAsync(http, log, instanceId, cursor, client, options.Value, time, cancellationToken, window: options.Value.ResponseWindow ?? TimeSpan.Zero).ConfigureAwait(false);
        return TypedResults.Empty;
    }

    private static async Task WriteEventsAsync(
        HttpContext http, IAgentEventLog log, string instanceId, long cursor, DurableTaskClient client, LiveStreamOptions options, TimeProvider time, CancellationToken cancellationToken,
        Func<AgentStreamItem, bool>? include = null, TimeSpan window = default)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.WriteAsync(window > TimeSpan.Zero ? "retry: 500\n\n" : "retry: 1000\n\n", cancellationToken).ConfigureAwait(false);
        await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var item in AgentEventReader.ReadAsync(log, instanceId, cursor, ct => FinishedAsync(client, instanceId, ct), time, cancellationToken, options.KeepAlive, window).ConfigureAwait(false))
            {
                if (include is not null && !item.IsKeepAlive && !include(item))
                {
                    continue;
                }

                var frame = item.IsKeepAlive ? ": keep-alive\n\n" : item.Id is { } id ? $"id: {id.ToString(CultureInfo.InvariantCulture)}\ndata: {item.Json}\n\n" : $"data: {item.Json}\n\n";
                await http.Response.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
                await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // the client left
        }
    }

    private static async Task<bool> FinishedAsync(DurableTaskClient client, string instanceId, CancellationToken cancellationToken) =>
        await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) is not { IsCompleted: false };

    /// <summary>The body of steer and interrupt.</summary>
    /// <param name="Message">What the person says.</param>
    internal sealed record PersonMessage(string? Message);

    /// <summary>What steer and interrupt answer (202).</summary>
    /// <param name="InstanceId">The instance.</param>
    /// <param name="Event">The durable event raised.</param>
    internal sealed record Delivered(string InstanceId, string Event);

    private static async Task<Results<Accepted<Delivered>, ProblemHttpResult>> SteerAsync(
        string instanceId, HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken)
    {
        var (body, problem) = await ReadMessageAsync(request, required: true, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (await RunningAsync(client, instanceId, cancellationToken).ConfigureAwait(false) is { } notRunning)
        {
            return notRunning;
        }

        await AgentSteering.SteerAsync(client, instanceId, body!, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null, new Delivered(instanceId, AgentEvents.Steer));
    }

    private static async Task<Results<Accepted<Delivered>, ProblemHttpResult>> InterruptAsync(
        string instanceId, HttpRequest request, DurableTaskClient client, ModelInterrupts interrupts, CancellationToken cancellationToken)
    {
        var (body, problem) = await ReadMessageAsync(request, required: false, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        if (await RunningAsync(client, instanceId, cancellationToken).ConfigureAwait(false) is { } notRunning)
        {
            return notRunning;
        }

        await AgentSteering.InterruptAsync(client, interrupts, instanceId, body, cancellationToken).ConfigureAwait(false);
        return TypedResults.Accepted((string?)null, new Delivered(instanceId, AgentEvents.Interrupt));
    }

    private static async Task<ProblemHttpResult?> RunningAsync(DurableTaskClient client, string instanceId, CancellationToken cancellationToken)
    {
        var instance = await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false);
        if (instance is null)
        {
            return Problems.NotFound(instanceId);
        }

        return instance.IsCompleted
            ? TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: $"Instance '{instanceId}' has finished ({instance.RuntimeStatus}); there is no run to steer or interrupt.")
            : null;
    }

    /// <summary>Reads <c>{"message": "..."}</c>; the message is required for steer, optional for interrupt.</summary>
    private static async Task<(string? Message, ProblemHttpResult? Problem)> ReadMessageAsync(HttpRequest request, bool required, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBody.ReadAsync(request, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return (null, problem);
        }

        string? message = null;
        if (body is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty("message", out var m))
        {
            if (m.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                return (null, Problems.BadRequest("\"message\" must be a string."));
            }

            message = m.GetString();
        }
        else if (body is { } other && other.ValueKind != JsonValueKind.Object)
        {
            return (null, Problems.BadRequest("The body must be a JSON object: {\"message\": \"...\"}."));
        }

        if (AgentSteering.Check(message, required) is { } refusal)
        {
            return (null, Problems.BadRequest(refusal));
        }

        return (string.IsNullOrWhiteSpace(message) ? null : message, null);
    }

    /// <summary>
    /// An AG-UI run (<c>RunAgentInput</c>): instance <c>{threadId}:{runId}</c> of the workflow, asked the last user message
    /// and continuing the conversation of the thread's latest finished run; the response streams the run's events
    /// from <c>RUN_STARTED</c> to <c>RUN_FINISHED</c>/<c>RUN_ERROR</c>. 409 while another run of the thread is going.
    /// </summary>
    private static async Task<IResult> AgUiRunAsync(
        string workflow, HttpContext http, DurableTaskClient client, IAgentEventLog log, IOptions<LiveStreamOptions> options, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!string.Equals(workflow, nameof(AgentChat), StringComparison.OrdinalIgnoreCase))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"'{Truncate(workflow)}' is not an agent workflow with an AG-UI endpoint; use /api/agents/AgentChat/agui.");
        }

        var (body, problem) = await JsonBody.ReadAsync(http.Request, cancellationToken).ConfigureAwait(false);
        if (problem is not null)
        {
            return problem;
        }

        AgUiRunInput? input;
        try
        {
            input = body?.Deserialize<AgUiRunInput>(Web);
        }
        catch (JsonException ex)
        {
            return Problems.BadRequest($"The body is not an AG-UI RunAgentInput: {ex.Message}");
        }

        if (input is null || string.IsNullOrWhiteSpace(input.ThreadId) || string.IsNullOrWhiteSpace(input.RunId))
        {
            return Problems.BadRequest("An AG-UI run needs \"threadId\" and \"runId\".");
        }

        if (input.ThreadId.Contains(':', StringComparison.Ordinal) || input.ThreadId.Length > 100 || input.RunId.Length > 100)
        {
            return Problems.BadRequest("\"threadId\" must not contain ':' and ids are at most 100 characters.");
        }

        var last = input.Messages?.LastOrDefault(m => m.Role == "user");
        var message = last?.Content is { ValueKind: JsonValueKind.String } text ? text.GetString() : null;
        if (string.IsNullOrWhiteSpace(message))
        {
            return Problems.BadRequest("An AG-UI run needs a last \"user\" message with text content.");
        }

        // The thread's runs are instances "{threadId}:{runId}": continue the latest finished one's conversation.
        var prefix = input.ThreadId + ":";
        var runs = new List<OrchestrationMetadata>();
        await foreach (var run in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = prefix, FetchInputsAndOutputs = true }).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            runs.Add(run);
        }

        if (runs.FirstOrDefault(r => !r.IsCompleted) is { } going)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: $"Run '{going.InstanceId}' of this thread is still going: steer it with POST /api/instances/{going.InstanceId}/steer, or wait for it to finish.");
        }

        var previous = runs.Where(r => r.RuntimeStatus == OrchestrationRuntimeStatus.Completed).OrderByDescending(r => r.LastUpdatedAt).FirstOrDefault();
        var conversation = previous?.ReadOutputAs<AgentRunResult>()?.Conversation;
        var agent = input.ForwardedProps is { ValueKind: JsonValueKind.Object } props && props.TryGetProperty("agent", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "assistant";
        var instanceId = prefix + input.RunId;
        if (runs.Any(r => r.InstanceId == instanceId))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: $"Run '{input.RunId}' of this thread exists already; a new run needs a new runId.");
        }

        await client.ScheduleNewOrchestrationInstanceAsync(nameof(AgentChat), new AgentChatInput(message!, agent, Conversation: conversation), new Microsoft.DurableTask.StartOrchestrationOptions(instanceId), cancellationToken).ConfigureAwait(false);
        await WriteEventsAsync(http, log, instanceId, 0, client, options.Value, time, cancellationToken, new InputEcho().Include).ConfigureAwait(false); // not windowed: one response per run
        return TypedResults.Empty;
    }

    /// <summary>
    /// Leaves out the run's echo of the user message the AG-UI client sent (the first user text message of the first
    /// turn): the client has that message already, under its own id. Later user messages (steers) do go out.
    /// </summary>
    private sealed class InputEcho
    {
        private string? _echoId;
        private bool _passed;

        public bool Include(AgentStreamItem item)
        {
            if (_passed || item.Type is not ("TEXT_MESSAGE_START" or "TEXT_MESSAGE_CONTENT" or "TEXT_MESSAGE_END" or "TOOL_CALL_START" or "STEP_FINISHED"))
            {
                return true;
            }

            using var doc = JsonDocument.Parse(item.Json);
            var e = doc.RootElement;
            var id = e.TryGetProperty("messageId", out var m) ? m.GetString() : null;
            if (_echoId is null && item.Type == "TEXT_MESSAGE_START" && e.TryGetProperty("role", out var role) && role.GetString() == "user")
            {
                _echoId = id;
                return false;
            }

            if (_echoId is not null && id == _echoId)
            {
                _passed = item.Type == "TEXT_MESSAGE_END";
                return false;
            }

            _passed = item.Type is "TOOL_CALL_START" or "STEP_FINISHED" || (item.Type == "TEXT_MESSAGE_START" && _echoId is null);
            return true;
        }
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    /// <summary>The fields of AG-UI's RunAgentInput this endpoint reads.</summary>
    internal sealed record AgUiRunInput(string? ThreadId, string? RunId, IReadOnlyList<AgUiMessage>? Messages, JsonElement? ForwardedProps);

    /// <summary>An AG-UI message (only role and text content are read).</summary>
    internal sealed record AgUiMessage(string? Id, string? Role, JsonElement? Content);
}
