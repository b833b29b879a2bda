using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DurableAgents.Activities.Contracts.Llm;
using DurableAgents.Activities.Live;
using DurableAgents.Engine.Client;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.DurableTask.Client;

namespace DurableAgents.Activities.Llm;

/// <summary>Who is calling: the activity's instance, task and idempotency key.</summary>
/// <remarks>
/// <see cref="Run"/> tells executions of the same task apart: a task re-executed after a crash (its first
/// execution's result never committed) is billed again, and its attempts are recorded as a run of their own
/// instead of colliding with the first run's rows.
/// </remarks>
public sealed record ModelCallOrigin(string InstanceId, int TaskId, string TaskKey)
{
    /// <summary>This execution's id (new for every origin created; kept by <c>with</c> copies).</summary>
    public string Run { get; init; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
}

/// <summary>
/// Makes one model call for a CallModel activity: response cache, budget reservation, the profile's
/// fallback chain with per-provider resilience, structured-output validation with one repair and an
/// escalation, streaming, and accounting of every attempt.
/// </summary>
public sealed partial class ModelService(
    ModelClients clients,
    IModelLedger ledger,
    IModelResponseCache cache,
    LiveEvents live,
    ModelInterrupts interrupts,
    IWorkflowNames workflows,
    ModelHost host,
    ModelRateLimiter limiter,
    RateLimitWaits waits,
    IOptions<LlmOptions> options,
    TimeProvider time,
    ILogger<ModelService> logger)
{
    private static readonly JsonSerializerOptions KeyJson = new(JsonSerializerDefaults.Web);
    private readonly LlmOptions _options = options.Value;

    /// <summary>The profiles in effect: configured ones, or the simulator's "fast" and "strong".</summary>
    public static IReadOnlyDictionary<string, ModelProfileOptions> EffectiveProfiles(LlmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Profiles.Count > 0)
        {
            return options.Profiles;
        }

        return new Dictionary<string, ModelProfileOptions>(StringComparer.OrdinalIgnoreCase)
        {
            ["fast"] = new() { Providers = [new ModelProviderOptions { Name = "simulator", Kind = ModelProviderKind.Simulator }], EscalateTo = "strong" },
            ["strong"] = new() { Providers = [new ModelProviderOptions { Name = "simulator", Kind = ModelProviderKind.Simulator }] },
        };
    }

    /// <summary>Calls the model for <paramref name="origin"/>.</summary>
    /// <exception cref="ApplicationFailureException">Typed failures (<see cref="LlmErrorTypes"/>).</exception>
    public async Task<ModelResponse> CallAsync(ModelCallOrigin origin, ModelRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(origin);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Messages is not { Count: > 0 })
        {
            throw new ApplicationFailureException("A model request needs at least one message.", LlmErrorTypes.InvalidRequest, nonRetryable: true);
        }

        var profile = Profile(request.Profile);
        // One lookup of the instance: its workflow name (budgets, usage) and its tags (the rate-limit lane).
        var instance = await workflows.DescribeAsync(origin.InstanceId, cancellationToken).ConfigureAwait(false);
        var workflow = instance?.Name ?? "(unknown)";
        var records = new CallRecords();

        // 1. The cache: a hit costs nothing and makes no request.
        var (cacheKey, scope, skipped) = CachePlan(request);
        float[]? embedding = null;
        if (cacheKey is not null)
        {
            var hit = await cache.GetAsync(cacheKey, cancellationToken).ConfigureAwait(false);
            double? similarity = null;
            var hitKey = cacheKey;
            if (hit is null && request.Cache == ModelCacheMode.Semantic)
            {
                embedding = await EmbedPromptAsync(profile.Providers[0], request, cancellationToken).ConfigureAwait(false);
                if (embedding is not null && await cache.FindSimilarAsync(scope!, embedding, _options.Cache.SemanticThreshold, cancellationToken).ConfigureAwait(false) is { } similar)
                {
                    (hit, similarity, hitKey) = (similar.Response, similar.Similarity, similar.Key);
                }
            }

            if (hit is not null)
            {
                var kind = similarity is null ? "exact" : "semantic";
                records.Add(Record(origin, workflow, 1, hit.Profile, hit.Provider, hit.Model, "cache-hit", new ModelUsage(0, 0), 0, TimeSpan.Zero));
                await ledger.RecordAsync(records, cancellationToken).ConfigureAwait(false);
                LogCacheHit(logger, origin.InstanceId, kind, hitKey);
                return hit with { Usage = new ModelUsage(0, 0), Cost = 0, Attempts = 0, Cache = new ModelCacheInfo(true, kind, hitKey, similarity), Route = null };
            }
        }

        // 2. Earlier runs of this task that never settled are not coming back (this run replaces them):
        // on the books as interrupted, their estimates count against the budget below.
        await ledger.InterruptEarlierRunsAsync(origin.InstanceId, origin.TaskKey, RunKey(origin), cancellationToken).ConfigureAwait(false);

        // 3. The budget: reserve an estimate, or refuse before any request is sent.
        var budget = request.Budget ?? (_options.Budgets.TryGetValue(workflow, out var b) ? new ModelBudget(b.MaxTokens, b.MaxCost) : null);
        records.Priority = Priority(origin.InstanceId, workflow, instance?.Tags.GetValueOrDefault(PriorityTag), request, profile);
        records.Workflow = workflow;
        records.Waiter = new Lazy<string>(() => WaiterId(origin.InstanceId, request));
        var maxOutput = request.MaxOutputTokens ?? _options.DefaultMaxOutputTokens;
        if (budget is not null)
        {
            var estimateTokens = EstimateInputTokens(request) + maxOutput;
            var estimateCost = EstimateCost(request, profile, estimateTokens - maxOutput, maxOutput);
            var decision = await ledger.ReserveAsync(origin.InstanceId, origin.TaskKey, budget, estimateTokens, estimateCost, cancellationToken).ConfigureAwait(false);
            if (!decision.Allowed)
            {
                LogBudgetRefused(logger, origin.InstanceId, workflow, decision.UsedTokens, estimateTokens, budget.MaxTokens, decision.UsedCost, estimateCost, budget.MaxCost);
                records.Add(Record(origin, workflow, 1, request.Profile, profile.Providers[0].EffectiveName, profile.Providers[0].Model, RelationalModelLedger.BudgetRefused, new ModelUsage(0, 0), 0, TimeSpan.Zero));
                await ledger.RecordAsync(records, cancellationToken).ConfigureAwait(false);
                throw new ApplicationFailureException(
                    $"The call would exceed the budget of instance '{origin.InstanceId}': used {decision.UsedTokens} tokens / {decision.UsedCost} cost, this call needs up to {estimateTokens} tokens / {estimateCost} cost, budget {Show(budget.MaxTokens)} tokens / {Show(budget.MaxCost)} cost. The call was not made.",
                    LlmErrorTypes.BudgetExceeded,
                    nonRetryable: true);
            }
        }

        // 4. The call, through the profile's chain (and its escalation profile on invalid structured output).
        // An interruptible call (the agent loop's) is also cut off by an interrupt of its instance.
        ModelResponse? response = null;
        using var watch = request.Interruptible ? await interrupts.WatchAsync(origin.InstanceId, cancellationToken).ConfigureAwait(false) : null;
        try
        {
            response = await CallProfileAsync(origin, workflow, request.Profile, profile, request, maxOutput, records, escalated: false, watch?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (watch is { Interrupted: true } && !cancellationToken.IsCancellationRequested)
        {
            // Cut off by a person: what streamed so far is the answer; the attempt is on the books as interrupted.
            var last = records.LastOrDefault();
            LogInterrupted(logger, origin.InstanceId, origin.TaskId, records.Partial.Length);
            await live.EmitAsync(origin.InstanceId, AgUi.Custom(AgUi.CallInterrupted, new System.Text.Json.Nodes.JsonObject { ["taskId"] = origin.TaskId, ["characters"] = records.Partial.Length }, live.Now), CancellationToken.None).ConfigureAwait(false);
            response = new ModelResponse
            {
                Text = records.Partial.ToString(),
                Profile = request.Profile,
                Provider = last?.Provider ?? profile.Providers[0].EffectiveName,
                Model = last?.Model ?? profile.Providers[0].Model,
                Usage = new ModelUsage(0, 0),
                Cache = new ModelCacheInfo(false, null, cacheKey, null, skipped),
                Interrupted = true,
            };
        }
        catch (ModelCapacityException wait)
        {
            // Every provider is at its rate limit: no call was made. Hand back "retry after" so the
            // orchestration waits on a durable timer instead of this activity holding its slot.
            LogCapacityWait(logger, origin.InstanceId, wait.Provider, (long)wait.RetryAfter.TotalMilliseconds);
            var lane = new KeyValuePair<string, object?>("lane", records.Priority.ToString().ToLowerInvariant());
            ModelRateMetrics.Waits.Add(1, new KeyValuePair<string, object?>("deployment", wait.Provider), lane, new KeyValuePair<string, object?>("kind", "durable"));
            ModelRateMetrics.WaitTime.Record(wait.RetryAfter.TotalMilliseconds, new KeyValuePair<string, object?>("deployment", wait.Provider), lane, new KeyValuePair<string, object?>("kind", "durable"));
            return new ModelResponse
            {
                Profile = request.Profile,
                Provider = wait.Provider,
                Model = wait.Model,
                Usage = new ModelUsage(0, 0),
                Cache = new ModelCacheInfo(false, null, cacheKey, null, skipped),
                RetryAfter = wait.RetryAfter,
            };
        }
        finally
        {
            await ledger.RecordAsync(records, CancellationToken.None).ConfigureAwait(false);
            if (budget is not null)
            {
                await ledger.SettleAsync(
                    origin.InstanceId,
                    origin.TaskKey,
                    records.Sum(r => r.InputTokens + r.OutputTokens),
                    records.Sum(r => r.Cost),
                    CancellationToken.None).ConfigureAwait(false);
            }
        }

        response = response with
        {
            Cost = records.Sum(r => r.Cost),
            Attempts = records.Count,
            Cache = new ModelCacheInfo(false, null, cacheKey, null, skipped),
        };

        await EmitUsageAsync(origin, response).ConfigureAwait(false);
        if (cacheKey is not null && response.ToolCalls.Count == 0 && !response.Interrupted)
        {
            if (request.Cache == ModelCacheMode.Semantic)
            {
                embedding ??= await EmbedPromptAsync(profile.Providers[0], request, cancellationToken).ConfigureAwait(false);
            }

            await cache.SetAsync(cacheKey, response, scope!, embedding, cancellationToken).ConfigureAwait(false);
        }

        return response;
    }

    /// <summary>Embeds texts with the profile's first provider that has an embedding model.</summary>
    public async Task<EmbeddingResponse> EmbedAsync(EmbeddingRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var profile = Profile(request.Profile);
        Exception? last = null;
        foreach (var provider in profile.Providers.Where(p => p.Kind == ModelProviderKind.Simulator || !string.IsNullOrWhiteSpace(p.EmbeddingModel)))
        {
            try
            {
                var generated = await clients.Embeddings(provider).GenerateAsync(request.Texts, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new EmbeddingResponse(
                    generated.Select(e => e.Vector.ToArray()).ToList(),
                    generated.FirstOrDefault()?.ModelId ?? provider.EmbeddingModel ?? provider.Model,
                    generated.Usage?.InputTokenCount ?? 0,
                    provider.Kind == ModelProviderKind.Simulator);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                last = ModelErrors.Classify(ex, provider.EffectiveName);
                if (((ApplicationFailureException)last).ErrorType == LlmErrorTypes.ContentFiltered)
                {
                    throw last;
                }
            }
        }

        throw last ?? new ApplicationFailureException($"Profile '{request.Profile}' has no provider with an EmbeddingModel.", LlmErrorTypes.InvalidRequest, nonRetryable: true);
    }

    private async Task<ModelResponse> CallProfileAsync(
        ModelCallOrigin origin, string workflow, string profileName, ModelProfileOptions profile, ModelRequest request, int maxOutput,
        CallRecords records, bool escalated, CancellationToken cancellationToken)
    {
        var messages = request.Messages.Select(ToChatMessage).ToList();
        var chatOptions = new ChatOptions
        {
            MaxOutputTokens = maxOutput,
            Temperature = request.Temperature,
            Tools = request.Tools?.Select(t => (AITool)AIFunctionFactory.CreateDeclaration(t.Name, t.Description, t.ParametersSchema)).ToList(),
            ResponseFormat = request.ResponseSchema is { } schema ? ChatResponseFormat.ForJsonSchema(schema, request.ResponseSchemaName ?? "answer") : null,
        };

        var inputEstimate = EstimateInputTokens(request);
        ApplicationFailureException? lastError = null;
        ModelCapacityException? capacity = null;
        string? route = escalated ? $"escalated to '{profileName}'" : null;
        for (var i = 0; i < profile.Providers.Count; i++)
        {
            var provider = profile.Providers[i];
            if (i > 0)
            {
                route = (route is null ? string.Empty : route + "; ") + $"fallback to '{provider.EffectiveName}' after {lastError!.ErrorType}";
                LogFallback(logger, origin.InstanceId, profile.Providers[i - 1].EffectiveName, provider.EffectiveName, lastError.ErrorType);
            }

            // The deployment's rate limits: reserve the estimate first, or move on (and wait if all are full).
            var limits = ModelLimits.Of(provider);
            CapacityDecision? lease = null;
            if (limits is not null)
            {
                lease = await AcquireAsync(origin, provider, limits, inputEstimate + maxOutput, records, cancellationToken).ConfigureAwait(false);
                if (!lease.Granted)
                {
                    capacity = capacity is { } c && c.RetryAfter <= lease.RetryAfter ? c : new ModelCapacityException(provider.EffectiveName, provider.Model, lease.RetryAfter);
                    route = (route is null ? string.Empty : route + "; ") + $"'{provider.EffectiveName}' at its rate limit";
                    continue;
                }
            }

            var recordsBefore = records.Count;
            try
            {
                var chat = await SendAsync(origin, workflow, profileName, provider, messages, chatOptions, request.Stream, inputEstimate, records, cancellationToken).ConfigureAwait(false);
                var result = ToResponse(profileName, provider, chat, route);
                if (request.ResponseSchema is not { } responseSchema || result.ToolCalls.Count > 0)
                {
                    return result;
                }

                var (json, errors) = await StructuredOutput.ValidateAsync(result.Text, responseSchema, cancellationToken).ConfigureAwait(false);
                if (json is null)
                {
                    // One repair attempt, same provider, told what was wrong.
                    LogRepair(logger, origin.InstanceId, provider.EffectiveName, errors!);
                    var repair = new List<ChatMessage>(messages)
                    {
                        new(ChatRole.Assistant, result.Text ?? string.Empty),
                        new(ChatRole.User, $"Your answer did not match the required JSON schema: {errors}. Answer again with only the corrected JSON."),
                    };
                    chat = await SendAsync(origin, workflow, profileName, provider, repair, chatOptions, request.Stream, inputEstimate + ((result.Text?.Length ?? 0) / 4) + 32, records, cancellationToken).ConfigureAwait(false);
                    result = ToResponse(profileName, provider, chat, (route is null ? string.Empty : route + "; ") + "repaired");
                    (json, errors) = await StructuredOutput.ValidateAsync(result.Text, responseSchema, cancellationToken).ConfigureAwait(false);
                }

                if (json is not null)
                {
                    return result with { Json = json };
                }

                if (!escalated && request.EscalateOnValidationFailure && profile.EscalateTo is { } next && !string.Equals(next, profileName, StringComparison.OrdinalIgnoreCase))
                {
                    LogEscalation(logger, origin.InstanceId, profileName, next);
                    return await CallProfileAsync(origin, workflow, next, Profile(next), request, maxOutput, records, escalated: true, cancellationToken).ConfigureAwait(false);
                }

                throw new ApplicationFailureException(
                    $"The answer of '{provider.EffectiveName}' did not match the response schema after a repair attempt: {errors}",
                    LlmErrorTypes.InvalidStructuredOutput,
                    nonRetryable: true);
            }
            catch (Exception ex) when (ex is not ModelCapacityException && (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
            {
                var error = ModelErrors.Classify(ex, provider.EffectiveName);
                if (provider.BackgroundResponses && error.ErrorType == LlmErrorTypes.InvalidRequest)
                {
                    error = new ApplicationFailureException(
                        error.Message + " The call was a background response (BackgroundResponses=true on this provider entry); if the provider does not implement background responses, turn the option off for it.",
                        error.ErrorType,
                        nonRetryable: true,
                        innerException: error.InnerException);
                }
                if (error.ErrorType is LlmErrorTypes.ContentFiltered or LlmErrorTypes.InvalidStructuredOutput or LlmErrorTypes.UnknownProfile)
                {
                    throw error;
                }

                lastError = error;
            }
            finally
            {
                if (lease is { Granted: true })
                {
                    var sent = records.Skip(recordsBefore).ToList();
                    var used = sent.Sum(r => r.InputTokens + r.OutputTokens);
                    await limiter.ReleaseAsync(provider.DeploymentKey, limits!, lease, used, CancellationToken.None, extraRequests: Math.Max(0, sent.Count - 1)).ConfigureAwait(false);
                    ModelRateMetrics.Used.Add(used, new KeyValuePair<string, object?>("deployment", provider.EffectiveName));
                    var http = records.LastHttp;
                    var throttled = http.LastOrDefault(a => a.StatusCode == 429);
                    if (throttled is not null)
                    {
                        ModelRateMetrics.Throttled.Add(1, new KeyValuePair<string, object?>("deployment", provider.EffectiveName));
                    }

                    var last = http.LastOrDefault(a => a.StatusCode is >= 200 and < 300);
                    await limiter.ObserveAsync(provider.DeploymentKey, limits!, last?.RemainingRequests, last?.RemainingTokens, last is null ? throttled?.RetryAfter : null, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }

        throw (Exception?)capacity ?? lastError!;
    }

    /// <summary>The call's lane: the request's, the instance's <c>priority</c> tag, the workflow's configured one, else interactive (it matters only when a provider has limits).</summary>
    private ModelPriority Priority(string instanceId, string workflow, string? tag, ModelRequest request, ModelProfileOptions profile)
    {
        if (request.Priority is { } asked)
        {
            return asked;
        }

        if (profile.Providers.All(p => ModelLimits.Of(p) is null))
        {
            return ModelPriority.Interactive;
        }

        if (tag is not null)
        {
            if (Enum.TryParse<ModelPriority>(tag, ignoreCase: true, out var tagged) && Enum.IsDefined(tagged))
            {
                return tagged;
            }

            LogUnknownPriority(logger, instanceId, tag);
        }

        return _options.Priorities.TryGetValue(workflow, out var configured) ? configured : ModelPriority.Interactive;
    }

    /// <summary>The instance tag that sets a workflow's lane at start (<c>interactive</c> or <c>batch</c>).</summary>
    public const string PriorityTag = "priority";

    /// <summary>Capacity for one call, waiting inside the activity up to <see cref="LlmOptions.RateLimitInlineWait"/>.</summary>
    private async Task<CapacityDecision> AcquireAsync(ModelCallOrigin origin, ModelProviderOptions provider, ModelLimits limits, long tokens, CallRecords records, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var priority = records.Priority;
        while (true)
        {
            var decision = await limiter.TryAcquireAsync(provider.DeploymentKey, limits, tokens, priority, records.Waiter.Value, cancellationToken).ConfigureAwait(false);
            var left = _options.RateLimitInlineWait - time.GetElapsedTime(started);
            if (decision.Granted || decision.RetryAfter > left)
            {
                var tags = new KeyValuePair<string, object?>("deployment", provider.EffectiveName);
                var lane = new KeyValuePair<string, object?>("lane", priority.ToString().ToLowerInvariant());
                if (decision.Granted)
                {
                    ModelRateMetrics.Reserved.Add(decision.Reserved, tags);
                    if (time.GetElapsedTime(started) is { Ticks: > 0 } waited && waited >= TimeSpan.FromMilliseconds(1))
                    {
                        ModelRateMetrics.Waits.Add(1, tags, lane, new KeyValuePair<string, object?>("kind", "inline"));
                        ModelRateMetrics.WaitTime.Record(waited.TotalMilliseconds, tags, lane, new KeyValuePair<string, object?>("kind", "inline"));
                    }

                    // From its first refusal (maybe several durable waits ago) to now: who waited, and how long.
                    if (decision.Waited > TimeSpan.Zero)
                    {
                        ModelRateMetrics.WaitTime.Record(decision.Waited.TotalMilliseconds, tags, lane, new KeyValuePair<string, object?>("kind", "total"));
                        try
                        {
                            // Not cancelled midway, and never failing the call: the grant is held and must reach its release.
                            await waits.RecordAsync(provider.EffectiveName, origin.InstanceId, records.Workflow, priority, decision.Waited, CancellationToken.None).ConfigureAwait(false);
                        }
                        catch (System.Data.Common.DbException ex)
                        {
                            LogWaitNotRecorded(logger, origin.InstanceId, ex.GetType().Name);
                        }
                    }
                }

                return decision;
            }

            await Task.Delay(decision.RetryAfter, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Who waits at a deployment: the instance and the request, the same when the workflow asks again after a durable wait.</summary>
    private static string WaiterId(string instanceId, ModelRequest request) =>
        instanceId + ":" + Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(new { request.Profile, request.Messages }, KeyJson)))[..16];

    private async Task<ChatResponse> SendAsync(
        ModelCallOrigin origin, string workflow, string profileName, ModelProviderOptions provider, List<ChatMessage> messages, ChatOptions chatOptions,
        bool stream, long inputEstimate, CallRecords records, CancellationToken cancellationToken)
    {
        var client = clients.Chat(provider);
        var started = time.GetTimestamp();

        // Each HTTP attempt is written ahead (in-flight, with the estimate) before it leaves; the finally
        // below settles the same rows (same numbers) with what happened.
        var first = records.Count + 1;
        var estimateTokens = inputEstimate + (chatOptions.MaxOutputTokens ?? 0);
        var estimateCost = Price(provider.Model, provider)?.CostOf(inputEstimate, chatOptions.MaxOutputTokens ?? 0) ?? 0m;
        using var scope = ModelAttemptScope.Begin((i, ct) => ledger.BeginAttemptAsync(
            Record(origin, workflow, first + i, profileName, provider.EffectiveName, provider.Model, RelationalModelLedger.InFlight, new ModelUsage(0, 0), 0m, TimeSpan.Zero) with { EstimatedTokens = estimateTokens, EstimatedCost = estimateCost },
            ct));
        ChatResponse? response = null;
        ModelAttemptRecord? resumedFrom = null;
        Exception? failure = null;
        try
        {
            if (_options.LogContent && logger.IsEnabled(LogLevel.Information))
            {
                var prompt = string.Join("\n", messages.Select(m => $"{m.Role}: {m.Text}"));
                LogPrompt(logger, origin.InstanceId, provider.EffectiveName, prompt);
            }

            if (provider.BackgroundResponses)
            {
                (response, resumedFrom) = await BackgroundAsync(origin, workflow, profileName, provider, client, messages, chatOptions, stream, records.NextStep(), first, scope, records.Partial, cancellationToken).ConfigureAwait(false);
                if (!stream)
                {
                    await EmitWholeAsync(origin, response, cancellationToken).ConfigureAwait(false);
                }
            }
            else if (stream)
            {
                response = await StreamAsync(origin, client.GetStreamingResponseAsync(messages, chatOptions, cancellationToken), null, records.Partial, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                response = await client.GetResponseAsync(messages, chatOptions, cancellationToken).ConfigureAwait(false);
                await EmitWholeAsync(origin, response, cancellationToken).ConfigureAwait(false);
            }

            await EmitToolCallsAsync(origin, response, cancellationToken).ConfigureAwait(false);

            if (response.FinishReason == ChatFinishReason.ContentFilter)
            {
                throw ModelErrors.ContentFiltered(provider.EffectiveName);
            }

            if (_options.LogContent)
            {
                LogCompletion(logger, origin.InstanceId, provider.EffectiveName, response.Text);
            }

            return response;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Typed here, where the last Retry-After is known: it becomes the error's next retry delay.
            failure = ex;
            throw ModelErrors.Classify(ex, provider.EffectiveName, scope.Attempts.LastOrDefault(a => a.StatusCode is not (>= 200 and < 300))?.RetryAfter);
        }
        finally
        {
            var http = scope.Attempts;
            records.LastHttp = http;
            var usage = new ModelUsage(response?.Usage?.InputTokenCount ?? 0, response?.Usage?.OutputTokenCount ?? 0);
            var model = response?.ModelId ?? provider.Model;
            var cost = Price(model, provider)?.CostOf(usage.InputTokens, usage.OutputTokens) ?? 0m;
            if (resumedFrom is not null)
            {
                // A resumed background response: its generation is the earlier run's attempt, settled now
                // (in place, so the ledger keeps one row per generation the provider started).
                // If that run had settled it already (its result was lost before it committed), it is counted: add nothing.
                var settledBefore = resumedFrom.Outcome is not (RelationalModelLedger.InFlight or RelationalModelLedger.Interrupted);
                records.Add(resumedFrom with
                {
                    Outcome = failure is null ? "ok" : ModelErrors.Classify(failure, provider.EffectiveName).ErrorType,
                    Model = model,
                    InputTokens = settledBefore ? 0 : usage.InputTokens,
                    OutputTokens = settledBefore ? 0 : usage.OutputTokens,
                    Cost = settledBefore ? 0m : cost,
                    LatencyMs = (long)time.GetElapsedTime(started).TotalMilliseconds,
                });
            }
            else if (http.Count == 0)
            {
                // No HTTP (the simulator, or a call refused before sending, e.g. an open circuit).
                // Cancelled midway (an interrupt, a shutdown): no answer and no error.
                var outcome = failure is null ? (response is null ? RelationalModelLedger.Interrupted : "ok") : ModelErrors.Classify(failure, provider.EffectiveName).ErrorType;
                records.Add(Record(origin, workflow, records.Count + 1, profileName, provider.EffectiveName, model, outcome, usage, cost, time.GetElapsedTime(started)));
            }
            else
            {
                for (var i = 0; i < http.Count; i++)
                {
                    var a = http[i];
                    var ok = a.StatusCode is >= 200 and < 300;
                    var billed = ok && i == http.Count - 1 && failure is null;

                    // Accepted, then abandoned before the answer was read (cancelled: shutdown, lost lease): maybe billed, usage unknown.
                    // Or cut off before the answer's headers came (an interrupt): the request left, it may be billed.
                    var abandoned = (billed && response is null) || (i == http.Count - 1 && failure is null && response is null);
                    var outcome = abandoned ? RelationalModelLedger.Interrupted
                        : ok ? (failure is null ? "ok" : ModelErrors.Classify(failure, provider.EffectiveName).ErrorType)
                        : a.Error ?? "failed";
                    records.Add(Record(origin, workflow, records.Count + 1, profileName, provider.EffectiveName, billed ? model : provider.Model, outcome, billed ? usage : new ModelUsage(0, 0), billed ? cost : 0m, a.Latency));
                }
            }

            if (failure is null)
            {
                var latencyMs = (long)time.GetElapsedTime(started).TotalMilliseconds;
                LogCall(logger, origin.InstanceId, profileName, provider.EffectiveName, model, usage.InputTokens, usage.OutputTokens, latencyMs, http.Count);
            }
        }
    }

    /// <summary>
    /// A call in background mode. If an earlier run of this task recorded a background response for this
    /// step, it is resumed (polled, or its stream resumed) and no new generation starts; when the provider
    /// no longer has it (expired, deleted, cancelled, failed) a fresh one starts and is recorded as such.
    /// A fresh one's continuation token is recorded on its ledger row as soon as the provider accepts it.
    /// </summary>
    private async Task<(ChatResponse Response, ModelAttemptRecord? ResumedFrom)> BackgroundAsync(
        ModelCallOrigin origin, string workflowName, string profileName, ModelProviderOptions provider, IChatClient client, List<ChatMessage> messages, ChatOptions chatOptions, bool stream, int step,
        int firstAttempt, ModelAttemptScope scope, System.Text.StringBuilder partial, CancellationToken cancellationToken)
    {
        if (await ledger.FindResponseAsync(origin.InstanceId, origin.TaskKey, step, cancellationToken).ConfigureAwait(false) is { ResponseId: { } stored } earlier
            && BackgroundToken.Parse(stored) is { } token)
        {
            var responseId = BackgroundToken.ResponseId(token);
            try
            {
                var resumed = stream
                    ? await StreamAsync(origin, client.GetStreamingResponseAsync([], new ChatOptions { ContinuationToken = token }, cancellationToken), null, partial, cancellationToken).ConfigureAwait(false)
                    : await PollAsync(client, await client.GetResponseAsync([], new ChatOptions { ContinuationToken = token }, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                if (BackgroundStatus(resumed) is { } ended)
                {
                    LogResumeFailed(logger, origin.InstanceId, responseId, ended);
                }
                else
                {
                    LogResumed(logger, origin.InstanceId, responseId, earlier.TaskKey);
                    return (resumed, earlier);
                }
            }
            catch (Exception ex) when (ex is System.ClientModel.ClientResultException { Status: 404 } or BackgroundResponseNotFoundException)
            {
                LogResumeFailed(logger, origin.InstanceId, responseId, "not found (expired or deleted)");
            }
        }

        // A fresh generation: record its token on its row the moment the provider accepts it.
        var options = chatOptions.Clone();
        options.AllowBackgroundResponses = true;
        var recorded = false;
        async Task RecordTokenAsync(ResponseContinuationToken t)
        {
            if (!recorded)
            {
                recorded = true;
                if (scope.Sent == 0)
                {
                    // No HTTP (the simulator): write its row ahead here, so the token has a row to live on.
                    await ledger.BeginAttemptAsync(Record(origin, workflowName, firstAttempt, profileName, provider.EffectiveName, provider.Model, RelationalModelLedger.InFlight, new ModelUsage(0, 0), 0m, TimeSpan.Zero), cancellationToken).ConfigureAwait(false);
                }

                await ledger.SetResponseIdAsync(origin.InstanceId, RunKey(origin), firstAttempt + Math.Max(scope.Sent, 1) - 1, BackgroundToken.Format(step, t), cancellationToken).ConfigureAwait(false);
            }
        }

        ChatResponse response;
        if (stream)
        {
            response = await StreamAsync(origin, client.GetStreamingResponseAsync(messages, options, cancellationToken), u => u.ContinuationToken is { } t ? RecordTokenAsync(t) : Task.CompletedTask, partial, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var accepted = await client.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
            if (accepted.ContinuationToken is { } t)
            {
                await RecordTokenAsync(t).ConfigureAwait(false);
            }

            response = await PollAsync(client, accepted, cancellationToken).ConfigureAwait(false);
        }

        if (BackgroundStatus(response) is { } status)
        {
            throw new ApplicationFailureException($"Provider '{provider.EffectiveName}' ended background response {response.ResponseId} as {status}; the call may be retried (a retry starts a new generation, recorded as its own attempt).", LlmErrorTypes.Transient);
        }

        return (response, null);
    }

    /// <summary>Polls a background response until it is no longer queued or in progress.</summary>
    private async Task<ChatResponse> PollAsync(IChatClient client, ChatResponse response, CancellationToken cancellationToken)
    {
        while (response.ContinuationToken is { } token)
        {
            await Task.Delay(_options.BackgroundPollInterval, time, cancellationToken).ConfigureAwait(false);
            response = await client.GetResponseAsync([], new ChatOptions { ContinuationToken = token }, cancellationToken).ConfigureAwait(false);
        }

        return response;
    }

    /// <summary>"cancelled", "failed" or "incomplete" when a background response ended without an answer; null when it completed.</summary>
    private static string? BackgroundStatus(ChatResponse response) =>
#pragma warning disable OPENAI001
        response.RawRepresentation is OpenAI.Responses.ResponseResult { Status: { } status } && status != OpenAI.Responses.ResponseStatus.Completed
            ? status.ToString().ToLowerInvariant()
            : null;
#pragma warning restore OPENAI001

    /// <summary>
    /// Reads a stream, putting its text and reasoning on the instance's live stream as they arrive (and into
    /// <paramref name="partial"/>, the answer so far if the call is cut off); <paramref name="onUpdate"/> sees every update first.
    /// </summary>
    private async Task<ChatResponse> StreamAsync(ModelCallOrigin origin, IAsyncEnumerable<ChatResponseUpdate> source, Func<ChatResponseUpdate, Task>? onUpdate, System.Text.StringBuilder partial, CancellationToken cancellationToken)
    {
        var updates = new List<ChatResponseUpdate>();
        var id = MessageId(origin);
        var text = live.Text(origin.InstanceId, id);
        var reasoning = live.Reasoning(origin.InstanceId, id + ":reasoning");
        partial.Clear();
        try
        {
            await foreach (var update in source.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                if (onUpdate is not null)
                {
                    await onUpdate(update).ConfigureAwait(false);
                }

                updates.Add(update);
                foreach (var thought in update.Contents.OfType<TextReasoningContent>())
                {
                    await reasoning.WriteAsync(thought.Text, cancellationToken).ConfigureAwait(false);
                }

                if (!string.IsNullOrEmpty(update.Text))
                {
                    await reasoning.EndAsync().ConfigureAwait(false);
                    partial.Append(update.Text);
                    await text.WriteAsync(update.Text, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            // A started message always gets its end, also when the call is cut off.
            await reasoning.EndAsync().ConfigureAwait(false);
            await text.EndAsync().ConfigureAwait(false);
        }

        var response = updates.ToChatResponse();
        response.ContinuationToken = null; // the stream ended: nothing left to resume
        return response;
    }

    /// <summary>A live-stream message id for one request of a call: unique per execution of the task.</summary>
    private static string MessageId(ModelCallOrigin origin) => $"{origin.TaskId}-{origin.Run}-{Interlocked.Increment(ref _messages)}";

    private static long _messages;

    /// <summary>A non-streamed answer's reasoning and text, as one piece each.</summary>
    private async Task EmitWholeAsync(ModelCallOrigin origin, ChatResponse response, CancellationToken cancellationToken)
    {
        var id = MessageId(origin);
        var thoughts = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Select(r => r.Text));
        if (thoughts.Length > 0)
        {
            var reasoning = live.Reasoning(origin.InstanceId, id + ":reasoning");
            await reasoning.WriteAsync(thoughts, cancellationToken).ConfigureAwait(false);
            await reasoning.EndAsync().ConfigureAwait(false);
        }

        var text = live.Text(origin.InstanceId, id);
        await text.WriteAsync(response.Text, cancellationToken).ConfigureAwait(false);
        await text.EndAsync().ConfigureAwait(false);
    }

    /// <summary>The tool calls the model asked for: start, arguments, end (their results follow from the tool activities).</summary>
    private async Task EmitToolCallsAsync(ModelCallOrigin origin, ChatResponse response, CancellationToken cancellationToken)
    {
        foreach (var call in response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>())
        {
            var now = live.Now;
            await live.EmitAsync(origin.InstanceId, AgUi.ToolCallStart(call.CallId, call.Name, null, now), cancellationToken).ConfigureAwait(false);
            await live.EmitAsync(origin.InstanceId, AgUi.ToolCallArgs(call.CallId, JsonSerializer.Serialize(call.Arguments ?? new Dictionary<string, object?>(), LlmJson.Options), now), cancellationToken).ConfigureAwait(false);
            await live.EmitAsync(origin.InstanceId, AgUi.ToolCallEnd(call.CallId, now), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The call's usage, as a CUSTOM event (AG-UI carries usage per run; this is per call).</summary>
    private Task EmitUsageAsync(ModelCallOrigin origin, ModelResponse response) =>
        live.EmitAsync(origin.InstanceId, AgUi.Custom(AgUi.Usage, new System.Text.Json.Nodes.JsonObject
        {
            ["taskId"] = origin.TaskId,
            ["provider"] = response.Provider,
            ["model"] = response.Model,
            ["inputTokens"] = response.Usage.InputTokens,
            ["outputTokens"] = response.Usage.OutputTokens,
            ["totalTokens"] = response.Usage.TotalTokens,
            ["cost"] = response.Cost,
            ["interrupted"] = response.Interrupted,
        }, live.Now), CancellationToken.None);

    private static ModelResponse ToResponse(string profileName, ModelProviderOptions provider, ChatResponse chat, string? route)
    {
        var calls = chat.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>()
            .Select(c => new ModelToolCall(c.CallId, c.Name, JsonSerializer.Serialize(c.Arguments ?? new Dictionary<string, object?>(), LlmJson.Options), c.Exception?.Message))
            .ToList();
        return new ModelResponse
        {
            Text = chat.Text,
            ToolCalls = calls,
            Profile = profileName,
            Provider = provider.EffectiveName,
            Model = chat.ModelId ?? provider.Model,
            Usage = new ModelUsage(chat.Usage?.InputTokenCount ?? 0, chat.Usage?.OutputTokenCount ?? 0),
            Cache = new ModelCacheInfo(false, null, null),
            Simulated = provider.Kind == ModelProviderKind.Simulator,
            Route = route,
        };
    }

    private static ChatMessage ToChatMessage(ModelMessage m)
    {
        var role = m.Role switch
        {
            ChatRoles.System => ChatRole.System,
            ChatRoles.User => ChatRole.User,
            ChatRoles.Assistant => ChatRole.Assistant,
            ChatRoles.Tool => ChatRole.Tool,
            _ => throw new ApplicationFailureException($"Unknown message role '{m.Role}'; use system, user, assistant or tool.", LlmErrorTypes.InvalidRequest, nonRetryable: true),
        };
        var contents = new List<AIContent>();
        if (role == ChatRole.Tool)
        {
            contents.Add(new FunctionResultContent(m.ToolCallId ?? throw new ApplicationFailureException("A tool message needs ToolCallId.", LlmErrorTypes.InvalidRequest, nonRetryable: true), m.Text));
        }
        else if (!string.IsNullOrEmpty(m.Text))
        {
            contents.Add(new TextContent(m.Text));
        }

        foreach (var call in m.ToolCalls ?? [])
        {
            var args = string.IsNullOrWhiteSpace(call.ArgumentsJson)
                ? new Dictionary<string, object?>()
                : JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(call.ArgumentsJson)!.ToDictionary(p => p.Key, p => (object?)p.Value);
            contents.Add(new FunctionCallContent(call.Id, call.Name, args));
        }

        return new ChatMessage(role, contents);
    }

    private ModelProfileOptions Profile(string name)
    {
        var profiles = EffectiveProfiles(_options);
        return profiles.TryGetValue(name, out var p) && p.Providers.Count > 0
            ? p
            : throw new ApplicationFailureException(
                $"No model profile '{name}' is configured (DurableAgents:Llm:Profiles); configured: {string.Join(", ", profiles.Keys)}.",
                LlmErrorTypes.UnknownProfile,
                nonRetryable: true);
    }

    /// <summary>The exact key and semantic scope of a cacheable request, or why it is not cacheable.</summary>
    private (string? Key, string? Scope, string? Skipped) CachePlan(ModelRequest request)
    {
        if (!_options.Cache.Enabled)
        {
            return (null, null, "cache disabled");
        }

        if (request.Cache == ModelCacheMode.None)
        {
            return (null, null, "request opted out");
        }

        if (request.Tools?.Any(t => t.HasSideEffects) == true)
        {
            return (null, null, "tools with side effects");
        }

        var maxOutput = request.MaxOutputTokens ?? _options.DefaultMaxOutputTokens;
        var key = Sha256(JsonSerializer.Serialize(new { p = request.Profile.ToUpperInvariant(), m = request.Messages, t = request.Tools, s = request.ResponseSchema, o = maxOutput, request.Temperature }, KeyJson));
        var scope = Sha256(JsonSerializer.Serialize(new { p = request.Profile.ToUpperInvariant(), sys = request.Messages.Where(m => m.Role == ChatRoles.System), t = request.Tools, s = request.ResponseSchema }, KeyJson));
        return (key, scope, null);
    }

    private async Task<float[]?> EmbedPromptAsync(ModelProviderOptions provider, ModelRequest request, CancellationToken cancellationToken)
    {
        if (provider.Kind != ModelProviderKind.Simulator && string.IsNullOrWhiteSpace(provider.EmbeddingModel))
        {
            return null;
        }

        var text = string.Join("\n", request.Messages.Where(m => m.Role != ChatRoles.System).Select(m => m.Text));
        try
        {
            var vectors = await clients.Embeddings(provider).GenerateAsync([text], cancellationToken: cancellationToken).ConfigureAwait(false);
            return vectors[0].Vector.ToArray();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogSemanticUnavailable(logger, provider.EffectiveName, ex.GetType().Name);
            return null;
        }
    }

    private static long EstimateInputTokens(ModelRequest request)
    {
        var chars = request.Messages.Sum(m => (m.Text?.Length ?? 0) + (m.ToolCalls?.Sum(c => c.ArgumentsJson.Length + c.Name.Length) ?? 0) + 16)
            + (request.Tools?.Sum(t => t.Name.Length + t.Description.Length + t.ParametersSchema.GetRawText().Length) ?? 0)
            + (request.ResponseSchema?.GetRawText().Length ?? 0);
        return (chars + 3) / 4;
    }

    /// <summary>The estimate at the dearest model the call could end up on (chain and escalation).</summary>
    private decimal EstimateCost(ModelRequest request, ModelProfileOptions profile, long input, long output)
    {
        var providers = profile.Providers.AsEnumerable();
        if (request.EscalateOnValidationFailure && profile.EscalateTo is { } next && EffectiveProfiles(_options).TryGetValue(next, out var escalation))
        {
            providers = providers.Concat(escalation.Providers);
        }

        return providers.Select(p => Price(p.Model, p)?.CostOf(input, output) ?? 0m).DefaultIfEmpty(0m).Max();
    }

    private ModelPrice? Price(string model, ModelProviderOptions provider) =>
        _options.Prices.TryGetValue(model, out var price) || _options.Prices.TryGetValue(provider.Model, out price) ? price : null;

    private ModelAttemptRecord Record(ModelCallOrigin origin, string workflow, int attempt, string profile, string provider, string model, string outcome, ModelUsage usage, decimal cost, TimeSpan latency) => new()
    {
        InstanceId = origin.InstanceId,
        Workflow = workflow,
        TaskKey = RunKey(origin),
        Host = host.Id,
        Attempt = attempt,
        Profile = profile,
        Provider = provider,
        Model = model,
        Outcome = outcome,
        InputTokens = usage.InputTokens,
        OutputTokens = usage.OutputTokens,
        LatencyMs = (long)latency.TotalMilliseconds,
        Cost = cost,
        At = time.GetUtcNow(),
    };

    private static string RunKey(ModelCallOrigin origin) => $"{origin.TaskKey}#{origin.Run}";

    private static string Sha256(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)));

    private static string Show<T>(T? value)
        where T : struct => value?.ToString() ?? "unlimited";

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Model call for {InstanceId}: profile {Profile}, provider {Provider}, model {Model}, {InputTokens} in / {OutputTokens} out tokens, {LatencyMs} ms, {HttpAttempts} HTTP attempts.")]
    private static partial void LogCall(ILogger logger, string instanceId, string profile, string provider, string model, long inputTokens, long outputTokens, long latencyMs, int httpAttempts);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Model call for {InstanceId}: provider {Failed} failed ({ErrorType}); falling back to {Next}.")]
    private static partial void LogFallback(ILogger logger, string instanceId, string failed, string next, string errorType);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Model call for {InstanceId} ({Workflow}) refused by its budget: used {UsedTokens} tokens, needs up to {NeededTokens}, max {MaxTokens}; used cost {UsedCost}, needs up to {NeededCost}, max {MaxCost}.")]
    private static partial void LogBudgetRefused(ILogger logger, string instanceId, string workflow, long usedTokens, long neededTokens, long? maxTokens, decimal usedCost, decimal neededCost, decimal? maxCost);

    [LoggerMessage(EventId = 1305, Level = LogLevel.Information, Message = "Model call for {InstanceId}: the answer of {Provider} did not match the schema ({Errors}); asking once for a repair.")]
    private static partial void LogRepair(ILogger logger, string instanceId, string provider, string errors);

    [LoggerMessage(EventId = 1306, Level = LogLevel.Information, Message = "Model call for {InstanceId}: escalating from profile {From} to {To} after an invalid structured answer.")]
    private static partial void LogEscalation(ILogger logger, string instanceId, string from, string to);

    [LoggerMessage(EventId = 1307, Level = LogLevel.Information, Message = "Model call for {InstanceId} answered from the cache ({Kind} match, entry {Key}).")]
    private static partial void LogCacheHit(ILogger logger, string instanceId, string kind, string key);

    [LoggerMessage(EventId = 1308, Level = LogLevel.Warning, Message = "Semantic cache lookup skipped: provider {Provider} could not embed the prompt ({Error}).")]
    private static partial void LogSemanticUnavailable(ILogger logger, string provider, string error);

    [LoggerMessage(EventId = 1309, Level = LogLevel.Information, Message = "Prompt for {InstanceId} to {Provider} (DurableAgents:Llm:LogContent is on):\n{Prompt}")]
    private static partial void LogPrompt(ILogger logger, string instanceId, string provider, string prompt);

    [LoggerMessage(EventId = 1314, Level = LogLevel.Information, Message = "Model call for {InstanceId}: {Provider} is at its rate limit; the workflow waits {WaitMs} ms on a durable timer and calls again.")]
    private static partial void LogCapacityWait(ILogger logger, string instanceId, string provider, long waitMs);

    [LoggerMessage(EventId = 1312, Level = LogLevel.Information, Message = "Model call for {InstanceId} resumed background response {ResponseId} of {TaskKey} instead of generating again.")]
    private static partial void LogResumed(ILogger logger, string instanceId, string responseId, string taskKey);

    [LoggerMessage(EventId = 1316, Level = LogLevel.Warning, Message = "The rate-limit wait of {InstanceId} could not be recorded for the dashboard ({Error}); the call goes on.")]
    private static partial void LogWaitNotRecorded(ILogger logger, string instanceId, string error);

    [LoggerMessage(EventId = 1317, Level = LogLevel.Information, Message = "Model call of {InstanceId} (task {TaskId}) was interrupted after {Characters} characters; the answer so far is the result, the attempt is recorded as interrupted.")]
    private static partial void LogInterrupted(ILogger logger, string instanceId, int taskId, int characters);

    [LoggerMessage(EventId = 1315, Level = LogLevel.Warning, Message = "Instance {InstanceId} has the tag priority '{Tag}', which is neither 'interactive' nor 'batch': its calls take the workflow's configured lane.")]
    private static partial void LogUnknownPriority(ILogger logger, string instanceId, string tag);

    [LoggerMessage(EventId = 1313, Level = LogLevel.Warning, Message = "Model call for {InstanceId}: background response {ResponseId} could not be resumed ({Reason}); starting a new generation, recorded as its own attempt.")]
    private static partial void LogResumeFailed(ILogger logger, string instanceId, string responseId, string reason);

    [LoggerMessage(EventId = 1310, Level = LogLevel.Information, Message = "Completion for {InstanceId} from {Provider} (DurableAgents:Llm:LogContent is on):\n{Completion}")]
    private static partial void LogCompletion(ILogger logger, string instanceId, string provider, string completion);
}

/// <summary>An instance as the model service needs it: the workflow it runs and the tags it was started with.</summary>
/// <param name="Name">The orchestrator name.</param>
/// <param name="Tags">The tags set at start.</param>
public sealed record WorkflowInstance(string Name, IReadOnlyDictionary<string, string> Tags);

/// <summary>Names the workflow an instance runs (budgets and usage are per workflow) and its tags (the rate-limit lane).</summary>
public interface IWorkflowNames
{
    /// <summary>The instance's workflow name and tags, or null when it is unknown.</summary>
    Task<WorkflowInstance?> DescribeAsync(string instanceId, CancellationToken cancellationToken);
}

/// <summary>Asks the Durable Task client.</summary>
public sealed class ClientWorkflowNames(DurableTaskClient client) : IWorkflowNames
{
    /// <inheritdoc />
    public async Task<WorkflowInstance?> DescribeAsync(string instanceId, CancellationToken cancellationToken) =>
        await client.GetInstanceAsync(instanceId, false, cancellationToken).ConfigureAwait(false) is { } m ? new WorkflowInstance(m.Name, m.Tags) : null;
}

/// <summary>The attempts of one model call, and the count of its model requests (steps), which names background responses per step.</summary>
internal sealed class CallRecords : List<ModelAttemptRecord>
{
    private int _steps;

    /// <summary>The call's lane at rate-limited deployments.</summary>
    public ModelPriority Priority { get; set; }

    /// <summary>The calling workflow's name.</summary>
    public string Workflow { get; set; } = "(unknown)";

    /// <summary>The call's id while it waits for capacity (see <see cref="ModelRateLimiter"/>).</summary>
    public Lazy<string> Waiter { get; set; } = new(() => Guid.NewGuid().ToString("n"));

    /// <summary>The HTTP attempts of the latest request (what the provider said about its limits).</summary>
    public IReadOnlyList<HttpAttempt> LastHttp { get; set; } = [];

    /// <summary>The text of the request being streamed, so far: the answer of a call that is cut off.</summary>
    public System.Text.StringBuilder Partial { get; } = new();

    /// <summary>The next step's 1-based number: the same on every run of the task while the call makes the same requests.</summary>
    public int NextStep() => ++_steps;
}

/// <summary>How a background response's continuation token is kept on its ledger row: "{step}:{token JSON}".</summary>
internal static class BackgroundToken
{
    /// <summary>
    /// Keeps the response id only: a resumed stream then replays the response from its first event, so
    /// no text is lost whichever update the token came from (the final answer needs all of it).
    /// </summary>
    public static string Format(int step, ResponseContinuationToken token)
    {
        using var json = JsonDocument.Parse(token.ToBytes());
        var id = json.RootElement.GetProperty("responseId").GetString();
        return $"{step.ToString(System.Globalization.CultureInfo.InvariantCulture)}:{JsonSerializer.Serialize(new Dictionary<string, string?> { ["responseId"] = id })}";
    }

    public static ResponseContinuationToken? Parse(string stored)
    {
        var colon = stored.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : ResponseContinuationToken.FromBytes(Encoding.UTF8.GetBytes(stored[(colon + 1)..]));
    }

    /// <summary>The provider's response id inside a token, for logs ("?" when it has none).</summary>
    public static string ResponseId(ResponseContinuationToken token)
    {
        try
        {
            using var json = JsonDocument.Parse(token.ToBytes());
            return json.RootElement.TryGetProperty("responseId", out var id) ? id.GetString() ?? "?" : "?";
        }
        catch (JsonException)
        {
            return "?";
        }
    }
}

/// <summary>Every provider of the profile is at its rate limit: no call was made.</summary>
internal sealed class ModelCapacityException(string provider, string model, TimeSpan retryAfter) : Exception($"Provider '{provider}' is at its rate limit; capacity expected in {retryAfter}.")
{
    public string Provider { get; } = provider;

    public string Model { get; } = model;

    public TimeSpan RetryAfter { get; } = retryAfter;
}
